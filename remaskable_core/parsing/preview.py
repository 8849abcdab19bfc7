"""The FaceParse preview: the parse as a colour overlay, the chosen mask outlined, and a legend panel that
names every class the backend covers (display names, chosen ones marked), the left/right convention,
the faces found and what went wrong."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .labels import CLASS_INDEX, CLASSES, DISPLAY_NAMES, PALETTE
from .result import FaceParseResult

FONT = cv2.FONT_HERSHEY_SIMPLEX
OVERLAY_OPACITY = 0.5
TEXT = (235, 235, 235)
DIM = (120, 120, 120)
WARN = (255, 90, 90)
PANEL = (28, 28, 28)
WRAP = 34  # characters per legend line for messages


def _wrap(text: str, width: int = WRAP) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line] if line else lines


def overlay(image: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """RGB float [H,W,3] with every non-background class tinted in its palette colour by its probability."""
    palette = np.array([PALETTE[name] for name in CLASSES], dtype=np.float32) / 255.0
    palette[CLASS_INDEX["background"]] = 0.0
    weight = np.clip(probs.sum(0) - probs[CLASS_INDEX["background"]], 0.0, 1.0)[..., None]
    colour = np.einsum("khw,kc->hwc", probs, palette)
    return image * (1 - OVERLAY_OPACITY * weight) + OVERLAY_OPACITY * colour


def legend_lines(result: FaceParseResult, index: int, selected: tuple[str, ...], sides_note: str,
                 notes: list[str]) -> list[tuple[str, tuple[int, int, int], str | None]]:
    """(text, colour, swatch class or None) for one image's legend."""
    faces = result.boxes[index]
    lines: list[tuple[str, tuple[int, int, int], str | None]] = [
        (f"FaceParse: {result.backend}", TEXT, None),
        (sides_note, TEXT, None),
        (f"{len(faces)} face(s) found" if faces else "NO FACE FOUND: mask empty", TEXT if faces else WARN, None),
    ]
    present = result.probs[index].flatten(1).amax(1) >= 0.5
    for name in result.covered:
        chosen = name in selected
        label = ("> " if chosen else "  ") + DISPLAY_NAMES[name]
        lines.append((label, TEXT if present[CLASS_INDEX[name]] else DIM, name))
    for note in notes:
        lines += [(line, WARN, None) for line in _wrap(note)]
    return lines


def render_preview(images: torch.Tensor, result: FaceParseResult, selected: tuple[str, ...], mask: torch.Tensor,
                   sides_note: str, notes: list[str] | None = None) -> torch.Tensor:
    """[B, H', W', 3] float previews: overlay + outline of ``mask`` on the left, legend on the right."""
    batch, height, width = images.shape[:3]
    scale = max(1.0, height / 640)
    font_scale, thickness, row = 0.4 * scale, max(1, int(round(scale))), int(round(16 * scale))
    all_lines = [legend_lines(result, i, selected, sides_note, notes or []) for i in range(batch)]
    text_width = max(cv2.getTextSize(text, FONT, font_scale, thickness)[0][0] for lines in all_lines for text, _, _ in lines)
    swatch = row
    panel_width = text_width + swatch + 3 * int(6 * scale)
    panel_height = row * (max(len(lines) for lines in all_lines) + 1)
    out_height = max(height, panel_height)
    previews = []
    for i in range(batch):
        canvas = np.empty((out_height, width + panel_width, 3), dtype=np.uint8)
        canvas[:] = PANEL
        image = overlay(images[i].cpu().numpy(), result.probs[i].cpu().numpy())
        canvas[:height, :width] = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
        outline = (mask[i].cpu().numpy() >= 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(outline, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(canvas[:height, :width], contours, -1, (255, 255, 255), thickness)
        x = width + int(6 * scale)
        for n, (text, colour, swatch_class) in enumerate(all_lines[i]):
            baseline = row * (n + 1)
            text_x = x
            if swatch_class is not None:
                cv2.rectangle(canvas, (x, baseline - row + 3), (x + swatch - 4, baseline - 1), PALETTE[swatch_class], -1)
                text_x = x + swatch
            cv2.putText(canvas, text, (text_x, baseline - 3), FONT, font_scale, colour, thickness, cv2.LINE_AA)
        previews.append(torch.from_numpy(canvas).float() / 255.0)
    return torch.stack(previews)
