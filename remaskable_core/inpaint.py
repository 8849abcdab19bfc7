"""The parts of masked inpainting that need no diffusion framework: mode choice, candidate seeds and noise,
the masked-image input of inpainting models, and the final exact latent composite.

The sampling itself is ComfyUI's (the MaskedInpaintSampler node calls ``comfy.sample.sample``); this module only
prepares its inputs and checks its outputs.
"""

from __future__ import annotations

import torch

from .errors import InvalidInputError

INPAINT_MODES = ("auto", "inpaint-model", "blended")
SEED_MAX = 0xFFFFFFFFFFFFFFFF


def resolve_mode(mode: str, is_inpaint_model: bool) -> str:
    """``auto`` → ``inpaint-model`` for checkpoints with extra input channels (9-channel inpainting UNets), else
    ``blended``. ``inpaint-model`` on a plain checkpoint is an error: it has nowhere to take the masked image."""
    if mode not in INPAINT_MODES:
        raise InvalidInputError("mode", f"unknown mode '{mode}'.", f"Use one of {', '.join(INPAINT_MODES)}.")
    if mode == "auto":
        return "inpaint-model" if is_inpaint_model else "blended"
    if mode == "inpaint-model" and not is_inpaint_model:
        raise InvalidInputError("mode", "is 'inpaint-model' but the model is a plain checkpoint (4 input channels) "
                                        "that cannot take the masked image.",
                                "Load an inpainting checkpoint (e.g. sd-v1-5-inpainting.ckpt) or use 'blended' or "
                                "'auto'.")
    return mode


def candidate_seeds(seed: int, candidates: int) -> list[int]:
    """seed, seed+1, ..., wrapping at 2**64 like ComfyUI's seed widget range."""
    if candidates < 1:
        raise InvalidInputError("candidates", f"must be at least 1, got {candidates}.")
    return [(seed + k) & SEED_MAX for k in range(candidates)]


def candidate_noise(latent: torch.Tensor, seeds: list[int]) -> torch.Tensor:
    """Initial noise for ``len(seeds)`` candidates of a [B,C,h,w] latent, candidate-major ([c0 b0, c0 b1, ...,
    c1 b0, ...]). Candidate k's noise is what ``comfy.sample.prepare_noise(latent, seeds[k])`` (KSampler with that
    seed) draws for the whole batch."""
    noises = []
    for seed in seeds:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        noises.append(torch.randn(latent.shape, dtype=latent.dtype, layout=latent.layout, generator=generator,
                                  device="cpu"))
    return torch.cat(noises)


def tile_candidates(tensor: torch.Tensor, candidates: int) -> torch.Tensor:
    """A per-image tensor repeated for every candidate, in candidate-major order (as ``candidate_noise``)."""
    return tensor.repeat(candidates, *([1] * (tensor.ndim - 1)))


def grey_masked_pixels(pixels: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
    """The inpainting model's masked image: [B,H,W,3] pixels with mid grey (0.5) where ``pixel_mask`` (>= 0.5)
    marks what is to be generated, as SD inpainting checkpoints were trained (ComfyUI's InpaintModelConditioning)."""
    keep = (pixel_mask < 0.5).to(pixels.dtype)[..., None]
    return (pixels - 0.5) * keep + 0.5


def keep_unmasked_exact(sampled: torch.Tensor, original: torch.Tensor, noise_mask: torch.Tensor) -> torch.Tensor:
    """``sampled`` where the [B,1,h,w] noise mask is > 0, ``original`` bit for bit where it is 0.

    ComfyUI's sampler already pastes the original latent outside the mask at every step, but the last step and the
    latent scale round trip leave float rounding there; this makes the unmasked latents exactly the input's."""
    if sampled.shape != original.shape:
        raise ValueError(f"sampled {list(sampled.shape)} and original {list(original.shape)} latents differ in shape")
    keep = (noise_mask <= 0).to(sampled.device).expand_as(sampled)
    return torch.where(keep, original.to(sampled.device, sampled.dtype), sampled)
