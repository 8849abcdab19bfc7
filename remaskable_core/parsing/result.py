"""FACE_PARSE: what FaceParse hands to SAMPrompt, MaskFuse, PixelBlend's colour match and the structure hint."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .labels import CLASS_INDEX, CLASSES, resolve_classes

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


@dataclass
class FaceParseResult:
    # [B, 19, H, W] float 0..1 per canonical class (CLASSES order), summing to 1 per pixel, or to 0 where a backend
    # that does not cover every class makes no claim (the landmark backend outside faces)
    probs: torch.Tensor
    boxes: list[list[Box]]  # per image: the faces found (empty list = no face)
    backend: str  # "segformer", "bisenet", "landmarks"...
    covered: tuple[str, ...] = CLASSES  # classes the backend can predict; the others are always 0
    messages: list[str] = field(default_factory=list)  # what the user should know (no face found in image 2...)

    labels: tuple[str, ...] = CLASSES

    def __post_init__(self) -> None:
        if self.probs.ndim != 4 or self.probs.shape[1] != len(CLASSES):
            raise ValueError(f"FaceParseResult.probs must be [B, {len(CLASSES)}, H, W], got {list(self.probs.shape)}")
        if len(self.boxes) != self.probs.shape[0]:
            raise ValueError("FaceParseResult.boxes needs one list of faces per image")

    @property
    def batch_size(self) -> int:
        return self.probs.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return self.probs.shape[2], self.probs.shape[3]

    def soft_mask(self, classes) -> torch.Tensor:
        """[B, H, W] probability that a pixel belongs to any of ``classes`` (names or presets)."""
        index = [CLASS_INDEX[name] for name in resolve_classes(classes)]
        if not index:
            return torch.zeros(self.probs.shape[0], *self.size)
        return self.probs[:, index].sum(1).clamp(0.0, 1.0)

    def label_map(self) -> torch.Tensor:
        """[B, H, W] int64 index of the most likely canonical class."""
        return self.probs.argmax(1)

    def hard_mask(self, classes) -> torch.Tensor:
        """[B, H, W] 0/1: pixels whose most likely class is one of ``classes``. Probability a backend leaves
        unclaimed (the landmark backend outside faces) counts as one more, unnamed class that can win."""
        index = torch.tensor([CLASS_INDEX[name] for name in resolve_classes(classes)], dtype=torch.long)
        claimed = self.probs.amax(1) > 1.0 - self.probs.sum(1)
        return (torch.isin(self.label_map(), index) & claimed).float()

    def select(self, indices: list[int]) -> "FaceParseResult":
        return FaceParseResult(self.probs[indices], [self.boxes[i] for i in indices], self.backend, self.covered,
                               list(self.messages))
