"""Segment Anything models, built from the checkpoint's own shapes (vit_b / vit_l / vit_h or any size)."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import torch

from .errors import ModelFileError
from .models import load_state_dict

KNOWN_VARIANTS = {(768, 12): "vit_b", (1024, 24): "vit_l", (1280, 32): "vit_h"}
PATCH_SIZE = 16
WINDOW_SIZE = 14


def sam_architecture(state: dict[str, torch.Tensor]) -> dict:
    """Encoder and decoder hyper-parameters read off a SAM state dict's keys and shapes."""
    try:
        embed_dim = state["image_encoder.patch_embed.proj.weight"].shape[0]
        grid = state["image_encoder.pos_embed"].shape[1]
        blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"image_encoder\.blocks\.(\d+)\.", k))})
        head_dim = state["image_encoder.blocks.0.attn.rel_pos_h"].shape[1]
        global_blocks = [i for i in blocks if state[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape[0] == 2 * grid - 1]
        prompt_dim = state["image_encoder.neck.0.weight"].shape[0]
        decoder_mlp = state["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0]
    except KeyError as exc:
        raise ModelFileError(f"not a Segment Anything (SAM-1) checkpoint: key {exc} is missing.") from None
    depth = len(blocks)
    return {
        "variant": KNOWN_VARIANTS.get((embed_dim, depth), f"vit_{embed_dim}x{depth}"),
        "embed_dim": embed_dim, "depth": depth, "num_heads": embed_dim // head_dim,
        "global_attn_indexes": global_blocks, "image_size": grid * PATCH_SIZE,
        "prompt_embed_dim": prompt_dim, "decoder_mlp_dim": decoder_mlp,
    }


def build_sam(arch: dict):
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    image_size, prompt_dim = arch["image_size"], arch["prompt_embed_dim"]
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=arch["depth"], embed_dim=arch["embed_dim"], img_size=image_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=arch["num_heads"], patch_size=PATCH_SIZE,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=arch["global_attn_indexes"],
            window_size=WINDOW_SIZE, out_chans=prompt_dim),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim, image_embedding_size=(image_size // PATCH_SIZE,) * 2,
            input_image_size=(image_size, image_size), mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=arch["decoder_mlp_dim"],
                                          num_heads=8),
            transformer_dim=prompt_dim, iou_head_depth=3, iou_head_hidden_dim=256),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


def load_sam(path: str | Path):
    """A ``segment_anything`` Sam model in eval mode from a checkpoint file (.pth or .safetensors)."""
    state = load_state_dict(path)
    try:
        arch = sam_architecture(state)
    except ModelFileError as exc:
        raise ModelFileError(f"{Path(path).name}: {exc}") from None
    model = build_sam(arch)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelFileError(f"{Path(path).name} does not match the SAM {arch['variant']} architecture "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]}).")
    model.variant = arch["variant"]
    return model.eval()
