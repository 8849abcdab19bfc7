"""The edit manifest: what a workflow did to an image, read from ComfyUI's prompt and written into the PNG.

The manifest is JSON in the PNG text chunk ``remaskable``, next to ComfyUI's own ``prompt`` and ``workflow``
chunks. It is derived from the API-format prompt by following links backwards from the save node, so only
what reached the saved image is named:

* ``prompts``: the texts of every text-encoder node (``*TextEncode*``) upstream, with the role (``positive`` /
  ``negative``) found by following the conditioning forward to the first input of that name;
* ``sampling``: the seed/steps/cfg/sampler/scheduler/denoise of every sampler upstream;
* ``regions``: the face-parse classes (canonical CelebAMask-HQ names) that region nodes selected or excluded,
  and the area of the edit mask connected to the save node;
* ``models``: every loader widget (and every ``*_name`` input) that names a model file, directly or as
  ``Backend: file``, with the file's sha256 and the published sha256 from the pack's model manifest when it knows
  the file (choices that are not files, e.g. models bundled inside a Python package, stay in ``remaskable_nodes``);
* ``sources``: the input images (LoadImage*) with their sha256;
* ``identity``: the identity scores connected to the save node;
* ``remaskable_nodes``: the widget values of every ReMaskable node upstream;
* ``watermark``: the watermark read back from the saved pixels; ``c2pa``: whether a C2PA manifest was signed.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from .. import __version__
from ..mask_ops import bounding_box
from ..models.download import sha256_of
from ..models.manifest import entry_by_name
from ..parsing.labels import CLASS_INDEX, PRESETS

MANIFEST_CHUNK = "remaskable"
FORMAT = "remaskable.edit-manifest"
FORMAT_VERSION = 1

REGION_NODE_TYPES = ("ReMaskable.FaceParse", "ReMaskable.MaskFuse", "ReMaskable.SAMPrompt",
                     "ReMaskable.DINOv2Refine")
TEXT_INPUTS = ("text", "text_g", "text_l", "clip_l", "t5xxl", "prompt")
STRING_SOURCE_INPUTS = ("value", "text", "string", "prompt")  # primitive nodes that feed a text input by link
SAMPLING_INPUTS = ("seed", "noise_seed", "steps", "cfg", "sampler_name", "scheduler", "denoise")
ROLES = ("positive", "negative")

# a model name -> (its folder key, the file or directory), or None; the node passes ComfyUI's folder_paths lookup
ModelLocator = Callable[[str], "tuple[str, Path] | None"]
InputLocator = Callable[[str], "Path | None"]


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def widget_inputs(node: dict) -> dict:
    return {k: v for k, v in node.get("inputs", {}).items() if not is_link(v)}


def upstream(prompt: dict, node_id: str) -> list[str]:
    """Ids of every node ``node_id`` depends on, dependencies first (a topological order)."""
    order: list[str] = []
    visited: set[str] = set()
    stack = [(node_id, False)]
    while stack:
        current, finished = stack.pop()
        if finished:
            if current != node_id:
                order.append(current)
            continue
        if current in visited:
            continue
        visited.add(current)
        stack.append((current, True))
        sources = [v[0] for v in prompt.get(current, {}).get("inputs", {}).values() if is_link(v)]
        stack.extend((source, False) for source in reversed(sources) if source in prompt and source not in visited)
    return order


def _consumers(prompt: dict, ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    consumers: dict[str, list[tuple[str, str]]] = {}
    for node_id in ids:
        for name, value in prompt[node_id].get("inputs", {}).items():
            if is_link(value):
                consumers.setdefault(value[0], []).append((node_id, name))
    return consumers


def _roles(node_id: str, consumers: dict[str, list[tuple[str, str]]]) -> list[str]:
    """Which conditioning inputs (positive/negative) the output of ``node_id`` ends up in."""
    roles: set[str] = set()
    seen = {node_id}
    frontier = [node_id]
    while frontier:
        current = frontier.pop()
        for consumer, input_name in consumers.get(current, ()):
            if input_name in ROLES:
                roles.add(input_name)
            elif consumer not in seen:
                seen.add(consumer)
                frontier.append(consumer)
    return sorted(roles, key=ROLES.index)


def _string_value(prompt: dict, value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if is_link(value) and value[0] in prompt:
        source = widget_inputs(prompt[value[0]])
        for key in STRING_SOURCE_INPUTS:
            if isinstance(source.get(key), str):
                return source[key]
    return None


def _class_names(value: Any) -> list[str]:
    """Canonical class names in a classes/preset value (text in any separator or JSON, or a list); presets expand,
    unknown words are ignored."""
    items = re.findall(r"[A-Za-z_]+", value) if isinstance(value, str) else \
        [str(v).strip() for v in value] if isinstance(value, (list, tuple)) else []
    names: list[str] = []
    for item in items:
        for name in PRESETS.get(item, (item,) if item in CLASS_INDEX else ()):
            if name not in names:
                names.append(name)
    return names


def _region(node_id: str, node: dict) -> dict:
    widgets = widget_inputs(node)
    classes = {key: _class_names(value) for key, value in widgets.items()
               if ("class" in key or "preset" in key) and _class_names(value)}
    toggled = [key for key, value in widgets.items() if value is True and (key in CLASS_INDEX or key in PRESETS)]
    if toggled:
        classes["toggles"] = _class_names(toggled)
    return {"node": node_id, "class_type": node["class_type"], "classes": classes, "settings": widgets}


class FileHasher:
    """sha256 of model files, cached by (path, mtime, size) so a 4 GB checkpoint is read once, also across restarts
    when ``cache_file`` is given."""

    def __init__(self, cache_file: Path | None = None):
        self.cache_file = cache_file
        self._lock = threading.Lock()
        self._cache: dict[str, str] = {}
        if cache_file is not None and cache_file.is_file():
            try:
                self._cache = dict(json.loads(cache_file.read_text()))
            except (OSError, ValueError):
                self._cache = {}

    @staticmethod
    def _key(path: Path) -> str:
        stat = path.stat()
        return f"{path.resolve()}|{stat.st_mtime_ns}|{stat.st_size}"

    def sha256(self, path: Path) -> str:
        key = self._key(path)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        digest = sha256_of(path)
        with self._lock:
            self._cache[key] = digest
            self._save()
        return digest

    def _save(self) -> None:
        if self.cache_file is None:
            return
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.cache_file.with_name(self.cache_file.name + ".tmp")
            temporary.write_text(json.dumps(self._cache, indent=0))
            os.replace(temporary, self.cache_file)
        except OSError:
            pass  # the cache is an optimisation; hashing still works without it


def _file_record(path: Path, hasher: FileHasher, published: str | None) -> dict:
    sha = hasher.sha256(path)
    return {"size": path.stat().st_size, "sha256": sha, "published_sha256": published,
            "matches_published": sha.startswith(published) if published else None}


def _model(node_id: str, class_type: str, input_name: str, name: str, folder: str, path: Path,
           hasher: FileHasher) -> dict:
    entry = entry_by_name(folder, name)
    record = {"node": node_id, "class_type": class_type, "input": input_name, "name": name, "folder": folder}
    if path.is_dir():
        published = {f.path: f.sha256 for f in entry.files} if entry else {}
        record["files"] = [{"path": p.relative_to(path).as_posix(),
                            **_file_record(p, hasher, published.get(p.relative_to(path).as_posix()))}
                           for p in sorted(path.rglob("*")) if p.is_file()]
    else:
        published = entry.files[0].sha256 if entry and len(entry.files) == 1 else None
        record.update(_file_record(path, hasher, published))
    return record


def _model_name_candidates(value: str) -> list[str]:
    """File names a loader's widget value may stand for: the value itself, and the part after ``Backend: `` (the
    pack's loaders offer choices such as ``SFace: face_recognition_sface_2021dec.onnx``)."""
    _, separator, rest = value.partition(": ")
    return [value, rest] if separator and rest else [value]


@dataclass(frozen=True)
class Locators:
    model: ModelLocator  # a model name -> (folder, path) or None
    input_image: InputLocator  # a LoadImage name -> path or None


def describe_workflow(prompt: dict, save_node_id: str, locators: Locators, hasher: FileHasher) -> dict:
    """The parts of the manifest that come from the prompt (shared by every image one save node writes)."""
    ids = upstream(prompt, save_node_id)
    consumers = _consumers(prompt, [*ids, save_node_id])
    prompts, sampling, regions, models, sources, remaskable = [], [], [], [], [], []
    for node_id in ids:
        node = prompt[node_id]
        class_type = node.get("class_type", "")
        inputs = node.get("inputs", {})
        widgets = widget_inputs(node)
        if "TextEncode" in class_type:
            texts = {k: t for k in TEXT_INPUTS if k in inputs and (t := _string_value(prompt, inputs[k])) is not None}
            if texts:
                roles = _roles(node_id, consumers)
                prompts.append({"node": node_id, "class_type": class_type, "role": "+".join(roles) or "unknown",
                                **texts})
        if "steps" in widgets or "sampler_name" in widgets:
            sampling.append({"node": node_id, "class_type": class_type,
                             **{k: widgets[k] for k in SAMPLING_INPUTS if k in widgets}})
        if class_type in REGION_NODE_TYPES:
            regions.append(_region(node_id, node))
        loader = "Load" in class_type and not class_type.startswith("LoadImage")
        for input_name, value in widgets.items():
            if isinstance(value, str) and (loader or input_name.rstrip("0123456789").endswith("_name")):
                for name in _model_name_candidates(value):
                    located = locators.model(name)
                    if located is not None:
                        models.append(_model(node_id, class_type, input_name, name, *located, hasher))
                        break
        if class_type.startswith("LoadImage") and isinstance(widgets.get("image"), str):
            path = locators.input_image(widgets["image"])
            source = {"node": node_id, "class_type": class_type, "image": widgets["image"]}
            if path is not None and path.is_file():
                source.update(size=path.stat().st_size, sha256=hasher.sha256(path))
            sources.append(source)
        if class_type.startswith("ReMaskable."):
            remaskable.append({"node": node_id, "class_type": class_type, "inputs": widgets})
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "pack_version": __version__,
            "prompts": prompts, "sampling": sampling, "regions": regions, "models": models, "sources": sources,
            "remaskable_nodes": remaskable,
            "workflow_nodes": [{"node": i, "class_type": prompt[i].get("class_type", "")} for i in ids]}


def mask_area(mask: torch.Tensor) -> dict:
    """Area of a [H,W] mask: pixels >= 0.5, their fraction, the soft area, the bounding box and the mask's size."""
    pixels = int((mask >= 0.5).sum())
    return {"pixels": pixels, "fraction": round(pixels / mask.numel(), 6),
            "soft_fraction": round(float(mask.mean()), 6), "bbox_xyxy": bounding_box(mask),
            "size": [int(mask.shape[1]), int(mask.shape[0])]}


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None, so the manifest is strict JSON (Identity Guard reports NaN when
    it finds no face)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def image_manifest(workflow: dict, *, batch_index: int, batch_size: int, width: int, height: int,
                   mask: dict | None, identity: dict | None, watermark: dict | None, c2pa: dict) -> dict:
    """The manifest of one saved image: the workflow description plus what is particular to this image (strict
    JSON: non-finite numbers become null)."""
    return json_safe({**workflow, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "image": {"batch_index": batch_index, "batch_size": batch_size, "width": width, "height": height},
            "mask": mask, "identity": identity, "watermark": watermark, "c2pa": c2pa})


def read_manifest(png_path: str | os.PathLike) -> dict | None:
    """The edit manifest of a PNG written by SaveImageWithProvenance, or None when it has none."""
    from PIL import Image

    with Image.open(png_path) as image:
        text = image.info.get(MANIFEST_CHUNK)  # text chunks before the pixel data, read without decoding pixels
        if text is None:
            try:
                text = getattr(image, "text", {}).get(MANIFEST_CHUNK)  # also after the pixel data (decodes it)
            except (OSError, ValueError):
                text = None
    if text is None:
        return None
    manifest = json.loads(text)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None
    return manifest


def summary(manifest: dict) -> str:
    """One line naming what the edit did, for reports and the C2PA action description."""
    parts = []
    classes = sorted({c for r in manifest.get("regions", []) for key, names in r["classes"].items()
                      if "exclude" not in key for c in names})
    if classes:
        parts.append("regions " + ", ".join(classes))
    mask = manifest.get("mask")
    if mask:
        parts.append(f"mask {100 * mask['fraction']:.1f}% of the image")
    for p in manifest.get("prompts", []):
        text = next((p[k] for k in TEXT_INPUTS if k in p), "")
        parts.append(f"{p['role']} prompt {json.dumps(text[:80])}")
    models = [m["name"] for m in manifest.get("models", [])]
    if models:
        parts.append("models " + ", ".join(models))
    identity = manifest.get("identity")
    if identity:
        parts.append(", ".join(f"{k} {v}" for k, v in identity.items() if not isinstance(v, str)))
    watermark = manifest.get("watermark")
    if watermark and watermark.get("found"):
        parts.append(f"watermark {watermark['payload']}")
    return f"ReMaskable {manifest.get('pack_version', '?')} edit" + (": " + "; ".join(parts) if parts else "")
