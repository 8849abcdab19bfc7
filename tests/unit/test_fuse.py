"""MaskFuse's guarantees on random masks (edit <= composite everywhere, excluded classes out of both, the edit's
support inside the vote's) and its voting and rules on small hand-made cases."""

from __future__ import annotations

import pytest
import torch

from remaskable_core.errors import InvalidInputError
from remaskable_core.fuse import FuseSettings, Vote, fuse_masks, weighted_vote
from remaskable_core.mask_ops import grow


def random_mask(generator: torch.Generator, batch: int, height: int, width: int) -> torch.Tensor:
    """Blobs of random size and softness: rectangles and discs, some soft-edged, some empty or full."""
    kind = int(torch.randint(0, 6, (1,), generator=generator))
    if kind == 0:
        return torch.zeros(batch, height, width)
    if kind == 1:
        return torch.ones(batch, height, width)
    noise = torch.rand(batch, 1, max(2, height // 8), max(2, width // 8), generator=generator)
    blobs = torch.nn.functional.interpolate(noise, size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    if kind in (2, 3):
        return (blobs > 0.5).float()
    return blobs  # soft


@pytest.mark.parametrize("seed", range(40))
def test_random_masks_keep_edit_inside_composite_and_exclusions_out_of_both(seed):
    generator = torch.Generator().manual_seed(seed)
    height, width = int(torch.randint(9, 70, (1,), generator=generator)), int(torch.randint(9, 70, (1,),
                                                                                        generator=generator))
    batch = int(torch.randint(1, 3, (1,), generator=generator))
    votes = [Vote(name, random_mask(generator, batch, height, width), float(torch.rand(1, generator=generator)) + 0.1)
             for name in ("parse", "sam", "refine")[:int(torch.randint(1, 4, (1,), generator=generator))]]
    exclude = (random_mask(generator, batch, height, width) > 0.7).float() if seed % 2 else None
    include = (random_mask(generator, batch, height, width) > 0.8).float() if seed % 3 == 0 else None
    settings = FuseSettings(
        threshold=float(torch.rand(1, generator=generator)) * 0.9 + 0.05,
        grow=int(torch.randint(-6, 7, (1,), generator=generator)),
        fill_holes=bool(seed % 2),
        min_island=int(torch.randint(0, 30, (1,), generator=generator)),
        feather=float(torch.randint(0, 8, (1,), generator=generator)),
        composite_margin=int(torch.randint(0, 10, (1,), generator=generator)),
        composite_feather=float(torch.randint(0, 10, (1,), generator=generator)),
        exclude_grow=int(torch.randint(0, 4, (1,), generator=generator)))
    fused = fuse_masks(votes, settings, include=include, exclude=exclude)

    assert fused.edit.shape == fused.composite.shape == (batch, height, width)
    assert bool((fused.composite >= fused.edit).all()), "edit must be inside composite everywhere"
    assert bool(((fused.edit >= 0) & (fused.edit <= 1) & (fused.composite >= 0) & (fused.composite <= 1)).all())
    if exclude is not None:
        excluded = grow(exclude, settings.exclude_grow) >= 0.5
        assert bool((fused.edit[excluded] == 0).all()) and bool((fused.composite[excluded] == 0).all())
    # where the edit is set at full strength and nothing forced it, the vote reached the threshold (or morphology
    # added it: holes, growth); without those the edit's support is within the vote's
    if include is None and settings.grow <= 0 and not settings.fill_holes:
        vote = weighted_vote(votes)
        assert bool((vote[fused.edit > 0] >= settings.threshold - 1e-6).all())


def test_two_equal_votes_at_half_are_their_union_three_need_two():
    a, b, c = (torch.zeros(1, 4, 4) for _ in range(3))
    a[0, 0], b[0, 1], c[0, 1] = 1, 1, 1
    plain = FuseSettings(fill_holes=False, composite_margin=0, composite_feather=0)
    union = fuse_masks([Vote("sam", a, 1), Vote("refine", b, 1)], plain).edit
    assert torch.equal(union[0, :2], torch.ones(2, 4)) and union[0, 2:].sum() == 0
    majority = fuse_masks([Vote("parse", a, 1), Vote("sam", b, 1), Vote("refine", c, 1)], plain).edit
    assert majority[0, 0].sum() == 0 and majority[0, 1].sum() == 4
    weighted = fuse_masks([Vote("parse", a, 3), Vote("sam", b, 1), Vote("refine", c, 1)], plain).edit
    assert weighted[0, 0].sum() == 4 and weighted[0, 1].sum() == 0  # 3/5 beats 2/5


def test_include_and_exclude_rules_win_over_the_vote():
    vote = torch.zeros(1, 20, 20)
    vote[0, 5:15, 5:15] = 1
    include = torch.zeros(1, 20, 20)
    include[0, 0:3, 0:3] = 1
    exclude = torch.zeros(1, 20, 20)
    exclude[0, 8:12, 8:12] = 1
    fused = fuse_masks([Vote("sam", vote, 1)], FuseSettings(composite_margin=2, composite_feather=2),
                       include=include, exclude=exclude)
    assert fused.edit[0, :3, :3].min() == 1
    assert fused.edit[0, 8:12, 8:12].max() == 0 and fused.composite[0, 8:12, 8:12].max() == 0
    assert fused.edit[0, 6, 6] == 1  # fill_holes did not bring the excluded hole back


def test_cleanup_fills_holes_drops_islands_and_grows():
    vote = torch.zeros(1, 40, 40)
    vote[0, 5:25, 5:25] = 1
    vote[0, 12:16, 12:16] = 0  # a hole
    vote[0, 35:37, 35:37] = 1  # an island of 4 px
    fused = fuse_masks([Vote("sam", vote, 1)], FuseSettings(fill_holes=True, min_island=10, grow=2,
                                                            composite_margin=0, composite_feather=0))
    assert fused.edit[0, 12:16, 12:16].min() == 1
    assert fused.edit[0, 33:40, 33:40].max() == 0
    assert fused.edit[0, 4, 15] == 1 and fused.edit[0, 1, 15] == 0  # grown by 2 px


def test_feathering_is_inward_for_the_edit_and_outward_for_the_composite():
    vote = torch.zeros(1, 40, 40)
    vote[0, 10:30, 10:30] = 1
    fused = fuse_masks([Vote("sam", vote, 1)], FuseSettings(feather=4, composite_margin=3, composite_feather=5))
    assert fused.edit[0, vote[0] == 0].max() == 0  # the soft edge lies inside the hard edit
    assert 0 < fused.edit[0, 10, 20] < 1 and fused.edit[0, 20, 20] == 1
    assert fused.composite[0, 7, 20] == 1  # full strength over the margin
    assert 0 < fused.composite[0, 5, 20] < 1 and fused.composite[0, 0, 20] == 0


def test_weights_and_settings_are_validated_with_the_input_name():
    mask = torch.ones(1, 4, 4)
    with pytest.raises(InvalidInputError, match="sam_weight"):
        weighted_vote([Vote("sam", mask, -1.0)])
    with pytest.raises(InvalidInputError, match="weights"):
        weighted_vote([Vote("sam", mask, 0.0)])
    with pytest.raises(InvalidInputError, match="threshold"):
        FuseSettings(threshold=0.0)
