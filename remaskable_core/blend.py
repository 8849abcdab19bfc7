"""Pasting edited pixels back into the original: soft alpha that feathers inward only, optional colour/lighting
match, and a defined policy for edited images a few pixels smaller than the original (ComfyUI's VAE crops sides to
multiples of 8). Outside the composite mask the output *is* the original, bit for bit."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .errors import InvalidInputError
from .latent_mask import LATENT_STRIDE, LatentGrid
from .mask_ops import binary, feather, grow
from .parsing.result import FaceParseResult
from .tensors import as_mask, as_rgb

SIZE_POLICIES = ("pad with original", "resize")
COLOR_SPACES = ("off", "lab", "rgb")
MATCH_REGIONS = ("ring", "parse class")
MIN_REFERENCE_PIXELS = 16
STD_RATIO_LIMITS = (0.5, 2.0)  # a colour match may at most halve or double a channel's contrast


@dataclass(frozen=True)
class ColorMatch:
    space: str = "off"  # off | lab | rgb
    region: str = "ring"  # ring | parse class
    ring_px: int = 16
    parse: FaceParseResult | None = None
    parse_class: str = "skin"
    strength: float = 1.0


@dataclass(frozen=True)
class BlendResult:
    image: torch.Tensor  # [M,H,W,3]
    alpha: torch.Tensor  # [M,H,W], 0 wherever the output equals the original
    report: str


def tile_batch(tensor: torch.Tensor, n: int, name: str, reference_name: str) -> torch.Tensor:
    """Repeat a batch of b to n items when n is a multiple of b ([x0, x1, x0, x1, ...], the order of
    MaskedInpaintSampler's candidates and of ComfyUI's Repeat*Batch nodes)."""
    b = tensor.shape[0]
    if b == n:
        return tensor
    if b == 0 or n % b:
        raise InvalidInputError(name, f"has a batch of {b}, which does not divide the {n} items of "
                                      f"'{reference_name}'.",
                                f"Give 1, or the same number of items as '{reference_name}', or a number that divides "
                                f"it (candidates are ordered candidate by candidate: all images of candidate 1, then "
                                f"candidate 2...).")
    return tensor.repeat(n // b, *([1] * (tensor.ndim - 1)))


def fit_edited(edited: torch.Tensor, original: torch.Tensor, policy: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``edited`` brought to ``original``'s size, the [M,H,W] region where it holds edited pixels, and a note.

    Sizes may differ only by what ComfyUI's VAE crops (less than 8 px per side, edited smaller). ``pad with
    original`` puts the edited pixels where the VAE took them from (centred crop offset) and fills the border from
    the original, which then stays unedited; ``resize`` stretches the edited image over the whole original."""
    if policy not in SIZE_POLICIES:
        raise InvalidInputError("size_policy", f"unknown policy '{policy}'.", f"Use one of {', '.join(SIZE_POLICIES)}.")
    height, width = original.shape[1:3]
    e_height, e_width = edited.shape[1:3]
    full = torch.ones(edited.shape[0], height, width)
    if (e_height, e_width) == (height, width):
        return edited, full, ""
    grid = LatentGrid(height, width, LATENT_STRIDE)
    if not (0 <= height - e_height < LATENT_STRIDE and 0 <= width - e_width < LATENT_STRIDE):
        raise InvalidInputError("edited", f"is {e_width}x{e_height} but 'original' is {width}x{height}.",
                                f"Only an edited image up to {LATENT_STRIDE - 1} px smaller per side (the VAE's crop to "
                                f"multiples of {LATENT_STRIDE}, here {grid.cropped_width}x{grid.cropped_height}) can be "
                                f"blended; crop or resize the images to match first.")
    if policy == "resize":
        resized = F.interpolate(edited.movedim(-1, 1), size=(height, width), mode="bilinear", align_corners=False)
        return resized.movedim(1, -1).clamp(0.0, 1.0), full, f"edited {e_width}x{e_height} resized to {width}x{height}"
    top, left = (height - e_height) // 2, (width - e_width) // 2
    placed = original.clone()
    placed[:, top:top + e_height, left:left + e_width] = edited
    valid = torch.zeros_like(full)
    valid[:, top:top + e_height, left:left + e_width] = 1.0
    return placed, valid, (f"edited {e_width}x{e_height} placed at offset {left},{top} of {width}x{height}; the "
                           f"border comes from the original")


def _to_space(rgb: np.ndarray, space: str) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab) if space == "lab" else rgb


def _from_space(values: np.ndarray, space: str) -> np.ndarray:
    return cv2.cvtColor(values.astype(np.float32), cv2.COLOR_Lab2RGB) if space == "lab" else values


def match_color(edited: np.ndarray, original: np.ndarray, reference: np.ndarray, space: str,
                strength: float) -> np.ndarray:
    """``edited`` [H,W,3] with each channel's mean/std on ``reference`` (bool [H,W]) mapped to ``original``'s there
    (in Lab or RGB). The caller applies the result only inside the mask."""
    e = _to_space(np.ascontiguousarray(edited, dtype=np.float32), space)
    o = _to_space(np.ascontiguousarray(original, dtype=np.float32), space)
    e_ref, o_ref = e[reference], o[reference]
    e_mean, o_mean = e_ref.mean(0), o_ref.mean(0)
    ratio = np.clip(o_ref.std(0) / np.maximum(e_ref.std(0), 1e-6), *STD_RATIO_LIMITS)
    matched = (e - e_mean) * ratio + o_mean
    out = _from_space(matched, space)
    return np.clip(edited + strength * (out - edited), 0.0, 1.0).astype(np.float32)


def _reference_regions(mask: torch.Tensor, valid: torch.Tensor, color: ColorMatch, n: int) -> torch.Tensor:
    """[M,H,W] bool: where colours are compared, always outside the mask and inside the edited pixels."""
    outside = (mask <= 0) & (valid > 0)
    if color.region == "ring":
        if color.ring_px < 1:
            raise InvalidInputError("ring_px", f"must be at least 1 for the ring colour match, got {color.ring_px}.")
        return (grow(binary(mask, 1e-6), color.ring_px) >= 0.5) & outside
    if color.parse is None:
        raise InvalidInputError("face_parse", "is needed when the colour match region is 'parse class'.",
                                "Connect FaceParse's FACE_PARSE output, or use the 'ring' region.")
    if color.parse.size != tuple(mask.shape[1:]):
        raise InvalidInputError("face_parse", f"is {color.parse.size[1]}x{color.parse.size[0]} but 'original' is "
                                              f"{mask.shape[2]}x{mask.shape[1]}.", "Parse the original image.")
    class_mask = tile_batch(color.parse.hard_mask(color.parse_class), n, "face_parse", "edited")
    return (class_mask > 0) & outside


def pixel_blend(original: torch.Tensor, edited: torch.Tensor, composite_mask: torch.Tensor, feather_px: float = 8.0,
                size_policy: str = "pad with original", color: ColorMatch = ColorMatch()) -> BlendResult:
    """``edited`` pasted into ``original`` through ``composite_mask`` (1 = take the edit).

    Batches: ``edited`` may hold a multiple of ``original``'s batch (candidates), the original is then repeated.
    The alpha is the composite mask feathered *inward* by ``feather_px``, zeroed where the edited image has no
    pixels; wherever it is 0 the output is the original tensor itself (so also identical after an 8-bit save).
    """
    original = as_rgb(original, "original")
    edited = as_rgb(edited, "edited")
    if color.space not in COLOR_SPACES:
        raise InvalidInputError("color_match", f"unknown colour space '{color.space}'.",
                                f"Use one of {', '.join(COLOR_SPACES)}.")
    if color.region not in MATCH_REGIONS:
        raise InvalidInputError("match_region", f"unknown region '{color.region}'.",
                                f"Use one of {', '.join(MATCH_REGIONS)}.")
    n = max(edited.shape[0], original.shape[0])
    if n % edited.shape[0] or n % original.shape[0]:
        raise InvalidInputError("edited", f"has {edited.shape[0]} images and 'original' {original.shape[0]}; one batch "
                                          f"must be a multiple of the other.",
                                "Give one original per image, or per group of candidates (MaskedInpaintSampler orders "
                                "them candidate by candidate: all images of candidate 1, then candidate 2...).")
    original = tile_batch(original, n, "original", "edited")
    edited = tile_batch(edited, n, "edited", "original")
    mask = as_mask(composite_mask, "composite_mask")
    if mask.shape[1:] != original.shape[1:3]:
        raise InvalidInputError("composite_mask", f"is {mask.shape[2]}x{mask.shape[1]} but 'original' is "
                                                  f"{original.shape[2]}x{original.shape[1]}; they must be the same size.")
    mask = tile_batch(mask, n, "composite_mask", "edited")

    edited, valid, note = fit_edited(edited, original, size_policy)
    alpha = (feather(mask, feather_px, "inward") * valid).clamp(0.0, 1.0)
    notes = [note] if note else []

    if color.space != "off":
        reference = _reference_regions(mask, valid, color, n)
        matched = []
        for i in range(n):
            if int(reference[i].sum()) < MIN_REFERENCE_PIXELS:
                notes.append(f"image {i + 1}: colour match skipped, fewer than {MIN_REFERENCE_PIXELS} reference pixels "
                             f"({color.region})")
                matched.append(edited[i])
                continue
            out = match_color(edited[i].cpu().numpy(), original[i].cpu().numpy(), reference[i].cpu().numpy(),
                              color.space, color.strength)
            matched.append(torch.from_numpy(out).to(edited.device))
        edited = torch.stack(matched)
        notes.append(f"colour matched in {color.space} on the {color.region}"
                     + (f" '{color.parse_class}'" if color.region == "parse class" else f" of {color.ring_px} px"))

    alpha4 = alpha.to(original.device)[..., None]
    blended = original * (1.0 - alpha4) + edited.to(original.device) * alpha4
    image = torch.where(alpha4 > 0, blended, original)
    changed = int((alpha > 0).sum())
    notes.insert(0, f"{n} image(s) {original.shape[2]}x{original.shape[1]}: {changed} pixels take the edit "
                    f"(feather {feather_px:g} px inward)")
    return BlendResult(image, alpha, "\n".join(notes))
