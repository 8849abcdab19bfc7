"""DINOv2 backbones from their published weight files, for boundary refinement.

Two on-disk layouts are read, the architecture being inferred from the tensors' shapes:

- transformers (``facebook/dinov2-*`` and ``facebook/dinov2-with-registers-*`` model.safetensors):
  ``embeddings.*``, ``encoder.layer.N.*``, ``layernorm.*`` (q/k/v split, layer scale as ``lambda1``);
- timm and the original torch.hub checkpoints (``vit_*_patch14[_reg4]_dinov2``): ``patch_embed.*``,
  ``blocks.N.*``, ``norm.*``. timm's register variants store ``reg_token`` and a ``pos_embed`` without the class
  position (already added into ``cls_token``); torch.hub's store ``register_tokens`` and the class position.

Both become one timm ``VisionTransformer``; register checkpoints that keep a class position are folded the way
timm folds them (class position added into ``cls_token``), which computes the same function.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import ModelFileError
from .models import load_state_dict

HEAD_DIM = 64  # every DINOv2 size (S/B/L/g) uses 64-dimensional attention heads
KNOWN_VARIANTS = {(384, 12): "vits14", (768, 12): "vitb14", (1024, 24): "vitl14", (1536, 40): "vitg14"}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# transformers key (after "encoder.layer.N.") -> timm key (after "blocks.N."); q/k/v are fused separately
_TRANSFORMERS_BLOCK_KEYS = {
    "norm1": "norm1", "norm2": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
    "attention.output.dense": "attn.proj", "attention.o_proj": "attn.proj",  # transformers 4.x / 5.x names
    "layer_scale1.lambda1": "ls1.gamma", "layer_scale2.lambda1": "ls2.gamma",
}
_QKV_NAMES = (("attention.attention.query", "attention.attention.key", "attention.attention.value"),
              ("attention.q_proj", "attention.k_proj", "attention.v_proj"))


@dataclass(frozen=True)
class Dinov2Architecture:
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    patch_size: int
    grid: int  # side of the position-embedding grid (37 for the published 518 px models)
    registers: int
    class_position: bool  # whether pos_embed has a position for the class token
    layer_scale: bool
    layout: str  # "transformers" or "timm"

    @property
    def variant(self) -> str:
        name = KNOWN_VARIANTS.get((self.embed_dim, self.depth), f"vit_{self.embed_dim}x{self.depth}")
        return f"{name}_reg{self.registers}" if self.registers else name


def _from_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, tensor in state.items():
        if key.startswith("embeddings."):
            name = key[len("embeddings."):]
            renamed = {"cls_token": "cls_token", "position_embeddings": "pos_embed", "register_tokens": "reg_token",
                       "patch_embeddings.projection.weight": "patch_embed.proj.weight",
                       "patch_embeddings.projection.bias": "patch_embed.proj.bias"}.get(name)
            if renamed:
                out[renamed] = tensor
        elif key.startswith("layernorm."):
            out["norm." + key[len("layernorm."):]] = tensor
        elif match := re.match(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias|lambda1)$", key):
            block, name, kind = match.groups()
            if f"{name}.{kind}" in _TRANSFORMERS_BLOCK_KEYS:
                out[f"blocks.{block}.{_TRANSFORMERS_BLOCK_KEYS[f'{name}.{kind}']}"] = tensor
            elif name in _TRANSFORMERS_BLOCK_KEYS:
                out[f"blocks.{block}.{_TRANSFORMERS_BLOCK_KEYS[name]}.{kind}"] = tensor
            elif "weights_in" in name or "weights_out" in name:
                raise ModelFileError("is a DINOv2 giant (SwiGLU) checkpoint, which ReMaskable does not support: "
                                     "use ViT-S/14, ViT-B/14 or ViT-L/14.")
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.layer\.(\d+)\.", k))}
    for block in blocks:
        prefix = f"encoder.layer.{block}."
        for q, k, v in _QKV_NAMES:
            if f"{prefix}{q}.weight" in state:
                for kind in ("weight", "bias"):
                    out[f"blocks.{block}.attn.qkv.{kind}"] = torch.cat(
                        [state[f"{prefix}{n}.{kind}"] for n in (q, k, v)], 0)
    return out


def _from_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if any(".mlp.w12." in k for k in state):
        raise ModelFileError("is a DINOv2 giant (SwiGLU) checkpoint, which ReMaskable does not support: "
                             "use ViT-S/14, ViT-B/14 or ViT-L/14.")
    out = {k: v for k, v in state.items() if k not in ("mask_token",) and not k.startswith("head.")}
    if "register_tokens" in out:  # torch.hub naming
        out["reg_token"] = out.pop("register_tokens")
    return out


def to_timm_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Dinov2Architecture]:
    """A DINOv2 state dict in either layout -> (timm VisionTransformer state dict, architecture)."""
    if any(k.startswith("dinov2.") for k in state):  # Dinov2For* checkpoints wrap the backbone
        state = {k[len("dinov2."):]: v for k, v in state.items() if k.startswith("dinov2.")}
    if "embeddings.patch_embeddings.projection.weight" in state:
        layout, converted = "transformers", _from_transformers(state)
    elif "patch_embed.proj.weight" in state and any(k.startswith("blocks.") for k in state):
        layout, converted = "timm", _from_timm(state)
    else:
        raise ModelFileError("is not a DINOv2 checkpoint: it has neither transformers keys "
                             "(embeddings.patch_embeddings...) nor timm keys (patch_embed.proj..., blocks.N...).")
    try:
        embed_dim = converted["cls_token"].shape[-1]
        patch_size = converted["patch_embed.proj.weight"].shape[-1]
        positions = converted["pos_embed"].shape[1]
        depth = len({int(m.group(1)) for k in converted if (m := re.match(r"blocks\.(\d+)\.", k))})
        mlp_hidden = converted["blocks.0.mlp.fc1.weight"].shape[0]
        converted["blocks.0.attn.qkv.weight"]
    except KeyError as exc:
        raise ModelFileError(f"is not a complete DINOv2 checkpoint: {exc} is missing.") from None
    registers = converted["reg_token"].shape[1] if "reg_token" in converted else 0
    grid = math.isqrt(positions)
    class_position = grid * grid != positions
    if class_position:
        grid = math.isqrt(positions - 1)
        if grid * grid != positions - 1:
            raise ModelFileError(f"has a position embedding of {positions} tokens, which is no square grid.")
    if class_position and registers:
        # registers carry no position: fold the class position into the class token, as timm does
        converted["cls_token"] = converted["cls_token"] + converted["pos_embed"][:, :1]
        converted["pos_embed"] = converted["pos_embed"][:, 1:]
        class_position = False
    if embed_dim % HEAD_DIM:
        raise ModelFileError(f"has width {embed_dim}, not a multiple of DINOv2's head size {HEAD_DIM}.")
    arch = Dinov2Architecture(
        embed_dim=embed_dim, depth=depth, num_heads=embed_dim // HEAD_DIM, mlp_ratio=mlp_hidden / embed_dim,
        patch_size=patch_size, grid=grid, registers=registers, class_position=class_position,
        layer_scale="blocks.0.ls1.gamma" in converted, layout=layout)
    return converted, arch


class Dinov2Backbone(torch.nn.Module):
    """A DINOv2 ViT that turns an image into a grid of patch features."""

    def __init__(self, arch: Dinov2Architecture):
        super().__init__()
        from timm.models.vision_transformer import VisionTransformer

        self.arch = arch
        self.vit = VisionTransformer(
            img_size=arch.grid * arch.patch_size, patch_size=arch.patch_size, embed_dim=arch.embed_dim,
            depth=arch.depth, num_heads=arch.num_heads, mlp_ratio=arch.mlp_ratio,
            init_values=1.0 if arch.layer_scale else None, reg_tokens=arch.registers,
            no_embed_class=not arch.class_position, dynamic_img_size=True, num_classes=0)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def feature_dim(self) -> int:
        return self.arch.embed_dim

    @torch.no_grad()
    def patch_features(self, image: torch.Tensor, resolution: int) -> torch.Tensor:
        """[H, W, 3] float 0..1 -> [C, h, w] features of the last layer (after the final norm). The image is resized
        so its longer side is about ``resolution`` px and both sides are multiples of the patch size."""
        patch = self.arch.patch_size
        height, width = image.shape[0], image.shape[1]
        scale = resolution / max(height, width)
        rows, cols = max(1, round(height * scale / patch)), max(1, round(width * scale / patch))
        device = self.mean.device
        x = image.to(device, torch.float32).permute(2, 0, 1)[None]
        x = F.interpolate(x, size=(rows * patch, cols * patch), mode="bicubic", align_corners=False,
                          antialias=True).clamp(0.0, 1.0)
        dtype = next(self.vit.parameters()).dtype
        tokens = self.vit.forward_features(((x - self.mean) / self.std).to(dtype))
        patches = tokens[0, self.vit.num_prefix_tokens:].float()
        return patches.T.reshape(-1, rows, cols).cpu()


def load_dinov2(path: str | Path) -> Dinov2Backbone:
    """A DINOv2 backbone in eval mode from a .safetensors/.pth/.bin file in either layout."""
    path = Path(path)
    try:
        state, arch = to_timm_state(load_state_dict(path))
    except ModelFileError as exc:
        raise ModelFileError(f"{path.name} {exc}") from None
    model = Dinov2Backbone(arch)
    missing, unexpected = model.vit.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelFileError(f"{path.name} does not match the DINOv2 {arch.variant} architecture read from its "
                             f"shapes (missing {missing[:3]}, unexpected {unexpected[:3]}).")
    return model.eval()
