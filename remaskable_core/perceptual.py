"""LPIPS outside the edit mask: how much a candidate changed where nothing was meant to change.

The metric: the candidate's masked region is replaced by the original's (so both images are identical there), LPIPS
is computed as a spatial map, and the map is averaged over the unmasked pixels (weight 1 - mask). Filling the masked
region first makes the score exactly 0 when nothing outside the mask changed, however much the inside did (a
spatial map alone would see the inside through the network's receptive field near the mask edge); averaging over
the unmasked pixels only keeps the score on LPIPS's usual scale whatever the mask's size. Images larger than
``max_side`` are scaled down first (area), as in BrushBench's 512-pixel protocol, which also bounds the cost.

The network is the ``lpips`` package's LPIPS (its linear heads ship in the wheel) with the torchvision backbone
weights read from a local file (models/lpips), so nothing is downloaded.
"""

from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from .errors import ModelFileError
from .models import load_state_dict

LPIPS_BACKBONES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth",
                   "squeeze": "squeezenet1_1-b8a52dc0.pth"}
_BACKBONE_NAMES = {"alex": "AlexNet", "vgg": "VGG16", "squeeze": "SqueezeNet 1.1"}
MAX_SIDE = 512


def load_lpips(backbone_path: str | os.PathLike, net: str = "alex") -> torch.nn.Module:
    """``lpips.LPIPS(net=..., spatial=True)`` with its bundled linear heads and the torchvision ImageNet backbone
    weights of ``backbone_path`` (AlexNet ``alexnet-owt-7be5be79.pth``, VGG16 ``vgg16-397923af.pth`` or SqueezeNet 1.1
    ``squeezenet1_1-b8a52dc0.pth``, the net BrushBench's torchmetrics LPIPS uses)."""
    import lpips

    if net not in LPIPS_BACKBONES:
        raise ValueError(f"net must be one of {sorted(LPIPS_BACKBONES)}, got {net!r}")
    path = Path(backbone_path)
    with warnings.catch_warnings():  # lpips builds the backbone with torchvision's deprecated `pretrained=False`
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(pretrained=False, net=net, pnet_rand=True, spatial=True, verbose=False)
    heads = Path(inspect.getfile(lpips.LPIPS)).parent / "weights" / "v0.1" / f"{net}.pth"
    model.load_state_dict(load_state_dict(heads), strict=False)

    backbone = load_state_dict(path)
    # lpips keeps torchvision's `features` modules under their original indices, split into slices:
    # its `slice2.3.weight` is torchvision's `features.3.weight`
    wanted = model.net.state_dict()
    mapped = {}
    for key, tensor in wanted.items():
        source = "features." + key.split(".", 1)[1]
        if source not in backbone or backbone[source].shape != tensor.shape:
            found = tuple(backbone[source].shape) if source in backbone else "missing"
            raise ModelFileError(f"{path.name} is not torchvision's {_BACKBONE_NAMES[net]} ImageNet "
                                 f"checkpoint: '{source}' should be {tuple(tensor.shape)} ({found}). LPIPS '{net}' "
                                 f"needs {LPIPS_BACKBONES[net]}.")
        mapped[key] = backbone[source].to(tensor.dtype)
    model.net.load_state_dict(mapped)
    return model.eval().requires_grad_(False)


def _fit(tensor: torch.Tensor, max_side: int) -> torch.Tensor:
    """[B,C,H,W] scaled down (area) so its longer side is at most ``max_side``."""
    height, width = tensor.shape[-2:]
    scale = max_side / max(height, width)
    if scale >= 1:
        return tensor
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(tensor, size=size, mode="area")


@torch.no_grad()
def lpips_outside_mask(net: torch.nn.Module, original: torch.Tensor, candidates: torch.Tensor, mask: torch.Tensor,
                       max_side: int = MAX_SIDE,
                       progress: Callable[[int, int], None] | None = None) -> list[float]:
    """LPIPS of each candidate against the original over the unmasked region (see the module docstring).

    net: an LPIPS-like module built with ``spatial=True`` whose ``forward(x0, x1, normalize=True)`` takes images in
    0..1 and returns a [B,1,H,W] map. original: [1|N,H,W,3] in 0..1; candidates: [N,H,W,3]; mask: [1|N,H,W], 1 =
    edited. A candidate with nothing outside the mask scores 0.
    """
    if not getattr(net, "spatial", False):
        raise ValueError("lpips_outside_mask needs an LPIPS network built with spatial=True")
    device = next(net.parameters()).device
    count = candidates.shape[0]
    scores = []
    for i in range(count):
        reference = original[min(i, original.shape[0] - 1)].permute(2, 0, 1)[None].to(device)
        candidate = candidates[i].permute(2, 0, 1)[None].to(device)
        inside = mask[min(i, mask.shape[0] - 1)][None, None].to(device)
        filled = torch.lerp(candidate, reference, inside)  # exact where the mask is 0 or 1
        reference, filled, outside = (_fit(t, max_side) for t in (reference, filled, 1 - inside))
        weight = outside.sum()
        if weight <= 0:
            scores.append(0.0)
        else:
            distance = net(filled, reference, normalize=True)
            scores.append(float((distance * outside).sum() / weight))
        if progress is not None:
            progress(i + 1, count)
    return scores
