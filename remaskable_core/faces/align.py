"""Similarity alignment from five landmarks (the ArcFace / insightface convention)."""

from __future__ import annotations

import cv2
import numpy as np

# insightface's arcface_dst: where the five landmarks go in a 112x112 aligned crop
ARCFACE_TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32)


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity (rotation, uniform scale, translation) taking ``src`` to ``dst``
    (Umeyama's method, no reflection)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(covariance)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    variance = (src_c ** 2).sum() / len(src)
    scale = (s * d).sum() / variance if variance > 0 else 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]]).astype(np.float32)


def warp_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112,
              template: np.ndarray = ARCFACE_TEMPLATE_112) -> np.ndarray:
    """The ``size`` x ``size`` aligned crop of the face with these five landmarks (template scaled to ``size``)."""
    matrix = estimate_similarity(landmarks, template * (size / 112.0))
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
