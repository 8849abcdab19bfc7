"""SegFormer, BiSeNet and ONNX face parsers: loading from their real file formats, and class orders mapped by name."""

from __future__ import annotations

import json
import random

import pytest
import torch
from safetensors.torch import save_file

from remaskable_core.errors import ModelFileError
from remaskable_core.models import load_state_dict
from remaskable_core.parsing import BISENET_ORDER, CLASS_INDEX, CLASSES, face_parse, load_face_parser
from remaskable_core.parsing.bisenet import BiSeNetParser, OnnxParser
from remaskable_core.parsing.segformer import SegFormerParser, _rename, segformer_config
from tests.fixtures.fake_parsing import TINY_SEGFORMER, segformer_state
from tests.fixtures.models import write_models

SEGFORMER = "segformer_face_parsing.safetensors"
BISENET = "79999_iter.pth"
FACE_ONLY = ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip", "eye_g")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_models(root, [SEGFORMER, BISENET])
    return root / "face_parsing"


def _small(parser, size: int = 64):
    parser.input_size = size  # the mapping does not depend on the resolution; keeps the CPU tests fast
    return parser


@pytest.fixture(scope="module")
def parsers(models_dir):
    """Each fake loaded once (tests that rig a classifier re-rig it themselves)."""
    return {name: _small(load_face_parser(models_dir / name)) for name in (SEGFORMER, BISENET)}


def rig(parser, channel: int) -> None:
    """Make the network's output channel ``channel`` win at every pixel, whatever the input."""
    with torch.no_grad():
        if isinstance(parser, SegFormerParser):
            classifier = parser.net.decode_head.classifier
            classifier.weight.zero_()
            classifier.bias.zero_()
            classifier.bias[channel] = 10.0
        else:
            head = parser.net.conv_out
            head.conv.bn.weight.zero_()
            head.conv.bn.bias.fill_(1.0)  # features after the ReLU: 1 everywhere
            head.conv_out.weight.zero_()
            head.conv_out.weight[channel] = 1.0


def test_segformer_architecture_is_read_from_the_weight_shapes(models_dir):
    state = load_state_dict(models_dir / SEGFORMER)
    assert "segformer.encoder.block.0.0.attention.self.query.weight" in state  # the published (transformers 4) names
    config = segformer_config(state)
    for key in ("hidden_sizes", "depths", "num_attention_heads", "decoder_hidden_size", "num_labels"):
        assert config[key] == TINY_SEGFORMER[key], key
    assert config["sr_ratios"] == [8, 4, 2, 1] and config["patch_sizes"] == [7, 3, 3, 3]
    parser = load_face_parser(models_dir / SEGFORMER)
    assert isinstance(parser, SegFormerParser) and parser.order == CLASSES and parser.backend == "segformer"


def test_bisenet_loads_into_the_real_architecture_with_zllrunnings_key_names(models_dir):
    raw = torch.load(models_dir / BISENET, map_location="cpu", weights_only=True)
    for key in ("cp.resnet.conv1.weight", "cp.resnet.layer2.0.downsample.0.weight", "cp.arm16.conv.conv.weight",
                "cp.arm32.bn_atten.running_var", "cp.conv_avg.conv.weight", "ffm.convblk.bn.weight", "ffm.conv2.weight",
                "conv_out.conv_out.weight", "conv_out16.conv.conv.weight", "conv_out32.conv_out.weight"):
        assert key in raw, key
    assert "cp.resnet.layer1.0.downsample.0.weight" not in raw
    assert raw["cp.arm32.conv.conv.weight"].shape == (128, 512, 3, 3)
    assert raw["conv_out.conv_out.weight"].shape == (19, 256, 1, 1)
    parser = load_face_parser(models_dir / BISENET)
    assert isinstance(parser, BiSeNetParser) and parser.order == BISENET_ORDER
    params = sum(p.numel() for p in parser.parameters())
    assert 13_000_000 < params < 13_500_000, params  # ResNet-18 context path + ARMs + FFM + three heads
    assert (models_dir / BISENET).stat().st_size < 5_000_000


@pytest.mark.parametrize("name", CLASSES)
def test_segformer_and_bisenet_orders_map_onto_the_same_canonical_names(parsers, name):
    image = torch.rand(1, 37, 29, 3, generator=torch.Generator().manual_seed(0))
    for filename, order in ((SEGFORMER, CLASSES), (BISENET, BISENET_ORDER)):
        parser = parsers[filename]
        rig(parser, order.index(name))
        probs = parser.class_probs(image)
        assert probs.shape == (1, 19, 37, 29)
        assert (probs.argmax(1) == CLASS_INDEX[name]).all(), (filename, name)


def test_the_two_orders_really_differ():
    differing = [name for name in CLASSES if BISENET_ORDER.index(name) != CLASSES.index(name)]
    assert len(differing) >= 14 and "nose" in differing and "hair" in differing


@pytest.mark.parametrize("filename", [SEGFORMER, BISENET])
def test_parse_with_a_face_everywhere_gives_the_mask_and_a_face_box(parsers, filename):
    parser = parsers[filename]
    rig(parser, parser.order.index("nose"))
    out = face_parse(parser, torch.rand(2, 40, 51, 3), preset="nose", hard=True, sides="model")
    assert out.mask.shape == (2, 40, 51) and bool((out.mask == 1).all())
    assert out.result.boxes == [[(0.0, 0.0, 51.0, 40.0)]] * 2
    assert out.messages == []


@pytest.mark.parametrize("filename", [SEGFORMER, BISENET])
def test_no_face_gives_empty_masks_and_a_message(parsers, filename):
    parser = parsers[filename]
    rig(parser, parser.order.index("hair"))
    out = face_parse(parser, torch.rand(2, 30, 30, 3), preset="head")
    assert float(out.mask.abs().sum()) == 0.0
    assert bool((out.result.label_map() == CLASS_INDEX["background"]).all())
    assert out.result.boxes == [[], []]
    assert out.messages == ["No face found in image 1 of 2: its masks are empty.",
                            "No face found in image 2 of 2: its masks are empty."]


def _comfyui_face_parsing_folder(tmp_path, order: list[str]):
    """models/face_parsing as comfyui_face_parsing keeps it: config.json + model.safetensors."""
    folder = tmp_path / "face_parsing"
    folder.mkdir()
    save_file(segformer_state(seed=1), str(folder / "model.safetensors"))
    config = {"model_type": "segformer", **TINY_SEGFORMER, "sr_ratios": [8, 4, 2, 1],
              "id2label": {str(i): label for i, label in enumerate(order)}}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_hugging_face_folder_maps_outputs_by_its_id2label(tmp_path):
    names = list(CLASSES)
    random.Random(3).shuffle(names)
    labels = [f"{n.upper()}.png" if i % 2 else n for i, n in enumerate(names)]  # spellings seen in old configs
    folder = _comfyui_face_parsing_folder(tmp_path, labels)
    parser = load_face_parser(folder / "model.safetensors")
    assert parser.order == tuple(names) and parser.notes == ()
    _small(parser)
    for channel in (0, 7, 18):
        rig(parser, channel)
        assert (parser.class_probs(torch.rand(1, 20, 20, 3)).argmax(1) == CLASS_INDEX[names[channel]]).all()
    assert load_face_parser(folder).order == tuple(names)  # the folder itself works too


def test_config_json_of_another_architecture_is_ignored_with_a_note(tmp_path):
    folder = _comfyui_face_parsing_folder(tmp_path, list(CLASSES))
    config = json.loads((folder / "config.json").read_text())
    config["hidden_sizes"] = [64, 128, 320, 512]
    (folder / "config.json").write_text(json.dumps(config))
    parser = load_face_parser(folder / "model.safetensors")
    assert parser.order == CLASSES
    assert "config.json was ignored" in parser.notes[0] and "hidden_sizes" in parser.notes[0]


def test_unknown_label_in_config_names_it(tmp_path):
    folder = _comfyui_face_parsing_folder(tmp_path, [*CLASSES[:-1], "tattoo"])
    with pytest.raises(ModelFileError, match="tattoo"):
        load_face_parser(folder / "model.safetensors")


def test_segformer_saved_with_transformers_5_names_loads(tmp_path):
    state = _rename(segformer_state(seed=2), to_current=True)
    assert "segformer.stages.0.blocks.0.attention.q_proj.weight" in state
    path = tmp_path / "new_names.safetensors"
    save_file(state, str(path))
    assert isinstance(load_face_parser(path), SegFormerParser)


def test_segformer_without_config_and_other_label_count_says_what_to_add(tmp_path):
    path = tmp_path / "ade.safetensors"
    save_file(segformer_state(seed=2, num_labels=150), str(path))
    with pytest.raises(ModelFileError, match="150 classes.*config.json"):
        load_face_parser(path)


def test_files_that_are_no_face_parser_are_named(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"encoder.weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(ModelFileError, match="other.safetensors is neither"):
        load_face_parser(path)
    truncated = tmp_path / "79999_iter.pth"
    truncated.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(ModelFileError, match="79999_iter.pth"):
        load_face_parser(truncated)


class _TinyOnnxNet(torch.nn.Module):
    def __init__(self, stride: int):
        super().__init__()
        self.head = torch.nn.Conv2d(3, 19, 1, stride=stride)

    def forward(self, x):
        return self.head(x)


@pytest.mark.parametrize("input_name,stride,order,backend", [
    ("input", 1, BISENET_ORDER, "bisenet (onnx)"),  # clibdev's BiSeNet export: logits at the input size
    ("pixel_values", 4, CLASSES, "segformer (onnx)"),  # jonathandinu's onnx/model.onnx: logits at 1/4
])
def test_onnx_exports_load_and_map_by_name(tmp_path, input_name, stride, order, backend):
    net = _TinyOnnxNet(stride)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        net.head.bias[order.index("nose")] = 5.0
    path = tmp_path / "parser.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 64, 64),), str(path), input_names=[input_name], output_names=["logits"],
                      dynamo=False)
    parser = load_face_parser(path)
    assert isinstance(parser, OnnxParser) and parser.backend == backend and parser.input_size == 64
    out = face_parse(parser, torch.rand(1, 33, 47, 3), preset="nose", hard=True)
    assert bool((out.mask == 1).all()) and out.result.backend == backend


def test_batches_odd_sizes_rgba_and_grey_through_both_backends(parsers):
    for parser in parsers.values():
        for image in (torch.rand(3, 45, 67, 3), torch.rand(1, 31, 17, 4), torch.rand(2, 50, 21, 1)):
            out = face_parse(parser, image, preset="face", classes="hair, -nose")
            batch, height, width = image.shape[:3]
            assert out.result.probs.shape == (batch, 19, height, width)
            assert torch.isfinite(out.result.probs).all()
            assert torch.allclose(out.result.probs.sum(1), torch.ones(batch, height, width), atol=1e-4)
            assert out.mask.shape == (batch, height, width) and 0 <= float(out.mask.min()) <= float(out.mask.max()) <= 1
            assert out.preview.shape[0] == batch and out.preview.shape[1] >= height
            assert out.preview.shape[2] > width and out.preview.shape[3] == 3
            assert "hair" in out.classes and "nose" not in out.classes


def test_same_input_same_parse(parsers):
    parser = parsers[BISENET]
    image = torch.rand(1, 40, 40, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(parser.class_probs(image), parser.class_probs(image))


def test_progress_is_reported_per_image_and_can_interrupt(parsers):
    parser = parsers[SEGFORMER]
    calls = []
    parser.parse(torch.rand(3, 20, 20, 3), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]

    class Interrupted(Exception):
        pass

    def cancel(done, total):
        if done == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        parser.parse(torch.rand(3, 20, 20, 3), progress=cancel)
