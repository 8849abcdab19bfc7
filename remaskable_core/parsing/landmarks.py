"""Face parsing from mediapipe's face mesh (478 landmarks with irises; weights bundled in mediapipe 0.10.21).

Polygons through the mesh give skin (the face oval minus the inner parts), brows, eyes (+ the visible iris),
nose, upper and lower lip and the inner mouth. Hair, ears, neck, clothes, accessories and the background are
not covered (their probabilities stay 0). Mesh indices follow mediapipe's face_mesh_connections; its
"LEFT" parts are the subject's left (on the right of a non-mirrored photo), which is the canonical meaning,
so no re-labelling is needed.

mediapipe is optional: it pins numpy<2, so it is installed without its dependencies and imported only here.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..errors import ModelFileError
from .base import FaceParser, Progress, no_face_message
from .labels import CLASS_INDEX, CLASSES
from .result import Box, FaceParseResult

# checked here: mediapipe 0.10.21 runs with numpy 2 and protobuf 4.25.x or 6.31.1-6.x; protobuf 5.x and 6.0-6.30 fail
# with "Failed to parse" building its graphs, protobuf 7 at import; its drawing utilities import matplotlib
INSTALL_COMMAND = ('pip install matplotlib && pip install --no-deps mediapipe==0.10.21 absl-py attrs flatbuffers '
                   '"protobuf>=6.31.1,<7"')

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
             149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
# the subject's left (mediapipe LEFT_*) and right (RIGHT_*) parts
EYES = {"l_eye": (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
        "r_eye": (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)}
IRISES = {"l_eye": (473, (474, 475, 476, 477)), "r_eye": (468, (469, 470, 471, 472))}  # centre, rim
BROWS = {"l_brow": (276, 283, 282, 295, 285, 336, 296, 334, 293, 300),  # lower edge outward-in, upper inward-out
         "r_brow": (46, 53, 52, 65, 55, 107, 66, 105, 63, 70)}
UPPER_LIP_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_LIP_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
UPPER_LIP_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_LIP_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 45, 220, 115, 48, 64, 98, 97, 275, 440, 344, 278, 294, 327, 326)

COVERED = ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip")
# soft edge (Gaussian sigma) as a share of the face height: landmarks are a few pixels off on a 1000 px face
EDGE_SOFTNESS = 0.005


def import_mediapipe():
    """The mediapipe module, checked to build its face graphs, or a ModelFileError saying how to install it."""
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise ModelFileError(
            f"The landmark face parser needs mediapipe 0.10.21, which is not installed or incomplete ({exc}). Install "
            f"it into ComfyUI's Python without its dependencies (they would downgrade numpy): {INSTALL_COMMAND}"
        ) from exc
    except Exception as exc:  # noqa: BLE001  broken installs fail in many ways (protobuf 7: AttributeError...)
        raise _broken(exc) from exc
    if not hasattr(mp, "solutions"):
        raise ModelFileError(f"mediapipe {getattr(mp, '__version__', '?')} no longer ships the face mesh solution "
                             f"(removed in 0.10.30). Install 0.10.21: {INSTALL_COMMAND}")
    try:  # protobuf versions mediapipe cannot parse its graphs with fail here, not halfway through a batch
        mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True).close()
        mp.solutions.face_detection.FaceDetection(model_selection=1).close()
    except Exception as exc:  # noqa: BLE001
        raise _broken(exc) from exc
    return mp


def _broken(exc: Exception) -> ModelFileError:
    import importlib.metadata

    try:
        protobuf = importlib.metadata.version("protobuf")
    except importlib.metadata.PackageNotFoundError:
        protobuf = "not installed"
    first_line = (str(exc).splitlines() or [""])[0][:160]
    return ModelFileError(
        f"mediapipe is installed but its face mesh cannot be used ({type(exc).__name__}: {first_line}). It needs "
        f"protobuf 4.25.x or 6.31.1 up to 7 (installed: {protobuf}): {INSTALL_COMMAND}")


def _polygon_mask(points: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.fillPoly(canvas, [np.round(points * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    mask = canvas.astype(np.float32) / 255.0
    return cv2.GaussianBlur(mask, (0, 0), sigma) if sigma > 0.5 else mask


def _disc_mask(centre: np.ndarray, radius: float, shape: tuple[int, int], sigma: float) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.circle(canvas, tuple(np.round(centre * 16).astype(int)), int(round(radius * 16)), 255, -1, cv2.LINE_AA, 4)
    mask = canvas.astype(np.float32) / 255.0
    return cv2.GaussianBlur(mask, (0, 0), sigma) if sigma > 0.5 else mask


def face_parts(points: np.ndarray, shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Soft masks of the covered classes of one face, from its 478 landmarks in pixels ([478, 2], x/y)."""
    sigma = EDGE_SOFTNESS * float(np.ptp(points[list(FACE_OVAL), 1]))
    parts = {}
    for name, ring in EYES.items():
        eye = _polygon_mask(points[list(ring)], shape, sigma)
        centre, rim = IRISES[name]
        radius = float(np.linalg.norm(points[list(rim)] - points[centre], axis=1).mean())
        iris = _disc_mask(points[centre], radius, shape, sigma)
        # the iris may stick out of a slightly tight lid contour; never above or below the lids
        top, bottom = points[list(ring), 1].min(), points[list(ring), 1].max()
        rows = np.arange(shape[0])[:, None]
        parts[name] = np.maximum(eye, iris * ((rows >= top) & (rows <= bottom)))
    for name, ring in BROWS.items():
        parts[name] = _polygon_mask(points[list(ring)], shape, sigma)
    nose = cv2.convexHull(points[list(NOSE)].astype(np.float32))[:, 0]
    parts["nose"] = _polygon_mask(nose, shape, sigma)
    parts["u_lip"] = _polygon_mask(points[list(UPPER_LIP_OUTER + UPPER_LIP_INNER[::-1])], shape, sigma)
    parts["l_lip"] = _polygon_mask(points[list(LOWER_LIP_OUTER + LOWER_LIP_INNER[::-1])], shape, sigma)
    parts["mouth"] = _polygon_mask(points[list(UPPER_LIP_INNER + LOWER_LIP_INNER[::-1][1:-1])], shape, sigma)
    inner = sum(parts.values())
    scale = np.maximum(inner, 1.0)  # overlapping soft edges share a pixel instead of exceeding 1
    parts = {name: mask / scale for name, mask in parts.items()}
    oval = _polygon_mask(points[list(FACE_OVAL)], shape, sigma)
    parts["skin"] = np.clip(oval - np.minimum(inner, 1.0), 0.0, 1.0)
    return parts


def _face_window(points: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """The region a face's masks can reach: its landmarks' extent plus room for the soft edge."""
    margin = 4 + 4 * EDGE_SOFTNESS * float(np.ptp(points[:, 1]))
    x0, y0 = np.floor(points.min(0) - margin).astype(int)
    x1, y1 = np.ceil(points.max(0) + margin).astype(int)
    return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)


def _iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _windows(height: int, width: int) -> list[tuple[int, int, int]]:
    """(x0, y0, side) of the whole image and of overlapping squares over it: the detector sees a downscaled
    image, so small faces in large or wide images are found only in tiles."""
    windows = [(0, 0, max(height, width))]
    side = min(height, width)
    for tile in (side, side // 2):
        if tile < 128:
            continue
        stride = tile // 2
        for y0 in range(0, max(height - tile, 0) + 1, stride):
            for x0 in range(0, max(width - tile, 0) + 1, stride):
                windows.append((x0, y0, tile))
    return windows


class LandmarkParser(FaceParser):
    backend = "landmarks"
    covered = COVERED
    sides = "subject"

    def __init__(self, max_faces: int = 10, min_confidence: float = 0.5):
        self.mp = import_mediapipe()
        self.max_faces = max_faces
        self.min_confidence = min_confidence

    def detect(self, image: np.ndarray, detector) -> list[Box]:
        """Face boxes (px) from mediapipe's full-range detector over the image and its tiles, overlaps merged."""
        height, width = image.shape[:2]
        found: list[tuple[float, Box]] = []
        for x0, y0, side in _windows(height, width):
            window = np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])
            h, w = window.shape[:2]
            for detection in detector.process(window).detections or []:
                box = detection.location_data.relative_bounding_box
                found.append((detection.score[0], (x0 + box.xmin * w, y0 + box.ymin * h,
                                                   x0 + (box.xmin + box.width) * w, y0 + (box.ymin + box.height) * h)))
        kept: list[Box] = []
        for _, box in sorted(found, key=lambda f: -f[0]):
            if all(_iou(box, other) < 0.3 for other in kept):
                kept.append(box)
        return kept[:self.max_faces]

    def landmarks(self, image: np.ndarray, detector, mesh, whole_mesh) -> list[np.ndarray]:
        """[478, 2] landmark pixels (x, y) of each face in an RGB uint8 image. Each detected face is meshed in a
        crop twice its size (the mesh's own detector only finds faces that fill much of the frame); without
        detections the mesh runs on the whole image."""
        height, width = image.shape[:2]
        faces = []
        for x0, y0, x1, y1 in self.detect(image, detector):
            side = 2.0 * max(x1 - x0, y1 - y0)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            left, top = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
            crop = np.ascontiguousarray(image[top:int(min(cy + side / 2, height)), left:int(min(cx + side / 2, width))])
            for points in self._mesh(crop, mesh):
                points += np.array([left, top], dtype=np.float32)
                centre = points.mean(0)
                if x0 <= centre[0] <= x1 and y0 <= centre[1] <= y1:  # not a neighbour caught in the crop
                    faces.append(points)
        if not faces:
            faces = self._mesh(image, whole_mesh)
        return faces

    @staticmethod
    def _mesh(image: np.ndarray, mesh) -> list[np.ndarray]:
        height, width = image.shape[:2]
        found = mesh.process(image).multi_face_landmarks or []
        return [np.array([(p.x * width, p.y * height) for p in face.landmark], dtype=np.float32) for face in found]

    def parse(self, images: torch.Tensor, progress: Progress = None) -> FaceParseResult:
        batch, height, width = images.shape[:3]
        probs = torch.zeros(batch, len(CLASSES), height, width)
        pixels = (images[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        boxes: list[list[Box]] = []
        messages: list[str] = []
        if progress:
            progress(0, batch)
        solutions = self.mp.solutions
        with solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=self.min_confidence) \
                as detector, \
                solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                             min_detection_confidence=self.min_confidence) as mesh, \
                solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=self.max_faces,
                                             refine_landmarks=True, min_detection_confidence=self.min_confidence) \
                as whole_mesh:
            for i in range(batch):
                faces = self.landmarks(np.ascontiguousarray(pixels[i]), detector, mesh, whole_mesh)
                boxes.append([self._paint(probs[i], points) for points in faces])
                if not faces:
                    messages.append(no_face_message(i, batch))
                if progress:
                    progress(i + 1, batch)
        total = probs.sum(1, keepdim=True)
        probs /= total.clamp(min=1.0)  # overlapping faces share pixels
        return FaceParseResult(probs, boxes, self.backend, self.covered, messages)

    def _paint(self, probs: torch.Tensor, points: np.ndarray) -> Box:
        """Add one face's parts into ``probs`` [19,H,W] (per-class maximum over faces); returns its box."""
        height, width = probs.shape[1:]
        x0, y0, x1, y1 = _face_window(points, height, width)
        if x1 > x0 and y1 > y0:
            parts = face_parts(points - np.array([x0, y0], dtype=np.float32), (y1 - y0, x1 - x0))
            for name, mask in parts.items():
                window = probs[CLASS_INDEX[name], y0:y1, x0:x1]
                torch.maximum(window, torch.from_numpy(mask), out=window)
        bx0, by0 = np.clip(points.min(0), 0, [width, height])
        bx1, by1 = np.clip(points.max(0), 0, [width, height])
        return float(bx0), float(by0), float(bx1), float(by1)
