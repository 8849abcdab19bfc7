"""Reference attribute transfer: alignment by landmarks, where the region lands, exactness outside it, the skin-colour
gap fill, the refine mask, and clear errors. Synthetic faces with a stub detector, and the astronaut with mediapipe's
real detector and face-mesh parser."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from remaskable_core.errors import InvalidInputError
from remaskable_core.faces import Face
from remaskable_core.parsing.labels import CLASS_INDEX, CLASSES
from remaskable_core.parsing.result import FaceParseResult
from remaskable_core.transfer import TransferSettings, transfer_region

SIZE = 96
# five ArcFace-order points of a face centred at the origin, 1 unit = the face's side
UNIT_LANDMARKS = np.array([[-0.18, -0.1], [0.18, -0.1], [0.0, 0.05], [-0.15, 0.22], [0.15, 0.22]])


def similarity(cx: float, cy: float, side: float, angle_deg: float) -> np.ndarray:
    """2x3: unit face coordinates -> pixels."""
    a = math.radians(angle_deg)
    return np.array([[side * math.cos(a), -side * math.sin(a), cx], [side * math.sin(a), side * math.cos(a), cy]])


class StubDetector:
    """Returns fixed faces (the real detectors are exercised on the astronaut below)."""

    name = "stub"

    def __init__(self, *faces_per_call: list[Face]):
        self.calls = list(faces_per_call)

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.calls.pop(0) if len(self.calls) > 1 else self.calls[0]


def face_at(matrix: np.ndarray) -> Face:
    landmarks = (UNIT_LANDMARKS @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
    cx, cy = matrix[:, 2]
    half = math.hypot(*matrix[:, 0]) / 2
    return Face((cx - half, cy - half, cx + half, cy + half), 0.9, landmarks)


def parse_of(regions: dict[str, np.ndarray], size: int = SIZE, backend: str = "segformer",
             covered: tuple[str, ...] = CLASSES) -> FaceParseResult:
    probs = torch.zeros(1, len(CLASSES), size, size)
    probs[0, CLASS_INDEX["background"]] = 1.0
    for name, region in regions.items():
        region = torch.from_numpy(region.astype(np.float32))
        probs[0] *= 1 - region
        probs[0, CLASS_INDEX[name]] += region
    return FaceParseResult(probs, [[(20.0, 20.0, 70.0, 70.0)]], backend, covered)


def ellipse(matrix: np.ndarray, centre: tuple[float, float], axes: tuple[float, float], size: int = SIZE
            ) -> np.ndarray:
    """[size,size] bool: an ellipse given in unit face coordinates, drawn in the image the matrix maps into."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    inverse = cv2.invertAffineTransform(matrix)
    u = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    v = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    return ((u - centre[0]) / axes[0]) ** 2 + ((v - centre[1]) / axes[1]) ** 2 <= 1.0


IDENTITY_FACE = similarity(48, 50, 50, 0)
REFERENCE_FACE = similarity(40, 44, 36, 20)  # smaller, rotated, elsewhere


@pytest.fixture
def scene():
    rng = np.random.default_rng(0)
    not_green = torch.tensor([1.0, 0.5, 1.0])  # random colours, none of them the reference lips' green
    identity = torch.from_numpy(rng.random((1, SIZE, SIZE, 3)).astype(np.float32)) * not_green
    reference = torch.from_numpy(rng.random((1, SIZE, SIZE, 3)).astype(np.float32)) * not_green
    skin = ellipse(IDENTITY_FACE, (0, 0), (0.45, 0.6))
    identity[0][torch.from_numpy(skin)] = torch.tensor([0.8, 0.6, 0.5])
    # the identity's "lips": wide; the reference's: narrow and painted green
    old = ellipse(IDENTITY_FACE, (0, 0.24), (0.25, 0.09))
    new = ellipse(REFERENCE_FACE, (0, 0.24), (0.14, 0.09))
    reference[0][torch.from_numpy(new)] = torch.tensor([0.0, 1.0, 0.0])
    return {
        "identity": identity, "reference": reference,
        "identity_parse": parse_of({"skin": skin & ~old, "u_lip": old}),
        "reference_parse": parse_of({"u_lip": new}),
        "detector": StubDetector([face_at(IDENTITY_FACE)], [face_at(REFERENCE_FACE)]),
        "old": old, "expected_new": ellipse(IDENTITY_FACE, (0, 0.24), (0.14, 0.09)),
    }


def run(scene, **settings):
    return transfer_region(scene["identity"], scene["reference"], scene["identity_parse"], scene["reference_parse"],
                           scene["detector"], ("u_lip",), TransferSettings(**settings))


def test_region_lands_on_the_identity_face_and_nothing_else_changes(scene):
    result = run(scene)
    out, identity = result.image[0], scene["identity"][0]
    green = (out[..., 1] > 0.75) & (out[..., 0] < 0.25) & (out[..., 2] < 0.25)
    expected = torch.from_numpy(scene["expected_new"])
    overlap = (green & expected).sum() / (green | expected).sum()
    assert overlap > 0.8, f"IoU {overlap:.2f} of the pasted region with where the aligned region should be"
    region = result.region[0].bool()
    assert torch.equal(out[~region], identity[~region]), "pixels outside the old+new region changed"
    assert result.image.shape == scene["identity"].shape


def test_old_region_left_uncovered_gets_the_mean_skin_colour(scene):
    result = run(scene)
    skin_only = torch.from_numpy(scene["identity_parse"].hard_mask("skin")[0].numpy().astype(bool))
    mean_skin = scene["identity"][0][skin_only].mean(0)
    gap = torch.from_numpy(scene["old"] & ~ellipse(IDENTITY_FACE, (0, 0.24), (0.18, 0.13)))  # well outside the new lips
    assert gap.sum() > 30
    assert torch.allclose(result.image[0][gap], mean_skin.expand(int(gap.sum()), 3), atol=1e-6)
    unfilled = run(scene, fill_gaps=False)
    assert torch.equal(unfilled.image[0][gap], scene["identity"][0][gap])


def test_refine_mask_covers_old_and_new_region_grown_and_feathered(scene):
    result = run(scene, grow=4, feather=6.0)
    refine, region = result.refine_mask[0], result.region[0].bool()
    assert bool((refine[region] == 1).all())
    assert refine.max() == 1 and 0 < refine.mean() < 0.5
    distance = cv2.distanceTransform((~region.numpy()).astype(np.uint8), cv2.DIST_L2, 5)
    assert bool((refine.numpy()[distance <= 4] == 1).all()), "not grown by 4 px"
    assert bool((refine.numpy()[distance > 4 + 6 + 1.5] == 0).all()), "reaches beyond grow + feather"
    ramp = refine.numpy()[(distance > 5) & (distance < 9)]
    assert ((ramp > 0) & (ramp < 1)).any(), "no soft edge"


def test_batches_broadcast_one_reference(scene):
    identity = torch.cat([scene["identity"], scene["identity"]])
    parse = scene["identity_parse"]
    parse2 = FaceParseResult(torch.cat([parse.probs, parse.probs]), parse.boxes * 2, parse.backend, parse.covered)
    detector = StubDetector([face_at(IDENTITY_FACE)], [face_at(REFERENCE_FACE)], [face_at(IDENTITY_FACE)],
                            [face_at(REFERENCE_FACE)])
    result = transfer_region(identity, scene["reference"], parse2, scene["reference_parse"], detector, ("u_lip",))
    assert result.image.shape == (2, SIZE, SIZE, 3) and result.refine_mask.shape == (2, SIZE, SIZE)
    assert torch.equal(result.image[0], result.image[1])
    assert result.report.count("image ") == 2


def test_clear_errors(scene):
    with pytest.raises(InvalidInputError, match="'reference'.*shows no upper lip"):
        transfer_region(scene["identity"], scene["reference"], scene["identity_parse"],
                        parse_of({"skin": scene["old"]}), scene["detector"], ("u_lip",))
    with pytest.raises(InvalidInputError, match="'identity'.*no face"):
        transfer_region(scene["identity"], scene["reference"], scene["identity_parse"], scene["reference_parse"],
                        StubDetector([]), ("u_lip",))
    with pytest.raises(InvalidInputError, match="'reference'.*no face"):
        transfer_region(scene["identity"], scene["reference"], scene["identity_parse"], scene["reference_parse"],
                        StubDetector([face_at(IDENTITY_FACE)], []), ("u_lip",))
    landmark_parse = parse_of({"u_lip": scene["old"]}, backend="landmarks", covered=("skin", "u_lip"))
    with pytest.raises(InvalidInputError, match="'reference_parse'.*landmarks backend.*hair"):
        transfer_region(scene["identity"], scene["reference"], scene["identity_parse"], landmark_parse,
                        scene["detector"], ("hair",))
    with pytest.raises(InvalidInputError, match="'identity_parse'.*is 64x64 but 'identity' is 96x96"):
        transfer_region(scene["identity"], scene["reference"], parse_of({}, size=64), scene["reference_parse"],
                        scene["detector"], ("u_lip",))
    with pytest.raises(InvalidInputError, match="'attribute'"):
        transfer_region(scene["identity"], scene["reference"], scene["identity_parse"], scene["reference_parse"],
                        scene["detector"], ())
    with pytest.raises(InvalidInputError, match="'reference'.*falls outside"):
        far = face_at(similarity(48, 50, 5, 0))  # a tiny identity face: the reference region shrinks to nothing
        transfer_region(scene["identity"], scene["reference"], scene["identity_parse"], scene["reference_parse"],
                        StubDetector([far], [face_at(REFERENCE_FACE)]), ("u_lip",))


def test_rgba_and_greyscale_inputs(scene):
    rgba = torch.cat([scene["identity"], torch.ones(1, SIZE, SIZE, 1)], dim=-1)
    grey = scene["reference"].mean(-1, keepdim=True)
    result = transfer_region(rgba, grey, scene["identity_parse"], scene["reference_parse"], scene["detector"],
                             ("u_lip",))
    assert result.image.shape == (1, SIZE, SIZE, 3)


# --- real detector and parser (mediapipe 0.10.21, weights bundled) --------------------------------------------------

@pytest.fixture(scope="module")
def mediapipe_tools():
    from remaskable_core.faces.detectors import DETECTOR_BACKENDS, DetectorOptions
    from remaskable_core.parsing.landmarks import LandmarkParser

    detector = DETECTOR_BACKENDS[0].build(None, DetectorOptions())
    return detector, LandmarkParser()


def as_image(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array).astype(np.float32) / 255.0)[None]


def test_astronaut_lips_from_a_moved_recoloured_copy_land_on_her_lips(mediapipe_tools):
    detector, parser = mediapipe_tools
    photo = skimage.data.astronaut()
    moved = cv2.getRotationMatrix2D((256, 200), 12, 1.25)
    moved[:, 2] += (20, -10)
    reference = as_image(cv2.warpAffine(photo, moved, (512, 512), borderMode=cv2.BORDER_REFLECT))
    reference_parse = parser.parse(reference)
    lips = reference_parse.hard_mask("lips")[0].bool()
    assert lips.sum() > 200
    reference[0][lips] = torch.tensor([0.0, 1.0, 0.0])  # paint its lips green (parsed before: the region stays)

    identity = as_image(photo)
    identity_parse = parser.parse(identity)
    result = transfer_region(identity, reference, identity_parse, reference_parse, detector,
                             ("u_lip", "l_lip"))
    old_lips = identity_parse.hard_mask("lips")[0].bool()
    out = result.image[0]
    green = (out[..., 1] > 0.6) & (out[..., 0] < 0.4)
    # her lips are ~7 px thick here and five-point alignment is good to a few pixels: the green lips must sit on
    # hers (centroids within 3 px), cover half of them, and not spill beyond a 3 px ring around them
    ys, xs = torch.nonzero(green, as_tuple=True)
    lip_ys, lip_xs = torch.nonzero(old_lips, as_tuple=True)
    assert math.hypot(xs.float().mean() - lip_xs.float().mean(), ys.float().mean() - lip_ys.float().mean()) < 3
    assert (green & old_lips).sum() / old_lips.sum() > 0.5, "the green lips do not cover hers"
    ring = torch.from_numpy(cv2.dilate(old_lips.numpy().astype(np.uint8), np.ones((7, 7))) > 0)
    assert (green & ~ring).sum() < 0.1 * green.sum(), "the green lips landed away from hers"
    far = result.refine_mask[0] == 0
    assert far.float().mean() > 0.9 and torch.equal(out[far], identity[0][far])
    assert "scale 0.8" in result.report or "scale 0.7" in result.report, result.report
