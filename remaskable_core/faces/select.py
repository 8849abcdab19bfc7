"""Which faces to work on: detection over an IMAGE batch, ordering, selection by index, and a labelled preview."""

from __future__ import annotations

import math
import re
from typing import Callable

import cv2
import numpy as np
import torch

from ..errors import InvalidInputError
from .face import Face, FaceDetector

FACE_ORDERS = ("largest first", "left to right", "right to left", "top to bottom", "nearest to point",
               "most confident")


def image_to_uint8(image: torch.Tensor) -> np.ndarray:
    """One [H,W,3] float 0..1 image as the RGB uint8 array detectors take."""
    return (image.detach().cpu().float().clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


def detect_batch(detector: FaceDetector, images: torch.Tensor,
                 progress: Callable[[int, int], None] | None = None) -> list[list[Face]]:
    """Faces of every image of an RGB [B,H,W,3] batch."""
    found = []
    for index, image in enumerate(images):
        found.append(list(detector.detect(image_to_uint8(image))))
        if progress is not None:
            progress(index + 1, len(images))
    return found


def order_faces(faces: list[Face], order: str, width: int, height: int,
                point: tuple[float, float] = (0.5, 0.5)) -> list[Face]:
    """``faces`` sorted by ``order``; ``point`` is (x, y) as fractions of the image's width and height."""
    if order not in FACE_ORDERS:
        raise InvalidInputError("order", f"unknown order {order!r}.", f"Use one of {list(FACE_ORDERS)}.")
    px, py = point[0] * width, point[1] * height
    keys: dict[str, Callable[[Face], tuple]] = {
        "largest first": lambda f: (-f.area, f.center[0]),
        "left to right": lambda f: (f.center[0], f.center[1]),
        "right to left": lambda f: (-f.center[0], f.center[1]),
        "top to bottom": lambda f: (f.center[1], f.center[0]),
        "nearest to point": lambda f: (math.hypot(f.center[0] - px, f.center[1] - py),),
        "most confident": lambda f: (-f.score,),
    }
    return sorted(faces, key=keys[order])


def parse_selection(text: str, input_name: str = "select") -> list[int] | None:
    """Indices named by ``text``: "all" (None), or a comma list of indices and inclusive ranges ("0", "0,2",
    "1-3"); negative indices count from the end ("-1" is the last)."""
    text = (text or "").strip().lower()
    if text in ("", "all", "*"):
        return None
    indices: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(-?\d+)(?:\s*(?:-|to|\.\.)\s*(-?\d+))?", part)
        if not match:
            raise InvalidInputError(input_name, f"cannot read {part!r} in {text!r}.",
                                    'Write "all", an index ("0" is the first face in the chosen order), a list '
                                    '("0,2") or a range ("1-3").')
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if (first < 0) != (last < 0):
            raise InvalidInputError(input_name, f"the range {part!r} mixes counting from the start and the end.")
        step = 1 if last >= first else -1
        indices += list(range(first, last + step, step))
    return indices


def select_faces(faces: list[Face], order: str, selection: list[int] | None, width: int, height: int,
                 point: tuple[float, float] = (0.5, 0.5)) -> list[Face]:
    """The chosen faces in the chosen order; indices beyond the faces found are skipped, repeats kept once."""
    ordered = order_faces(faces, order, width, height, point)
    if selection is None:
        return ordered
    picked: list[int] = []
    for index in selection:
        if -len(ordered) <= index < len(ordered) and index % len(ordered) not in picked:
            picked.append(index % len(ordered))
    return [ordered[i] for i in picked]


def draw_faces(image: np.ndarray, faces: list[Face], chosen: list[Face]) -> np.ndarray:
    """``image`` (RGB uint8) with every face's box; chosen faces green and numbered in their order, the rest grey."""
    canvas = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 400))
    numbers = {id(face): number for number, face in enumerate(chosen)}
    for face in faces:
        picked = id(face) in numbers
        colour = (40, 220, 60) if picked else (150, 150, 150)
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, thickness)
        if face.landmarks is not None:
            for x, y in face.landmarks:
                cv2.circle(canvas, (int(round(x)), int(round(y))), thickness + 1, (255, 80, 40), -1)
        if picked:
            label = str(numbers[id(face)])
            scale = max(0.4, face.height / 120)
            (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
            cv2.rectangle(canvas, (x0, max(y0 - th - 6, 0)), (x0 + tw + 6, max(y0, th + 6)), colour, -1)
            cv2.putText(canvas, label, (x0 + 3, max(y0 - 3, th + 3)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (0, 0, 0), thickness, cv2.LINE_AA)
    return canvas


def choose_faces(found: list[list[Face]], order: str, selection: str, width: int, height: int,
                 point: tuple[float, float] = (0.5, 0.5)) -> list[list[Face]]:
    """The chosen faces of every image of a batch (``selection`` as ``parse_selection`` reads it)."""
    indices = parse_selection(selection)
    return [select_faces(faces, order, indices, width, height, point) for faces in found]
