"""IdentityGuard: score candidate edits against the original for identity (face recogniser cosine) and leakage (LPIPS
outside the mask), pick one, decide pass/fail and write a readable report.

Choice rule. Candidates in which the edited face was found rank before those without it. Among them the score is
``identity - lpips_weight * LPIPS-outside``, where identity is the cosine in preserve mode (most faithful) and minus
the cosine in anonymize mode (least similar); the highest score wins, then lower LPIPS, then the lower index. With
``lpips_weight`` 0, LPIPS only breaks exact ties. Faceless candidates are ordered by LPIPS. When the original itself has
no detectable face every candidate is faceless and LPIPS alone decides.

Pass rule. Preserve: the chosen candidate has the face and its cosine is at least the threshold. Anonymize: it has the
face and its cosine is below the threshold. A missing face, in the original or the chosen candidate, never passes.

Thresholds. Unless the user sets one, preserve mode uses the recogniser's calibrated threshold and anonymize mode its
published verification threshold (``IdentityModel.reidentification_threshold``, e.g. SFace 0.363); anonymize mode
reports the decision as "re-identified: yes/no" against that stated threshold and where it comes from.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .errors import InvalidInputError, ReMaskableError
from .faces import Face
from .identity import IdentityModel, cosine, embed_faces, matching_face, target_face
from .perceptual import lpips_outside_mask
from .tensors import as_mask, as_rgb, match_batch

PRESERVE = "preserve"
ANONYMIZE = "anonymize"
MODES = (PRESERVE, ANONYMIZE)
WARN = "warn"
STOP = "stop workflow"
ON_FAIL = (WARN, STOP)
MAX_VAE_CROP = 16  # candidates up to this many pixels smaller than the original are taken as VAE-cropped copies

log = logging.getLogger("remaskable")


class IdentityCheckError(ReMaskableError):
    """The identity check failed and the user asked to stop the workflow when it does."""


@dataclass
class CandidateScore:
    index: int
    cosine: float | None  # None: no face to compare (in this candidate or in the original)
    lpips: float | None  # LPIPS outside the mask; None when LPIPS is off
    note: str = ""  # why there is no cosine

    @property
    def face_found(self) -> bool:
        return self.cosine is not None


@dataclass
class GuardResult:
    mode: str
    threshold: float
    candidates: list[CandidateScore]
    chosen: int
    passed: bool
    verdict: str
    report: str
    threshold_source: str = ""
    reidentified: bool | None = None  # anonymize mode: the chosen face is still recognised (None: no face compared)

    @property
    def chosen_score(self) -> CandidateScore:
        return self.candidates[self.chosen]

    @property
    def cosine(self) -> float:
        value = self.chosen_score.cosine
        return math.nan if value is None else value

    @property
    def lpips(self) -> float:
        value = self.chosen_score.lpips
        return math.nan if value is None else value


def choose(scores: list[CandidateScore], mode: str, lpips_weight: float) -> int:
    """Index of the candidate the choice rule (module docstring) picks."""
    def rank(score: CandidateScore) -> tuple:
        leakage = score.lpips or 0.0
        if score.cosine is None:
            return (1, 0.0, leakage, score.index)
        identity = score.cosine if mode == PRESERVE else -score.cosine
        return (0, -(identity - lpips_weight * leakage), leakage, score.index)

    return min(scores, key=rank).index


def passes(score: CandidateScore, mode: str, threshold: float) -> bool:
    if score.cosine is None:
        return False
    return score.cosine >= threshold if mode == PRESERVE else score.cosine < threshold


def default_threshold(model: IdentityModel, mode: str) -> tuple[float, str]:
    """The threshold a mode uses when the user sets none, and where it comes from."""
    if mode == ANONYMIZE:
        return model.reidentification_threshold, model.reid_source
    return model.threshold, "the recogniser's calibrated default"


def reidentification(score: CandidateScore, threshold: float, source: str) -> str:
    """The re-identification decision for one face, with the threshold it was taken against."""
    if score.cosine is None:
        return f"re-identified: unknown ({score.note}; threshold {threshold:.3f}, {source})"
    if score.cosine >= threshold:
        return f"re-identified: yes (cosine {score.cosine:.3f} >= threshold {threshold:.3f}, {source})"
    return f"re-identified: no (cosine {score.cosine:.3f} < threshold {threshold:.3f}, {source})"


def crop_like_vae(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[B,H,W,...] centre-cropped to height x width the way ComfyUI's VAE encode crops to its downscale multiple, so a
    decoded candidate lines up with the original it came from."""
    top, left = (image.shape[1] - height) // 2, (image.shape[2] - width) // 2
    return image[:, top:top + height, left:left + width]


def _aligned_inputs(original: torch.Tensor, candidates: torch.Tensor,
                    mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """original ([1|N,...]), candidates ([N,...]) and mask ([N,...]) at the candidates' size, and a note when the
    original was cropped."""
    original = as_rgb(original, "original")
    candidates = as_rgb(candidates, "candidates")
    count, height, width = candidates.shape[:3]
    match_batch(count, original, "original", "candidates")  # a batch of 1 or one original per candidate
    full_height, full_width = original.shape[1:3]
    if mask is None:
        mask = torch.zeros(1, full_height, full_width)
    mask = as_mask(mask, "mask")
    if mask.shape[1:] not in ((full_height, full_width), (height, width)):
        hint = ""
        if mask.shape[1:] == (64, 64) and not mask.any():
            hint = (" This looks like the empty 64x64 mask Load Image gives for images without an alpha channel: "
                    "connect the edit's composite mask, or leave the input unconnected.")
        raise InvalidInputError("mask", f"is {mask.shape[2]}x{mask.shape[1]} but 'original' is "
                                        f"{full_width}x{full_height}; they must be the same size.{hint}")
    mask = match_batch(count, mask, "mask", "candidates")
    note = ""
    if (full_height, full_width) != (height, width):
        if not (0 <= full_height - height < MAX_VAE_CROP and 0 <= full_width - width < MAX_VAE_CROP):
            raise InvalidInputError("candidates", f"are {width}x{height} but 'original' is {full_width}x{full_height}.",
                                    "Candidates must be edits of the original at its size (or VAE-decoded copies, "
                                    "which may be a few pixels smaller); scale them to the original's size first.")
        original = crop_like_vae(original, height, width)
        if mask.shape[1:] != (height, width):
            mask = crop_like_vae(mask, height, width)
        note = (f"The candidates are {width}x{height} and the original {full_width}x{full_height}: compared with the "
                f"original centre-cropped the way ComfyUI's VAE encode crops.")
    return original, candidates, mask, note


def _uint8(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def score_identity(model: IdentityModel, originals: list[np.ndarray], candidates: list[np.ndarray],
                   masks: list[np.ndarray]) -> tuple[list[float | None], list[str], bool]:
    """Per candidate: cosine to the edited face of its original (None with a note when there is no face to
    compare), and whether the original(s) had a face at all."""
    detections: dict[int, list[Face]] = {}
    references: dict[tuple, np.ndarray] = {}
    cosines: list[float | None] = []
    notes: list[str] = []
    original_has_face = False
    for original, candidate, mask in zip(originals, candidates, masks):
        key = id(original)
        if key not in detections:
            detections[key] = model.detector.detect(original)
        target = target_face(detections[key], mask)
        if target is None:
            cosines.append(None)
            notes.append("no face in the original")
            continue
        original_has_face = True
        found = model.detector.detect(candidate)
        face = matching_face(found, target)
        if face is None:
            cosines.append(None)
            notes.append("no face detected" if not found else
                         f"no face where the original's is ({len(found)} face(s) elsewhere)")
            continue
        reference_key = (key, target.box)
        if reference_key not in references:
            references[reference_key] = embed_faces(model, [original], [target])[0]
        embedding = embed_faces(model, [candidate], [face])[0]
        cosines.append(cosine(references[reference_key], embedding))
        notes.append("")
    return cosines, notes, original_has_face


def _decision(score: CandidateScore, chosen: int, mode: str, threshold: float) -> str:
    if score.cosine is None:
        text = score.note
    elif mode == ANONYMIZE:
        text = "re-identified" if score.cosine >= threshold else "not re-identified"
    else:
        text = "passes" if passes(score, mode, threshold) else "below threshold"
    return f"CHOSEN, {text}" if score.index == chosen else text


def format_report(model: IdentityModel, result_scores: list[CandidateScore], chosen: int, mode: str,
                  threshold: float, lpips_weight: float, lpips_name: str | None, verdict: str, note: str,
                  threshold_source: str = "") -> str:
    relation = "same person at or above" if mode == PRESERVE else "re-identified at or above"
    source = f"; {threshold_source}" if threshold_source else ""
    lines = [f"IdentityGuard, {mode} mode: {model.description}; threshold {threshold:.3f} ({relation}{source})",
             f"LPIPS outside the mask: {lpips_name or 'off'}" + (" (0 = nothing outside the mask changed)"
                                                                  if lpips_name else ""),
             "",
             f"{'#':>3}  {'face':5} {'cosine':>7}  {'LPIPS-out':>9}  decision"]
    for score in result_scores:
        cos = "-" if score.cosine is None else f"{score.cosine:.3f}"
        lp = "-" if score.lpips is None else f"{score.lpips:.4f}"
        lines.append(f"{score.index:>3}  {'yes' if score.face_found else 'no':5} {cos:>7}  {lp:>9}  "
                     f"{_decision(score, chosen, mode, threshold)}")
    goal = "cosine" if mode == PRESERVE else "-cosine"
    penalty = f" - {lpips_weight:g} x LPIPS-out" if lpips_name else ""
    lines += ["", verdict, f"Choice: highest {goal}{penalty} among candidates with the face; faceless last.",
              f"Model licence: {model.licence}."]
    if note:
        lines.append(note)
    return "\n".join(lines)


def guard_candidates(model: IdentityModel, original: torch.Tensor, candidates: torch.Tensor,
                     mask: torch.Tensor | None = None, *, mode: str = PRESERVE, threshold: float | None = None,
                     on_fail: str = WARN, lpips_net: torch.nn.Module | None = None, lpips_name: str | None = None,
                     lpips_weight: float = 0.5,
                     progress: Callable[[int, int], None] | None = None) -> GuardResult:
    """Score every candidate ([N,H,W,C] IMAGE) against the original ([1|N,H,W,C]) with ``mask`` (the edit's composite
    mask, [1|N,H,W]; None = nothing masked), choose one and decide pass/fail. ``threshold`` None uses the model's.
    With ``on_fail`` "stop workflow" a failed check raises IdentityCheckError with the report; "warn" logs it."""
    if mode not in MODES:
        raise InvalidInputError("mode", f"must be one of {', '.join(MODES)}, got '{mode}'.")
    if on_fail not in ON_FAIL:
        raise InvalidInputError("on_fail", f"must be one of {', '.join(ON_FAIL)}, got '{on_fail}'.")
    if threshold is None:
        threshold, threshold_source = default_threshold(model, mode)
    else:
        threshold, threshold_source = float(threshold), "set by the user"
    original, candidates, mask, note = _aligned_inputs(original, candidates, mask)
    count = candidates.shape[0]
    steps = count * (2 if lpips_net is not None else 1)

    originals = [_uint8(o) for o in original]
    pictures = [originals[min(i, len(originals) - 1)] for i in range(count)]
    cosines, notes, original_has_face = score_identity(model, pictures, [_uint8(c) for c in candidates],
                                                       [m.cpu().numpy() > 0.5 for m in mask])
    if progress is not None:
        progress(count, steps)
    lpips_scores: list[float | None] = [None] * count
    if lpips_net is not None:
        def lpips_progress(done: int, total: int) -> None:
            if progress is not None:
                progress(count + done, steps)

        lpips_scores = lpips_outside_mask(lpips_net, original, candidates, mask, progress=lpips_progress)

    scores = [CandidateScore(i, cosines[i], lpips_scores[i], notes[i]) for i in range(count)]
    chosen = choose(scores, mode, lpips_weight)
    best = scores[chosen]
    passed = passes(best, mode, threshold)
    if not original_has_face:
        verdict = (f"FAILED: no face was found in the original, so identity could not be checked; candidate {chosen} "
                   f"was chosen by LPIPS outside the mask alone.")
    elif best.cosine is None:
        verdict = f"FAILED: no candidate shows the edited face ({best.note} in candidate {chosen})."
    elif mode == ANONYMIZE:
        decision = reidentification(best, threshold, f"{model.embedder.name}: {threshold_source}")
        verdict = (f"PASSED: candidate {chosen}, {decision}." if passed else
                   f"FAILED: the least similar candidate ({chosen}) is still recognisable, {decision}.")
    elif passed:
        verdict = f"PASSED: candidate {chosen}, cosine {best.cosine:.3f} >= threshold {threshold:.3f}."
    else:
        verdict = (f"FAILED: the best candidate ({chosen}) has cosine {best.cosine:.3f}, below the threshold "
                   f"{threshold:.3f}: the person may not be recognisable any more.")
    report = format_report(model, scores, chosen, mode, threshold, lpips_weight, lpips_name, verdict, note,
                           threshold_source)
    reidentified = None if best.cosine is None else best.cosine >= threshold
    result = GuardResult(mode, threshold, scores, chosen, passed, verdict, report, threshold_source, reidentified)
    if not passed:
        if on_fail == STOP:
            raise IdentityCheckError(f"IdentityGuard stopped the workflow. {verdict}\n\n{report}\n\nTo go on anyway, "
                                     f"set on_fail to 'warn', lower the threshold, or generate more candidates.")
        log.warning("IdentityGuard: %s", verdict)
    return result
