"""Segment Anything: the model loader and SAMPrompt."""

from __future__ import annotations

import json

from comfy_api.latest import io

from ..remaskable_core.errors import InvalidInputError
from ..remaskable_core.parsing import FaceParseResult, resolve_classes
from ..remaskable_core.sam import load_sam
from ..remaskable_core.sam_prompts import (SELECTIONS, DeriveSettings, Prompt, derive_prompt, dominant_classes,
                                           parse_prompts, segment)
from ..remaskable_core.tensors import as_rgb, mask_for_image
from . import types
from .runtime import PackModel, download_input, model_file_input, output_device, progress_callback, resolve_model_file

SEGMENTATION = f"{types.CATEGORY}/segmentation"
PROMPT_EXAMPLE = '{"points": [{"x": 256, "y": 120, "label": 1}, {"x": 256, "y": 300, "label": 0}], "boxes": [[150, 40, 360, 260]]}'


class LoadSAM(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.LoadSAM", display_name="Load SAM Model", category=types.LOADERS,
            description="Loads a Segment Anything checkpoint (vit_b, vit_l or vit_h; the size is read from the file) "
                        "from models/sams.",
            inputs=[model_file_input("sam", "sams"), download_input()],
            outputs=[types.SamModel.Output(display_name="sam_model", tooltip="The SAM model, for SAMPrompt.")],
        )

    @classmethod
    def execute(cls, model_name: str, download_if_missing: bool = False) -> io.NodeOutput:
        path = resolve_model_file("sams", model_name, download_if_missing)
        model = load_sam(path)
        return io.NodeOutput(PackModel.wrap(model, model_name, path, variant=model.variant))


def parse_for(face_parse: FaceParseResult, batch: int, height: int, width: int,
              reference_name: str) -> FaceParseResult:
    """``face_parse`` checked to be height x width like ``reference_name``, its batch of 1 broadcast to ``batch``."""
    if face_parse.size != (height, width):
        raise InvalidInputError("face_parse", f"is {face_parse.size[1]}x{face_parse.size[0]} but "
                                              f"'{reference_name}' is {width}x{height}.",
                                "Parse the same image the other inputs come from.")
    if face_parse.batch_size == batch:
        return face_parse
    if face_parse.batch_size == 1:
        return face_parse.select([0] * batch)
    raise InvalidInputError("face_parse", f"has a batch of {face_parse.batch_size} but '{reference_name}' has "
                                          f"{batch}.", "Give both the same batch size, or a batch of 1.")


class SAMPrompt(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.SAMPrompt", display_name="SAM Prompt", category=SEGMENTATION,
            description="Segments with Segment Anything from points and boxes you give (JSON, e.g. from the point "
                        "editor) and/or from prompts derived automatically from face-parse classes or a mask: "
                        "positive points deep inside the region, negative points in the neighbouring classes, a box "
                        "around it. Keeps the best of SAM's three candidate masks. The image embedding is cached, so "
                        "changing only the prompts does not re-run SAM's encoder.",
            inputs=[
                io.Image.Input("image", tooltip="The image to segment (a batch is segmented image by image)."),
                types.SamModel.Input("sam_model", tooltip="From Load SAM Model."),
                io.String.Input("prompts", multiline=True, default="", placeholder=PROMPT_EXAMPLE,
                                tooltip="Points and boxes in image pixels (0,0 = top-left corner): "
                                        '{"points": [{"x": .., "y": .., "label": 1 (object) or 0 (not)}], '
                                        '"boxes": [[x0, y0, x1, y1]]}; a JSON list gives one per image. Added to '
                                        "the derived prompts; your boxes replace the derived box. Empty: derived "
                                        "prompts only."),
                io.Combo.Input("selection", options=list(SELECTIONS), default="score",
                               tooltip="Which of SAM's three candidate masks to keep: 'score' = SAM's own predicted "
                                       "IoU; 'agreement' = the one overlapping the face-parse classes or the mask "
                                       "best (needs one of them)."),
                types.FaceParse.Input("face_parse", optional=True,
                                      tooltip="Face parsing of the same image: prompts are derived from its "
                                              "'classes', negative points go into the neighbouring classes."),
                io.String.Input("classes", default="hair", optional=True,
                                tooltip="Classes or presets (comma-separated, e.g. 'hair' or 'lips,nose') of "
                                        "face_parse to derive prompts from. Ignored without face_parse, and when a "
                                        "mask is connected (the mask is then the region)."),
                io.Mask.Input("mask", optional=True,
                              tooltip="A region to derive prompts from (any mask, e.g. a rough hand-drawn one)."),
                io.Int.Input("positive_points", default=3, min=0, max=16, optional=True,
                             tooltip="How many positive points to derive, spread over the region's interior."),
                io.Int.Input("negative_points", default=2, min=0, max=16, optional=True,
                             tooltip="How many negative points to derive: one per neighbouring parse class (most "
                                     "adjacent first), or spread around a mask without face_parse."),
                io.Boolean.Input("use_box", default=True, optional=True,
                                 tooltip="Also derive a box around the region."),
                io.Float.Input("box_margin", default=0.05, min=0.0, max=1.0, step=0.01, optional=True,
                               tooltip="Margin added to each side of the derived box, as a fraction of the region's "
                                       "width and height."),
            ],
            outputs=[
                io.Mask.Output(display_name="mask", tooltip="SAM's mask per image (empty where there was no prompt)."),
                io.Float.Output(display_name="score",
                                tooltip="SAM's predicted IoU of the chosen mask; the lowest over the batch (0 when "
                                        "an image had no prompt)."),
                io.String.Output(display_name="report",
                                 tooltip="JSON per image: the prompts used (derived + yours), the score and what "
                                         "happened."),
            ],
        )

    @classmethod
    def execute(cls, image, sam_model: PackModel, prompts: str, selection: str,
                face_parse: FaceParseResult | None = None, classes: str = "hair", mask=None,
                positive_points: int = 3, negative_points: int = 2, use_box: bool = True,
                box_margin: float = 0.05) -> io.NodeOutput:
        images = as_rgb(image)
        batch, height, width = images.shape[0], images.shape[1], images.shape[2]
        user = parse_prompts(prompts, batch, width, height)
        parse = parse_for(face_parse, batch, height, width, "image") if face_parse is not None else None
        label_maps = parse.label_map() if parse is not None else None
        regions, region_classes = None, [()] * batch
        if mask is not None:
            regions = mask_for_image(mask, images)
            if label_maps is not None:
                region_classes = [dominant_classes(label_maps[i], regions[i]) for i in range(batch)]
        elif parse is not None:
            wanted = resolve_classes(classes)
            if not wanted:
                raise InvalidInputError("classes", "is empty, so no region can be taken from face_parse.",
                                        "Name classes or presets, e.g. 'hair'.")
            regions, region_classes = parse.hard_mask(wanted), [wanted] * batch
        settings = DeriveSettings(positive_points, negative_points, use_box, box_margin)
        final = []
        for i in range(batch):
            derived = Prompt() if regions is None else derive_prompt(
                regions[i], settings, None if label_maps is None else label_maps[i], region_classes[i])
            final.append(derived.merged(user[i]))
        if regions is None and all(p.empty for p in final):
            raise InvalidInputError("prompts", "has no point with label 1 and no box, and neither face_parse nor "
                                               "mask is connected to derive prompts from.",
                                    f"Write e.g. {PROMPT_EXAMPLE}, or connect face_parse or mask.")
        model = sam_model.ready()
        result = segment(model, images, final, selection, regions, progress=progress_callback(batch))
        report = [{**p.to_json(), "score": round(s, 4), "message": m}
                  for p, s, m in zip(result.prompts, result.scores, result.messages)]
        return io.NodeOutput(output_device(result.masks), min(result.scores), json.dumps(report))


NODES = [LoadSAM, SAMPrompt]
