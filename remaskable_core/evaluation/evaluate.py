"""Evaluating a dataset: every edit folder against the originals (background preservation and identity), and
parse predictions against annotations. A problem with one file skips that file, with the reason, never the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from ..errors import InvalidInputError
from ..guard import MAX_VAE_CROP, crop_like_vae
from ..identity import IdentityModel
from ..parsing.labels import CLASSES
from .background import REMASKABLE, BackgroundScore, BackgroundSummary, background_score, summarize_background
from .layout import Annotations, image_files, read_edited_region, read_label_map, read_rgb
from .reidentification import IdentityScore, IdentitySummary, identity_score, summarize_identity
from .segmentation import LabelPredictor, ParsingScores

Progress = Callable[[int, int], None] | None


@dataclass
class EditRow:
    name: str
    edits: str  # the edit folder's label
    background: BackgroundScore | None  # None without a usable mask
    identity: IdentityScore | None  # None without an identity model
    note: str = ""


@dataclass
class Skipped:
    name: str
    edits: str
    reason: str


@dataclass
class EditsEvaluation:
    folders: list[str]
    rows: list[EditRow] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def background(self, folder: str) -> BackgroundSummary | None:
        scores = [r.background for r in self.rows if r.edits == folder and r.background is not None]
        return summarize_background(scores) if scores else None

    def identity(self, folder: str, threshold: float) -> IdentitySummary | None:
        scores = [r.identity for r in self.rows if r.edits == folder and r.identity is not None]
        return summarize_identity(scores, threshold) if scores else None


def _same_frame(original: np.ndarray, edited: np.ndarray | None,
                edit: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """The original and mask in the edit's frame: as they are, or centre-cropped when the edit is a VAE-decoded copy
    a few pixels smaller (as IdentityGuard accepts); (None, None, reason) when the sizes cannot be matched."""
    height, width = edit.shape[:2]
    full_height, full_width = original.shape[:2]
    if (height, width) == (full_height, full_width):
        return original, edited, ""
    if 0 <= full_height - height < MAX_VAE_CROP and 0 <= full_width - width < MAX_VAE_CROP:
        cropped = None if edited is None else crop_like_vae(edited[None], height, width)[0]
        return (crop_like_vae(original[None], height, width)[0], cropped,
                f"edit {width}x{height}: original centre-cropped from {full_width}x{full_height} (VAE crop)")
    return None, None, f"edit is {width}x{height} but the original is {full_width}x{full_height}"


def _read_mask(masks: dict[str, Path] | None, name: str, shape: tuple[int, int],
               threshold: float) -> tuple[np.ndarray | None, str]:
    if masks is None:
        return None, ""
    path = masks.get(name)
    if path is None:
        return None, "no mask: background not scored"
    try:
        edited = read_edited_region(path, threshold)
    except InvalidInputError as exc:
        return None, str(exc)
    if edited.shape != shape:
        return None, f"mask is {edited.shape[1]}x{edited.shape[0]} but the image is {shape[1]}x{shape[0]}"
    return edited, ""


def evaluate_edits(images: dict[str, Path], masks: dict[str, Path] | None, edit_folders: dict[str, dict[str, Path]],
                   *, protocol: str = REMASKABLE, mask_threshold: float = 0.5,
                   lpips_net: torch.nn.Module | None = None, identity_model: IdentityModel | None = None,
                   progress: Progress = None) -> EditsEvaluation:
    """Scores every edit (``edit_folders``: label -> name -> file) against its original (``images``: name -> file)
    outside its mask (``masks``: name -> file, white = edited; None: background not scored)."""
    result = EditsEvaluation(list(edit_folders))
    names = sorted(images)
    for index, name in enumerate(names):
        try:
            original = read_rgb(images[name])
        except InvalidInputError as exc:
            result.skipped += [Skipped(name, label, str(exc)) for label in edit_folders]
            continue
        edited, mask_note = _read_mask(masks, name, original.shape[:2], mask_threshold)
        for label, files in edit_folders.items():
            if name not in files:
                result.skipped.append(Skipped(name, label, "no edit of this image"))
                continue
            try:
                edit = read_rgb(files[name])
            except InvalidInputError as exc:
                result.skipped.append(Skipped(name, label, str(exc)))
                continue
            reference, region, size_note = _same_frame(original, edited, edit)
            if reference is None:
                result.skipped.append(Skipped(name, label, size_note))
                continue
            background = None if region is None else background_score(reference, edit, region, protocol, lpips_net)
            identity = None if identity_model is None else identity_score(identity_model, reference, edit, region)
            note = "; ".join(n for n in (mask_note, size_note) if n)
            result.rows.append(EditRow(name, label, background, identity, note))
        if progress is not None:
            progress(index + 1, len(names))
    return result


@dataclass
class ParsingEvaluation:
    annotations: str  # what the ground truth is, for the report
    predictions: str  # where the predictions come from
    scores: ParsingScores = field(default_factory=ParsingScores.empty)
    per_image: dict[str, ParsingScores] = field(default_factory=dict)
    missing_annotation: list[str] = field(default_factory=list)
    missing_prediction: list[str] = field(default_factory=list)
    resized: int = 0  # predictions scaled (nearest) to their annotation's size


def folder_predictions(folder: Path, order: tuple[str, ...] = CLASSES,
                       option: str = "--predictions") -> Callable[[str], np.ndarray | None]:
    """Predicted label maps read by name from ``folder`` (values index ``order``)."""
    files = image_files(folder, option)
    return lambda name: read_label_map(files[name], order) if name in files else None


def parser_predictions(predictor: LabelPredictor, images: dict[str, Path]) -> Callable[[str], np.ndarray | None]:
    """Predictions made on the fly by a face parser (``segmentation.predictor_from_parser``) from the originals."""
    return lambda name: predictor(read_rgb(images[name])) if name in images else None


def evaluate_parsing(names: list[str], annotations: Annotations, predict: Callable[[str], np.ndarray | None],
                     predictions: str, progress: Progress = None) -> ParsingEvaluation:
    """Pools the confusion of ``predict(name)`` against each image's annotation over ``names``."""
    result = ParsingEvaluation(f"{annotations.kind} in {annotations.root}", predictions)
    for index, name in enumerate(names):
        annotation = annotations.label_map(name)
        prediction = predict(name)
        if annotation is None:
            result.missing_annotation.append(name)
        elif prediction is None:
            result.missing_prediction.append(name)
        else:
            if prediction.shape != annotation.shape:
                size = (annotation.shape[1], annotation.shape[0])
                prediction = cv2.resize(prediction.astype(np.int32), size, interpolation=cv2.INTER_NEAREST)
                result.resized += 1
            result.per_image[name] = ParsingScores.of_image(annotation, prediction)
            result.scores.merge(result.per_image[name])
        if progress is not None:
            progress(index + 1, len(names))
    return result
