"""Opening a face parser: the backend is read from the file itself, not from its name."""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelFileError
from ..models import load_state_dict
from .base import FaceParser


def load_face_parser(path: str | Path) -> FaceParser:
    """SegFormer (.safetensors/.bin/.pth, or a Hugging Face folder), BiSeNet (.pth/.pt/.safetensors) or an ONNX
    export of either, recognised by the weights' names."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        from .bisenet import OnnxParser

        return OnnxParser(path)
    if path.is_dir():
        weights = next((path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).is_file()), None)
        if weights is None:
            raise ModelFileError(f"{path} holds no model.safetensors or pytorch_model.bin.")
        path = weights
    state = load_state_dict(path)
    from .bisenet import is_bisenet_state, load_bisenet
    from .segformer import is_segformer_state, load_segformer

    if is_segformer_state(state):
        return load_segformer(path, state)
    if is_bisenet_state(state):
        return load_bisenet(path, state)
    sample = ", ".join(list(state)[:3])
    raise ModelFileError(f"{path.name} is neither a SegFormer face parser (jonathandinu/face-parsing) nor a BiSeNet one "
                         f"(79999_iter.pth); its first weights are {sample}.")
