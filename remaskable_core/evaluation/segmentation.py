"""Face-parsing accuracy: per-class IoU and F1 of predicted label maps against annotations, and their means.

Counts are pooled over the whole dataset in one 19x19 confusion matrix (rows: annotation, columns: prediction), as
FaRL's scorer does (farl/experiments/face_parsing/scorer.py): per class, IoU = TP / (TP + FP + FN) and
F1 = 2 TP / (2 TP + FP + FN), from the dataset's total counts, not averaged per image.

* mean F1 averages the 18 classes other than background: FaRL's ``fg_mean`` (``compute_fg_mean``, background
  excluded), the number FaRL (89.56) and SegFace (88.96) publish for CelebAMask-HQ.
* mIoU averages all 19 classes, background included (the usual semantic-segmentation mean).
* A class that appears in neither the annotations nor the predictions has no score (None) and is left out of both
  means; on the full CelebAMask-HQ test split every class appears.

Classes are CelebAMask-HQ's 19 canonical classes by name (``parsing.labels.CLASSES``); label maps in another order
(BiSeNet's) are mapped by name when read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..parsing.labels import CLASS_INDEX, CLASSES

# a face parser as the evaluation sees it: RGB uint8 [H,W,3] -> int64 [H,W] canonical class indices
LabelPredictor = Callable[[np.ndarray], np.ndarray]
BACKGROUND = CLASS_INDEX["background"]
MEAN_F1_CLASSES = tuple(name for name in CLASSES if name != "background")


def confusion_matrix(annotation: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """[19,19] int64 pixel counts: row = annotated class, column = predicted class."""
    if annotation.shape != prediction.shape:
        raise ValueError(f"annotation {annotation.shape} and prediction {prediction.shape} differ in size")
    count = len(CLASSES)
    pairs = annotation.reshape(-1).astype(np.int64) * count + prediction.reshape(-1).astype(np.int64)
    return np.bincount(pairs, minlength=count * count).reshape(count, count)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> list[float | None]:
    return [float(n / d) if d > 0 else None for n, d in zip(numerator, denominator)]


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


@dataclass
class ParsingScores:
    confusion: np.ndarray  # [19,19] pooled pixel counts
    images: int

    @classmethod
    def empty(cls) -> "ParsingScores":
        return cls(np.zeros((len(CLASSES), len(CLASSES)), np.int64), 0)

    @classmethod
    def of_image(cls, annotation: np.ndarray, prediction: np.ndarray) -> "ParsingScores":
        return cls(confusion_matrix(annotation, prediction), 1)

    def merge(self, other: "ParsingScores") -> None:
        self.confusion += other.confusion
        self.images += other.images

    @property
    def _counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        true_positive = np.diag(self.confusion).astype(np.float64)
        annotated = self.confusion.sum(1).astype(np.float64)
        predicted = self.confusion.sum(0).astype(np.float64)
        return true_positive, annotated, predicted

    @property
    def iou(self) -> list[float | None]:
        tp, annotated, predicted = self._counts
        return _ratio(tp, annotated + predicted - tp)

    @property
    def f1(self) -> list[float | None]:
        tp, annotated, predicted = self._counts
        return _ratio(2 * tp, annotated + predicted)

    @property
    def miou(self) -> float | None:
        return _mean(self.iou)

    @property
    def mean_f1(self) -> float | None:
        return _mean([f for name, f in zip(CLASSES, self.f1) if name in MEAN_F1_CLASSES])

    @property
    def pixel_accuracy(self) -> float | None:
        total = self.confusion.sum()
        return float(np.diag(self.confusion).sum() / total) if total else None

    def per_class(self) -> dict[str, dict[str, float | int | None]]:
        _, annotated, predicted = self._counts
        return {name: {"iou": iou, "f1": f1, "annotated_pixels": int(a), "predicted_pixels": int(p)}
                for name, iou, f1, a, p in zip(CLASSES, self.iou, self.f1, annotated, predicted)}


def predictor_from_parser(parser, sides: str = "subject") -> LabelPredictor:
    """A face-parsing backend (``parsing.FaceParser``: ``parse(images [B,H,W,3] float 0..1) -> FaceParseResult``) as
    a LabelPredictor: the most likely canonical class per pixel. ``sides`` as FaceParse's: "subject" re-splits l_/r_
    classes by position on the face (FaceParse's default) unless the backend already does; "model" keeps the
    backend's own labels."""
    from ..parsing.pipeline import SIDES, settle_sides

    if sides not in SIDES:
        raise ValueError(f"sides must be one of {SIDES}, got {sides!r}")

    def predict(image: np.ndarray) -> np.ndarray:
        images = torch.from_numpy(np.ascontiguousarray(image)).float().div(255.0)[None]
        result = parser.parse(images)
        if sides == "subject" and getattr(parser, "sides", "model") != "subject":
            result = settle_sides(result)
        return result.label_map()[0].cpu().numpy().astype(np.int64)

    return predict
