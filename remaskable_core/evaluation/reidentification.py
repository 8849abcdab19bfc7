"""Identity after an edit: the recogniser's cosine between the original's face and the edit's, and the
re-identification rate at a threshold.

Faces are found and embedded exactly as IdentityGuard does (``guard.score_identity``): the face the mask is on
(``identity.target_face``; the largest face without a mask) is found again in the edit at the same place (box IoU at
least 0.3), both are aligned by their five landmarks onto the ArcFace 112x112 template with a similarity transform
(``faces.warp_face``) and embedded; the score is the cosine of the L2-normalised embeddings.

Re-identification rate = the share of compared pairs whose cosine is at least the threshold. For preservation
(hair colour, glasses...) higher is better; for anonymization lower is better. Pairs where the original or the edit
shows no face are not compared; they are counted and reported. Cosines of different recognisers are not comparable,
so the recogniser, the alignment and the threshold are printed with every number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..guard import score_identity
from ..identity import IdentityModel

ALIGNMENT = "5-point similarity onto the ArcFace 112x112 template"


@dataclass(frozen=True)
class IdentityScore:
    cosine: float | None  # None: no face to compare
    face_in_original: bool

    @property
    def compared(self) -> bool:
        return self.cosine is not None


def identity_score(model: IdentityModel, original: np.ndarray, edit: np.ndarray,
                   edited: np.ndarray | None) -> IdentityScore:
    """Cosine of the edited face (RGB uint8 images of one size; ``edited`` the bool mask or None)."""
    mask = np.zeros(original.shape[:2], bool) if edited is None else edited
    cosines, _, face_in_original = score_identity(model, [original], [edit], [mask])
    return IdentityScore(cosines[0], face_in_original)


@dataclass(frozen=True)
class IdentitySummary:
    pairs: int  # original/edit pairs looked at
    compared: int  # of them, with the face found in both
    no_face_in_original: int
    no_face_in_edit: int
    mean_cosine: float | None
    reidentified: int  # compared pairs with cosine >= threshold
    threshold: float

    @property
    def reid_rate(self) -> float | None:
        return self.reidentified / self.compared if self.compared else None


def summarize_identity(scores: list[IdentityScore], threshold: float) -> IdentitySummary:
    cosines = [s.cosine for s in scores if s.cosine is not None]
    no_original = sum(not s.face_in_original for s in scores)
    return IdentitySummary(len(scores), len(cosines), no_original, len(scores) - len(cosines) - no_original,
                           float(np.mean(cosines)) if cosines else None, sum(c >= threshold for c in cosines),
                           threshold)
