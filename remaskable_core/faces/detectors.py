"""The face detector backends a user can choose, in one registry: adding a backend is one entry here.

A backend either has its weights bundled (mediapipe) or reads a model file that the model manifest knows
(``model_kind`` and ``model_folder`` name its manifest kind and ComfyUI model folder); the loader node lists one
choice per bundled backend and one per file of a file-based backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import InvalidInputError
from .face import FaceDetector


@dataclass(frozen=True)
class DetectorOptions:
    min_score: float = 0.5  # drop faces the model is less sure of
    min_face_size: int = 32  # drop faces whose box is smaller (pixels); backends may also search down to it
    precise_landmarks: bool = True  # spend extra time on better five points where the backend can


@dataclass(frozen=True)
class DetectorBackend:
    name: str
    build: Callable[[Path | None, DetectorOptions], FaceDetector]
    description: str
    model_kind: str | None = None  # manifest kind of its model files; None: weights bundled with a package
    model_folder: str | None = None


def _mediapipe(model: str) -> Callable[[Path | None, DetectorOptions], FaceDetector]:
    def build(_: Path | None, options: DetectorOptions) -> FaceDetector:
        from .detect_mediapipe import MediapipeFaceDetector  # mediapipe is optional: import on use

        return MediapipeFaceDetector(model, options.min_score, options.min_face_size,
                                     "face mesh" if options.precise_landmarks else "keypoints")

    return build


def _scrfd(pack: Path | None, options: DetectorOptions) -> FaceDetector:
    from ..identity import insightface_pack_files
    from .detect_onnx import SCRFDDetector

    detector_file, _ = insightface_pack_files(pack)
    return _min_size(SCRFDDetector(detector_file, score_threshold=options.min_score), options)


def _yunet(path: Path | None, options: DetectorOptions) -> FaceDetector:
    from .detect_onnx import YuNetDetector

    return _min_size(YuNetDetector(path, score_threshold=options.min_score), options)


class _MinimumSize:
    """Drops faces smaller than ``min_face_size`` from a backend that has no such option itself."""

    def __init__(self, detector: FaceDetector, min_face_size: int):
        self.detector, self.min_face_size = detector, min_face_size
        self.name = detector.name

    def detect(self, image):
        return [f for f in self.detector.detect(image) if min(f.width, f.height) >= self.min_face_size]


def _min_size(detector: FaceDetector, options: DetectorOptions) -> FaceDetector:
    return _MinimumSize(detector, options.min_face_size) if options.min_face_size > 0 else detector


DETECTOR_BACKENDS: tuple[DetectorBackend, ...] = (
    DetectorBackend("mediapipe full-range", _mediapipe("full_range"),
                    "BlazeFace full-range over the photo and overlapping tiles: group photos, small faces. "
                    "Bundled with mediapipe 0.10.21 (Apache-2.0), no download."),
    DetectorBackend("mediapipe short-range", _mediapipe("short_range"),
                    "BlazeFace short-range on the whole photo: close-ups where the face is over ~1/6 of the photo. "
                    "Bundled with mediapipe 0.10.21 (Apache-2.0), no download."),
    DetectorBackend("SCRFD", _scrfd,
                    "insightface's SCRFD-10GF from a pack folder (buffalo_l/antelopev2): accurate five points. "
                    "insightface models are for non-commercial research only.",
                    model_kind="insightface", model_folder="insightface"),
    DetectorBackend("YuNet", _yunet, "OpenCV Zoo YuNet (MIT): small and fast, five points.",
                    model_kind="yunet", model_folder="face_detection"),
)


def choice_label(backend: DetectorBackend, model_name: str | None = None) -> str:
    """How the loader lists a backend (with one of its model files)."""
    return backend.name if model_name is None else f"{backend.name}: {model_name}"


def parse_choice(label: str) -> tuple[DetectorBackend, str | None]:
    """The backend and model file named by a loader choice."""
    for backend in DETECTOR_BACKENDS:
        if backend.model_kind is None and label == backend.name:
            return backend, None
        prefix = f"{backend.name}: "
        if backend.model_kind is not None and label.startswith(prefix):
            return backend, label[len(prefix):]
    raise InvalidInputError("detector", f"unknown face detector choice {label!r}.",
                            f"Choose one of the listed detectors ({', '.join(b.name for b in DETECTOR_BACKENDS)}).")
