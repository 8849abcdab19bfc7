"""DINOv2 files in both published layouts load into one backbone that computes what the reference implementations
compute: transformers' Dinov2Model / Dinov2WithRegistersModel for the transformers layout, timm for the timm layout."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from remaskable_core.dinov2 import load_dinov2, to_timm_state
from remaskable_core.errors import ModelFileError
from remaskable_core.models import load_state_dict
from tests.fixtures.fake_samrefine import save_transformers_layout, tiny_timm_dinov2_reg4, tiny_transformers_dinov2


def _patch_tokens(backbone, pixels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return backbone.vit.forward_features(pixels)[:, backbone.vit.num_prefix_tokens:]


@pytest.mark.parametrize("registers", [0, 4])
def test_transformers_layout_matches_transformers(tmp_path, registers):
    reference = tiny_transformers_dinov2(registers)
    save_transformers_layout(reference, tmp_path / "model.safetensors")
    backbone = load_dinov2(tmp_path / "model.safetensors")
    assert backbone.arch.layout == "transformers" and backbone.arch.registers == registers
    assert (backbone.arch.embed_dim, backbone.arch.depth, backbone.arch.num_heads, backbone.arch.grid) == (128, 2, 2, 7)
    sizes = [(98, 98)] + ([(140, 112)] if registers else [])  # see below for the register-free model off its grid
    for height, width in sizes:
        pixels = torch.rand(1, 3, height, width)
        with torch.no_grad():
            expected = reference(pixel_values=pixels).last_hidden_state[:, 1 + registers:]
        torch.testing.assert_close(_patch_tokens(backbone, pixels), expected, atol=1e-4, rtol=1e-4)


def test_off_grid_sizes_resample_positions_like_timm(tmp_path):
    """Off the 7x7 grid the position embeddings are resampled the timm way (antialiased bicubic, as the original
    register models do); transformers' register-free Dinov2Model uses plain bicubic, so only shapes agree there."""
    save_transformers_layout(tiny_transformers_dinov2(0), tmp_path / "model.safetensors")
    backbone = load_dinov2(tmp_path / "model.safetensors")
    tokens = _patch_tokens(backbone, torch.rand(1, 3, 140, 112))
    assert tokens.shape == (1, 80, 128) and bool(torch.isfinite(tokens).all())


def test_timm_register_layout_matches_timm(tmp_path):
    reference = tiny_timm_dinov2_reg4()
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(tmp_path / "reg4.safetensors"))
    backbone = load_dinov2(tmp_path / "reg4.safetensors")
    assert backbone.arch.layout == "timm" and backbone.arch.registers == 4 and not backbone.arch.class_position
    for height, width in [(98, 98), (126, 84)]:
        pixels = torch.rand(1, 3, height, width)
        with torch.no_grad():
            expected = reference.forward_features(pixels)[:, reference.num_prefix_tokens:]
        torch.testing.assert_close(_patch_tokens(backbone, pixels), expected)


def test_torch_hub_layout_with_register_tokens_and_class_position(tmp_path):
    """The original checkpoints name registers 'register_tokens' and keep the class position: same function."""
    reference = tiny_transformers_dinov2(4)
    save_transformers_layout(reference, tmp_path / "hf.safetensors")
    timm_state, _ = to_timm_state(load_state_dict(tmp_path / "hf.safetensors"))
    hub_state = dict(timm_state)
    hub_state["register_tokens"] = hub_state.pop("reg_token")
    position = reference.embeddings.position_embeddings.detach()
    hub_state["pos_embed"] = position  # with the class position again
    hub_state["cls_token"] = reference.embeddings.cls_token.detach()
    hub_state["mask_token"] = torch.zeros(1, 128)
    save_file({k: v.contiguous() for k, v in hub_state.items()}, str(tmp_path / "hub.safetensors"))
    pixels = torch.rand(1, 3, 98, 98)
    torch.testing.assert_close(_patch_tokens(load_dinov2(tmp_path / "hub.safetensors"), pixels),
                               _patch_tokens(load_dinov2(tmp_path / "hf.safetensors"), pixels))


@pytest.mark.parametrize("hidden,layers,variant", [(384, 12, "vits14"), (768, 12, "vitb14"), (1024, 24, "vitl14")])
def test_published_sizes_are_recognised_from_their_shapes(hidden, layers, variant):
    from transformers import Dinov2Config, Dinov2Model

    with torch.device("meta"):
        model = Dinov2Model(Dinov2Config(hidden_size=hidden, num_hidden_layers=layers,
                                         num_attention_heads=hidden // 64, image_size=518, patch_size=14))
    state = {k.replace(".attention.q_proj.", ".attention.attention.query.")  # the names on disk
             .replace(".attention.k_proj.", ".attention.attention.key.")
             .replace(".attention.v_proj.", ".attention.attention.value.")
             .replace(".attention.o_proj.", ".attention.output.dense."): v for k, v in model.state_dict().items()}
    _, arch = to_timm_state(state)
    assert (arch.variant, arch.grid, arch.patch_size, arch.num_heads, arch.mlp_ratio) == \
        (variant, 37, 14, hidden // 64, 4.0)


def test_patch_features_cover_odd_sized_images(tmp_path):
    save_transformers_layout(tiny_transformers_dinov2(0), tmp_path / "model.safetensors")
    backbone = load_dinov2(tmp_path / "model.safetensors")
    features = backbone.patch_features(torch.rand(77, 51, 3), resolution=98)
    assert features.shape == (128, 7, 5) and bool(torch.isfinite(features).all())


def test_a_file_that_is_not_dinov2_is_refused_by_name(tmp_path):
    save_file({"image_encoder.patch_embed.proj.weight": torch.zeros(8, 3, 16, 16)}, str(tmp_path / "sam.safetensors"))
    with pytest.raises(ModelFileError, match="sam.safetensors is not a DINOv2 checkpoint"):
        load_dinov2(tmp_path / "sam.safetensors")


def test_giant_swiglu_checkpoints_are_refused_with_the_supported_sizes(tmp_path):
    reference = tiny_timm_dinov2_reg4()
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    state["blocks.0.mlp.w12.weight"] = state.pop("blocks.0.mlp.fc1.weight")
    save_file(state, str(tmp_path / "giant.safetensors"))
    with pytest.raises(ModelFileError, match="giant.safetensors is a DINOv2 giant"):
        load_dinov2(tmp_path / "giant.safetensors")
