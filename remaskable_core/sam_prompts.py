"""SAMPrompt: Segment Anything masks from user prompts or from prompts derived from a region.

Prompt JSON (what the point/box editor writes; ``prompts`` input), coordinates in image pixels with (0, 0) the
top-left corner of the image and (width, height) its bottom-right corner::

    {"points": [{"x": 120.5, "y": 80, "label": 1}, {"x": 60, "y": 200, "label": 0}],
     "boxes": [[x0, y0, x1, y1]]}

``label`` 1 marks a point on the object, 0 a point off it (default 1). Both keys are optional. A JSON list of such
objects gives one per image of the batch (a list of one applies to every image). Each box is segmented on its own
with the points that lie inside it; points outside every box form one more prompt; the masks are united.

Derived prompts (from a FACE_PARSE class selection or a MASK): positive points spread over the region's most
interior pixels (maxima of its distance transform, kept apart), negative points well inside the neighbouring
parse classes (or in a ring around the mask without a parse), and a box around the region with a margin.

The image embedding (SAM's expensive encoder pass) is cached per (model, image content), so re-prompting the
same image only runs the light prompt decoder.
"""

from __future__ import annotations

import hashlib
import json
import math
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np
import torch

from .errors import InvalidInputError
from .mask_ops import _distance_inside, bounding_box, grow
from .parsing.labels import CLASSES

SELECTIONS = ("score", "agreement")
Box = tuple[float, float, float, float]


@dataclass
class Prompt:
    """One image's prompt: points (x, y) with labels 1 (object) / 0 (not object), and boxes (x0, y0, x1, y1)."""

    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.boxes and not any(self.labels)  # negative points alone select nothing

    def merged(self, user: "Prompt") -> "Prompt":
        """This (derived) prompt with a user's prompt added; user boxes replace derived ones."""
        return Prompt(self.points + user.points, self.labels + user.labels, user.boxes or self.boxes)

    def to_json(self) -> dict:
        return {"points": [{"x": round(x, 2), "y": round(y, 2), "label": label}
                           for (x, y), label in zip(self.points, self.labels)],
                "boxes": [[round(v, 2) for v in box] for box in self.boxes]}


# --- user prompts ---------------------------------------------------------------------------------------------------

def _number(value, where: str, input_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInputError(input_name, f"{where} must be a number, got {json.dumps(value)}.")
    return float(value)


def _parse_one(item, where: str, width: int, height: int, input_name: str) -> Prompt:
    if not isinstance(item, dict):
        raise InvalidInputError(input_name, f"{where} must be an object with 'points' and/or 'boxes', got "
                                            f"{json.dumps(item)[:80]}.")
    unknown = set(item) - {"points", "boxes"}
    if unknown:
        raise InvalidInputError(input_name, f"{where} has unknown key(s) {sorted(unknown)}; only 'points' and "
                                            f"'boxes' are read.")
    prompt = Prompt()
    points, boxes = item.get("points", []), item.get("boxes", [])
    if not isinstance(points, list) or not isinstance(boxes, list):
        raise InvalidInputError(input_name, f"{where}: 'points' and 'boxes' must be lists.")
    for i, point in enumerate(points):
        here = f"{where} point {i}"
        if not isinstance(point, dict) or "x" not in point or "y" not in point:
            raise InvalidInputError(input_name, f"{here} must be {{\"x\": .., \"y\": .., \"label\": 1|0}}, got "
                                                f"{json.dumps(point)[:80]}.")
        x, y = _number(point["x"], f"{here} x", input_name), _number(point["y"], f"{here} y", input_name)
        label = point.get("label", 1)
        if label not in (0, 1) or isinstance(label, bool):
            raise InvalidInputError(input_name, f"{here} has label {json.dumps(label)}; use 1 (on the object) or 0 "
                                                f"(not on it).")
        if not (0 <= x <= width and 0 <= y <= height):
            raise InvalidInputError(input_name, f"{here} at ({x:g}, {y:g}) lies outside the {width}x{height} image.",
                                    "Coordinates are pixels from the top-left corner.")
        prompt.points.append((x, y))
        prompt.labels.append(int(label))
    for i, box in enumerate(boxes):
        here = f"{where} box {i}"
        if not isinstance(box, list) or len(box) != 4:
            raise InvalidInputError(input_name, f"{here} must be [x0, y0, x1, y1], got {json.dumps(box)[:80]}.")
        x0, y0, x1, y1 = (_number(v, here, input_name) for v in box)
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise InvalidInputError(input_name, f"{here} [{x0:g}, {y0:g}, {x1:g}, {y1:g}] is not inside the "
                                                f"{width}x{height} image with x0 < x1 and y0 < y1.")
        prompt.boxes.append((x0, y0, x1, y1))
    return prompt


def parse_prompts(text: str, batch_size: int, width: int, height: int, input_name: str = "prompts") -> list[Prompt]:
    """The user's prompt JSON -> one Prompt per image (empty prompts for an empty text)."""
    if not text or not text.strip():
        return [Prompt() for _ in range(batch_size)]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(input_name, f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).",
                                'Expected e.g. {"points": [{"x": 100, "y": 80, "label": 1}], '
                                '"boxes": [[40, 30, 200, 180]]}.') from None
    if isinstance(data, dict):
        return [_parse_one(data, "the prompt", width, height, input_name)] * batch_size
    if not isinstance(data, list):
        raise InvalidInputError(input_name, f"must be a JSON object or a list of objects (one per image), got "
                                            f"{type(data).__name__}.")
    if len(data) not in (1, batch_size):
        raise InvalidInputError(input_name, f"lists {len(data)} prompts but the batch has {batch_size} images.",
                                "Give one prompt per image, or a single one for all.")
    prompts = [_parse_one(item, f"prompt {i}", width, height, input_name) for i, item in enumerate(data)]
    return prompts * batch_size if len(prompts) == 1 else prompts


# --- derived prompts ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeriveSettings:
    positive_points: int = 3
    negative_points: int = 2
    use_box: bool = True
    box_margin: float = 0.05  # fraction of the region's width/height added on each side of the box


def spread_points(depth: np.ndarray, count: int, spacing: float, min_depth: float) -> list[tuple[float, float]]:
    """Up to ``count`` pixel centres (x, y) where ``depth`` is high, kept about ``spacing`` px apart: the deepest
    pixel first, then the deepest ones discounted by their nearness to the points already chosen."""
    score = depth.astype(np.float32).copy()
    ys, xs = np.mgrid[:depth.shape[0], :depth.shape[1]]
    chosen: list[tuple[float, float]] = []
    for _ in range(count):
        row, col = np.unravel_index(int(np.argmax(score)), score.shape)
        if depth[row, col] < min_depth or score[row, col] <= 0:
            break
        chosen.append((float(col) + 0.5, float(row) + 0.5))
        nearness = np.sqrt((xs - col) ** 2 + (ys - row) ** 2) / max(spacing, 1.0)
        score *= np.clip(nearness, 0.0, 1.0)
    return chosen


def derive_prompt(region: torch.Tensor, settings: DeriveSettings, label_map: torch.Tensor | None = None,
                  region_classes: tuple[str, ...] = ()) -> Prompt:
    """Points and a box for the [H, W] ``region`` (>= 0.5 inside). With a parse ``label_map`` ([H, W] canonical class
    indices), negative points go into the neighbouring classes that are not ``region_classes``; without one, into a
    ring around the region."""
    inside = (region >= 0.5).cpu().numpy()
    if not inside.any():
        return Prompt()
    height, width = inside.shape
    area = int(inside.sum())
    depth = _distance_inside(inside)
    # "well inside": at least 30% as deep as the deepest pixel, so thin parts and ragged edges get no point
    positives = spread_points(depth, settings.positive_points, spacing=math.sqrt(area / max(1, settings.positive_points)),
                              min_depth=0.3 * float(depth.max()))
    prompt = Prompt(points=list(positives), labels=[1] * len(positives))
    ring = max(4, round(0.1 * math.sqrt(area)))
    if settings.negative_points > 0:
        negatives = _negative_points(inside, settings.negative_points, ring, label_map, region_classes)
        prompt.points += negatives
        prompt.labels += [0] * len(negatives)
    if settings.use_box:
        x0, y0, x1, y1 = bounding_box(torch.from_numpy(inside).float())
        mx, my = settings.box_margin * (x1 - x0), settings.box_margin * (y1 - y0)
        prompt.boxes.append((max(0.0, x0 - mx), max(0.0, y0 - my), min(float(width), x1 + mx),
                             min(float(height), y1 + my)))
    return prompt


def _negative_points(inside: np.ndarray, count: int, ring: int, label_map: torch.Tensor | None,
                     region_classes: tuple[str, ...]) -> list[tuple[float, float]]:
    region = torch.from_numpy(inside).float()[None]
    near = (grow(region, 2 * ring)[0] > 0.5).numpy() & ~inside
    if label_map is None:
        # a ring outside the region, kept clear of its edge
        zone = near & ~(grow(region, max(2, ring // 2))[0] > 0.5).numpy()
        perimeter = zone.sum() / max(1, ring)
        return spread_points(_distance_inside(zone), count, spacing=perimeter / max(1, count), min_depth=1.0)
    labels = label_map.cpu().numpy()
    excluded = {CLASSES.index(name) for name in region_classes}
    touching = (grow(region, ring)[0] > 0.5).numpy() & ~inside
    classes, counts = np.unique(labels[touching], return_counts=True)
    neighbours = [int(c) for c, _ in sorted(zip(classes, counts), key=lambda t: -t[1]) if int(c) not in excluded]
    points = []
    for cls in neighbours[:count]:
        depth = _distance_inside(labels == cls) * near  # deep inside that class, near the region
        if depth.max() >= 1.0:
            row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
            points.append((float(col) + 0.5, float(row) + 0.5))
    return points


def dominant_classes(label_map: torch.Tensor, region: torch.Tensor, share: float = 0.2) -> tuple[str, ...]:
    """The parse classes making up at least ``share`` of the [H, W] ``region`` (>= 0.5): a MASK's own classes, which
    must not receive negative points."""
    labels = label_map[region >= 0.5]
    if labels.numel() == 0:
        return ()
    counts = torch.bincount(labels.flatten(), minlength=len(CLASSES)).float() / labels.numel()
    return tuple(CLASSES[i] for i in range(len(CLASSES)) if counts[i] >= share)


# --- SAM inference --------------------------------------------------------------------------------------------------

@dataclass
class SamImage:
    """The encoder's output for one image, with what mapping prompts and masks to it needs."""

    features: torch.Tensor  # [1, C, 64, 64] on the CPU
    input_size: tuple[int, int]  # (h, w) of the resized image fed to the encoder, before padding
    original_size: tuple[int, int]


class EmbeddingCache:
    """The most recent image embeddings per SAM model, keyed by the image's content; a model's entries go when the
    model is garbage-collected."""

    def __init__(self, per_model: int = 8):
        self.per_model = per_model
        self._entries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get_or_compute(self, model: torch.nn.Module, image_uint8: np.ndarray,
                       compute: Callable[[], SamImage]) -> SamImage:
        key = hashlib.blake2b(image_uint8.tobytes(), digest_size=16,
                              person=b"remaskable-sam").hexdigest() + str(image_uint8.shape)
        entries = self._entries.setdefault(model, OrderedDict())
        if key in entries:
            entries.move_to_end(key)
            return entries[key]
        entries[key] = value = compute()
        while len(entries) > self.per_model:
            entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries = weakref.WeakKeyDictionary()


EMBEDDINGS = EmbeddingCache()


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def embed_image(model, image_uint8: np.ndarray, cache: EmbeddingCache | None = EMBEDDINGS) -> SamImage:
    """SAM's image embedding of an [H, W, 3] uint8 RGB image (SamPredictor's preprocessing: longest side resized to
    the encoder's size, pixel normalisation, padding)."""
    from segment_anything.utils.transforms import ResizeLongestSide

    def compute() -> SamImage:
        resized = ResizeLongestSide(model.image_encoder.img_size).apply_image(image_uint8)
        x = torch.as_tensor(resized, device=_device(model)).permute(2, 0, 1).contiguous()[None]
        features = model.image_encoder(model.preprocess(x.float()))
        return SamImage(features.float().cpu(), tuple(resized.shape[:2]), tuple(image_uint8.shape[:2]))

    return compute() if cache is None else cache.get_or_compute(model, image_uint8, compute)


@torch.no_grad()
def predict(model, embedding: SamImage, points: list[tuple[float, float]], labels: list[int],
            box: Box | None) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM's three candidate masks [3, H, W] bool and their predicted IoU [3] for one prompt."""
    from segment_anything.utils.transforms import ResizeLongestSide

    device = _device(model)
    transform = ResizeLongestSide(model.image_encoder.img_size)
    point_input = None
    if points:
        coords = transform.apply_coords(np.array(points, dtype=np.float32), embedding.original_size)
        point_input = (torch.as_tensor(coords, dtype=torch.float32, device=device)[None],
                       torch.as_tensor(labels, dtype=torch.int, device=device)[None])
    box_input = None
    if box is not None:
        box_input = torch.as_tensor(transform.apply_boxes(np.array(box, dtype=np.float32), embedding.original_size),
                                    dtype=torch.float32, device=device)
    sparse, dense = model.prompt_encoder(points=point_input, boxes=box_input, masks=None)
    low_res, iou = model.mask_decoder(image_embeddings=embedding.features.to(device),
                                      image_pe=model.prompt_encoder.get_dense_pe(), sparse_prompt_embeddings=sparse,
                                      dense_prompt_embeddings=dense, multimask_output=True)
    masks = model.postprocess_masks(low_res, embedding.input_size, embedding.original_size) > model.mask_threshold
    return masks[0].cpu(), iou[0].float().cpu()


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


def choose_mask(masks: torch.Tensor, scores: torch.Tensor, selection: str,
                region: torch.Tensor | None = None) -> int:
    """Index of the candidate to keep: SAM's own predicted IoU ("score"), or the best IoU with ``region``
    ("agreement"; ties go to the higher score)."""
    if selection == "score" or region is None:
        return int(scores.argmax())
    if selection != "agreement":
        raise InvalidInputError("selection", f"must be one of {SELECTIONS}, got {selection!r}.")
    agreement = torch.tensor([_iou(m, region) for m in masks])
    best = agreement == agreement.max()
    return int(torch.where(best, scores, torch.full_like(scores, -torch.inf)).argmax())


def _prompt_groups(prompt: Prompt) -> list[tuple[list, list, Box | None]]:
    """(points, labels, box) per SAM call: each box with the points inside it, then the points inside no box."""
    groups, used = [], set()
    for box in prompt.boxes:
        members = [i for i, (x, y) in enumerate(prompt.points) if box[0] <= x <= box[2] and box[1] <= y <= box[3]]
        used.update(members)
        groups.append(([prompt.points[i] for i in members], [prompt.labels[i] for i in members], box))
    rest = [i for i in range(len(prompt.points)) if i not in used]
    if any(prompt.labels[i] for i in rest):
        groups.append(([prompt.points[i] for i in rest], [prompt.labels[i] for i in rest], None))
    return groups


@dataclass
class SamResult:
    masks: torch.Tensor  # [B, H, W] float 0/1
    scores: list[float]  # per image: SAM's predicted IoU of the chosen mask (the lowest over its boxes); 0 if none
    prompts: list[Prompt]
    messages: list[str]


def segment(model, images: torch.Tensor, prompts: list[Prompt], selection: str = "score",
            regions: torch.Tensor | None = None, cache: EmbeddingCache | None = EMBEDDINGS,
            progress: Callable[[int, int], None] | None = None) -> SamResult:
    """SAM masks for a batch of RGB images [B, H, W, 3] (float 0..1), one prompt per image. ``regions`` [B, H, W]
    is what "agreement" compares the candidates with (required for it)."""
    if selection not in SELECTIONS:
        raise InvalidInputError("selection", f"must be one of {SELECTIONS}, got {selection!r}.")
    if selection == "agreement" and regions is None:
        raise InvalidInputError("selection", "'agreement' compares SAM's masks with the face_parse classes or the "
                                             "mask, but neither is connected.",
                                "Connect face_parse or mask, or choose 'score'.")
    batch, height, width = images.shape[0], images.shape[1], images.shape[2]
    masks = torch.zeros(batch, height, width)
    scores, messages = [], []
    for index in range(batch):
        prompt = prompts[index]
        if prompt.empty:
            scores.append(0.0)
            messages.append(f"image {index}: no prompt (the region is empty and no point or box was given): "
                            f"the mask is empty")
        else:
            pixels = (images[index].detach().float().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()
            embedding = embed_image(model, np.ascontiguousarray(pixels), cache)
            region = None if regions is None else regions[index] >= 0.5
            chosen_scores = []
            for points, labels, box in _prompt_groups(prompt):
                candidates, iou = predict(model, embedding, points, labels, box)
                local_region = region
                if region is not None and box is not None:
                    local_region = region.clone()
                    outside = torch.ones_like(region)
                    outside[int(box[1]):math.ceil(box[3]), int(box[0]):math.ceil(box[2])] = False
                    local_region[outside] = False
                best = choose_mask(candidates, iou, selection, local_region)
                masks[index] = torch.maximum(masks[index], candidates[best].float())
                chosen_scores.append(float(iou[best]))
            scores.append(min(chosen_scores))
            messages.append(f"image {index}: {len(prompt.points)} point(s), {len(prompt.boxes)} box(es), "
                            f"predicted IoU {scores[-1]:.3f}")
        if progress is not None:
            progress(index + 1, batch)
    return SamResult(masks, scores, prompts, messages)
