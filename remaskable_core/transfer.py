"""Reference-based local attribute transfer, in 2D: copy one facial region (hair, eyeglasses, lips, brows...) of a
reference face onto an identity face, as a coarse composite for a low-denoise inpainting pass to refine.

Steps, per image:
1. Find the face in each image (the one the class region lies on, else the largest) and its five landmarks.
2. Estimate the similarity (rotation, uniform scale, shift) taking the reference's landmarks onto the identity's
   (``faces.estimate_similarity``) and warp the reference image and its class probability with it.
3. Composite: the warped reference wherever its warped class region lies (soft alpha = the warped probability).
   Pixels of the identity's own region that the new one does not cover (longer hair replaced by shorter, a wider
   mouth by a narrower one) are filled with the identity's mean skin colour, so the old attribute does not show
   through; the inpainting pass then turns that flat colour into skin, forehead or background.
4. Refine mask: the union of the old and the new region, grown and feathered outward, so the sampler (denoise < 1)
   blends the pasted region's edges into the identity and PixelBlend keeps every pixel outside it exact.

Nothing outside the union of the old and new regions changes in the composite, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import mask_ops
from .errors import InvalidInputError
from .faces import Face, FaceDetector, estimate_similarity
from .faces.crop import warp
from .faces.select import image_to_uint8
from .identity import target_face
from .parsing.labels import DISPLAY_NAMES
from .parsing.result import FaceParseResult
from .tensors import as_rgb, match_batch

REGION_THRESHOLD = 0.5  # class probability from which a pixel belongs to the region
MIN_REGION_PIXELS = 16
EDGE_PX = 2  # soft edge of the pasted region kept around its >= REGION_THRESHOLD pixels  # fewer reference pixels than this count as "the class is not in the reference"


@dataclass(frozen=True)
class TransferSettings:
    grow: int = 8  # px the refine mask extends beyond the union of the old and the new region
    feather: float = 12.0  # px of the refine mask's outward fade
    fill_gaps: bool = True  # paint the old region the new one leaves uncovered with the mean skin colour


@dataclass
class TransferResult:
    image: torch.Tensor  # [B,H,W,3] the coarse composite, at the identity's size
    refine_mask: torch.Tensor  # [B,H,W] where the refinement may change pixels (1 over old and new region)
    region: torch.Tensor  # [B,H,W] 0/1 union of the old and the new region (what the composite changed at most)
    report: str


def _check_parse(parse: FaceParseResult, images: torch.Tensor, parse_name: str, image_name: str) -> None:
    if not isinstance(parse, FaceParseResult):
        raise InvalidInputError(parse_name, f"expected a FACE_PARSE, got {type(parse).__name__}.",
                                "Connect Face Parse run on the same image.")
    if parse.size != tuple(images.shape[1:3]):
        raise InvalidInputError(parse_name, f"is {parse.size[1]}x{parse.size[0]} but '{image_name}' is "
                                            f"{images.shape[2]}x{images.shape[1]}.",
                                f"Parse '{image_name}' itself (Face Parse on the same image).")
    if parse.batch_size != images.shape[0]:
        raise InvalidInputError(parse_name, f"holds {parse.batch_size} images but '{image_name}' has "
                                            f"{images.shape[0]}.", f"Parse '{image_name}' itself.")


def _check_covered(parse: FaceParseResult, classes: tuple[str, ...], parse_name: str) -> None:
    missing = [name for name in classes if name not in parse.covered]
    if missing:
        raise InvalidInputError(parse_name, f"comes from the {parse.backend} backend, which does not detect "
                                            f"{', '.join(DISPLAY_NAMES[n] for n in missing)}.",
                                "Use a SegFormer or BiSeNet face parser in Load Face Parser for this class.")


def _face(detector: FaceDetector, image: torch.Tensor, region: np.ndarray, image_name: str, index: int) -> Face:
    faces = [f for f in detector.detect(image_to_uint8(image)) if f.landmarks is not None]
    face = target_face(faces, region)
    if face is None:
        raise InvalidInputError(image_name, f"no face with landmarks was found in image {index} of the batch by the "
                                            f"{getattr(detector, 'name', 'chosen')} detector.",
                                "Use a photo with a clearly visible, roughly frontal face, or lower min_score / "
                                "min_face_size on Load Face Detector.")
    return face


def region_alpha(probs: torch.Tensor) -> torch.Tensor:
    """[B,H,W] the class probability kept only next to the class region (pixels at least REGION_THRESHOLD, grown by
    EDGE_PX): soft edges survive, the faint probability a parser spreads over the rest of the image does not."""
    near = mask_ops.grow(mask_ops.binary(probs, REGION_THRESHOLD), EDGE_PX)
    return probs * near


def skin_colour(image: torch.Tensor, parse_probs: torch.Tensor, face: Face) -> tuple[torch.Tensor, str]:
    """The mean colour of the identity's skin class ([3]), and where it came from. Without skin pixels (a parser
    that missed it): the median of the face box's central half."""
    skin = parse_probs >= REGION_THRESHOLD
    if int(skin.sum()) >= MIN_REGION_PIXELS:
        return image[skin].mean(0), f"mean of {int(skin.sum())} skin pixels"
    x0, y0, x1, y1 = face.box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 4, (y1 - y0) / 4
    height, width = image.shape[:2]
    xa, xb = int(max(cx - hw, 0)), int(min(cx + hw + 1, width))
    ya, yb = int(max(cy - hh, 0)), int(min(cy + hh + 1, height))
    patch = image[ya:yb, xa:xb].reshape(-1, 3)
    if patch.numel() == 0:
        patch = image.reshape(-1, 3)
    return patch.median(0).values, "median of the face centre (the parse found no skin)"


def transfer_region(identity: torch.Tensor, reference: torch.Tensor, identity_parse: FaceParseResult,
                    reference_parse: FaceParseResult, detector: FaceDetector, classes: tuple[str, ...],
                    settings: TransferSettings = TransferSettings(),
                    progress: Callable[[int, int], None] | None = None) -> TransferResult:
    """Transfer the ``classes`` region of ``reference`` ([1|B,H',W',C] IMAGE) onto ``identity`` ([B,H,W,C]),
    each with its FACE_PARSE; faces and landmarks come from ``detector``. See the module docstring."""
    if not classes:
        raise InvalidInputError("attribute", "names no class to transfer.", "Choose a preset or list classes.")
    identity = as_rgb(identity, "identity")
    reference = as_rgb(reference, "reference")
    batch, height, width = identity.shape[:3]
    _check_parse(identity_parse, identity, "identity_parse", "identity")
    _check_parse(reference_parse, reference, "reference_parse", "reference")
    reference = match_batch(batch, reference, "reference", "identity")
    _check_covered(reference_parse, classes, "reference_parse")
    _check_covered(identity_parse, classes + ("skin",), "identity_parse")
    if settings.grow < 0 or settings.feather < 0:
        raise InvalidInputError("grow", "and feather must not be negative.")

    old_probs = identity_parse.soft_mask(classes)
    new_probs = match_batch(batch, reference_parse.soft_mask(classes), "reference_parse", "identity")
    skin_probs = identity_parse.soft_mask(("skin",))

    images, regions, lines = [], [], []
    for index in range(batch):
        source = region_alpha(new_probs[index:index + 1])[0].cpu().numpy()
        if int((source >= REGION_THRESHOLD).sum()) < MIN_REGION_PIXELS:
            raise InvalidInputError("reference", f"shows no {', '.join(DISPLAY_NAMES[c] for c in classes)} (image "
                                                 f"{index} of the batch, by its face parse).",
                                    "Choose a reference photo that has this attribute, or another attribute.")
        old = old_probs[index].cpu().numpy() >= REGION_THRESHOLD
        identity_face = _face(detector, identity[index], old, "identity", index)
        reference_face = _face(detector, reference[index], source >= REGION_THRESHOLD, "reference", index)

        matrix = estimate_similarity(reference_face.landmarks, identity_face.landmarks).astype(np.float64)
        warped = warp(reference[index].cpu().numpy(), matrix, width, height, smooth=True, mirror=True)
        alpha = np.clip(warp(source, matrix, width, height, smooth=False, mirror=False), 0.0, 1.0)
        if int((alpha >= REGION_THRESHOLD).sum()) < MIN_REGION_PIXELS:
            raise InvalidInputError("reference", f"image {index}: aligned to the identity's face, its "
                                                 f"{'/'.join(classes)} region falls outside the identity image.",
                                    "Use an identity photo that shows the whole head, or crop it less tightly.")

        out = identity[index].clone()
        alpha_t = torch.from_numpy(alpha)[..., None]
        gap = torch.from_numpy(old & (alpha < REGION_THRESHOLD))
        colour, colour_note = skin_colour(identity[index], skin_probs[index], identity_face)
        if settings.fill_gaps:
            out[gap] = colour.to(out.dtype)
        changed = alpha_t > 0
        out = torch.where(changed, out * (1 - alpha_t) + torch.from_numpy(warped).float() * alpha_t, out)
        images.append(out.clamp(0, 1))
        region = torch.from_numpy(old) | changed[..., 0]
        regions.append(region.float())

        scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
        angle = float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))
        lines.append(f"image {index}: reference face aligned by scale {scale:.3f}, rotation {angle:+.1f} deg; "
                     f"new region {int((alpha >= REGION_THRESHOLD).sum())} px, old {int(old.sum())} px, "
                     f"{int(gap.sum()) if settings.fill_gaps else 0} px of the old region not covered filled with "
                     f"the skin colour ({colour_note}: RGB {', '.join(str(int(round(float(v) * 255))) for v in colour)})")
        if progress is not None:
            progress(index + 1, batch)

    region = torch.stack(regions)
    refine = mask_ops.feather(mask_ops.grow(region, settings.grow), settings.feather, "outward")
    header = f"Reference transfer of {', '.join(DISPLAY_NAMES[c] for c in classes)}"
    return TransferResult(torch.stack(images), refine, region, "\n".join([header, *lines]))
