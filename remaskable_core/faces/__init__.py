"""Faces in images: detection (several backends behind one interface), landmark alignment, crop and stitch."""

from .align import ARCFACE_TEMPLATE_112, estimate_similarity, warp_face
from .face import Face, FaceDetector

__all__ = ["ARCFACE_TEMPLATE_112", "estimate_similarity", "warp_face", "Face", "FaceDetector"]
