"""FaceParse in one call: parse, settle left/right, make the mask of the chosen classes and the preview."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..tensors import as_rgb
from .base import FaceParser, Progress
from .geometry import assign_sides
from .labels import DISPLAY_NAMES, select_classes
from .preview import render_preview
from .result import FaceParseResult

SIDES = ("subject", "model")
SIDES_NOTES = {
    "subject": "left/right = the subject's own",
    "model": "left/right = as the model labels them",
}


@dataclass
class FaceParseOutput:
    result: FaceParseResult
    mask: torch.Tensor  # [B, H, W] float 0..1
    preview: torch.Tensor  # [B, H', W', 3]
    classes: tuple[str, ...]
    messages: list[str]  # everything the user should read: faces not found, classes the backend cannot see...


def settle_sides(result: FaceParseResult) -> FaceParseResult:
    """The result with l_/r_ classes re-split so that l_ is the subject's left, by position on each face."""
    probs = torch.stack([assign_sides(result.probs[i], result.boxes[i]) for i in range(result.batch_size)])
    return FaceParseResult(probs, result.boxes, result.backend, result.covered, list(result.messages))


def parse_images(parser: FaceParser, images: torch.Tensor, sides: str = "subject",
                 progress: Progress = None) -> FaceParseResult:
    """The parse of RGB ``images`` [B,H,W,3] with l_/r_ settled as ``sides`` asks ("subject" or "model")."""
    if sides not in SIDES:
        raise ValueError(f"sides must be one of {SIDES}, got {sides!r}")
    result = parser.parse(images, progress)
    if sides == "subject" and parser.sides != "subject":
        result = settle_sides(result)
    return result


def selection_notes(parser: FaceParser, result: FaceParseResult, chosen: tuple[str, ...]) -> list[str]:
    """What the user should know about a class selection: classes the backend cannot see, an empty selection."""
    notes = list(getattr(parser, "notes", ()))
    uncovered = [DISPLAY_NAMES[name] for name in chosen if name not in result.covered]
    if uncovered:
        notes.append(f"The {result.backend} backend does not detect {', '.join(uncovered)}: "
                     f"{'that part of the mask stays' if len(uncovered) == 1 else 'those parts of the mask stay'} empty.")
    if not chosen:
        notes.append("No classes are chosen: the mask is empty. Pick a preset or list classes.")
    return notes


def face_parse(parser: FaceParser, images: torch.Tensor, preset: str = "face", classes: str = "", hard: bool = False,
               sides: str = "subject", progress: Progress = None) -> FaceParseOutput:
    """Parse ``images`` ([B,H,W,C] IMAGE, any size, RGB/RGBA/grey) and select classes by preset and list.

    ``sides``: "subject" makes l_/r_ the subject's left/right (by position on the face) for backends whose
    learnt labels do not guarantee it; "model" keeps the backend's own labels.
    """
    images = as_rgb(images)
    chosen = select_classes(preset, classes)
    result = parse_images(parser, images, sides, progress)
    mask = result.hard_mask(chosen) if hard else result.soft_mask(chosen)
    notes = selection_notes(parser, result, chosen)
    side_note = SIDES_NOTES["subject" if parser.sides == "subject" else sides]
    preview = render_preview(images, result, chosen, mask, side_note, notes)
    result.messages = notes + result.messages
    return FaceParseOutput(result, mask, preview, chosen, list(result.messages))
