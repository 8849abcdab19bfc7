"""SegFormer face parsing (the jonathandinu/face-parsing layout) on transformers' SegformerForSemanticSegmentation.

Two ways to give the model:
- a single weights file (``segformer_face_parsing.safetensors`` = the Hub's ``model.safetensors`` renamed): the
  architecture is read off the weight shapes (stage widths, depths, patch sizes, reduction ratios, MLP ratios,
  decoder width, number of labels) and the classes are taken to be CelebAMask-HQ's official order;
- a Hugging Face folder (``config.json`` + ``model.safetensors``, as comfyui_face_parsing keeps it in
  ``models/face_parsing/``): its config is used and its ``id2label`` maps the outputs onto the canonical names.
Nothing is fetched from the Hub.

The published file uses transformers 4 weight names; transformers 5 renamed the modules (``encoder.block`` →
``stages.N.blocks``...). Files in either naming load into whichever transformers is installed.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch

from ..errors import ModelFileError
from ..models import load_state_dict
from .base import NetworkParser, check_class_order
from .labels import CLASSES, canonical_name

# transformers 4 name <-> transformers 5 name, one template each ({a}, {b} stand for stage/block numbers)
_RENAMES = (
    ("segformer.encoder.patch_embeddings.{a}.", "segformer.stages.{a}.patch_embeddings."),
    ("segformer.encoder.block.{a}.{b}.", "segformer.stages.{a}.blocks.{b}."),
    ("segformer.encoder.layer_norm.{a}.", "segformer.stages.{a}.layer_norm."),
    (".attention.self.query.", ".attention.q_proj."),
    (".attention.self.key.", ".attention.k_proj."),
    (".attention.self.value.", ".attention.v_proj."),
    (".attention.self.sr.", ".attention.sequence_reduction.sequence_reduction."),
    (".attention.self.layer_norm.", ".attention.sequence_reduction.layer_norm."),
    (".attention.output.dense.", ".attention.o_proj."),
    (".mlp.dense1.", ".mlp.fc1."),
    (".mlp.dense2.", ".mlp.fc2."),
    (".layer_norm_1.", ".layernorm_before."),
    (".layer_norm_2.", ".layernorm_after."),
    ("decode_head.linear_c.", "decode_head.linear_projections."),
)
# MiT encoders (b0-b5) all use these head counts per stage
_MIT_HEADS = (1, 2, 5, 8)
_PATCH = "segformer.encoder.patch_embeddings.{}.proj.weight"


def _pattern(template: str) -> re.Pattern:
    regex = re.escape(template).replace(r"\{a\}", r"(?P<a>\d+)").replace(r"\{b\}", r"(?P<b>\d+)")
    return re.compile(("^" if not template.startswith(".") else "") + regex)


def _rename(state: dict[str, torch.Tensor], to_current: bool) -> dict[str, torch.Tensor]:
    pairs = [(_pattern(old), new) if to_current else (_pattern(new), old) for old, new in _RENAMES]
    out = {}
    for key, value in state.items():
        for pattern, template in pairs:
            key = pattern.sub(lambda m, t=template: t.format(**m.groupdict()), key)
        out[key] = value
    return out


def legacy_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict in transformers 4 names (the published file's), whichever naming it came in."""
    if any(k.startswith("segformer.stages.") or k.startswith("decode_head.linear_projections.") for k in state):
        return _rename(state, to_current=False)
    return state


def is_segformer_state(state: dict[str, torch.Tensor]) -> bool:
    return _PATCH.format(0) in state or "segformer.stages.0.patch_embeddings.proj.weight" in state


def segformer_config(state: dict[str, torch.Tensor]) -> dict:
    """SegformerConfig arguments read off a state dict in transformers 4 names.

    Head counts leave no trace in the shapes (queries are hidden x hidden); the MiT family's (1, 2, 5, 8) is
    used, which every published SegFormer has.
    """
    try:
        stages = sorted(int(m.group(1)) for k in state
                        if (m := re.match(r"segformer\.encoder\.patch_embeddings\.(\d+)\.proj\.weight$", k)))
        hidden, patch, strides, depths, reductions, mlp_ratios = [], [], [], [], [], []
        for i in stages:
            embed = state[_PATCH.format(i)]
            hidden.append(embed.shape[0])
            patch.append(embed.shape[-1])
            strides.append((embed.shape[-1] + 1) // 2)  # SegFormer's overlapping patches: 7 -> 4, 3 -> 2
            blocks = {int(m.group(1)) for k in state if (m := re.match(rf"segformer\.encoder\.block\.{i}\.(\d+)\.", k))}
            depths.append(len(blocks))
            sr = state.get(f"segformer.encoder.block.{i}.0.attention.self.sr.weight")
            reductions.append(sr.shape[-1] if sr is not None else 1)
            mlp_ratios.append(state[f"segformer.encoder.block.{i}.0.mlp.dense1.weight"].shape[0] // embed.shape[0])
        decoder = state["decode_head.linear_c.0.proj.weight"].shape[0]
        num_labels = state["decode_head.classifier.weight"].shape[0]
        channels = state[_PATCH.format(0)].shape[1]
    except (KeyError, IndexError) as exc:
        raise ModelFileError(f"not a SegFormer semantic-segmentation state dict (missing {exc}).") from None
    heads = [_MIT_HEADS[i] if i < 4 and h % _MIT_HEADS[i] == 0 else math.gcd(h, 8) for i, h in enumerate(hidden)]
    return {
        "num_channels": channels, "num_encoder_blocks": len(stages), "depths": depths, "sr_ratios": reductions,
        "hidden_sizes": hidden, "patch_sizes": patch, "strides": strides, "num_attention_heads": heads,
        "mlp_ratios": mlp_ratios, "decoder_hidden_size": decoder, "num_labels": num_labels,
        "hidden_act": "gelu", "layer_norm_eps": 1e-6, "reshape_last_stage": True,
    }


_SHAPE_KEYS = ("hidden_sizes", "depths", "sr_ratios", "patch_sizes", "mlp_ratios", "decoder_hidden_size")


def _folder_config(weights: Path, inferred: dict) -> tuple[dict | None, str]:
    """The Hugging Face config.json next to the weights, if it describes these weights."""
    path = weights.parent / "config.json"
    if not path.is_file():
        return None, ""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return None, f"{path} was ignored: it is not valid JSON ({exc})."
    if config.get("model_type") != "segformer":
        return None, ""
    labels = config.get("id2label") or {}
    mismatched = [k for k in _SHAPE_KEYS if k in config and _as_list(config[k]) != _as_list(inferred[k])]
    if len(labels) != inferred["num_labels"]:
        mismatched.append("id2label")
    if mismatched:
        return None, (f"{path} was ignored: its {', '.join(mismatched)} do not match {weights.name}; the architecture "
                      f"was read from the weights instead.")
    return config, ""


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def class_order(id2label: dict, source: str) -> tuple[str, ...]:
    """Canonical names in output-channel order from a config's id2label (keys are ints or numeric strings)."""
    names = []
    for i in range(len(id2label)):
        label = id2label.get(str(i), id2label.get(i))
        name = canonical_name(str(label)) if label is not None else None
        if name is None:
            raise ModelFileError(f"{source}: output {i} is labelled {label!r}, which is not one of the CelebAMask-HQ "
                                 f"classes ({', '.join(CLASSES)}).")
        names.append(name)
    return check_class_order(tuple(names), source)


def build_segformer(config_args: dict, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """transformers' SegformerForSemanticSegmentation with these weights (transformers 4 names), in eval mode."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    config = SegformerConfig(**config_args)
    with torch.device("meta"):
        model = SegformerForSemanticSegmentation(config)
    expected = set(model.state_dict())
    if not any(k.startswith("segformer.encoder.") for k in expected):
        state = _rename(state, to_current=True)
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if unexpected or any(not k.endswith("num_batches_tracked") for k in missing):
        raise ModelFileError(f"the weights do not fit a SegFormer with {config_args['hidden_sizes']} widths and "
                             f"{config_args['depths']} blocks (missing {missing[:3]}, unexpected {unexpected[:3]}).")
    model.load_state_dict(state, strict=False, assign=True)
    for module in model.modules():  # counters the file lacks (BatchNorm's num_batches_tracked)
        for name, buffer in list(module.named_buffers(recurse=False)):
            if buffer is not None and buffer.is_meta:
                setattr(module, name, torch.zeros(buffer.shape, dtype=buffer.dtype))
    return model.float().eval()


class SegFormerParser(NetworkParser, torch.nn.Module):
    backend = "segformer"

    def __init__(self, net: torch.nn.Module, order: tuple[str, ...], notes: tuple[str, ...] = ()):
        torch.nn.Module.__init__(self)
        self.net = net
        self.order = order
        self.notes = notes

    @property
    def weights_device(self) -> torch.device:
        return next(self.net.parameters()).device

    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=pixels).logits


def load_segformer(path: str | Path, state: dict[str, torch.Tensor] | None = None) -> SegFormerParser:
    """A SegFormer face parser from a weights file (or a folder holding config.json and model.safetensors)."""
    path = Path(path)
    if path.is_dir():
        path = next((path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).is_file()), path)
    state = legacy_state(state if state is not None else load_state_dict(path))
    try:
        inferred = segformer_config(state)
    except ModelFileError as exc:
        raise ModelFileError(f"{path.name}: {exc}") from None
    config, note = _folder_config(path, inferred)
    if config is not None:
        args = {**inferred, **{k: config[k] for k in ("num_attention_heads", "hidden_act", "layer_norm_eps",
                                                      "reshape_last_stage") if k in config}}
        order = class_order(config["id2label"], str(path.parent / "config.json"))
    elif inferred["num_labels"] == len(CLASSES):
        args, order = inferred, CLASSES
    else:
        raise ModelFileError(f"{path.name} predicts {inferred['num_labels']} classes, not the 19 of CelebAMask-HQ, "
                             f"and no config.json next to it names them. Put the model's config.json in "
                             f"{path.parent}.")
    try:
        net = build_segformer(args, state)
    except ModelFileError as exc:
        raise ModelFileError(f"{path.name}: {exc}") from None
    return SegFormerParser(net, order, tuple(n for n in (note,) if n))
