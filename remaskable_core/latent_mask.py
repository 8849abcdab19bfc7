"""Pixel masks on the latent grid of a VAE: downsampling modes, upsampling back, coverage.

ComfyUI's ``VAE.encode`` (comfy/sd.py ``vae_encode_crop_pixels``) crops an image whose sides are not multiples
of the VAE stride to the nearest multiple, *centred*: ``offset = (side % stride) // 2`` on each axis. Latent cell
``(i, j)`` therefore covers pixels ``[top + stride*i, top + stride*(i+1)) x [left + stride*j, ...)``, and the
``side % stride`` border rows/columns belong to no cell at all (the VAE never sees them). Every function here uses
that same grid, so a latent mask lines up exactly with the latents ``VAEEncode`` produces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import InvalidInputError
from .tensors import as_mask, match_batch

LATENT_STRIDE = 8  # SD1.x/SD2.x/SDXL VAEs
DOWNSAMPLE_MODES = ("any-cover", "area", "fully-inside", "threshold")
# A disc grown by this many pixels around an edit mask contains every latent cell any-cover marks for it: a cell's
# farthest pixel is (stride-1)*sqrt(2) ~ 9.9 px from a masked pixel in the opposite corner (8 px is not enough).
MIN_COMPOSITE_GROW_PX = math.ceil((LATENT_STRIDE - 1) * math.sqrt(2))


@dataclass(frozen=True)
class LatentGrid:
    """Where the latent cells of an image of ``height`` x ``width`` pixels lie (ComfyUI's centred VAE crop)."""

    height: int
    width: int
    stride: int = LATENT_STRIDE

    @property
    def latent_height(self) -> int:
        return self.height // self.stride

    @property
    def latent_width(self) -> int:
        return self.width // self.stride

    @property
    def top(self) -> int:
        return (self.height % self.stride) // 2

    @property
    def left(self) -> int:
        return (self.width % self.stride) // 2

    @property
    def cropped_height(self) -> int:
        return self.latent_height * self.stride

    @property
    def cropped_width(self) -> int:
        return self.latent_width * self.stride

    @property
    def is_cropped(self) -> bool:
        return (self.cropped_height, self.cropped_width) != (self.height, self.width)

    def check(self, input_name: str) -> None:
        if self.latent_height == 0 or self.latent_width == 0:
            raise InvalidInputError(input_name, f"is {self.width}x{self.height} pixels; the VAE needs at least "
                                                f"{self.stride}x{self.stride} (one latent cell).",
                                    "Use a larger image.")

    def crop(self, tensor: torch.Tensor, h_dim: int = 1) -> torch.Tensor:
        """The part of ``tensor`` (pixel rows at ``h_dim``, columns at ``h_dim + 1``) the VAE encodes."""
        return (tensor.narrow(h_dim, self.top, self.cropped_height)
                .narrow(h_dim + 1, self.left, self.cropped_width))

    def uncrop(self, cropped: torch.Tensor, fill: torch.Tensor, h_dim: int = 1) -> torch.Tensor:
        """``fill`` (full size) with its VAE-encoded part replaced by ``cropped``."""
        out = fill.clone()
        self.crop(out, h_dim).copy_(cropped)
        return out


def downsample_mask(mask: torch.Tensor, mode: str = "any-cover", threshold: float = 0.5,
                    stride: int = LATENT_STRIDE) -> torch.Tensor:
    """[B,H,W] pixel mask → [B,H//stride,W//stride] latent mask on ComfyUI's VAE grid.

    ``any-cover``: max over each cell (a cell is masked if any of its pixels is; upsampled, it contains the mask).
    ``fully-inside``: min over each cell (only cells entirely inside; upsampled, it lies within the mask).
    ``area``: mean over each cell (soft). ``threshold``: 1 where the cell's area fraction >= ``threshold``.
    """
    if mode not in DOWNSAMPLE_MODES:
        raise InvalidInputError("mode", f"unknown downsample mode '{mode}'.", f"Use one of {', '.join(DOWNSAMPLE_MODES)}.")
    mask = as_mask(mask)
    grid = LatentGrid(mask.shape[1], mask.shape[2], stride)
    grid.check("mask")
    cells = grid.crop(mask).reshape(mask.shape[0], grid.latent_height, stride, grid.latent_width, stride)
    if mode == "any-cover":
        return cells.amax(dim=(2, 4))
    if mode == "fully-inside":
        return cells.amin(dim=(2, 4))
    area = cells.mean(dim=(2, 4))
    if mode == "area":
        return area
    if not 0.0 < threshold <= 1.0:
        raise InvalidInputError("threshold", f"must be in (0, 1], got {threshold}.")
    # a small tolerance: a cell with exactly t of its pixels set must pass despite float rounding of the mean
    return (area >= threshold - 1e-6).float()


def upsample_latent_mask(latent_mask: torch.Tensor, height: int, width: int,
                         stride: int = LATENT_STRIDE) -> torch.Tensor:
    """[B,h,w] latent mask → [B,height,width] pixel mask: each cell's value on its stride x stride pixels, 0 on the
    border the VAE crops away. The exact inverse of the grid ``downsample_mask`` uses."""
    grid = LatentGrid(height, width, stride)
    latent_mask = as_mask(latent_mask, "latent_mask")
    if latent_mask.shape[1:] != (grid.latent_height, grid.latent_width):
        raise InvalidInputError("latent_mask", f"is {latent_mask.shape[2]}x{latent_mask.shape[1]} cells but a "
                                               f"{width}x{height} image has {grid.latent_width}x{grid.latent_height}.")
    cells = latent_mask.repeat_interleave(stride, dim=1).repeat_interleave(stride, dim=2)
    return grid.uncrop(cells, torch.zeros(latent_mask.shape[0], height, width, dtype=cells.dtype))


def noise_mask_to_grid(noise_mask: torch.Tensor, latent_height: int, latent_width: int) -> torch.Tensor:
    """A LATENT's ``noise_mask`` (any resolution, [B,1,h,w] / [B,h,w] / [h,w]) → [B,latent_height,latent_width],
    resized exactly as ComfyUI's samplers do (``comfy.utils.reshape_mask``: bilinear); already-latent-sized masks
    pass unchanged."""
    mask = noise_mask.float()
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim == 4:
        if mask.shape[1] != 1:
            raise InvalidInputError("latent", f"its noise_mask has shape {list(noise_mask.shape)}; expected "
                                              f"[batch, 1, height, width].")
        mask = mask[:, 0]
    if mask.ndim != 3:
        raise InvalidInputError("latent", f"its noise_mask has shape {list(noise_mask.shape)}; expected "
                                          f"[batch, 1, height, width].")
    if mask.shape[1:] != (latent_height, latent_width):
        mask = F.interpolate(mask[:, None], size=(latent_height, latent_width), mode="bilinear")[:, 0]
    return mask


def attach_noise_mask(latent: dict, latent_mask: torch.Tensor, input_name: str = "latent") -> dict:
    """A copy of ``latent`` with ``noise_mask`` = ``latent_mask`` as [B,1,h,w] (ComfyUI's layout)."""
    samples = latent.get("samples") if isinstance(latent, dict) else None
    if not isinstance(samples, torch.Tensor) or samples.ndim != 4:
        raise InvalidInputError(input_name, "is not an image LATENT with 'samples' of shape [batch, channels, "
                                            "height, width].")
    if samples.shape[2:] != latent_mask.shape[1:]:
        raise InvalidInputError(input_name, f"is {samples.shape[3]}x{samples.shape[2]} latent cells but the mask "
                                            f"gives {latent_mask.shape[2]}x{latent_mask.shape[1]}.",
                                "Encode the same image the mask was made for (the latent must come from VAE Encode of "
                                "an image the size of the mask).")
    latent_mask = match_batch(samples.shape[0], latent_mask, "mask", input_name)
    out = dict(latent)
    out["noise_mask"] = latent_mask[:, None].to(samples.device).contiguous()
    return out


@dataclass(frozen=True)
class LatentMaskReport:
    latent_mask: torch.Tensor  # [B,h,w]
    regenerated: torch.Tensor  # [B,H,W]: pixels of latent cells with a mask value > 0
    coverage: float  # mean latent-mask value over all cells and images, 0..1
    text: str


def describe(mask: torch.Tensor, latent_mask: torch.Tensor, mode: str, stride: int = LATENT_STRIDE) -> LatentMaskReport:
    """Coverage figures of a downsampled mask, for the user: cell counts, coverage, and edit pixels lost to the
    VAE crop or left out by the mode."""
    mask = as_mask(mask)
    height, width = mask.shape[1:]
    grid = LatentGrid(height, width, stride)
    upsampled = upsample_latent_mask(latent_mask, height, width, stride)
    regenerated = (upsampled > 0).float()
    coverage = float(latent_mask.mean()) if latent_mask.numel() else 0.0
    cells = int((latent_mask > 0).sum())
    edited = mask > 0
    outside_crop = int(edited.sum() - grid.crop(edited).sum())
    not_regenerated = int((edited & (upsampled <= 0)).sum()) - outside_crop
    lines = [f"mode {mode}: {cells} of {latent_mask.numel()} latent cells masked, coverage {coverage:.4f} "
             f"({grid.latent_width}x{grid.latent_height} cells x {latent_mask.shape[0]} image(s), stride {stride})"]
    if grid.is_cropped:
        lines.append(f"the VAE crops {width}x{height} to {grid.cropped_width}x{grid.cropped_height} (offset "
                     f"{grid.left},{grid.top}); {outside_crop} masked pixels lie in the cropped border and cannot be "
                     f"regenerated")
    if not_regenerated > 0:
        lines.append(f"{not_regenerated} masked pixels fall in cells this mode leaves unmasked")
    return LatentMaskReport(latent_mask, regenerated, coverage, "\n".join(lines))
