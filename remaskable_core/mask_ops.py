"""Mask morphology shared by every stage: grow/shrink, feathering (inward, outward or centred), hole filling,
island removal. Masks are [B,H,W] float 0..1; binary operations treat values >= 0.5 as inside."""

from __future__ import annotations

import cv2
import numpy as np
import torch

FEATHER_DIRECTIONS = ("inward", "outward", "centered")


def _per_image(mask: torch.Tensor, fn) -> torch.Tensor:
    out = [torch.from_numpy(np.ascontiguousarray(fn(m.detach().cpu().numpy().astype(np.float32))))
           for m in mask]
    return torch.stack(out).to(mask.device, torch.float32) if out else mask.float()


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def grow(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Dilate (``pixels`` > 0) or erode (< 0) with a disc; soft values are max/min-filtered, not binarised."""
    if pixels == 0:
        return mask.float()
    op = cv2.dilate if pixels > 0 else cv2.erode
    kernel = _disc(abs(int(pixels)))
    return _per_image(mask, lambda m: op(m, kernel, borderType=cv2.BORDER_REPLICATE))


def binary(mask: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    return (mask >= threshold).float()


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _distance_inside(support: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) from each inside pixel to the nearest outside pixel; 0 outside. Image borders do
    not count as outside, so a mask touching the border stays solid there."""
    padded = np.pad(support.astype(np.uint8), 1, mode="edge")
    return cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]


def feather(mask: torch.Tensor, radius: float, direction: str = "inward") -> torch.Tensor:
    """Soft edge of width ``radius`` px.

    ``inward``: the ramp lies inside the mask, so the result is 0 wherever the mask is 0 (what a paste-back
    needs: pixels outside the mask stay untouched). ``outward``: the ramp lies outside, the mask itself stays at
    full strength. ``centered``: a Gaussian blur across the edge.
    """
    if direction not in FEATHER_DIRECTIONS:
        raise ValueError(f"feather direction must be one of {FEATHER_DIRECTIONS}, got {direction!r}")
    if radius <= 0:
        return mask.float()
    if direction == "centered":
        sigma = radius / 2.0
        return _per_image(mask, lambda m: cv2.GaussianBlur(m, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE))

    def inward(m: np.ndarray) -> np.ndarray:
        return m * _smoothstep(_distance_inside(m > 0) / radius)

    def outward(m: np.ndarray) -> np.ndarray:
        outside_distance = _distance_inside(m <= 0)
        ramp = _smoothstep(1.0 - outside_distance / radius) * (outside_distance > 0)
        return np.maximum(m, ramp.astype(np.float32))

    return _per_image(mask, inward if direction == "inward" else outward)


def fill_holes(mask: torch.Tensor, max_area: int = 0) -> torch.Tensor:
    """Fill enclosed background regions (not touching the image border); only those up to ``max_area`` px when
    ``max_area`` > 0. Filled pixels become 1, the rest keeps its soft values."""

    def fill(m: np.ndarray) -> np.ndarray:
        background = (m < 0.5).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(background, connectivity=4)
        border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist())
        holes = [i for i in range(1, count) if i not in border and (max_area <= 0 or stats[i, 4] <= max_area)]
        out = m.copy()
        out[np.isin(labels, holes)] = 1.0
        return out

    return _per_image(mask, fill)


def drop_islands(mask: torch.Tensor, min_area: int = 0, keep_largest: int = 0) -> torch.Tensor:
    """Remove connected regions smaller than ``min_area`` px and/or keep only the ``keep_largest`` biggest."""

    def drop(m: np.ndarray) -> np.ndarray:
        count, labels, stats, _ = cv2.connectedComponentsWithStats((m >= 0.5).astype(np.uint8), connectivity=8)
        areas = stats[1:, 4]
        keep = [i + 1 for i, area in enumerate(areas) if area >= min_area]
        if keep_largest > 0:
            keep = sorted(keep, key=lambda i: -stats[i, 4])[:keep_largest]
        # soft fringe pixels (< 0.5) belong to no region; keep them only next to a kept region
        kept = np.isin(labels, keep).astype(np.uint8)
        near_kept = cv2.dilate(kept, _disc(1)) > 0
        return np.where(kept.astype(bool) | ((m < 0.5) & near_kept), m, 0.0).astype(np.float32)

    if min_area <= 0 and keep_largest <= 0:
        return mask.float()
    return _per_image(mask, drop)


def bounding_box(mask: torch.Tensor, threshold: float = 0.5) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), x1/y1 exclusive, of the pixels >= threshold in a [H,W] mask; None when empty."""
    ys, xs = torch.nonzero(mask >= threshold, as_tuple=True)
    if ys.numel() == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
