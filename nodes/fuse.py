"""MaskFuse: the edit mask and the composite mask from parse, SAM and refined masks plus rules."""

from __future__ import annotations

from comfy_api.latest import io

from ..remaskable_core.errors import InvalidInputError
from ..remaskable_core.fuse import FuseSettings, Vote, fuse_masks
from ..remaskable_core.latent_mask import MIN_COMPOSITE_GROW_PX
from ..remaskable_core.parsing import FaceParseResult, resolve_classes
from ..remaskable_core.tensors import as_mask, match_batch
from . import types
from .runtime import output_device
from .sam import parse_for

MASKS = f"{types.CATEGORY}/masks"


def _weight_input(name: str, role: str) -> io.Float.Input:
    return io.Float.Input(name, default=1.0, min=0.0, max=10.0, step=0.05, optional=True,
                          tooltip=f"Weight of {role} in the vote (0 = ignore it).")


class MaskFuse(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.MaskFuse", display_name="Mask Fuse", category=MASKS,
            description="Combines any of a face-parse selection (the class authority), a SAM mask (the object "
                        "boundary) and a refined mask (the edges) by weighted vote, applies hard rules (classes "
                        "never or always edited), cleans the result (holes, islands, grow/shrink) and feathers it. "
                        "Gives the edit mask and a composite mask for pasting back that contains it everywhere "
                        "(edit <= composite), with the excluded classes out of both.",
            inputs=[
                types.FaceParse.Input("face_parse", optional=True,
                                      tooltip="Face parsing: its 'classes' vote, and it is needed for the include/"
                                              "exclude rules."),
                io.String.Input("classes", default="", optional=True,
                                tooltip="Classes or presets the parse votes for (e.g. 'hair'); empty = the parse "
                                        "does not vote and only serves the rules."),
                _weight_input("parse_weight", "the parse classes"),
                io.Mask.Input("sam_mask", optional=True, tooltip="A SAM mask (or any object mask)."),
                _weight_input("sam_weight", "sam_mask"),
                io.Mask.Input("refined_mask", optional=True, tooltip="A refined mask (e.g. from DINOv2 Refine)."),
                _weight_input("refine_weight", "refined_mask"),
                io.Float.Input("threshold", default=0.5, min=0.01, max=1.0, step=0.01, optional=True,
                               tooltip="Weighted vote a pixel needs to be edited: 0.5 with two equal inputs = "
                                       "either one; with three = any two; 1.0 = all of them."),
                io.String.Input("exclude_classes", default="", optional=True,
                                tooltip="Classes or presets never edited (e.g. 'eyes,brows' when editing skin); "
                                        "out of the composite mask too. Needs face_parse."),
                io.Int.Input("exclude_grow", default=0, min=0, max=128, optional=True,
                             tooltip="Grow the excluded classes by this many px (a safety distance)."),
                io.String.Input("include_classes", default="", optional=True,
                                tooltip="Classes or presets always edited, whatever the vote. Needs face_parse."),
                io.Boolean.Input("fill_holes", default=True, optional=True,
                                 tooltip="Fill enclosed holes in the edit (excluded classes stay out)."),
                io.Int.Input("min_island", default=0, min=0, max=1_000_000, optional=True,
                             tooltip="Drop separate regions smaller than this many px (0 keeps all)."),
                io.Int.Input("grow", default=0, min=-256, max=256, optional=True,
                             tooltip="Grow (positive) or shrink (negative) the edit by this many px."),
                io.Float.Input("feather", default=0.0, min=0.0, max=256.0, step=0.5, optional=True,
                               tooltip="Soften the edit mask's edge inward by this many px (it never grows)."),
                io.Int.Input("composite_margin", default=MIN_COMPOSITE_GROW_PX, min=0, max=512, optional=True,
                             tooltip="Px the composite mask reaches beyond the edit at full strength. The default "
                             f"({MIN_COMPOSITE_GROW_PX}) covers every latent cell regenerated for the edit."),
                io.Float.Input("composite_feather", default=8.0, min=0.0, max=512.0, step=0.5, optional=True,
                               tooltip="Px of outward fade of the composite mask beyond that margin."),
            ],
            outputs=[
                io.Mask.Output(display_name="edit_mask", tooltip="Where to generate new content."),
                io.Mask.Output(display_name="composite_mask",
                               tooltip="Where the result may differ from the original when pasted back; contains "
                                       "the edit mask everywhere; excluded classes are 0."),
                io.String.Output(display_name="report", tooltip="Per image: the share of the image each mask covers."),
            ],
        )

    @classmethod
    def execute(cls, face_parse: FaceParseResult | None = None, classes: str = "", parse_weight: float = 1.0,
                sam_mask=None, sam_weight: float = 1.0, refined_mask=None, refine_weight: float = 1.0,
                threshold: float = 0.5, exclude_classes: str = "", exclude_grow: int = 0, include_classes: str = "",
                fill_holes: bool = True, min_island: int = 0, grow: int = 0, feather: float = 0.0,
                composite_margin: int = MIN_COMPOSITE_GROW_PX, composite_feather: float = 8.0) -> io.NodeOutput:
        masks = {name: as_mask(m, name) for name, m in (("sam_mask", sam_mask), ("refined_mask", refined_mask))
                 if m is not None}
        reference = next(iter(masks), None)
        if reference is None and face_parse is None:
            raise InvalidInputError("sam_mask", "no mask is connected: connect face_parse (with classes), sam_mask "
                                                "and/or refined_mask.")
        batch = max([m.shape[0] for m in masks.values()] + [face_parse.batch_size if face_parse else 1])
        height, width = masks[reference].shape[1:] if reference else face_parse.size
        for name, m in masks.items():
            if m.shape[1:] != (height, width):
                raise InvalidInputError(name, f"is {m.shape[2]}x{m.shape[1]} but '{reference}' is {width}x{height}.")
            masks[name] = match_batch(batch, m, name, reference)
        parse = parse_for(face_parse, batch, height, width, reference or "face_parse") if face_parse else None
        votes = []
        wanted = resolve_classes(classes)
        if wanted:
            if parse is None:
                raise InvalidInputError("classes", f"names {', '.join(wanted)} but no face_parse is connected.")
            votes.append(Vote("parse", parse.soft_mask(wanted), parse_weight))
        roles = {"sam_mask": ("sam", sam_weight), "refined_mask": ("refine", refine_weight)}
        votes += [Vote(roles[name][0], m, roles[name][1]) for name, m in masks.items()]
        rules = {}
        for input_name, spec in (("include_classes", include_classes), ("exclude_classes", exclude_classes)):
            chosen = resolve_classes(spec)
            if chosen and parse is None:
                raise InvalidInputError(input_name, "needs face_parse connected to know where these classes are.")
            rules[input_name] = parse.hard_mask(chosen) if chosen else None
        settings = FuseSettings(threshold=threshold, grow=grow, fill_holes=fill_holes, min_island=min_island,
                                feather=feather, composite_margin=composite_margin,
                                composite_feather=composite_feather, exclude_grow=exclude_grow)
        fused = fuse_masks(votes, settings, rules["include_classes"], rules["exclude_classes"])
        return io.NodeOutput(output_device(fused.edit), output_device(fused.composite), "\n".join(fused.report))


NODES = [MaskFuse]
