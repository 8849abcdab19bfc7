"""Background preservation: how much an edit changed the image outside its mask (MSE, PSNR, SSIM, LPIPS).

The mask marks the edited region; every score is taken over the *unmasked* region (BrushBench's mask = 1 - inpaint
mask). Two protocols:

* ``remaskable`` (default): full resolution. MSE is the mean squared difference over the unmasked pixels and their
  three channels (values 0..1); PSNR = 10 log10(1 / MSE), infinite when nothing outside the mask changed. SSIM is
  Wang et al.'s (11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, data range 1, per channel) computed between the
  original and the edit *with its masked region filled from the original*, and its map averaged over the unmasked
  pixels: 1 exactly when nothing outside changed, and the edit's inside cannot leak into windows at the mask's edge.
  LPIPS is ``perceptual.lpips_outside_mask`` (the same fill, the map averaged over the unmasked pixels, longer side
  at most 512 by area downscaling), so it is 0 exactly when nothing outside changed.
* ``brushbench``: TencentARC/BrushNet's ``evaluate_brushnet.py``. Original and edit are resized to 512x512 (bicubic,
  as PIL's ``resize`` does), the mask nearest. MSE is BrushBench's formula: the squared difference summed over the
  three channels, averaged over the unmasked pixels (3x the per-value MSE, so its PSNR is 10 log10 3 = 4.77 dB lower
  than the remaskable protocol's on the same pair). LPIPS compares both images with the masked region set to black
  and averages the map over all pixels (BrushBench used LPIPS 'squeeze' through torchmetrics). BrushBench has no
  SSIM; it is computed as above, at 512x512. BrushBench scores an identical pair PSNR 1000; here it is infinite and
  counted separately. The resize is a no-op on BrushBench's own 512x512 images; on other sizes it blends pixels
  across the mask's edge before masking, so even an edit identical outside its mask scores a finite PSNR there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..perceptual import lpips_outside_mask

REMASKABLE, BRUSHBENCH = "remaskable", "brushbench"
PROTOCOLS = (REMASKABLE, BRUSHBENCH)
BRUSHBENCH_SIZE = 512
SSIM_WINDOW_SIGMA = 1.5  # with skimage's truncation at 3.5 sigma: the 11x11 window of Wang et al. 2004
SSIM_MIN_SIDE = 11

PROTOCOL_NOTES = {
    REMASKABLE: "full resolution; MSE = mean over the unmasked pixels and their 3 channels (values 0..1); "
                "PSNR = 10·log10(1/MSE); SSIM (Gaussian 11x11, σ 1.5) and LPIPS of the original against the edit with "
                "its masked region filled from the original, maps averaged over the unmasked pixels",
    BRUSHBENCH: "BrushBench's evaluate_brushnet.py: resized to 512x512 (bicubic; mask nearest; on images not "
                "512x512 already this blends pixels across the mask's edge); MSE = squared error summed over the 3 "
                "channels, averaged over the unmasked pixels (3x the per-value MSE); PSNR = 10·log10(1/MSE); LPIPS of "
                "both images with the masked region black, averaged over all pixels; SSIM as in the remaskable "
                "protocol at 512x512",
}


@dataclass(frozen=True)
class BackgroundScore:
    unmasked_fraction: float  # share of the pixels outside the mask; the other fields are None when it is 0
    mse: float | None = None
    psnr: float | None = None  # inf: identical outside the mask
    ssim: float | None = None  # None also for images under 11 pixels on a side
    lpips: float | None = None  # None when no LPIPS network was given


def _brushbench_size(original: np.ndarray, edit: np.ndarray, edited: np.ndarray):
    from PIL import Image

    size = (BRUSHBENCH_SIZE, BRUSHBENCH_SIZE)

    def image(array: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.BICUBIC))

    mask = np.asarray(Image.fromarray(edited.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 127
    return image(original), image(edit), mask


def masked_ssim(original: np.ndarray, edit: np.ndarray, keep: np.ndarray) -> float | None:
    """SSIM map of ``original`` against ``edit`` (float 0..1 [H,W,3]; the edit already filled inside the mask)
    averaged over the pixels of ``keep`` and the channels; None for images too small for the 11x11 window."""
    from skimage.metrics import structural_similarity

    if min(original.shape[:2]) < SSIM_MIN_SIDE:
        return None
    _, ssim_map = structural_similarity(original, edit, data_range=1.0, channel_axis=2, gaussian_weights=True,
                                        sigma=SSIM_WINDOW_SIGMA, use_sample_covariance=False, full=True)
    return float(ssim_map[keep].mean())


def background_score(original: np.ndarray, edit: np.ndarray, edited: np.ndarray, protocol: str = REMASKABLE,
                     lpips_net: torch.nn.Module | None = None) -> BackgroundScore:
    """Scores of ``edit`` against ``original`` (RGB uint8 [H,W,3], same size) outside ``edited`` (bool [H,W], True =
    the edited region) under ``protocol`` (module docstring). ``lpips_net``: from ``perceptual.load_lpips``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if original.shape != edit.shape or original.shape[:2] != edited.shape:
        raise ValueError(f"original {original.shape}, edit {edit.shape} and mask {edited.shape} must be the same size")
    if protocol == BRUSHBENCH:
        original, edit, edited = _brushbench_size(original, edit, edited)
    keep = ~edited
    unmasked = int(keep.sum())
    if unmasked == 0:
        return BackgroundScore(0.0)
    a = original.astype(np.float64) / 255.0
    b = edit.astype(np.float64) / 255.0
    squared = (a - b) ** 2
    mse = float(squared[keep].sum() / unmasked) if protocol == BRUSHBENCH else float(squared[keep].mean())
    psnr = math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)
    filled = np.where(edited[..., None], a, b)
    ssim = masked_ssim(a, filled, keep)
    lpips = None
    if lpips_net is not None:
        lpips = _brushbench_lpips(lpips_net, a, b, keep) if protocol == BRUSHBENCH else \
            _lpips_outside(lpips_net, a, b, edited)
    return BackgroundScore(unmasked / keep.size, mse, psnr, ssim, lpips)


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).float()[None]


def _lpips_outside(net: torch.nn.Module, a: np.ndarray, b: np.ndarray, edited: np.ndarray) -> float:
    (score,) = lpips_outside_mask(net, _tensor(a), _tensor(b), _tensor(edited.astype(np.float32)))
    return score


@torch.no_grad()
def _brushbench_lpips(net: torch.nn.Module, a: np.ndarray, b: np.ndarray, keep: np.ndarray) -> float:
    device = next(net.parameters()).device
    weight = keep[..., None]
    x, y = (_tensor(image * weight).permute(0, 3, 1, 2).to(device) for image in (a, b))
    return float(net(y, x, normalize=True).mean())


@dataclass(frozen=True)
class BackgroundSummary:
    images: int  # images scored (with at least one unmasked pixel)
    identical: int  # of them, unchanged outside the mask (PSNR infinite)
    fully_masked: int  # images whose mask covers everything: nothing to score
    psnr: float | None  # mean over the images with a finite PSNR; inf when every image is identical outside
    mse: float | None
    ssim: float | None
    lpips: float | None


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def summarize_background(scores: list[BackgroundScore]) -> BackgroundSummary:
    scored = [s for s in scores if s.mse is not None]
    finite = [s.psnr for s in scored if s.psnr is not None and math.isfinite(s.psnr)]
    identical = len(scored) - len(finite)
    psnr = float(np.mean(finite)) if finite else (math.inf if scored else None)
    return BackgroundSummary(len(scored), identical, len(scores) - len(scored), psnr, _mean([s.mse for s in scored]),
                             _mean([s.ssim for s in scored]), _mean([s.lpips for s in scored]))
