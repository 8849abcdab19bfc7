"""The interface every face-parsing backend implements, and the pipeline the segmentation networks share.

A backend turns an IMAGE batch into a :class:`FaceParseResult`: per-class probabilities in the canonical
CelebAMask-HQ order (mapped from the backend's own class names, never by index), the faces it found, and
messages for the user. Networks (SegFormer, BiSeNet) only provide logits for a normalised square input;
resizing, softmax, the mapping by name, finding faces and the no-face rule are done here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

import torch
import torch.nn.functional as F

from .geometry import find_faces
from .labels import CLASS_INDEX, CLASSES, reorder
from .result import FaceParseResult

Progress = Callable[[int, int], None] | None

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def no_face_message(index: int, batch_size: int) -> str:
    where = "the image" if batch_size == 1 else f"image {index + 1} of {batch_size}"
    return f"No face found in {where}: its masks are empty."


class FaceParser(ABC):
    """A face-parsing backend. ``parse`` takes IMAGE-like RGB floats [B,H,W,3] in 0..1 (any size)."""

    backend: str  # "segformer", "bisenet", "landmarks"
    covered: tuple[str, ...] = CLASSES  # canonical classes it can predict; the others stay 0
    # how its l_/r_ classes are assigned: "model" (learnt labels) or "subject" (subject's left/right by geometry)
    sides: str = "model"

    @abstractmethod
    def parse(self, images: torch.Tensor, progress: Progress = None) -> FaceParseResult:
        """Parse every image; ``progress(done, total)`` is called per image (raising from it interrupts)."""


class NetworkParser(FaceParser):
    """A segmentation network over a fixed square input (resized without keeping the aspect ratio, as the
    published models were trained), normalised with ImageNet mean/std."""

    input_size: int = 512
    order: tuple[str, ...]  # the network's classes, canonical names in its output-channel order

    @abstractmethod
    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        """[1, len(order), h, w] logits for one normalised [1, 3, input_size, input_size] image."""

    @property
    def weights_device(self) -> torch.device:
        """Where the network runs (not ``device``: ComfyUI's ModelPatcher assigns that attribute itself)."""
        return torch.device("cpu")

    def class_probs(self, images: torch.Tensor, progress: Progress = None) -> torch.Tensor:
        """[B, 19, H, W] canonical per-class probabilities on the CPU, before any face finding."""
        batch, height, width = images.shape[:3]
        mean = torch.tensor(IMAGENET_MEAN, device=self.weights_device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=self.weights_device).view(1, 3, 1, 1)
        out = torch.empty(batch, len(CLASSES), height, width)
        if progress:
            progress(0, batch)
        for i in range(batch):
            x = images[i:i + 1].to(self.weights_device, torch.float32).permute(0, 3, 1, 2)
            x = F.interpolate(x, size=(self.input_size,) * 2, mode="bilinear", align_corners=False,
                              antialias=max(height, width) > self.input_size)
            with torch.inference_mode():
                logits = self.logits((x - mean) / std).float()
                logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
                out[i] = reorder(logits.softmax(1), self.order)[0].cpu()
            if progress:
                progress(i + 1, batch)
        return out

    def parse(self, images: torch.Tensor, progress: Progress = None) -> FaceParseResult:
        probs = self.class_probs(images, progress)
        boxes, messages = [], []
        for i in range(probs.shape[0]):
            faces = find_faces(probs[i])
            if not faces:
                # stray face-class pixels too small to be a face would otherwise leak into masks
                probs[i].zero_()
                probs[i, CLASS_INDEX["background"]] = 1.0
                messages.append(no_face_message(i, probs.shape[0]))
            boxes.append(faces)
        return FaceParseResult(probs, boxes, self.backend, self.covered, messages)


def check_class_order(order: tuple[str, ...], source: str) -> tuple[str, ...]:
    """A backend's class order must name each canonical class exactly once."""
    from ..errors import ModelFileError

    missing = [name for name in CLASSES if name not in order]
    extra = [name for name in order if name not in CLASS_INDEX]
    if missing or extra or len(set(order)) != len(order):
        raise ModelFileError(f"{source}: its classes {list(order)} are not the 19 CelebAMask-HQ classes "
                             f"(missing {missing}, unknown {extra}).")
    return order
