"""Face-aware text conditioning."""

from __future__ import annotations

from comfy_api.latest import io

from ..remaskable_core.conditioning import face_aware_embedding, load_adapter, mask_area_ratio
from ..remaskable_core.tensors import as_mask
from . import types
from .runtime import LOCATOR

NO_ADAPTER = "none (identity)"


def adapter_names() -> list[str]:
    from ..remaskable_core.models import list_model_names

    return [NO_ADAPTER, *list_model_names(LOCATOR, "remaskable_heads", include_known=False)]


class FaceAwareConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.FaceAwareConditioning", display_name="Face-Aware Conditioning",
            category=types.GENERATE,
            description="Strengthens the prompt in proportion to the face area being edited: "
                        "Ê = E + strength · A(E) · β with β = mask area / image area and A an optional adapter "
                        "(the identity when none). Small edits get a gentle push, whole-face edits a stronger one.",
            inputs=[
                io.Conditioning.Input("conditioning", tooltip="The positive prompt to strengthen."),
                io.Mask.Input("mask", tooltip="The edit mask; its area relative to the image gives β."),
                io.Float.Input("strength", default=1.0, min=0.0, max=10.0, step=0.05,
                               tooltip="λ: how much extra influence a mask covering the whole image would add."),
                io.Combo.Input("adapter", options=adapter_names(), default=NO_ADAPTER, optional=True,
                               tooltip="A(E): a .safetensors linear/MLP adapter in models/remaskable_heads, or none "
                                       "(E itself)."),
            ],
            outputs=[
                io.Conditioning.Output(display_name="conditioning", tooltip="The face-aware conditioning."),
                io.Float.Output(display_name="area_ratio", tooltip="β, the edit's share of the image (batch mean)."),
            ],
        )

    @classmethod
    def execute(cls, conditioning, mask, strength: float, adapter: str = NO_ADAPTER) -> io.NodeOutput:
        from .runtime import resolve_model_file

        beta = mask_area_ratio(as_mask(mask))
        module = None if adapter == NO_ADAPTER else load_adapter(resolve_model_file("remaskable_heads", adapter))
        out = [[face_aware_embedding(embedding, beta, strength, module), dict(options)]
               for embedding, options in conditioning]
        return io.NodeOutput(out, float(beta.mean()))


NODES = [FaceAwareConditioning]
