"""Evaluation: the metrics of the ReMaskable paper and its field on a folder of images, masks, edits and parse
annotations (``python -m remaskable_core eval``).

* background preservation outside the mask: MSE, PSNR, SSIM, LPIPS (``background``; protocols remaskable and
  BrushBench),
* identity: recogniser cosine and re-identification rate at a threshold (``reidentification``),
* face parsing: per-class IoU and F1, mIoU and mean F1 against CelebAMask-HQ-layout annotations (``segmentation``).
"""

from .background import (BRUSHBENCH, PROTOCOLS, REMASKABLE, BackgroundScore, BackgroundSummary, background_score,
                         summarize_background)
from .evaluate import (EditsEvaluation, ParsingEvaluation, evaluate_edits, evaluate_parsing, folder_predictions,
                       parser_predictions)
from .layout import Annotations, image_files, read_edited_region, read_label_map, read_rgb
from .reidentification import IdentityScore, IdentitySummary, identity_score, summarize_identity
from .report import EvaluationReport, IdentitySetup
from .segmentation import LabelPredictor, ParsingScores, confusion_matrix, predictor_from_parser

__all__ = [
    "BRUSHBENCH", "PROTOCOLS", "REMASKABLE", "BackgroundScore", "BackgroundSummary", "background_score",
    "summarize_background", "EditsEvaluation", "ParsingEvaluation", "evaluate_edits", "evaluate_parsing",
    "folder_predictions", "parser_predictions", "Annotations", "image_files", "read_edited_region", "read_label_map",
    "read_rgb", "IdentityScore", "IdentitySummary", "identity_score", "summarize_identity", "EvaluationReport",
    "IdentitySetup", "LabelPredictor", "ParsingScores", "confusion_matrix", "predictor_from_parser",
]
