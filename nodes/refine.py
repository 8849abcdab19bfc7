"""DINOv2 boundary refinement: the DINOv2 loader and DINOv2Refine."""

from __future__ import annotations

from comfy_api.latest import io

from ..remaskable_core.dinov2 import Dinov2Backbone, load_dinov2
from ..remaskable_core.refine import LinearHead, RefineSettings, refine_masks
from ..remaskable_core.tensors import as_rgb, mask_for_image
from . import types
from .runtime import (PackModel, download_input, model_file_input, model_names, output_device, progress_callback,
                      resolve_model_file)
from .sam import SEGMENTATION

NO_HEAD = "none"


class LoadDINOv2(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.LoadDINOv2", display_name="Load DINOv2 Model", category=types.LOADERS,
            description="Loads a DINOv2 backbone from models/dinov2: facebook/dinov2-* model.safetensors "
                        "(transformers layout, with or without registers) or timm vit_*_patch14[_reg4]_dinov2 files; "
                        "the size (S/B/L) is read from the file.",
            inputs=[model_file_input("dinov2", "dinov2"), download_input()],
            outputs=[types.Dinov2Model.Output(display_name="dinov2_model",
                                              tooltip="The DINOv2 backbone, for DINOv2 Refine.")],
        )

    @classmethod
    def execute(cls, model_name: str, download_if_missing: bool = False) -> io.NodeOutput:
        path = resolve_model_file("dinov2", model_name, download_if_missing)
        model = load_dinov2(path)
        return io.NodeOutput(PackModel.wrap(model, model_name, path, variant=model.arch.variant))


class DINOv2Refine(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.DINOv2Refine", display_name="DINOv2 Refine", category=SEGMENTATION,
            description="Moves a coarse mask's boundary onto the object's real edge. Only a band around the "
                        "boundary can change: each DINOv2 patch there is reclassified by its feature similarity to "
                        "patches confidently inside and outside the mask nearby (or by a trained head), and the "
                        "verdict is brought to pixel precision along the image's edges. A mask that already follows "
                        "the edges comes back unchanged; refining twice changes nothing more.",
            inputs=[
                io.Image.Input("image", tooltip="The image the mask belongs to."),
                io.Mask.Input("mask", tooltip="The coarse mask to refine (from FaceParse, SAM Prompt, or drawn)."),
                types.Dinov2Model.Input("dinov2_model", tooltip="From Load DINOv2 Model."),
                io.Int.Input("band_width", default=16, min=1, max=256,
                             tooltip="Pixels on each side of the mask's boundary that may change: about the size "
                                     "of the coarse mask's error. Outside this band the mask is returned as is."),
                io.Int.Input("context", default=48, min=0, max=1024, optional=True,
                             tooltip="Pixels beyond the band from which the inside/outside reference patches are "
                                     "taken; the refinement looks at the crop around the band plus this context."),
                io.Int.Input("resolution", default=644, min=112, max=2058, step=14, optional=True,
                             tooltip="Long side (px) the crop is resized to for DINOv2 (patches of 14 px). Higher "
                                     "follows finer detail and costs more."),
                io.Int.Input("prototypes", default=0, min=0, max=16, optional=True,
                             tooltip="0: every confident patch near a boundary patch is a reference (local, "
                                     "recommended). N: N k-means reference prototypes per side, shared by the "
                                     "whole boundary."),
                io.Float.Input("margin", default=0.15, min=0.0, max=0.49, step=0.01, optional=True,
                               tooltip="A pixel changes side only where the evidence passes 0.5 by this much; "
                                       "higher changes less."),
                io.Float.Input("edge_sigma", default=0.1, min=0.01, max=1.0, step=0.01, optional=True,
                               tooltip="Colour difference (0..1 RGB) at which a pixel stops following a nearby "
                                       "patch's verdict: smaller snaps harder to colour edges."),
                io.Combo.Input("head", options=[NO_HEAD] + model_names("remaskable_head", "remaskable_heads"),
                               default=NO_HEAD, optional=True,
                               tooltip="A trained linear head from models/remaskable_heads (python -m "
                                       "remaskable_core train-head) that classifies patches instead of the "
                                       "reference patches; it must match the DINOv2 model it was trained on."),
            ],
            outputs=[
                io.Mask.Output(display_name="mask", tooltip="The refined mask: changed only inside the band."),
                io.String.Output(display_name="report", tooltip="Per image: how many pixels changed, or why none."),
            ],
        )

    @classmethod
    def execute(cls, image, mask, dinov2_model: PackModel, band_width: int, context: int = 48,
                resolution: int = 644, prototypes: int = 0, margin: float = 0.15, edge_sigma: float = 0.1,
                head: str = NO_HEAD) -> io.NodeOutput:
        images = as_rgb(image)
        masks = mask_for_image(mask, images)
        settings = RefineSettings(band=band_width, context=context, prototypes=prototypes, margin=margin,
                                  edge_sigma=edge_sigma)
        linear_head = None
        if head and head != NO_HEAD:
            linear_head = LinearHead.load(resolve_model_file("remaskable_heads", head))
        backbone: Dinov2Backbone = dinov2_model.ready()
        refined, report = refine_masks(images, masks, lambda crop: backbone.patch_features(crop, resolution),
                                       settings, linear_head, progress_callback(images.shape[0]))
        return io.NodeOutput(output_device(refined), "\n".join(report))


NODES = [LoadDINOv2, DINOv2Refine]
