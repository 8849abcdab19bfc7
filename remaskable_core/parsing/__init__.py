"""Face parsing: the canonical 19-class schema, the FACE_PARSE value, and the backends that produce it."""

from .labels import BISENET_ORDER, CLASS_INDEX, CLASSES, PALETTE, PRESETS, resolve_classes
from .result import FaceParseResult

__all__ = ["BISENET_ORDER", "CLASS_INDEX", "CLASSES", "PALETTE", "PRESETS", "resolve_classes", "FaceParseResult"]
