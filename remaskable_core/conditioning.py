"""Face-aware text conditioning (prompt-driven face inpainting): the text embedding's extra influence scales with
how much of the image the face edit covers,

    Ê = E + λ · A(E) · β,   β = mask area / image area,

with A an optional adapter loaded from a file (the identity when absent). Small edits (an eye, the lips) get a
small push, large ones (the whole face) a larger one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import InvalidInputError, ModelFileError
from .models import load_state_dict


def mask_area_ratio(mask: torch.Tensor) -> torch.Tensor:
    """β per mask in the batch: the mean mask value, i.e. (soft) masked area / image area. [B,H,W] -> [B]."""
    return mask.float().flatten(1).mean(1)


class EmbeddingAdapter(torch.nn.Module):
    """A(E): a linear map, or a two-layer MLP with GELU, applied to each token embedding."""

    def __init__(self, layers: list[torch.nn.Linear]):
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        out = self.layers[0](embedding)
        for layer in self.layers[1:]:
            out = layer(torch.nn.functional.gelu(out))
        return out


def load_adapter(path: str | Path) -> EmbeddingAdapter:
    """Adapters are safetensors with ``weight``/``bias`` (linear) or ``0.*`` and ``2.*`` (MLP) keys."""
    state = load_state_dict(path)
    prefixes = [""] if "weight" in state else [p for p in ("0.", "2.") if f"{p}weight" in state]
    if not prefixes or any(f"{p}weight" not in state for p in prefixes):
        raise ModelFileError(f"{Path(path).name}: an embedding adapter needs 'weight' (linear) or '0.weight' and "
                             f"'2.weight' (MLP) tensors; found {sorted(state)[:6]}.")
    layers = []
    for prefix in prefixes:
        weight = state[f"{prefix}weight"]
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=f"{prefix}bias" in state)
        layer.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        layers.append(layer)
    if layers[0].in_features != layers[-1].out_features:
        raise ModelFileError(f"{Path(path).name}: the adapter maps {layers[0].in_features}-d to "
                             f"{layers[-1].out_features}-d embeddings; it must keep the size.")
    return EmbeddingAdapter(layers).eval()


@torch.no_grad()
def face_aware_embedding(embedding: torch.Tensor, beta: torch.Tensor, strength: float,
                         adapter: EmbeddingAdapter | None = None) -> torch.Tensor:
    """Ê = E + strength · A(E) · β for an embedding [B,T,D]; β is one value, or one per batch item."""
    if adapter is not None and adapter.layers[0].in_features != embedding.shape[-1]:
        raise InvalidInputError("adapter", f"expects {adapter.layers[0].in_features}-d embeddings but the "
                                           f"conditioning has {embedding.shape[-1]}-d ones.",
                                "Use an adapter made for this text encoder.")
    beta = beta.to(embedding.device, embedding.dtype).reshape(-1)
    if beta.numel() not in (1, embedding.shape[0]):
        beta = beta.mean().reshape(1)
    extra = embedding if adapter is None else adapter.to(embedding.device, embedding.dtype)(embedding)
    return embedding + strength * extra * beta.reshape(-1, 1, 1)
