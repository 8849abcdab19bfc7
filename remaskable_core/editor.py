"""The mask editor's preview: request validation, safe image lookup, class toggling and the response payload.

The frontend editor (js/mask_editor.js) on FaceParse and SAMPrompt posts a request to the pack's
``POST /remaskable/preview`` route (nodes/editor_route.py, a thin aiohttp handler) to see the mask without
queueing the graph::

    {"image": {"filename": "face.png", "subfolder": "", "type": "input"},          # or "temp"
     "mode": "parse", "parser": "79999_iter.pth", "preset": "face", "classes": "hair, -l_eye",
     "mask_mode": "soft", "left_right": "<FaceParse's left_right value>", "toggle": "hair"}   # toggle optional
    {"image": {...}, "mode": "sam", "sam_model": "sam_vit_b_01ec64.pth",
     "prompts": "{\\"points\\": [{\\"x\\": 10, \\"y\\": 20, \\"label\\": 1}], \\"boxes\\": []}"}  # or the object

Every field is checked (type, allowed values, unknown keys); the image must be a file inside ComfyUI's input or
temp folder (no absolute paths, no ``..``, no symlink leading out). Problems raise :class:`InvalidInputError`
naming the field, which the route answers with HTTP 400 and the message.

The answer (:func:`parse_payload`, :func:`sam_payload`) is JSON: the mask as a base64 PNG, and for a parse the
class of every pixel (zlib-compressed uint8 indices into ``class_names``, 255 where the backend makes no claim) so
a click can be mapped to a class, plus a colour overlay PNG of the parse.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Collection, Mapping

import numpy as np
import torch

from .errors import InvalidInputError
from .parsing.labels import CLASS_INDEX, CLASSES, DISPLAY_NAMES, PALETTE, select_classes
from .parsing.result import FaceParseResult

IMAGE_TYPES = ("input", "temp")
MODES = ("parse", "sam")
MASK_MODES = ("soft", "hard")
UNCLAIMED = 255  # label-map value where the backend makes no claim (the landmark backend outside faces)
MAX_TEXT = 100_000  # characters of prompts/classes accepted (a prompt of thousands of points is still far below)

_COMMON_FIELDS = {"image", "mode"}
_MODE_FIELDS = {
    "parse": {"parser", "preset", "classes", "mask_mode", "left_right", "toggle"},
    "sam": {"sam_model", "prompts"},
}
_REQUIRED_FIELDS = {"parse": {"parser"}, "sam": {"sam_model"}}


@dataclass(frozen=True)
class ImageRef:
    filename: str
    subfolder: str
    type: str


@dataclass(frozen=True)
class PreviewChoices:
    """What the running ComfyUI offers: the loaders' model names and FaceParse's left_right values (-> sides)."""

    parsers: Collection[str]
    sam_models: Collection[str]
    sides: Mapping[str, str]


@dataclass(frozen=True)
class PreviewRequest:
    image: ImageRef
    mode: str
    parser: str = ""
    preset: str = "none"
    classes: str = ""
    hard: bool = False
    sides: str = "subject"
    toggle: str | None = None
    sam_model: str = ""
    prompts: str = ""


def _string(body: dict, name: str, default: str | None = None, where: str = "") -> str:
    value = body.get(name, default)
    field = f"{where}{name}"
    if value is None:
        raise InvalidInputError(field, "is missing.")
    if not isinstance(value, str):
        raise InvalidInputError(field, f"must be a string, got {json.dumps(value)[:80]}.")
    if len(value) > MAX_TEXT or "\x00" in value:
        raise InvalidInputError(field, f"is longer than {MAX_TEXT} characters or holds a NUL character.")
    return value


def _choice(value: str, name: str, allowed: Collection[str]) -> str:
    if value not in allowed:
        shown = ", ".join(repr(a) for a in list(allowed)[:12])
        raise InvalidInputError(name, f"is {value!r}, which is not one of {shown}.")
    return value


def _image_ref(value: object) -> ImageRef:
    if not isinstance(value, dict):
        raise InvalidInputError("image", 'must be an object {"filename": .., "subfolder": .., "type": "input"|"temp"}.')
    unknown = set(value) - {"filename", "subfolder", "type"}
    if unknown:
        raise InvalidInputError("image", f"has unknown key(s) {sorted(unknown)}.")
    filename = _string(value, "filename", where="image.")
    subfolder = _string(value, "subfolder", "", where="image.")
    kind = _choice(_string(value, "type", "input", where="image."), "image.type", IMAGE_TYPES)
    if not filename or filename in (".", "..") or "/" in filename or "\\" in filename:
        raise InvalidInputError("image.filename", f"{filename!r} must be a plain file name (no folders).")
    for path in (PurePosixPath(subfolder), PureWindowsPath(subfolder)):
        if path.is_absolute() or path.anchor or ".." in path.parts:
            raise InvalidInputError("image.subfolder", f"{subfolder!r} must be a relative folder without '..'.")
    return ImageRef(filename, subfolder, kind)


def read_preview_request(body: object, choices: PreviewChoices) -> PreviewRequest:
    """The request body checked field by field."""
    if not isinstance(body, dict):
        raise InvalidInputError("body", "must be a JSON object.")
    mode = _choice(_string(body, "mode"), "mode", MODES)
    allowed = _COMMON_FIELDS | _MODE_FIELDS[mode]
    unknown = set(body) - allowed
    if unknown:
        raise InvalidInputError("body", f"has field(s) {sorted(unknown)} that mode '{mode}' does not use; it reads "
                                        f"{sorted(allowed)}.")
    missing = _REQUIRED_FIELDS[mode] - set(body)
    if missing:
        raise InvalidInputError(sorted(missing)[0], f"is missing (mode '{mode}' needs it).")
    image = _image_ref(body.get("image"))
    if mode == "sam":
        prompts = body.get("prompts", "")
        if isinstance(prompts, (dict, list)):
            prompts = json.dumps(prompts)
        body = {**body, "prompts": prompts}
        return PreviewRequest(image, mode, sam_model=_choice(_string(body, "sam_model"), "sam_model", choices.sam_models),
                              prompts=_string(body, "prompts", ""))
    preset, classes = _string(body, "preset", "none"), _string(body, "classes", "")
    select_classes(preset, classes)  # raises on an unknown preset or class, naming it
    toggle = body.get("toggle")
    if toggle is not None:
        toggle = _choice(_string(body, "toggle"), "toggle", CLASSES)
    sides_choices = {**{value: value for value in choices.sides.values()}, **choices.sides}
    left_right = _string(body, "left_right", next(iter(choices.sides), "subject"))
    return PreviewRequest(image, mode, parser=_choice(_string(body, "parser"), "parser", choices.parsers),
                          preset=preset, classes=classes,
                          hard=_choice(_string(body, "mask_mode", "soft"), "mask_mode", MASK_MODES) == "hard",
                          sides=sides_choices[_choice(left_right, "left_right", sides_choices)], toggle=toggle)


def resolve_image(ref: ImageRef, roots: Mapping[str, str | Path]) -> Path:
    """The image file ``ref`` names inside its type's root folder; refuses anything that ends up outside it."""
    root = Path(roots[_choice(ref.type, "image.type", list(roots))]).resolve()
    candidate = root / ref.subfolder / ref.filename
    try:
        real = candidate.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise InvalidInputError("image", f"{ref.type}/{PurePosixPath(ref.subfolder, ref.filename)} does not exist.",
                                "Upload the image again (Load Image's upload button).") from None
    except (OSError, RuntimeError) as exc:  # symlink loops and the like
        raise InvalidInputError("image", f"cannot be opened ({exc}).") from None
    if not real.is_relative_to(root):
        raise InvalidInputError("image", f"{ref.filename!r} leads outside ComfyUI's {ref.type} folder.")
    if not real.is_file():
        raise InvalidInputError("image", f"{ref.filename!r} is not a file.")
    return real


def load_image(path: Path) -> torch.Tensor:
    """The first frame of an image file as LoadImage reads it: EXIF orientation applied, RGB [1, H, W, 3] 0..1."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            if image.mode == "I":  # 16-bit greyscale, scaled as LoadImage does
                image = image.point(lambda v: v * (1 / 255))
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidInputError("image", f"{path.name!r} is not a readable image ({exc}).") from None
    return torch.from_numpy(rgb)[None]


def toggle_class(preset: str, classes: str, name: str) -> str:
    """``classes`` rewritten so that class ``name`` flips in or out of the selection (preset + classes): any entry
    naming exactly that class is dropped, then "name" or "-name" is appended if still needed."""
    was_chosen = name in select_classes(preset, classes)
    kept = [item.strip() for item in re.split(r"[,;]", classes)
            if item.strip() and item.strip().lstrip("-+ ") != name]
    if (name in select_classes(preset, ", ".join(kept))) == was_chosen:
        kept.append(name if not was_chosen else f"-{name}")
    return ", ".join(kept)


def png_base64(pixels: np.ndarray) -> str:
    """A uint8 [H, W] (greyscale) or [H, W, 3|4] array as a base64 PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _mask_pixels(mask: torch.Tensor) -> np.ndarray:
    return (mask.detach().float().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


def label_pixels(result: FaceParseResult, index: int = 0) -> np.ndarray:
    """[H, W] uint8 canonical class per pixel, ``UNCLAIMED`` where the backend leaves the pixel unclaimed."""
    probs = result.probs[index]
    labels = probs.argmax(0).to(torch.uint8)
    claimed = probs.amax(0) > 1.0 - probs.sum(0)
    return torch.where(claimed, labels, torch.tensor(UNCLAIMED, dtype=torch.uint8)).cpu().numpy()


def overlay_pixels(labels: np.ndarray) -> np.ndarray:
    """[H, W, 4] RGBA: each class in its palette colour, transparent over background and unclaimed pixels."""
    palette = np.zeros((256, 4), np.uint8)
    for name, colour in PALETTE.items():
        palette[CLASS_INDEX[name]] = (*colour, 255)
    palette[CLASS_INDEX["background"], 3] = 0
    return palette[labels]


def parse_payload(result: FaceParseResult, request: PreviewRequest, classes: str, mask: torch.Tensor,
                  messages: list[str]) -> dict:
    """The answer to a parse preview of one image."""
    labels = label_pixels(result)
    height, width = labels.shape
    return {
        "mode": "parse", "width": width, "height": height, "backend": result.backend,
        "classes": classes, "chosen": list(select_classes(request.preset, classes)),
        "mask": png_base64(_mask_pixels(mask[0])), "overlay": png_base64(overlay_pixels(labels)),
        "labels": {"encoding": "zlib", "unclaimed": UNCLAIMED,
                   "data": base64.b64encode(zlib.compress(labels.tobytes(), 6)).decode("ascii")},
        "class_names": list(CLASSES), "display_names": [DISPLAY_NAMES[name] for name in CLASSES],
        "covered": list(result.covered), "messages": messages,
    }


def sam_payload(mask: torch.Tensor, score: float, messages: list[str]) -> dict:
    """The answer to a SAM preview of one image."""
    height, width = mask.shape[-2:]
    return {"mode": "sam", "width": int(width), "height": int(height), "mask": png_base64(_mask_pixels(mask[0])),
            "score": round(float(score), 4) if math.isfinite(score) else 0.0, "messages": messages}


def parse_preview(parser, result: FaceParseResult, request: PreviewRequest) -> dict:
    """A parse preview from the (cached) parse ``result`` of the request's image by ``parser``, applying the
    request's class toggle first."""
    from .parsing.pipeline import selection_notes

    classes = request.classes if request.toggle is None else toggle_class(request.preset, request.classes,
                                                                           request.toggle)
    chosen = select_classes(request.preset, classes)
    mask = result.hard_mask(chosen) if request.hard else result.soft_mask(chosen)
    return parse_payload(result, request, classes, mask, selection_notes(parser, result, chosen) + result.messages)


def sam_preview(model, image: torch.Tensor, request: PreviewRequest) -> dict:
    """SAM's mask for the request's prompts on ``image`` [1, H, W, 3] (an empty mask while nothing is prompted)."""
    from .sam_prompts import parse_prompts, segment

    height, width = image.shape[1:3]
    prompt = parse_prompts(request.prompts, 1, width, height)[0]
    if prompt.empty:
        return sam_payload(torch.zeros(1, height, width), 0.0,
                           ["No positive point or box yet: click the object to add one."])
    result = segment(model, image, [prompt])
    return sam_payload(result.masks, result.scores[0], result.messages)
