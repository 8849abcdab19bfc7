"""Input normalisation (IMAGE/MASK) and mask morphology, including the invariants other stages rely on."""

from __future__ import annotations

import pytest
import torch

from remaskable_core import mask_ops
from remaskable_core.errors import InvalidInputError
from remaskable_core.tensors import as_mask, as_rgb, images_alike, mask_for_image, match_batch


def test_as_rgb_handles_rgba_greyscale_and_single_images():
    assert as_rgb(torch.rand(2, 5, 7, 4)).shape == (2, 5, 7, 3)
    grey = as_rgb(torch.rand(1, 5, 7, 1))
    assert grey.shape == (1, 5, 7, 3) and torch.equal(grey[..., 0], grey[..., 2])
    assert as_rgb(torch.rand(5, 7, 3)).shape == (1, 5, 7, 3)


@pytest.mark.parametrize("bad", [torch.rand(2, 5, 7, 2), torch.rand(5, 7), torch.rand(0, 5, 7, 3), "image"])
def test_as_rgb_rejects_what_is_not_an_image(bad):
    with pytest.raises(InvalidInputError, match="Input 'image'"):
        as_rgb(bad)


def test_as_mask_accepts_common_layouts():
    assert as_mask(torch.rand(5, 7)).shape == (1, 5, 7)
    assert as_mask(torch.rand(2, 1, 5, 7)).shape == (2, 5, 7)
    assert as_mask(torch.rand(2, 5, 7, 1)).shape == (2, 5, 7)
    assert as_mask(torch.full((1, 2, 2), 3.0)).max() == 1.0


def test_mask_size_mismatch_explains_the_load_image_trap():
    image = torch.rand(1, 100, 120, 3)
    with pytest.raises(InvalidInputError, match="64x64 mask that Load Image outputs"):
        mask_for_image(torch.zeros(1, 64, 64), image)
    with pytest.raises(InvalidInputError, match="is 50x40 but 'image' is 120x100"):
        mask_for_image(torch.ones(1, 40, 50), image)


def test_batches_broadcast_one_to_many_and_reject_other_mismatches():
    assert match_batch(3, torch.rand(1, 4, 4), "mask", "image").shape[0] == 3
    with pytest.raises(InvalidInputError, match="batch of 2 but 'image' has 3"):
        match_batch(3, torch.rand(2, 4, 4), "mask", "image")
    with pytest.raises(InvalidInputError, match="is 4x4 but 'original' is 5x5"):
        images_alike(torch.rand(1, 5, 5, 3), torch.rand(1, 4, 4, 3), "original", "edited")


def _square(h=41, w=53, box=(10, 30, 12, 40)) -> torch.Tensor:
    mask = torch.zeros(1, h, w)
    mask[0, box[0]:box[1], box[2]:box[3]] = 1.0
    return mask


def test_inward_feather_never_leaves_the_mask_and_outward_never_weakens_it():
    mask = _square()
    inward = mask_ops.feather(mask, 6, "inward")
    assert torch.all(inward[mask == 0] == 0) and torch.all(inward <= mask)
    assert inward[0, 20, 26] == 1.0 and 0 < inward[0, 11, 26] < 1
    outward = mask_ops.feather(mask, 6, "outward")
    assert torch.all(outward[mask == 1] == 1) and outward[0, 8, 26] > 0 and outward[0, 2, 26] == 0


def test_feather_keeps_masks_touching_the_border_solid_there():
    mask = _square(box=(0, 30, 0, 40))
    assert mask_ops.feather(mask, 5, "inward")[0, 0, 0] == 1.0


def test_grow_and_shrink_are_monotone_and_disc_shaped():
    mask = _square()
    grown, shrunk = mask_ops.grow(mask, 4), mask_ops.grow(mask, -4)
    assert torch.all(grown >= mask) and torch.all(shrunk <= mask)
    assert grown[0, 6, 26] == 1 and grown[0, 5, 26] == 0  # 4 px above the top edge, not 5
    assert torch.equal(mask_ops.grow(mask, 0), mask)


def test_fill_holes_respects_max_area_and_drop_islands_keeps_big_regions():
    mask = _square()
    mask[0, 18:21, 20:23] = 0  # 9 px hole
    assert mask_ops.fill_holes(mask)[0, 19, 21] == 1
    assert mask_ops.fill_holes(mask, max_area=4)[0, 19, 21] == 0
    speck = mask.clone()
    speck[0, 1:3, 1:3] = 1
    cleaned = mask_ops.drop_islands(speck, min_area=10)
    assert cleaned[0, 1, 1] == 0 and cleaned[0, 15, 15] == 1
    assert mask_ops.drop_islands(speck, keep_largest=1)[0, 1, 1] == 0


def test_empty_and_full_masks_pass_through_every_operation():
    for mask in (torch.zeros(2, 9, 11), torch.ones(2, 9, 11)):
        for out in (mask_ops.grow(mask, 3), mask_ops.grow(mask, -3), mask_ops.feather(mask, 3, "inward"),
                    mask_ops.fill_holes(mask), mask_ops.drop_islands(mask, min_area=5)):
            assert out.shape == mask.shape and torch.equal(out, mask)
    assert mask_ops.bounding_box(torch.zeros(9, 11)) is None
