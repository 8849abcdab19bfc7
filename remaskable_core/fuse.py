"""MaskFuse: one edit mask and one composite mask from any of the parse, SAM and refined masks.

The connected masks vote, each with its weight (the design's roles: the parse is the class authority, SAM the
object's boundary, the refinement the edges); pixels whose weighted vote reaches the threshold form the edit.
Hard rules then force classes in or out, the edit is cleaned (holes filled, islands dropped, grown or shrunk)
and feathered inward. The composite mask (where PixelBlend may change pixels) is the edit grown by a margin and
feathered outward, minus the excluded classes, and never less than the edit: edit <= composite everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import InvalidInputError
from .latent_mask import MIN_COMPOSITE_GROW_PX
from .mask_ops import binary, drop_islands, feather, fill_holes, grow


@dataclass(frozen=True)
class FuseSettings:
    threshold: float = 0.5  # weighted vote (0..1) a pixel needs to be edited
    grow: int = 0  # px; negative shrinks
    fill_holes: bool = True
    min_island: int = 0  # px; regions smaller than this are dropped (0 keeps all)
    feather: float = 0.0  # px of inward feathering of the edit mask
    # px the composite mask extends beyond the edit at full strength; the default covers every latent cell the
    # sampler regenerates for the edit, so PixelBlend keeps all of the new content
    composite_margin: int = MIN_COMPOSITE_GROW_PX
    composite_feather: float = 8.0  # px of outward feathering beyond that
    exclude_grow: int = 0  # px the excluded classes are grown by (a safety distance)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise InvalidInputError("threshold", f"must be in (0, 1], got {self.threshold}.")
        for name in ("min_island", "composite_margin", "exclude_grow"):
            if getattr(self, name) < 0:
                raise InvalidInputError(name, f"must not be negative, got {getattr(self, name)}.")
        for name in ("feather", "composite_feather"):
            if getattr(self, name) < 0:
                raise InvalidInputError(name, f"must not be negative, got {getattr(self, name)}.")


@dataclass
class Vote:
    name: str  # the input it came from, for messages
    mask: torch.Tensor  # [B, H, W] 0..1
    weight: float


@dataclass
class FusedMasks:
    edit: torch.Tensor  # [B, H, W] 0..1
    composite: torch.Tensor  # [B, H, W] 0..1, >= edit everywhere, 0 on excluded pixels
    report: list[str]


def weighted_vote(votes: list[Vote]) -> torch.Tensor:
    """[B, H, W] weighted mean of the votes' masks (weights >= 0, at least one positive)."""
    for vote in votes:
        if vote.weight < 0:
            raise InvalidInputError(f"{vote.name}_weight", f"must not be negative, got {vote.weight}.")
    total = sum(v.weight for v in votes)
    if not votes or total <= 0:
        raise InvalidInputError("weights", "no connected mask has a positive weight, so nothing can be voted.",
                                "Connect face_parse (with classes), sam_mask or refined_mask and give it a weight "
                                "above 0.")
    return sum(v.mask.float() * v.weight for v in votes if v.weight > 0) / total


def fuse_masks(votes: list[Vote], settings: FuseSettings = FuseSettings(), include: torch.Tensor | None = None,
               exclude: torch.Tensor | None = None) -> FusedMasks:
    """Fuse same-sized [B, H, W] votes; ``include``/``exclude`` ([B, H, W] 0/1) are always/never edited."""
    edit = binary(weighted_vote(votes), settings.threshold)
    if include is not None:
        edit = torch.maximum(edit, binary(include))
    if settings.fill_holes:
        edit = fill_holes(edit)
    edit = binary(grow(drop_islands(edit, settings.min_island), settings.grow))
    keep = torch.ones_like(edit)
    if exclude is not None:
        keep = 1.0 - binary(grow(binary(exclude), settings.exclude_grow))
        edit = edit * keep
    soft_edit = feather(edit, settings.feather, "inward")
    composite = feather(grow(edit, settings.composite_margin), settings.composite_feather, "outward") * keep
    composite = torch.maximum(composite, soft_edit)
    report = [f"image {i}: edit {100 * float(soft_edit[i].mean()):.1f}% of the image, composite "
              f"{100 * float((composite[i] > 0).float().mean()):.1f}%" for i in range(edit.shape[0])]
    return FusedMasks(soft_edit, composite, report)
