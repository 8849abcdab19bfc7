"""MaskedInpaintSampler's comfy-free core: mode choice, candidate seeds/noise (as KSampler draws it), the inpainting
model's masked image (as InpaintModelConditioning makes it), and the exact final composite."""

from __future__ import annotations

import pytest
import torch

from remaskable_core.errors import InvalidInputError
from remaskable_core.inpaint import (SEED_MAX, candidate_noise, candidate_seeds, grey_masked_pixels,
                                     keep_unmasked_exact, resolve_mode, tile_candidates)
from tests.unit.test_generate_latent_mask import import_comfy_or_skip


def test_modes():
    assert resolve_mode("auto", True) == "inpaint-model"
    assert resolve_mode("auto", False) == "blended"
    assert resolve_mode("blended", True) == "blended"
    assert resolve_mode("inpaint-model", True) == "inpaint-model"
    with pytest.raises(InvalidInputError, match="plain checkpoint"):
        resolve_mode("inpaint-model", False)
    with pytest.raises(InvalidInputError, match="unknown mode"):
        resolve_mode("outpaint", False)


def test_candidate_seeds_count_up_and_wrap():
    assert candidate_seeds(7, 3) == [7, 8, 9]
    assert candidate_seeds(SEED_MAX, 2) == [SEED_MAX, 0]
    with pytest.raises(InvalidInputError, match="candidates"):
        candidate_seeds(0, 0)


def test_candidate_noise_is_what_ksampler_draws_for_each_seed():
    import_comfy_or_skip()
    import comfy.sample

    latent = torch.zeros(2, 4, 12, 16)
    noise = candidate_noise(latent, [5, 6, 7])
    assert noise.shape == (6, 4, 12, 16)
    for k, seed in enumerate([5, 6, 7]):
        assert torch.equal(noise[2 * k:2 * k + 2], comfy.sample.prepare_noise(latent, seed))
    assert not torch.equal(noise[0], noise[2])


def test_tile_candidates_is_candidate_major():
    x = torch.arange(2.0).reshape(2, 1, 1, 1)
    assert tile_candidates(x, 3).flatten().tolist() == [0, 1, 0, 1, 0, 1]


def test_grey_masked_pixels_matches_inpaint_model_conditioning():
    pixels = torch.rand(2, 16, 24, 3)
    mask = torch.rand(2, 16, 24)
    # nodes.py InpaintModelConditioning.encode: m = 1 - mask.round(); pixels = (pixels - 0.5) * m + 0.5
    m = (1.0 - mask.round())
    expected = pixels.clone()
    for i in range(3):
        expected[:, :, :, i] -= 0.5
        expected[:, :, :, i] *= m
        expected[:, :, :, i] += 0.5
    torch.testing.assert_close(grey_masked_pixels(pixels, mask), expected, rtol=0, atol=0)


def test_keep_unmasked_exact_restores_the_original_bits_where_the_mask_is_zero():
    original = torch.randn(3, 4, 6, 8)
    sampled = original + 1e-7 * torch.randn_like(original)  # what the float path leaves: rounding noise
    sampled[:, :, 2:4, 2:5] = 5.0
    mask = torch.zeros(3, 1, 6, 8)
    mask[:, :, 2:4, 2:5] = 0.3  # soft values count as masked
    out = keep_unmasked_exact(sampled, original, mask)
    keep = (mask == 0).expand_as(out)
    assert torch.equal(out[keep], original[keep])
    assert bool((out[~keep] == 5.0).all())
