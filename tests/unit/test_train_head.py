"""`python -m remaskable_core train-head` on a tiny generated CelebAMask-HQ-style dataset with the tiny DINOv2."""

from __future__ import annotations

import pytest
import torch

from remaskable_core.__main__ import main
from remaskable_core.refine import LinearHead
from tests.fixtures.fake_samrefine import save_transformers_layout, tiny_transformers_dinov2
from tests.fixtures.refine_cases import write_celebamask_style_dataset


@pytest.fixture
def dataset(tmp_path):
    images, masks = write_celebamask_style_dataset(tmp_path)
    dinov2 = tmp_path / "dinov2_vits14.safetensors"
    save_transformers_layout(tiny_transformers_dinov2(), dinov2)
    return images, masks, dinov2


def test_train_head_writes_a_head_the_refiner_loads(dataset, tmp_path, capsys):
    images, masks, dinov2 = dataset
    out = tmp_path / "heads" / "hair.safetensors"
    code = main(["train-head", "--images", str(images), "--masks", str(masks), "--dinov2", str(dinov2),
                 "--out", str(out), "--classes", "hair", "--resolution", "98", "--epochs", "40",
                 "--validation", "0.2"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "trained on 4 images" in printed and "held-out 1 images" in printed
    head = LinearHead.load(out)
    assert head.classes == ("hair",) and head.feature_dim == 128 and head.resolution == 98
    assert "dinov2_vits14.safetensors" in head.backbone
    first, last = (float(v) for v in printed.split("loss ")[1].split(",")[0].split(" -> "))
    assert last < first  # it learned something, even from random-weight features
    assert bool(torch.isfinite(head.weight).all())


def test_train_head_explains_a_wrong_layout(dataset, tmp_path, capsys):
    images, masks, dinov2 = dataset
    code = main(["train-head", "--images", str(images), "--masks", str(masks), "--dinov2", str(dinov2),
                 "--out", str(tmp_path / "x.safetensors"), "--classes", "hat"])
    assert code == 2
    assert "no mask of hat found" in capsys.readouterr().err
