"""LatentDownsample's core: modes, ComfyUI's VAE crop grid, nesting edit ⊆ latent ⊆ composite, noise_mask layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from remaskable_core.errors import InvalidInputError
from remaskable_core.latent_mask import (DOWNSAMPLE_MODES, MIN_COMPOSITE_GROW_PX, LatentGrid, attach_noise_mask,
                                         describe, downsample_mask, noise_mask_to_grid, upsample_latent_mask)
from remaskable_core.mask_ops import binary, feather, grow


def import_comfy_or_skip() -> None:
    from tests.fixtures.sd15 import import_comfy

    try:
        import_comfy()
    except RuntimeError as exc:  # no ComfyUI at $COMFYUI_DIR
        pytest.skip(str(exc))


def blob_mask(height: int, width: int, seed: int, blobs: int = 3) -> torch.Tensor:
    """[1,H,W] random union of ellipses, some touching the border."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    mask = np.zeros((height, width), bool)
    for _ in range(blobs):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(2, height / 4), rng.uniform(2, width / 4)
        mask |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    return torch.from_numpy(mask).float()[None]


def reference_pool(mask: torch.Tensor, reduce) -> torch.Tensor:
    """Cell values by explicit loops over ComfyUI's centred crop (comfy/sd.py vae_encode_crop_pixels)."""
    height, width = mask.shape[1:]
    top, left = (height % 8) // 2, (width % 8) // 2
    out = torch.zeros(mask.shape[0], height // 8, width // 8)
    for i in range(height // 8):
        for j in range(width // 8):
            out[:, i, j] = reduce(mask[:, top + 8 * i:top + 8 * i + 8, left + 8 * j:left + 8 * j + 8].reshape(mask.shape[0], -1))
    return out


@pytest.mark.parametrize("height,width", [(64, 64), (389, 517), (101, 133), (15, 9)])
def test_modes_match_explicit_cell_loops_on_the_vae_crop_grid(height, width):
    mask = feather(blob_mask(height, width, seed=height), 3, "centered")  # soft values too
    expected = {
        "any-cover": reference_pool(mask, lambda v: v.amax(1)),
        "fully-inside": reference_pool(mask, lambda v: v.amin(1)),
        "area": reference_pool(mask, lambda v: v.mean(1)),
        "threshold": (reference_pool(mask, lambda v: v.mean(1)) >= 0.3 - 1e-6).float(),
    }
    for mode in DOWNSAMPLE_MODES:
        latent = downsample_mask(mask, mode, threshold=0.3)
        assert latent.shape == (1, height // 8, width // 8)
        torch.testing.assert_close(latent, expected[mode], rtol=0, atol=1e-6, msg=mode)


def test_grid_offsets_are_comfyuis_centred_crop():
    grid = LatentGrid(389, 517)
    assert (grid.latent_height, grid.latent_width) == (48, 64)
    assert (grid.top, grid.left) == (2, 2)  # 389 % 8 = 5 -> 2; 517 % 8 = 5 -> 2
    grid = LatentGrid(101, 133)
    assert (grid.top, grid.left, grid.cropped_height, grid.cropped_width) == (2, 2, 96, 128)
    assert not LatentGrid(64, 72).is_cropped


def test_grid_matches_comfyui_vae_crop():
    import_comfy_or_skip()
    import comfy.sd

    vae = comfy.sd.VAE.__new__(comfy.sd.VAE)  # only the crop method and its two fields
    vae.crop_input, vae.downscale_ratio = True, 8
    image = torch.rand(1, 101, 133, 3)
    torch.testing.assert_close(comfy.sd.VAE.vae_encode_crop_pixels(vae, image), LatentGrid(101, 133).crop(image),
                               rtol=0, atol=0)


def test_threshold_counts_a_cell_exactly_at_the_threshold():
    mask = torch.zeros(1, 8, 8)
    mask[0, :4] = 1  # 32 of 64 pixels
    assert downsample_mask(mask, "threshold", 0.5).item() == 1.0
    assert downsample_mask(mask, "threshold", 0.51).item() == 0.0


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("height,width", [(389, 517), (101, 133), (64, 64)])
def test_nesting_edit_within_latent_within_composite(seed, height, width):
    edit = blob_mask(height, width, seed)
    grid = LatentGrid(height, width)
    up = upsample_latent_mask(downsample_mask(edit, "any-cover"), height, width)
    composite = grow(binary(edit), MIN_COMPOSITE_GROW_PX)
    inside_crop = grid.crop(edit)
    assert bool((inside_crop <= grid.crop(up)).all()), "an edited pixel inside the VAE crop is not regenerated"
    assert bool(((up > 0) <= (composite > 0)).all()), "a regenerated pixel lies outside the composite mask"
    # fully-inside is the other way round: within the edit mask
    inner = upsample_latent_mask(downsample_mask(edit, "fully-inside"), height, width)
    assert bool(((inner > 0) <= (edit > 0)).all())


def test_growing_by_8_px_with_a_disc_is_not_enough_for_the_nesting():
    edit = torch.zeros(1, 16, 16)
    edit[0, 7, 7] = 1  # bottom-right corner of cell (0, 0): its top-left pixel is 7*sqrt(2) px away
    up = upsample_latent_mask(downsample_mask(edit, "any-cover"), 16, 16)
    assert up[0, 0, 0] == 1
    assert grow(edit, 8)[0, 0, 0] == 0
    assert grow(edit, MIN_COMPOSITE_GROW_PX)[0, 0, 0] == 1


def test_upsample_is_zero_on_the_cropped_border_and_inverts_downsample():
    latent = (torch.rand(2, 12, 16) > 0.5).float()
    up = upsample_latent_mask(latent, 101, 133)
    assert up.shape == (2, 101, 133)
    assert up[:, :2].sum() == 0 and up[:, 98:].sum() == 0 and up[:, :, :2].sum() == 0 and up[:, :, 130:].sum() == 0
    for mode in DOWNSAMPLE_MODES:
        torch.testing.assert_close(downsample_mask(up, mode), latent, rtol=0, atol=0)


def test_report_counts_masked_pixels_in_the_cropped_border():
    mask = torch.zeros(1, 101, 133)
    mask[0, 0, 0:10] = 1  # top row: cropped away (offset 2)
    mask[0, 50, 60] = 1
    report = describe(mask, downsample_mask(mask, "any-cover"), "any-cover")
    assert "10 masked pixels lie in the cropped border" in report.text
    assert report.coverage == pytest.approx(1 / (12 * 16))
    assert report.regenerated.shape == (1, 101, 133) and report.regenerated.sum() == 64


def test_empty_and_full_masks():
    assert downsample_mask(torch.zeros(1, 64, 64), "any-cover").sum() == 0
    assert bool((downsample_mask(torch.ones(1, 67, 70), "fully-inside") == 1).all())
    assert describe(torch.zeros(1, 64, 64), torch.zeros(1, 8, 8), "area").coverage == 0.0


def test_too_small_mask_and_bad_mode_are_clear_errors():
    with pytest.raises(InvalidInputError, match="at least 8x8"):
        downsample_mask(torch.ones(1, 7, 100))
    with pytest.raises(InvalidInputError, match="unknown downsample mode"):
        downsample_mask(torch.ones(1, 16, 16), "median")


def test_attach_noise_mask_layout_batch_and_size_check():
    latent = {"samples": torch.randn(3, 4, 12, 16), "batch_index": [0, 1, 2]}
    mask = torch.rand(1, 12, 16)
    out = attach_noise_mask(latent, mask)
    assert out["noise_mask"].shape == (3, 1, 12, 16)
    assert out["batch_index"] == [0, 1, 2] and "noise_mask" not in latent
    with pytest.raises(InvalidInputError, match="16x12 latent cells but the mask gives 17x12"):
        attach_noise_mask(latent, torch.rand(1, 12, 17))
    with pytest.raises(InvalidInputError, match="batch of 2"):
        attach_noise_mask(latent, torch.rand(2, 12, 16))


def test_noise_mask_to_grid_resizes_like_comfyui_and_keeps_latent_sized_masks():
    exact = torch.rand(2, 1, 12, 16)
    torch.testing.assert_close(noise_mask_to_grid(exact, 12, 16), exact[:, 0], rtol=0, atol=0)
    import_comfy_or_skip()
    import comfy.utils

    pixel = torch.rand(1, 96, 128)
    expected = comfy.utils.reshape_mask(pixel, (1, 4, 12, 16))[:, 0]
    torch.testing.assert_close(noise_mask_to_grid(pixel, 12, 16), expected, rtol=0, atol=0)
