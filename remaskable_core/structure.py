"""Structure hints for ControlNet: an edge map of the face (Canny and/or face-part boundaries, restricted or
weighted to the edit region) and a parse-colour map, as [B,H,W,3] IMAGEs that ComfyUI's ControlNet nodes take.

By default the hints are cropped the way ComfyUI's VAE crops the image (sides to multiples of 8, centred), so they
line up pixel for pixel with the latent instead of being stretched by the ControlNet's resize."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .errors import InvalidInputError
from .latent_mask import LATENT_STRIDE, LatentGrid
from .mask_ops import binary, grow
from .parsing.labels import CLASSES, PALETTE
from .parsing.result import FaceParseResult
from .tensors import as_rgb, mask_for_image

EDGE_SOURCES = ("canny", "parse", "canny+parse")
FACE_REGION = "head"  # the parse preset that bounds the edge map when no edit mask is given


@dataclass(frozen=True)
class StructureHints:
    edges: torch.Tensor  # [B,h,w,3] white edges on black
    parse_map: torch.Tensor  # [B,h,w,3] class colours (labels.PALETTE); black when no FACE_PARSE is given
    region: torch.Tensor  # [B,h,w] where the edges keep full strength


def canny_edges(image: torch.Tensor, low: int = 100, high: int = 200) -> torch.Tensor:
    """[B,H,W,3] 0..1 → [B,H,W] 0/1 Canny edges of the luminance (8-bit, L2 gradient)."""
    if not 0 <= low <= high:
        raise InvalidInputError("low_threshold", f"must be between 0 and high_threshold ({high}), got {low}.")
    out = []
    for rgb in image.cpu().numpy():
        grey = cv2.cvtColor(np.round(rgb * 255.0).astype(np.uint8), cv2.COLOR_RGB2GRAY)
        out.append(torch.from_numpy(cv2.Canny(grey, low, high, L2gradient=True) > 0))
    return torch.stack(out).float()


def parse_boundaries(parse: FaceParseResult) -> torch.Tensor:
    """[B,H,W] 0/1: pixels whose most likely class differs from their right or lower neighbour."""
    labels = parse.label_map()
    edges = torch.zeros(labels.shape, dtype=torch.bool)
    edges[:, :, :-1] |= labels[:, :, :-1] != labels[:, :, 1:]
    edges[:, :-1, :] |= labels[:, :-1, :] != labels[:, 1:, :]
    return edges.float()


def parse_color_map(parse: FaceParseResult) -> torch.Tensor:
    """[B,H,W,3] 0..1: each pixel in the palette colour of its most likely class."""
    palette = torch.tensor([PALETTE[name] for name in CLASSES], dtype=torch.float32) / 255.0
    return palette[parse.label_map()]


def structure_hints(image: torch.Tensor, parse: FaceParseResult | None = None, mask: torch.Tensor | None = None,
                    edge_source: str = "canny+parse", low: int = 100, high: int = 200, grow_px: int = 8,
                    outside_strength: float = 0.0, crop_to_vae_grid: bool = True) -> StructureHints:
    """Edge map and parse-colour map of ``image``.

    Region: the edit ``mask`` if given, else the head (parse preset) if ``parse`` is given, grown by ``grow_px``;
    else the whole image. Edges inside keep strength 1, edges outside ``outside_strength`` (0 = restricted).
    ``edge_source`` ``parse``/``canny+parse`` add the boundaries between face parts (needs ``parse``; without one
    ``canny+parse`` is plain Canny).
    """
    image = as_rgb(image)
    batch, height, width = image.shape[:3]
    if edge_source not in EDGE_SOURCES:
        raise InvalidInputError("edge_source", f"unknown source '{edge_source}'.", f"Use one of {', '.join(EDGE_SOURCES)}.")
    if not 0.0 <= outside_strength <= 1.0:
        raise InvalidInputError("outside_strength", f"must be between 0 and 1, got {outside_strength}.")
    if parse is not None:
        if parse.size != (height, width):
            raise InvalidInputError("face_parse", f"is {parse.size[1]}x{parse.size[0]} but 'image' is {width}x{height}.",
                                    "Parse the same image.")
        if parse.batch_size not in (1, batch):
            raise InvalidInputError("face_parse", f"has {parse.batch_size} images but 'image' has {batch}.")
        if parse.batch_size != batch:
            parse = parse.select([0] * batch)
    elif edge_source == "parse":
        raise InvalidInputError("face_parse", "is needed for the edge source 'parse'.",
                                "Connect FaceParse's FACE_PARSE output, or use 'canny'.")

    if mask is not None:
        region = grow(binary(mask_for_image(mask, image)), grow_px) >= 0.5
    elif parse is not None:
        region = grow(parse.hard_mask(FACE_REGION), grow_px) >= 0.5
    else:
        region = torch.ones(batch, height, width, dtype=torch.bool)

    edges = torch.zeros(batch, height, width)
    if edge_source in ("canny", "canny+parse"):
        edges = torch.maximum(edges, canny_edges(image, low, high))
    if edge_source in ("parse", "canny+parse") and parse is not None:
        edges = torch.maximum(edges, parse_boundaries(parse))
    weight = torch.where(region, torch.ones(()), torch.full((), float(outside_strength)))
    edges = (edges * weight)[..., None].expand(-1, -1, -1, 3)
    parse_map = parse_color_map(parse) if parse is not None else torch.zeros(batch, height, width, 3)

    region = region.float()
    if crop_to_vae_grid:
        grid = LatentGrid(height, width, LATENT_STRIDE)
        grid.check("image")
        edges, parse_map, region = grid.crop(edges), grid.crop(parse_map), grid.crop(region)
    return StructureHints(edges.contiguous(), parse_map.contiguous(), region.contiguous())
