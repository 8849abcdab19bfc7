"""Face detection with mediapipe 0.10.21's BlazeFace models (weights bundled in the wheel, nothing to download).

mediapipe is optional: it declares numpy<2, so it is never a requirement of the pack. It is imported only when a
detector is built, and a missing install fails with the command that installs it without touching numpy.

BlazeFace sees a downscaled, letterboxed copy of its input (128 px square for the short-range model, 192 px for
the full-range one), so on a whole group photo it misses the smaller faces: on insightface's t1.jpg (1280x886, six
faces of ~100 px) the full-range model finds 3 and the short-range model none. The full-range detector therefore
also runs on overlapping square tiles, halving the tile side per level down to the size at which the smallest
wanted face is still big enough for the model, and merges the detections; it then finds all six, at 0.5x, 1x, 2x
and 3x the photo's size, and no false faces on skimage's coffee, chelsea and astronaut. Measured here, the
full-range model finds face boxes from about 6.5 % of its input side and the short-range model from about 15 %;
on tiles the short-range model finds as many false faces (scores 0.5-0.7) as real ones, so it is not tiled: it is
for close-ups.

Landmarks: BlazeFace gives six keypoints (both eyes, nose tip, mouth centre, both ear tragions). By default the
five ArcFace points come from mediapipe's face mesh run on a crop around each face (iris centres, nose tip, mouth
corners). Without the mesh, they are the two eyes, the nose tip, and mouth corners placed on the line through the
mouth centre parallel to the eye line, half a mouth width either side (the ArcFace template's mouth width to eye
distance ratio, 29.18 / 35.24). scripts/measure_face_landmarks.py compares both with OpenCV's YuNet on t1.jpg and
the astronaut (medians, in % of the eye distance): mesh points 8-17 % off YuNet's, mouth corners 13 %; derived
points 14-21 % off, mouth corners 20 % (up to 70 %: BlazeFace's mouth centre lies below the corners of a smile).
"""

from __future__ import annotations

import importlib
import math
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError, ModelFileError
from .face import Face

MEDIAPIPE_VERSION = "0.10.21"
# mediapipe's own requirements (numpy<2, protobuf<5, jax, opencv-contrib...) would downgrade ComfyUI's environment;
# the face solutions need only these (checked in a fresh venv with numpy 2.4: its graphs build with protobuf 4.25.9,
# 6.31.1 and 6.33.6; they fail with "Failed to parse" on 5.26, 5.29 and 6.30.2, and on 7.x (no FieldDescriptor.label))
INSTALL_HINT = (f'pip install absl-py attrs flatbuffers matplotlib "protobuf>=6.31.1,<7" && '
                f'pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}')

# mediapipe's keypoint order
_RIGHT_EYE, _LEFT_EYE, _NOSE_TIP, _MOUTH_CENTRE = 0, 1, 2, 3
# ArcFace template: mouth-corner distance / eye distance
_MOUTH_TO_EYE_RATIO = (70.7299 - 41.5493) / (73.5318 - 38.2946)


@dataclass(frozen=True)
class BlazeFaceModel:
    selection: int  # mediapipe's model_selection
    tiled: bool  # also run on the tile pyramid
    smallest_box: float = 1.0  # smallest face box found reliably, as a fraction of the (square) input side
    # on tiles, boxes above this fraction of the tile are left to the next coarser level, where they are at least
    # half as big (so this must be over twice smallest_box); tiles overlap by this much, so every face a level
    # keeps lies whole inside one of its tiles
    largest_box: float = 0.3


MODELS = {
    # group photos: boxes from ~6.5 % of the input side are found, 12 % reliably
    "full_range": BlazeFaceModel(selection=1, tiled=True, smallest_box=0.12, largest_box=0.3),
    # close-ups only (boxes from ~15 % of the image): on tiles it finds as many false faces (scores 0.5-0.7) as
    # real ones, so it sees the whole image only
    "short_range": BlazeFaceModel(selection=0, tiled=False),
}
MAX_TILE_LEVELS = 6
LANDMARK_SOURCES = ("face mesh", "keypoints")
# face mesh (refine_landmarks) indices of the ArcFace points: iris centres, nose tip, mouth corners
MESH_ARCFACE_POINTS = (468, 473, 1, 61, 291)


def import_mediapipe():
    """The mediapipe module with its legacy ``solutions`` API, or an error saying how to install it (the face
    models ship inside the mediapipe package, so a missing package is a missing model)."""
    try:
        mp = importlib.import_module("mediapipe")
    except ImportError as error:
        raise ModelFileError(f"The mediapipe face detector needs mediapipe {MEDIAPIPE_VERSION}, whose package holds its "
                             f"models, and it is not installed ({error}). Install it into ComfyUI's Python without "
                             f"letting it downgrade numpy: {INSTALL_HINT}") from error
    if not hasattr(mp, "solutions"):
        raise ModelFileError(f"mediapipe {getattr(mp, '__version__', '?')} is installed, but versions from 0.10.30 on "
                             f"no longer ship the bundled face models. Install {MEDIAPIPE_VERSION}: {INSTALL_HINT}")
    return mp


def _build(factory, **options):
    """A mediapipe solution graph; a graph mediapipe cannot read is almost always a protobuf version clash."""
    try:
        return factory(**options)
    except Exception as error:  # mediapipe raises RuntimeError("Failed to parse: ...") and others
        raise ModelFileError(f"mediapipe could not build its face graph ({str(error)[:200]}). This usually means a "
                             f"protobuf version it cannot read: mediapipe {MEDIAPIPE_VERSION} works with protobuf "
                             f"4.25.x or 6.31.1 up to 7, not 5.x. {INSTALL_HINT}") from error


def arcface_points(keypoints: np.ndarray) -> np.ndarray:
    """The five ArcFace-order points from mediapipe's six keypoints ([6,2] pixels)."""
    right_eye, left_eye = keypoints[_RIGHT_EYE], keypoints[_LEFT_EYE]
    half_mouth = 0.5 * _MOUTH_TO_EYE_RATIO * (left_eye - right_eye)
    mouth = keypoints[_MOUTH_CENTRE]
    return np.stack([right_eye, left_eye, keypoints[_NOSE_TIP], mouth - half_mouth, mouth + half_mouth]
                    ).astype(np.float32)


def tile_grid(height: int, width: int, smallest_tile: float, overlap: float = 0.5
              ) -> list[tuple[int, int, int, int, int]]:
    """(level, x0, y0, x1, y1) of every tile: level 0 is the whole image; level k squares of side long/2^k overlap
    by ``overlap`` of their side, so any face at most that wide lies wholly inside one of them."""
    tiles = [(0, 0, 0, width, height)]
    long_side = max(height, width)
    for level in range(1, MAX_TILE_LEVELS + 1):
        side = int(round(long_side / 2 ** level))
        if side < smallest_tile or side < 16:
            break
        step = max(side - int(math.ceil(overlap * side)), 1)
        xs = _positions(width, side, step)
        ys = _positions(height, side, step)
        tiles += [(level, x, y, min(x + side, width), min(y + side, height)) for y in ys for x in xs]
    return tiles


def _positions(length: int, side: int, step: int) -> list[int]:
    if side >= length:
        return [0]
    positions = list(range(0, length - side + 1, step))
    if positions[-1] != length - side:
        positions.append(length - side)
    return positions


def _overlap(a: Face, b: Face) -> tuple[float, float]:
    """Intersection over union, and over the smaller box."""
    ix = max(0.0, min(a.box[2], b.box[2]) - max(a.box[0], b.box[0]))
    iy = max(0.0, min(a.box[3], b.box[3]) - max(a.box[1], b.box[1]))
    inter = ix * iy
    if inter <= 0:
        return 0.0, 0.0
    return inter / (a.area + b.area - inter), inter / max(min(a.area, b.area), 1e-6)


def merge_detections(faces: list[Face], iou: float = 0.3, containment: float = 0.5) -> list[Face]:
    """One detection per face. Most confident first, a face overlapping a kept one by more than ``iou`` is
    dropped; of two boxes where one lies mostly (``containment`` of its area) inside the other, the bigger is kept:
    the smaller one is a part of the face seen by a tile."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: -f.score):
        overlapping = [(k, _overlap(face, k)) for k in kept]
        if any(union > iou for _, (union, _) in overlapping):
            continue
        inside = [k for k, (_, smaller) in overlapping if smaller > containment]
        if not inside:
            kept.append(face)
        elif all(face.area > k.area for k in inside):
            kept = [k for k in kept if all(k is not i for i in inside)] + [face]
    return sorted(kept, key=lambda f: -f.score)


class MediapipeFaceDetector:
    """BlazeFace (mediapipe face_detection) over the whole image and a pyramid of overlapping tiles, with the five
    points taken from mediapipe's face mesh (``landmarks="face mesh"``) or derived from BlazeFace's keypoints."""

    def __init__(self, model: str = "full_range", min_score: float = 0.5, min_face_size: int = 32,
                 landmarks: str = "face mesh", tiling: bool = True):
        if model not in MODELS:
            raise InvalidInputError("model", f"unknown mediapipe face model {model!r}.", f"Use one of {list(MODELS)}.")
        if landmarks not in LANDMARK_SOURCES:
            raise InvalidInputError("landmarks", f"unknown landmark source {landmarks!r}.",
                                    f"Use one of {list(LANDMARK_SOURCES)}.")
        if not 0.0 < min_score <= 1.0:
            raise InvalidInputError("min_score", f"must be in (0, 1], got {min_score}.")
        self.model = MODELS[model]
        self.name = f"mediapipe {model.replace('_', '-')}"
        self.min_score = float(min_score)
        self.min_face_size = max(int(min_face_size), 1)
        self.tiling = tiling and self.model.tiled
        mp = import_mediapipe()
        self._solution = _build(mp.solutions.face_detection.FaceDetection,
                                model_selection=self.model.selection, min_detection_confidence=self.min_score)
        self._mesh = (_build(mp.solutions.face_mesh.FaceMesh, static_image_mode=True, refine_landmarks=True,
                             max_num_faces=4) if landmarks == "face mesh" else None)
        self._lock = threading.Lock()  # one mediapipe graph, one image at a time

    def close(self) -> None:
        self._solution.close()
        if self._mesh is not None:
            self._mesh.close()

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 [H,W,3] image, most confident first."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InvalidInputError("image", f"expected an RGB uint8 [H,W,3] array, got {image.dtype} "
                                             f"{list(image.shape)}.")
        height, width = image.shape[:2]
        smallest_tile = self.min_face_size / self.model.smallest_box if self.tiling else float("inf")
        found: list[Face] = []
        for level, x0, y0, x1, y1 in tile_grid(height, width, smallest_tile, self.model.largest_box):
            tile_side = max(x1 - x0, y1 - y0)
            for face in self._detect_tile(image, x0, y0, x1, y1):
                if level > 0 and (max(face.width, face.height) > self.model.largest_box * tile_side
                                  or _touches_inner_edge(face, x0, y0, x1, y1, width, height)):
                    continue  # seen whole, at the right scale, by a coarser level or a neighbouring tile
                found.append(face)
        faces = [f for f in merge_detections(found) if max(f.width, f.height) >= self.min_face_size]
        if self._mesh is not None:
            faces = [self._refine(image, face) for face in faces]
        return faces

    def _detect_tile(self, image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> list[Face]:
        tile = np.ascontiguousarray(image[y0:y1, x0:x1])
        tile_w, tile_h = x1 - x0, y1 - y0
        with self._lock:
            result = self._solution.process(tile)
        faces = []
        for detection in result.detections or []:
            data = detection.location_data
            box = data.relative_bounding_box
            keypoints = np.array([[x0 + k.x * tile_w, y0 + k.y * tile_h] for k in data.relative_keypoints],
                                 dtype=np.float32)
            faces.append(Face(
                box=(x0 + box.xmin * tile_w, y0 + box.ymin * tile_h,
                     x0 + (box.xmin + box.width) * tile_w, y0 + (box.ymin + box.height) * tile_h),
                score=float(detection.score[0]),
                landmarks=arcface_points(keypoints) if len(keypoints) >= 4 else None))
        return faces

    def _refine(self, image: np.ndarray, face: Face) -> Face:
        """The face with its five points from the face mesh of a crop around it (unchanged if no mesh fits)."""
        side = max(face.width, face.height)
        cx, cy = face.center
        x0, y0 = int(max(cx - side, 0)), int(max(cy - side, 0))
        x1, y1 = int(min(cx + side, image.shape[1])), int(min(cy + side, image.shape[0]))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return face
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        with self._lock:
            result = self._mesh.process(crop)
        best, best_distance = None, 0.3 * side  # a mesh farther than this belongs to a neighbouring face
        for mesh in result.multi_face_landmarks or []:
            points = np.array([[x0 + mesh.landmark[i].x * (x1 - x0), y0 + mesh.landmark[i].y * (y1 - y0)]
                               for i in MESH_ARCFACE_POINTS], dtype=np.float32)
            anchor = face.landmarks.mean(0) if face.landmarks is not None else np.array(face.center)
            distance = float(np.linalg.norm(points.mean(0) - anchor))
            if distance < best_distance:
                best, best_distance = points, distance
        return face if best is None else Face(face.box, face.score, best)


def _touches_inner_edge(face: Face, x0: int, y0: int, x1: int, y1: int, width: int, height: int) -> bool:
    """Whether the box reaches a tile edge that lies inside the image (the face may be cut there)."""
    margin = 0.01 * max(x1 - x0, y1 - y0)
    bx0, by0, bx1, by1 = face.box
    return ((x0 > 0 and bx0 < x0 + margin) or (y0 > 0 and by0 < y0 + margin)
            or (x1 < width and bx1 > x1 - margin) or (y1 < height and by1 > y1 - margin))
