"""Reading weights safely: safetensors, or ``torch.load(weights_only=True)``; never arbitrary pickles."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from ..errors import ModelFileError

_NESTING_KEYS = ("state_dict", "model", "module", "params_ema", "params")


def load_state_dict(path: str | Path, *, strip_prefixes: tuple[str, ...] = ("module.",)) -> dict[str, torch.Tensor]:
    """Flat ``{name: tensor}`` from a weights file on the CPU.

    Checkpoints that nest their weights (``{"state_dict": {...}}``, ``{"model": {...}}``) are unwrapped, and
    ``strip_prefixes`` removed from every key (``module.`` from DataParallel saves).
    """
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelFileError(
            f"{path.name} contains pickled Python objects besides weights, which ReMaskable refuses to load "
            f"(torch.load weights_only=True). Use the original file from its publisher, or a .safetensors copy."
        ) from exc
    except Exception as exc:  # truncated or corrupt files come in many exception types
        raise ModelFileError(f"{path} could not be read as weights ({type(exc).__name__}: {exc}). "
                             f"{_size_hint(path)}") from exc
    while isinstance(state, dict) and len(state) <= 4:
        inner = next((state[k] for k in _NESTING_KEYS if isinstance(state.get(k), dict)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path.name} does not hold a flat dictionary of weight tensors.")
    for prefix in strip_prefixes:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _size_hint(path: Path) -> str:
    from .manifest import MODELS

    size = path.stat().st_size if path.exists() else 0
    for entry in MODELS:
        if entry.name == path.name and entry.size is not None and entry.size != size:
            return (f"The file has {size} bytes but the published one has {entry.size}: the download is probably "
                    f"incomplete; delete it and download it again from {entry.source}.")
    return "Delete it and download it again."
