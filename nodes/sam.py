"""Segment Anything: the model loader and SAMPrompt."""

from __future__ import annotations

from comfy_api.latest import io

from ..remaskable_core.sam import load_sam
from . import types
from .runtime import PackModel, download_input, model_file_input, resolve_model_file


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


NODES = [LoadSAM]
