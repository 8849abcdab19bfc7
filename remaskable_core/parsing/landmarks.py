"""Face parsing from mediapipe's face mesh (478 landmarks with irises; weights bundled in mediapipe 0.10.21).

Polygons through the mesh give skin (the face oval minus the inner parts), brows, eyes (+ the visible iris),
nose, upper and lower lip and the inner mouth. Hair, ears, neck, clothes, accessories and the background are
not covered (their probabilities stay 0). Mesh indices follow mediapipe's face_mesh_connections; its
"LEFT" parts are the subject's left (on the right of a non-mirrored photo), which is the canonical meaning,
so no re-labelling is needed.

Faces are found by the pack's mediapipe BlazeFace detector (full range, over a pyramid of tiles, so small faces
in group photos are found too); each is then meshed in a crop around it. mediapipe is optional: it is imported
only when a parser is built, and a missing or broken install fails with the command that installs it.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..faces.detect_mediapipe import MediapipeFaceDetector, import_mediapipe
from .base import FaceParser, Progress, no_face_message
from .labels import CLASS_INDEX, CLASSES
from .result import Box, FaceParseResult

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


class LandmarkParser(FaceParser):
    backend = "landmarks"
    covered = COVERED
    sides = "subject"

    def __init__(self, max_faces: int = 10, min_confidence: float = 0.5, min_face_size: int = 16):
        self.detector = MediapipeFaceDetector("full_range", min_score=min_confidence, min_face_size=min_face_size,
                                              landmarks="keypoints")
        self.mp = import_mediapipe()
        self.max_faces = max_faces
        self.min_confidence = min_confidence

    def landmarks(self, image: np.ndarray, mesh, whole_mesh) -> list[np.ndarray]:
        """[478, 2] landmark pixels (x, y) of each face in an RGB uint8 image. Each detected face is meshed in a
        crop twice its size (the mesh's own detector only finds faces that fill much of the frame), keeping the
        mesh nearest the detection; without detections the mesh runs on the whole image."""
        height, width = image.shape[:2]
        faces = []
        for face in self.detector.detect(image)[:self.max_faces]:
            side = max(face.width, face.height)
            cx, cy = face.center
            left, top = int(max(cx - side, 0)), int(max(cy - side, 0))
            crop = np.ascontiguousarray(image[top:int(min(cy + side, height)), left:int(min(cx + side, width))])
            meshes = [points + np.array([left, top], dtype=np.float32) for points in self._mesh(crop, mesh)]
            distances = [float(np.linalg.norm(points.mean(0) - np.array(face.center))) for points in meshes]
            if meshes and min(distances) < 0.5 * side:  # farther: a neighbour's face caught in the crop
                faces.append(meshes[int(np.argmin(distances))])
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
        face_mesh = self.mp.solutions.face_mesh.FaceMesh
        with face_mesh(static_image_mode=True, max_num_faces=4, refine_landmarks=True,
                       min_detection_confidence=self.min_confidence) as mesh, \
                face_mesh(static_image_mode=True, max_num_faces=self.max_faces, refine_landmarks=True,
                          min_detection_confidence=self.min_confidence) as whole_mesh:
            for i in range(batch):
                faces = self.landmarks(np.ascontiguousarray(pixels[i]), mesh, whole_mesh)
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
