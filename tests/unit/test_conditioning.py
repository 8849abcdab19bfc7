"""Face-aware conditioning: Ê = E + λ·A(E)·β."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from remaskable_core.conditioning import face_aware_embedding, load_adapter, mask_area_ratio
from remaskable_core.errors import InvalidInputError, ModelFileError


def test_beta_is_the_masked_share_of_the_image():
    mask = torch.zeros(2, 10, 20)
    mask[0, :5, :] = 1.0
    mask[1, :, :5] = 0.5
    assert torch.allclose(mask_area_ratio(mask), torch.tensor([0.5, 0.125]))


def test_without_adapter_the_embedding_is_scaled_by_one_plus_lambda_beta():
    embedding = torch.randn(1, 77, 768)
    out = face_aware_embedding(embedding, torch.tensor([0.25]), 2.0)
    assert torch.allclose(out, embedding * 1.5)
    assert torch.equal(face_aware_embedding(embedding, torch.tensor([0.0]), 2.0), embedding)


def test_per_item_beta_for_batched_conditioning():
    embedding = torch.ones(2, 3, 4)
    out = face_aware_embedding(embedding, torch.tensor([0.0, 1.0]), 1.0)
    assert torch.equal(out[0], embedding[0]) and torch.equal(out[1], 2 * embedding[1])


def test_linear_and_mlp_adapters_load_and_apply(tmp_path):
    weight = torch.randn(8, 8)
    save_file({"weight": weight, "bias": torch.zeros(8)}, tmp_path / "linear.safetensors")
    adapter = load_adapter(tmp_path / "linear.safetensors")
    embedding = torch.randn(1, 5, 8)
    expected = embedding + 0.5 * (embedding @ weight.T) * 0.2
    assert torch.allclose(face_aware_embedding(embedding, torch.tensor([0.2]), 0.5, adapter), expected, atol=1e-5)
    save_file({"0.weight": torch.randn(16, 8), "0.bias": torch.zeros(16), "2.weight": torch.randn(8, 16)},
              tmp_path / "mlp.safetensors")
    assert face_aware_embedding(embedding, torch.tensor([1.0]), 1.0,
                                load_adapter(tmp_path / "mlp.safetensors")).shape == embedding.shape


def test_bad_adapters_are_explained(tmp_path):
    save_file({"something": torch.zeros(2)}, tmp_path / "odd.safetensors")
    with pytest.raises(ModelFileError, match="needs 'weight'"):
        load_adapter(tmp_path / "odd.safetensors")
    save_file({"weight": torch.zeros(4, 8)}, tmp_path / "shrink.safetensors")
    with pytest.raises(ModelFileError, match="must keep the size"):
        load_adapter(tmp_path / "shrink.safetensors")
    save_file({"weight": torch.zeros(8, 8)}, tmp_path / "small.safetensors")
    with pytest.raises(InvalidInputError, match="Input 'adapter'"):
        face_aware_embedding(torch.zeros(1, 3, 768), torch.tensor([0.1]), 1.0,
                             load_adapter(tmp_path / "small.safetensors"))
