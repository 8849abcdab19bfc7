"""PixelBlend's core: bit-exact outside the composite mask (also through an 8-bit PNG), inward feather, colour match
applied only inside, the size policy for VAE-cropped edits, batches of candidates."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from remaskable_core.blend import ColorMatch, fit_edited, pixel_blend
from remaskable_core.errors import InvalidInputError
from remaskable_core.mask_ops import feather
from remaskable_core.parsing.labels import CLASS_INDEX, CLASSES
from remaskable_core.parsing.result import FaceParseResult
from tests.unit.test_generate_latent_mask import blob_mask


def loaded_image(height: int, width: int, seed: int, batch: int = 1) -> tuple[np.ndarray, torch.Tensor]:
    """A random 8-bit image and the IMAGE tensor ComfyUI's LoadImage makes of it (uint8 / 255 in float32)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
    return pixels, torch.from_numpy(pixels.astype(np.float32) / 255.0)


def saved_png(image: torch.Tensor) -> np.ndarray:
    """What ComfyUI's SaveImage writes (clip(255 * x).astype(uint8)), through a real PNG encode/decode."""
    array = np.clip(255.0 * image.numpy(), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return np.array(Image.open(io.BytesIO(buffer.getvalue())))


def test_comfyui_8bit_round_trip_is_lossless_for_every_value():
    values = np.arange(256, dtype=np.uint8)
    assert np.array_equal(np.clip(255.0 * (values.astype(np.float32) / 255.0), 0, 255).astype(np.uint8), values)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("height,width", [(101, 133), (64, 64), (77, 50)])
@pytest.mark.parametrize("color", ["off", "lab", "rgb"])
def test_outside_the_composite_mask_the_output_is_the_original_bit_for_bit(seed, height, width, color):
    pixels, original = loaded_image(height, width, seed)
    _, edited = loaded_image(height - height % 8, width - width % 8, seed + 100, batch=3)
    mask = feather(blob_mask(height, width, seed), 2.0, "centered")  # soft edges, zero far outside
    result = pixel_blend(original, edited, mask, feather_px=4.0, color=ColorMatch(color, ring_px=6))
    outside = (mask[0] == 0).numpy()
    assert result.image.shape == (3, height, width, 3)
    for i in range(3):
        assert torch.equal(result.image[i][mask[0] == 0], original[0][mask[0] == 0])
        png = saved_png(result.image[i])
        assert np.array_equal(png[outside], pixels[0][outside])
        assert bool((result.alpha[i][mask[0] == 0] == 0).all())
    assert bool(((result.image - original) != 0).any()), "nothing was blended in"


def test_alpha_feathers_inward_only():
    mask = torch.zeros(1, 64, 64)
    mask[0, 16:48, 16:48] = 1
    _, original = loaded_image(64, 64, 0)
    _, edited = loaded_image(64, 64, 1)
    alpha = pixel_blend(original, edited, mask, feather_px=6).alpha
    assert alpha[0, 15].sum() == 0 and alpha[0, :, 15].sum() == 0  # nothing outside
    assert 0 < alpha[0, 16, 32] < 0.1  # the ramp starts at the boundary, inside
    assert alpha[0, 32, 32] == 1
    assert torch.equal(pixel_blend(original, edited, mask, feather_px=0).alpha, mask)


def test_full_alpha_takes_the_edited_pixels():
    _, original = loaded_image(32, 32, 0)
    _, edited = loaded_image(32, 32, 1)
    out = pixel_blend(original, edited, torch.ones(1, 32, 32), feather_px=0).image
    assert torch.equal(out, edited)


def shifted(image: torch.Tensor) -> torch.Tensor:
    """A global lighting/colour change of the whole image, as a VAE/diffusion drift would give."""
    return (image * torch.tensor([0.7, 0.8, 0.9]) + torch.tensor([0.2, 0.05, 0.1])).clamp(0, 1)


@pytest.mark.parametrize("space", ["rgb", "lab"])
def test_color_match_on_the_ring_undoes_a_global_shift_inside_only(space):
    _, original = loaded_image(96, 96, 3)
    original = torch.from_numpy(np.asarray(Image.fromarray((original[0].numpy() * 255).astype(np.uint8))
                                           .resize((12, 12)).resize((96, 96), Image.BILINEAR),
                                           dtype=np.float32) / 255.0)[None]  # smooth, so ring stats are the region's
    edited = shifted(original)
    mask = torch.zeros(1, 96, 96)
    mask[0, 32:64, 32:64] = 1
    plain = pixel_blend(original, edited, mask, feather_px=0).image
    matched = pixel_blend(original, edited, mask, feather_px=0, color=ColorMatch(space, "ring", ring_px=12)).image
    inside = mask[0] > 0
    error_plain = (plain[0][inside] - original[0][inside]).abs().mean()
    error_matched = (matched[0][inside] - original[0][inside]).abs().mean()
    assert error_matched < 0.35 * error_plain
    assert torch.equal(matched[0][~inside], original[0][~inside])


def test_color_match_on_a_parse_class_uses_that_class_outside_the_mask():
    height = width = 64
    _, original = loaded_image(height, width, 5)
    edited = shifted(original)
    labels = torch.full((1, height, width), CLASS_INDEX["hair"])
    labels[:, :, :32] = CLASS_INDEX["skin"]
    probs = torch.nn.functional.one_hot(labels, len(CLASSES)).permute(0, 3, 1, 2).float()
    parse = FaceParseResult(probs, [[]], "test")
    mask = torch.zeros(1, height, width)
    mask[0, 20:44, 8:24] = 1
    result = pixel_blend(original, edited, mask, feather_px=0,
                         color=ColorMatch("rgb", "parse class", parse=parse, parse_class="skin"))
    inside = mask[0] > 0
    skin_outside = (labels[0] == CLASS_INDEX["skin"]) & ~inside
    # the correction maps the edited skin statistics outside the mask onto the original's
    e, o = edited[0][skin_outside], original[0][skin_outside]
    expected = ((edited[0][inside] - e.mean(0)) * (o.std(0, unbiased=False) / e.std(0, unbiased=False)).clamp(0.5, 2)
                + o.mean(0)).clamp(0, 1)
    torch.testing.assert_close(result.image[0][inside], expected, atol=1e-4, rtol=0)
    assert torch.equal(result.image[0][~inside], original[0][~inside])
    with pytest.raises(InvalidInputError, match="face_parse"):
        pixel_blend(original, edited, mask, color=ColorMatch("rgb", "parse class"))


def test_color_match_without_reference_pixels_is_skipped_and_reported():
    _, original = loaded_image(32, 32, 0)
    result = pixel_blend(original, shifted(original), torch.ones(1, 32, 32), feather_px=0, color=ColorMatch("lab"))
    assert "colour match skipped" in result.report
    assert torch.equal(result.image, shifted(original))


def test_pad_with_original_places_the_vae_crop_where_it_came_from():
    pixels, original = loaded_image(101, 133, 0)
    _, edited = loaded_image(96, 128, 1)
    mask = torch.ones(1, 101, 133)
    result = pixel_blend(original, edited, mask, feather_px=0, size_policy="pad with original")
    out = result.image[0]
    assert torch.equal(out[2:98, 2:130], edited[0])  # offset (101 % 8) // 2 = 2, (133 % 8) // 2 = 2
    border = torch.ones(101, 133, dtype=torch.bool)
    border[2:98, 2:130] = False
    assert torch.equal(out[border], original[0][border])
    assert bool((result.alpha[0][border] == 0).all())
    assert "placed at offset 2,2" in result.report


def test_resize_policy_covers_the_whole_image():
    _, original = loaded_image(101, 133, 0)
    _, edited = loaded_image(96, 128, 1)
    placed, valid, note = fit_edited(edited, original, "resize")
    assert placed.shape == original.shape and bool((valid == 1).all()) and "resized" in note


@pytest.mark.parametrize("size", [(88, 133), (101, 125), (104, 136)])
def test_larger_size_mismatches_name_both_sizes(size):
    _, original = loaded_image(101, 133, 0)
    _, edited = loaded_image(*size, 1)
    with pytest.raises(InvalidInputError, match=f"is {size[1]}x{size[0]} but 'original' is 133x101"):
        pixel_blend(original, edited, torch.ones(1, 101, 133))


def test_candidate_batches_repeat_the_original_and_mismatches_are_errors():
    _, original = loaded_image(32, 32, 0, batch=2)
    _, edited = loaded_image(32, 32, 1, batch=6)
    mask = torch.zeros(1, 32, 32)
    out = pixel_blend(original, edited, mask).image
    assert out.shape[0] == 6
    assert torch.equal(out[2], original[0]) and torch.equal(out[5], original[1])  # [o0, o1, o0, o1, o0, o1]
    per_image = torch.zeros(2, 32, 32)
    per_image[1] = 1
    out = pixel_blend(original, edited, per_image, feather_px=0).image
    assert torch.equal(out[2], original[0]) and torch.equal(out[3], edited[3])
    with pytest.raises(InvalidInputError, match="'edited': has 3 images and 'original' 2"):
        pixel_blend(original, edited[:3], mask)
    with pytest.raises(InvalidInputError, match="'composite_mask': has a batch of 4"):
        pixel_blend(original, edited, torch.zeros(4, 32, 32))


def test_rgba_and_greyscale_inputs_and_mask_size_errors():
    _, original = loaded_image(32, 32, 0)
    rgba = torch.cat([original, torch.ones(1, 32, 32, 1)], dim=-1)
    grey = original[..., :1]
    out = pixel_blend(rgba, grey, torch.ones(1, 32, 32), feather_px=0).image
    assert out.shape == (1, 32, 32, 3)
    with pytest.raises(InvalidInputError, match="composite_mask"):
        pixel_blend(original, original, torch.ones(1, 64, 64))
