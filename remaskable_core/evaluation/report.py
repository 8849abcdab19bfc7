"""The evaluation's results as a markdown report and as JSON, each number with the conventions it was taken under.

JSON has no infinity: a PSNR of an edit identical outside its mask is written as null, and counted in
``identical_outside`` (per image: ``"identical_outside": true``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..parsing.labels import CLASSES
from .background import PROTOCOL_NOTES, BackgroundScore, BackgroundSummary
from .evaluate import EditsEvaluation, ParsingEvaluation
from .reidentification import ALIGNMENT, IdentityScore, IdentitySummary
from .segmentation import MEAN_F1_CLASSES


@dataclass
class IdentitySetup:
    recogniser: str  # IdentityModel.description
    threshold: float
    threshold_source: str  # "SFace default" / "--threshold"
    licence: str


@dataclass
class EvaluationReport:
    dataset: str
    protocol: str
    mask_threshold: float
    lpips: str | None  # LPIPS net name, None when off
    identity: IdentitySetup | None
    edits: EditsEvaluation | None
    parsing: ParsingEvaluation | None
    notes: list[str] = field(default_factory=list)  # what was not evaluated, and why

    def to_markdown(self, per_image: bool = False) -> str:
        lines = [f"# ReMaskable evaluation of {self.dataset}", ""]
        if self.edits is not None:
            lines += self._background_markdown() + self._identity_markdown()
        if self.parsing is not None:
            lines += _parsing_markdown(self.parsing)
        if per_image:
            lines += self._per_image_markdown()
        if self.edits is not None and self.edits.skipped:
            lines += ["## Skipped", ""] + [f"- {s.name} ({s.edits}): {s.reason}" for s in self.edits.skipped] + [""]
        if self.notes:
            lines += ["## Not evaluated", ""] + [f"- {note}" for note in self.notes] + [""]
        return "\n".join(lines)

    def _background_markdown(self) -> list[str]:
        summaries = {f: self.edits.background(f) for f in self.edits.folders}
        if not any(summaries.values()):
            return []
        lpips = f"LPIPS-{self.lpips} ↓" if self.lpips else "LPIPS"
        lines = ["## Background preservation (outside the mask)", "",
                 f"| edits | images | PSNR dB ↑ | SSIM ↑ | MSE ↓ | {lpips} | identical outside | fully masked |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for folder, s in summaries.items():
            if s is None:
                lines.append(f"| {folder} | 0 | – | – | – | – | – | – |")
                continue
            lines.append(f"| {folder} | {s.images} | {_psnr(s.psnr)} | {_number(s.ssim, 4)} | {_mse(s.mse)} | "
                         f"{_number(s.lpips, 4)} | {s.identical} | {s.fully_masked} |")
        lines += ["", f"Protocol **{self.protocol}**: {PROTOCOL_NOTES[self.protocol]}. Edited region: mask ≥ "
                      f"{self.mask_threshold:g} of white; scores are taken outside it. PSNR is the mean over the "
                      f"images that changed outside the mask; those identical there (PSNR ∞) are counted under "
                      f"'identical outside'." + ("" if self.lpips else " LPIPS off."), ""]
        return lines

    def _identity_markdown(self) -> list[str]:
        if self.identity is None:
            return []
        setup = self.identity
        summaries = {f: self.edits.identity(f, setup.threshold) for f in self.edits.folders}
        lines = ["## Identity", "",
                 f"| edits | pairs | compared | mean cosine | re-ID rate (cos ≥ {setup.threshold:.3f}) | "
                 f"no face: original | no face: edit |", "|---|---:|---:|---:|---:|---:|---:|"]
        for folder, s in summaries.items():
            if s is None:
                lines.append(f"| {folder} | 0 | 0 | – | – | – | – |")
                continue
            rate = "–" if s.reid_rate is None else f"{100 * s.reid_rate:.2f} % ({s.reidentified}/{s.compared})"
            lines.append(f"| {folder} | {s.pairs} | {s.compared} | {_number(s.mean_cosine, 3)} | {rate} | "
                         f"{s.no_face_in_original} | {s.no_face_in_edit} |")
        lines += ["", f"Recogniser: {setup.recogniser}; alignment: {ALIGNMENT}; threshold {setup.threshold:.3f} "
                      f"({setup.threshold_source}). Re-ID rate: share of the compared pairs with cosine at or above "
                      f"the threshold (preserving edits: higher is better; anonymization: lower is better). Pairs "
                      f"without a face in the original or the edit are not compared. Model licence: {setup.licence}.",
                  ""]
        return lines

    def _per_image_markdown(self) -> list[str]:
        lines = []
        if self.edits is not None and self.edits.rows:
            lines += ["## Per image", "", "| image | edits | PSNR dB | SSIM | MSE | LPIPS | cosine | note |",
                      "|---|---|---:|---:|---:|---:|---:|---|"]
            for row in self.edits.rows:
                b = row.background or BackgroundScore(0.0)
                cosine = None if row.identity is None else row.identity.cosine
                note = row.note
                if row.identity is not None and cosine is None:
                    note = "; ".join(filter(None, [note, "no face in the original" if not row.identity.face_in_original
                                                   else "no face in the edit"]))
                lines.append(f"| {row.name} | {row.edits} | {_psnr(b.psnr)} | {_number(b.ssim, 4)} | {_mse(b.mse)} | "
                             f"{_number(b.lpips, 4)} | {_number(cosine, 3)} | {note} |")
            lines.append("")
        if self.parsing is not None and self.parsing.per_image:
            lines += ["## Parsing per image", "", "| image | mIoU | mean F1 |", "|---|---:|---:|"]
            lines += [f"| {name} | {_number(s.miou, 4)} | {_number(s.mean_f1, 4)} |"
                      for name, s in self.parsing.per_image.items()]
            lines.append("")
        return lines

    def to_json(self, per_image: bool = False) -> dict:
        data: dict = {"dataset": self.dataset, "notes": self.notes}
        if self.edits is not None:
            data["background"] = {
                "protocol": self.protocol, "protocol_description": PROTOCOL_NOTES[self.protocol],
                "mask_threshold": self.mask_threshold, "lpips_net": self.lpips,
                "by_edits": {f: _background_json(self.edits.background(f)) for f in self.edits.folders}}
            if self.identity is not None:
                setup = self.identity
                data["identity"] = {
                    "recogniser": setup.recogniser, "alignment": ALIGNMENT, "threshold": setup.threshold,
                    "threshold_source": setup.threshold_source, "licence": setup.licence,
                    "by_edits": {f: _identity_json(self.edits.identity(f, setup.threshold))
                                 for f in self.edits.folders}}
            data["skipped"] = [vars(s) for s in self.edits.skipped]
        if self.parsing is not None:
            data["parsing"] = _parsing_json(self.parsing)
        if per_image:
            data["per_image"] = self._per_image_json()
        return _finite(data)

    def _per_image_json(self) -> dict:
        rows = []
        if self.edits is not None:
            for row in self.edits.rows:
                entry: dict = {"image": row.name, "edits": row.edits, "note": row.note}
                if row.background is not None:
                    entry.update(_background_score_json(row.background))
                if row.identity is not None:
                    entry.update(_identity_score_json(row.identity, self.identity.threshold))
                rows.append(entry)
        parsing = {} if self.parsing is None else {
            name: {"miou": s.miou, "mean_f1": s.mean_f1, "pixel_accuracy": s.pixel_accuracy}
            for name, s in self.parsing.per_image.items()}
        return {"edits": rows, "parsing": parsing}


def _parsing_markdown(parsing: ParsingEvaluation) -> list[str]:
    scores = parsing.scores
    lines = ["## Face parsing", "",
             f"{scores.images} images; annotations: {parsing.annotations}; predictions: {parsing.predictions}.", "",
             "| class | IoU | F1 | annotated px | predicted px |", "|---|---:|---:|---:|---:|"]
    for name, row in scores.per_class().items():
        lines.append(f"| {name} | {_number(row['iou'], 4)} | {_number(row['f1'], 4)} | {row['annotated_pixels']} | "
                     f"{row['predicted_pixels']} |")
    lines += [f"| **mIoU** (19 classes incl. background) | **{_number(scores.miou, 4)}** | | | |",
              f"| **mean F1** (18 classes, background excluded: FaRL's fg_mean) | | **{_number(scores.mean_f1, 4)}** "
              f"| | |",
              f"| pixel accuracy | {_number(scores.pixel_accuracy, 4)} | | | |", "",
              "Counts pooled over all images (one confusion matrix), as FaRL scores CelebAMask-HQ; a class absent from "
              "both annotations and predictions has no score and is left out of the means."]
    if parsing.missing_annotation or parsing.missing_prediction or parsing.resized:
        lines.append(f"Not scored: {len(parsing.missing_annotation)} images without an annotation, "
                     f"{len(parsing.missing_prediction)} without a prediction; {parsing.resized} predictions scaled "
                     f"(nearest) to their annotation's size.")
    return lines + [""]


def _number(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _psnr(value: float | None) -> str:
    if value is None:
        return "–"
    return "∞" if math.isinf(value) else f"{value:.2f}"


def _mse(value: float | None) -> str:
    return "–" if value is None else ("0" if value == 0 else f"{value:.3e}")


def _background_json(summary: BackgroundSummary | None) -> dict | None:
    if summary is None:
        return None
    data = vars(summary).copy()
    data["identical_outside"] = data.pop("identical")
    if data["psnr"] is not None and math.isinf(data["psnr"]):
        data["psnr"] = None
    return data


def _background_score_json(score: BackgroundScore) -> dict:
    data = vars(score).copy()
    data["identical_outside"] = score.psnr is not None and math.isinf(score.psnr)
    return data


def _identity_json(summary: IdentitySummary | None) -> dict | None:
    if summary is None:
        return None
    return {**vars(summary), "reid_rate": summary.reid_rate}


def _identity_score_json(score: IdentityScore, threshold: float) -> dict:
    reidentified = None if score.cosine is None else score.cosine >= threshold
    return {"cosine": score.cosine, "face_in_original": score.face_in_original, "reidentified": reidentified}


def _parsing_json(parsing: ParsingEvaluation) -> dict:
    scores = parsing.scores
    return {"annotations": parsing.annotations, "predictions": parsing.predictions, "images": scores.images,
            "classes": scores.per_class(), "miou": scores.miou, "miou_classes": list(CLASSES),
            "mean_f1": scores.mean_f1, "mean_f1_classes": list(MEAN_F1_CLASSES),
            "pixel_accuracy": scores.pixel_accuracy, "missing_annotation": parsing.missing_annotation,
            "missing_prediction": parsing.missing_prediction, "resized_predictions": parsing.resized}


def _finite(value):
    """``value`` with every non-finite float replaced by None (JSON has no infinity or NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
