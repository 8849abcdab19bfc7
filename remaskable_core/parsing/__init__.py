"""Face parsing: the canonical 19-class schema, the FACE_PARSE value, and the backends that produce it.

Backends (``load_face_parser`` picks one from the file): SegFormer (transformers), BiSeNet (own network,
zllrunning's weights) and their ONNX exports; ``LandmarkParser`` (mediapipe face mesh, optional dependency).
"""

from .base import FaceParser, NetworkParser
from .labels import BISENET_ORDER, CLASS_INDEX, CLASSES, PALETTE, PRESETS, resolve_classes, select_classes
from .load import load_face_parser
from .pipeline import FaceParseOutput, face_parse
from .result import FaceParseResult

__all__ = ["BISENET_ORDER", "CLASS_INDEX", "CLASSES", "PALETTE", "PRESETS", "resolve_classes", "select_classes",
           "FaceParseResult", "FaceParser", "NetworkParser", "load_face_parser", "FaceParseOutput", "face_parse"]
