"""ComfyUI glue shared by the pack's nodes: model folders, model management, progress and interruption."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

import comfy.model_management as mm
import comfy.model_patcher
import comfy.utils
import folder_paths
from comfy_api.latest import io

from ..remaskable_core.models import MODEL_FOLDERS, entries_for, list_model_names, require_model


class ComfyLocator:
    """Model folders as ComfyUI knows them, so users' extra_model_paths.yaml entries are searched too."""

    def search_dirs(self, folder: str) -> list[Path]:
        return [Path(p) for p in folder_paths.get_folder_paths(folder)]


LOCATOR = ComfyLocator()


def register_model_folders() -> None:
    """Add the pack's model folders to ComfyUI without clobbering folders other packs or users registered."""
    for folder, extensions in MODEL_FOLDERS.items():
        default_dir = os.path.join(folder_paths.models_dir, folder)
        known = folder_paths.folder_names_and_paths.get(folder)
        if known is None:
            folder_paths.folder_names_and_paths[folder] = ([default_dir], set(e for e in extensions if e))
            continue
        paths, known_extensions = known
        if default_dir not in paths:
            paths.append(default_dir)
        if isinstance(known_extensions, set) and known_extensions:  # an empty set already accepts every file
            known_extensions.update(e for e in extensions if e)


def model_names(kind: str, folder: str) -> list[str]:
    """Choices for a loader: the files present plus the manifest's known names (default first)."""
    names = list_model_names(LOCATOR, folder, kind)
    defaults = [e.name for e in entries_for(kind) if e.default and e.name in names]
    return defaults + [n for n in names if n not in defaults]


def model_file_input(kind: str, folder: str, input_id: str = "model_name") -> io.Combo.Input:
    options = model_names(kind, folder)
    return io.Combo.Input(input_id, options=options, default=options[0] if options else None,
                          tooltip=f"A file in ComfyUI's models/{folder} folder (or one added for '{folder}' in "
                                  f"extra_model_paths.yaml). Known files that are missing are listed too: choosing "
                                  f"one tells you where to get it.")


def download_input() -> io.Boolean.Input:
    return io.Boolean.Input("download_if_missing", default=False, optional=True,
                            tooltip="Download the file from its published source if it is missing (progress shown, "
                                    "size and sha256 verified). Off by default: nothing is downloaded unless you ask.")


def resolve_model_file(folder: str, name: str, download_if_missing: bool = False) -> Path:
    bar = comfy.utils.ProgressBar(100)

    def progress(done: int, total: int | None) -> None:
        if total:
            bar.update_absolute(int(100 * done / total), 100)

    return require_model(LOCATOR, folder, name, allow_download=download_if_missing, progress=progress)


class _Managed(torch.nn.Module):
    """What ComfyUI's ModelPatcher manages: a holder of the pack's model, so the patcher's bookkeeping attributes
    (``device``, ``model_loaded_weight_memory``...) land on the holder, not on the model (SAM's ``device`` is a
    read-only property)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model


@dataclass
class PackModel:
    """A loaded model travelling between nodes. Torch modules are wrapped in a ModelPatcher so ComfyUI's model
    management loads them onto the GPU on demand and offloads or frees them with everything else."""

    impl: Any  # the remaskable_core model object
    name: str
    path: Path
    info: dict = field(default_factory=dict)
    patcher: Any = None

    @classmethod
    def wrap(cls, impl: Any, name: str, path: Path, **info) -> "PackModel":
        patcher = None
        if isinstance(impl, torch.nn.Module):
            patcher = comfy.model_patcher.ModelPatcher(_Managed(impl), load_device=mm.get_torch_device(),
                                                       offload_device=mm.unet_offload_device())
        return cls(impl=impl, name=name, path=path, info=info, patcher=patcher)

    def ready(self) -> Any:
        """The model on its compute device, loaded through ComfyUI's model management."""
        if self.patcher is not None:
            mm.load_models_gpu([self.patcher])
        return self.impl

    @property
    def device(self) -> torch.device:
        return self.patcher.load_device if self.patcher is not None else torch.device("cpu")


def progress_callback(total: int, node_id: str | None = None) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback for core functions. Each call is also an interruption point: ComfyUI's
    progress hook raises when the user pressed Cancel."""
    bar = comfy.utils.ProgressBar(total, node_id=node_id)

    def progress(done: int, new_total: int | None = None) -> None:
        mm.throw_exception_if_processing_interrupted()
        bar.update_absolute(done, new_total)

    return progress


def output_device(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to(mm.intermediate_device())
