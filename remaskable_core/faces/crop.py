"""Face crops cut out of large photos, and edited crops pasted back so that nothing outside them changes.

Every crop is a square of ``size`` pixels, the face's box times ``context`` wide, optionally rotated so the eyes
are level. Its geometry is one similarity transform (a 2x3 matrix from photo pixels to crop pixels, OpenCV's
convention: pixel centres at integer coordinates) stored with the photo size and a soft paste-back weight in crop
space: the FACE_CROP value. Stitching warps each edited crop and its weight back with the inverse transform and
blends; pixels where the weight is 0 are copied from the photo, so they keep their exact bits.

The paste weight fades to 0 over ``feather`` crop pixels *inside* the crop's edges that lie within the photo; where
the crop hangs over the photo's border (faces at the edge, filled by mirroring) it stays at full strength up to the
border, so edits reach the edge of the photo.

Several faces of one photo are edited as a batch and stitched back together. Where their crops overlap, each
pixel takes its content from the crops weighted by paste weight times closeness to each crop's centre (a softmax
over the crops), so a face's own crop wins on that face and a neighbour's unedited copy of it does not bleed in.

Resampling: minifying goes through area averaging (cv2.INTER_AREA) and then a unit-scale rotation, magnifying
uses bicubic interpolation; paste weights use bilinear interpolation, which keeps them exactly 0 away from the
crop. A crop at the photo's own scale without rotation is an exact pixel copy, so stitching an unedited crop back
gives the photo back exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .. import mask_ops
from ..errors import InvalidInputError
from ..tensors import as_mask, as_rgb
from .face import Face

PASTE_REGIONS = ("whole crop", "face oval")
SIZE_MULTIPLE = 8
MIN_CROP_SIZE = 64
MAX_CROP_SIZE = 8192
# softness of the hand-over between overlapping crops, in units of a crop's half-side
OVERLAP_SOFTNESS = 0.08
# the face oval's semi-axes as fractions of the face box's longer side: forehead to below the chin, ear to ear
OVAL_HALF_WIDTH, OVAL_HALF_HEIGHT = 0.6, 0.75


@dataclass(frozen=True)
class CropSettings:
    context: float = 1.5  # crop side / face box side
    size: int | None = 512  # crop side in pixels (a multiple of 8); None keeps the photo's scale
    align: bool = True  # rotate so the eyes are level (needs landmarks)
    paste_region: str = "whole crop"
    feather: float = 16.0  # width of the paste weight's inward fade, in crop pixels


@dataclass(frozen=True)
class CroppedFace:
    image_index: int  # which photo of the batch
    face: Face | None  # None: the stand-in crop of a photo in which no face was chosen; nothing is pasted back
    matrix: np.ndarray  # [2,3] float64, photo pixels -> crop pixels
    paste_weight: np.ndarray  # [S,S] float32 in 0..1, full strength over the mirrored padding

    @property
    def is_placeholder(self) -> bool:
        return self.face is None


@dataclass(frozen=True)
class FaceCrops:
    """The FACE_CROP value: how each crop of a batch maps back into its photo."""

    items: tuple[CroppedFace, ...]
    image_count: int
    image_height: int
    image_width: int
    crop_size: int

    def __len__(self) -> int:
        return len(self.items)

    @property
    def face_count(self) -> int:
        return sum(not item.is_placeholder for item in self.items)

    def crop_masks(self) -> torch.Tensor:
        """[N,S,S] the region of each crop that is pasted back (0 over padding outside the photo)."""
        masks = [item.paste_weight * _inside_photo(item.matrix, self.crop_size, self.image_height,
                                                   self.image_width, ring=0) for item in self.items]
        return torch.from_numpy(np.stack(masks).astype(np.float32))


def round_up(value: float, multiple: int = SIZE_MULTIPLE) -> int:
    return int(math.ceil(value / multiple - 1e-9)) * multiple


def check_size(size: int, input_name: str = "size") -> int:
    if size % SIZE_MULTIPLE or not MIN_CROP_SIZE <= size <= MAX_CROP_SIZE:
        raise InvalidInputError(input_name, f"must be a multiple of {SIZE_MULTIPLE} from {MIN_CROP_SIZE} to "
                                            f"{MAX_CROP_SIZE}, got {size}.")
    return size


def face_side(face: Face, context: float) -> float:
    return max(face.width, face.height, 1.0) * context


def eye_angle(face: Face) -> float:
    """Angle (radians) of the line from the subject's right eye (landmark 0) to the left eye; 0 without landmarks."""
    if face.landmarks is None or len(face.landmarks) < 2:
        return 0.0
    (x0, y0), (x1, y1) = face.landmarks[0], face.landmarks[1]
    return math.atan2(float(y1 - y0), float(x1 - x0))


def crop_matrix(face: Face, size: int, scale: float, align: bool, snap: bool = False) -> np.ndarray:
    """Photo -> crop transform putting the face box's centre at the crop's centre, at ``scale``, rotated by minus
    the eye-line angle when ``align``. ``snap`` rounds the shift to whole pixels (for unscaled, unrotated crops)."""
    angle = eye_angle(face) if align else 0.0
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    linear = np.array([[cos, sin], [-sin, cos]])
    centre = np.array(face.center) - 0.5  # box edges -> pixel-centre coordinates
    shift = np.array([(size - 1) / 2.0, (size - 1) / 2.0]) - linear @ centre
    if snap:
        shift = np.round(shift)
    return np.hstack([linear, shift[:, None]])


def placeholder_matrix(size: int, height: int, width: int) -> np.ndarray:
    """The whole photo, scaled to fit the crop and centred."""
    scale = size / max(height, width)
    shift = (size - 1) / 2.0 - scale * (np.array([width, height]) - 1) / 2.0
    return np.array([[scale, 0.0, shift[0]], [0.0, scale, shift[1]]])


def _grid(size: int, ring: int) -> tuple[np.ndarray, np.ndarray]:
    coords = np.arange(-ring, size + ring, dtype=np.float64)
    return np.meshgrid(coords, coords)


def _inside_photo(matrix: np.ndarray, size: int, height: int, width: int, ring: int) -> np.ndarray:
    """[S+2r, S+2r] 1 where a crop pixel (with a ``ring`` around the crop) maps into the photo."""
    inverse = _invert(matrix)
    xs, ys = _grid(size, ring)
    px = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    py = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    return ((px >= -0.5) & (px < width - 0.5) & (py >= -0.5) & (py < height - 0.5)).astype(np.float32)


def paste_weight(matrix: np.ndarray, size: int, height: int, width: int, region: str, feather: float,
                 face: Face | None) -> np.ndarray:
    """[S,S] weight of each crop pixel in the paste-back: the region, faded to 0 over ``feather`` pixels from the
    nearest photo pixel outside the region (a one-pixel ring around the crop counts, padding does not)."""
    if region not in PASTE_REGIONS:
        raise InvalidInputError("paste_region", f"unknown region {region!r}.", f"Use one of {list(PASTE_REGIONS)}.")
    inside = np.zeros((size + 2, size + 2), np.float32)
    inside[1:-1, 1:-1] = 1.0
    if region == "face oval" and face is not None:
        xs, ys = _grid(size, 1)
        cx, cy = matrix[:, :2] @ (np.array(face.center) - 0.5) + matrix[:, 2]
        scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
        side = max(face.width, face.height) * scale
        inside *= (((xs - cx) / (OVAL_HALF_WIDTH * side)) ** 2
                   + ((ys - cy) / (OVAL_HALF_HEIGHT * side)) ** 2 <= 1.0)
    keep = np.maximum(inside, 1.0 - _inside_photo(matrix, size, height, width, ring=1))
    weight = mask_ops.feather(torch.from_numpy(keep)[None], feather, "inward")[0].numpy()
    return (weight * inside)[1:-1, 1:-1].astype(np.float32)


def _affine3(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def _integer_shift(matrix: np.ndarray) -> tuple[int, int] | None:
    if np.array_equal(matrix[:, :2], np.eye(2)) and np.array_equal(matrix[:, 2], np.round(matrix[:, 2])):
        return int(matrix[0, 2]), int(matrix[1, 2])
    return None


def _shifted_copy(src: np.ndarray, dx: int, dy: int, width: int, height: int, mirror: bool) -> np.ndarray:
    """dst[y, x] = src[y - dy, x - dx]; outside ``src`` mirrored about its edges, or 0."""
    h, w = src.shape[:2]
    x0, y0 = -dx, -dy
    cx0, cx1 = min(max(x0, 0), w), min(max(x0 + width, 0), w)
    cy0, cy1 = min(max(y0, 0), h), min(max(y0 + height, 0), h)
    if cx1 <= cx0 or cy1 <= cy0:
        return np.zeros((height, width) + src.shape[2:], src.dtype)
    pads = [(cy0 - y0, y0 + height - cy1), (cx0 - x0, x0 + width - cx1)] + [(0, 0)] * (src.ndim - 2)
    return np.pad(src[cy0:cy1, cx0:cx1], pads, mode="symmetric" if mirror else "constant")


def _invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix (exact for pure shifts)."""
    linear = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear, -(linear @ matrix[:, 2])[:, None]])


def warp(src: np.ndarray, matrix: np.ndarray, width: int, height: int, *, smooth: bool, mirror: bool
         ) -> np.ndarray:
    """``dst[y, x] = src(matrix^-1 (x, y))`` for a [h,w] or [h,w,C] float32 ``src``. ``smooth``: bicubic (images)
    instead of bilinear (weights). ``mirror``: outside ``src`` reflects it, else 0. Minification averages areas."""
    shift = _integer_shift(matrix)
    if shift is not None:
        return _shifted_copy(src, shift[0], shift[1], width, height, mirror)
    h, w = src.shape[:2]
    scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
    inverse = _invert(matrix)
    corners = np.array([[-0.5, -0.5, 1], [width - 0.5, -0.5, 1], [-0.5, height - 0.5, 1],
                        [width - 0.5, height - 0.5, 1]]) @ inverse.T
    margin = int(math.ceil(3.0 / min(scale, 1.0))) + 2
    x0 = max(int(math.floor(corners[:, 0].min())) - margin, 0)
    y0 = max(int(math.floor(corners[:, 1].min())) - margin, 0)
    x1 = min(int(math.ceil(corners[:, 0].max())) + margin + 1, w)
    y1 = min(int(math.ceil(corners[:, 1].max())) + margin + 1, h)
    if x1 <= x0 or y1 <= y0:  # reads nothing of src (only happens outside it): read all of it
        x0, y0, x1, y1 = 0, 0, w, h
    region = src[y0:y1, x0:x1]
    to_region = matrix @ _affine3(np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]]))
    if scale < 1.0:
        rw, rh = x1 - x0, y1 - y0
        nw, nh = max(1, round(rw * scale)), max(1, round(rh * scale))
        region = cv2.resize(region, (nw, nh), interpolation=cv2.INTER_AREA)
        fx, fy = nw / rw, nh / rh
        to_region = to_region @ np.array([[1 / fx, 0.0, 0.5 / fx - 0.5], [0.0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
    out = cv2.warpAffine(np.ascontiguousarray(region), to_region, (width, height),
                         flags=cv2.INTER_CUBIC if smooth else cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT if mirror else cv2.BORDER_CONSTANT, borderValue=0.0)
    if src.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


def crop_faces(images: torch.Tensor, faces: list[list[Face]], settings: CropSettings
               ) -> tuple[torch.Tensor, torch.Tensor, FaceCrops]:
    """Crops of the given faces of each photo ([B,H,W,3] RGB), in photo then face order, as an IMAGE batch, the
    paste-back region of each crop as a MASK batch, and the FACE_CROP. A photo without faces gets one stand-in
    crop (the whole photo, scaled down) that is never pasted back."""
    images = as_rgb(images)
    batch, height, width = images.shape[:3]
    if len(faces) != batch:
        raise InvalidInputError("faces", f"has faces for {len(faces)} images but the batch has {batch}.")
    if settings.context < 1.0:
        raise InvalidInputError("context", f"must be at least 1 (the face box itself), got {settings.context}.")
    all_faces = [face for photo_faces in faces for face in photo_faces]
    if settings.size is not None:
        size = check_size(settings.size)
    elif all_faces:
        size = min(max(round_up(max(face_side(f, settings.context) for f in all_faces)), MIN_CROP_SIZE),
                   MAX_CROP_SIZE)
    else:
        size = MIN_CROP_SIZE  # nothing will be pasted: keep the stand-ins cheap for whatever edits them
    keep_scale = settings.size is None

    crops, items = [], []
    for index in range(batch):
        photo = images[index].cpu().numpy()
        photo_faces: list[Face | None] = list(faces[index]) or [None]
        for face in photo_faces:
            if face is None:
                matrix = placeholder_matrix(size, height, width)
                weight = np.zeros((size, size), np.float32)
            else:
                scale = 1.0 if keep_scale else size / face_side(face, settings.context)
                matrix = crop_matrix(face, size, scale, settings.align, snap=keep_scale and not settings.align)
                weight = paste_weight(matrix, size, height, width, settings.paste_region, settings.feather, face)
            crops.append(np.clip(warp(photo, matrix, size, size, smooth=True, mirror=True), 0.0, 1.0))
            items.append(CroppedFace(index, face, matrix, weight))
    face_crops = FaceCrops(tuple(items), batch, height, width, size)
    return torch.from_numpy(np.stack(crops).astype(np.float32)), face_crops.crop_masks(), face_crops


def _check_stitch_inputs(images: torch.Tensor, edited: torch.Tensor, crops: FaceCrops,
                         edit_mask: torch.Tensor | None) -> tuple[int, torch.Tensor | None]:
    batch, height, width = images.shape[:3]
    if (height, width) != (crops.image_height, crops.image_width):
        raise InvalidInputError("image", f"is {width}x{height} but the faces were cropped from "
                                         f"{crops.image_width}x{crops.image_height} images.",
                                "Connect the same image that went into FaceCrop.")
    if batch != crops.image_count:
        raise InvalidInputError("image", f"has a batch of {batch} but the faces were cropped from a batch of "
                                         f"{crops.image_count}.", "Connect the same image that went into FaceCrop.")
    count, got = len(crops), edited.shape[0]
    if got % count:
        raise InvalidInputError("edited_crops", f"has a batch of {got}, which is not a multiple of the "
                                                f"{count} crops FaceCrop made.",
                                "Connect the edited crops in FaceCrop's order (a batch of several variants of "
                                "every crop, as Repeat Latent Batch makes, also works).")
    if edited.shape[1] != edited.shape[2]:
        raise InvalidInputError("edited_crops", f"are {edited.shape[2]}x{edited.shape[1]} but FaceCrop's crops are "
                                                f"square ({crops.crop_size}x{crops.crop_size}).",
                                "Resize them without changing the aspect ratio.")
    if edit_mask is None:
        return got // count, None
    mask = as_mask(edit_mask, "edit_mask")
    if mask.shape[1:] not in ((edited.shape[1], edited.shape[2]), (crops.crop_size, crops.crop_size)):
        raise InvalidInputError("edit_mask", f"is {mask.shape[2]}x{mask.shape[1]} but the crops are "
                                             f"{crops.crop_size}x{crops.crop_size}.",
                                "Make the mask from the cropped image (crop space), not from the whole photo.")
    if mask.shape[0] not in (1, count, got):
        raise InvalidInputError("edit_mask", f"has a batch of {mask.shape[0]}; give 1 (for every crop), {count} "
                                             f"(one per crop) or {got} (one per edited crop).")
    return got // count, mask


def stitch_faces(images: torch.Tensor, edited: torch.Tensor, crops: FaceCrops,
                 edit_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste edited crops back into their photos. Returns the photos ([B*V,H,W,C], V variants per crop when the
    edited batch holds several, variant-major like Repeat Latent Batch) and where they were pasted ([B*V,H,W]
    weight, 0 = photo pixel unchanged bit for bit). An RGBA photo keeps its alpha channel; greyscale comes back
    as RGB. ``edit_mask`` (crop space) limits the paste to the edit."""
    photos = as_rgb(images)
    alpha_channel = images[..., 3:4].float() if images.ndim == 4 and images.shape[-1] == 4 else None
    edited = as_rgb(edited, "edited_crops")
    variants, mask = _check_stitch_inputs(photos, edited, crops, edit_mask)
    count, size = len(crops), crops.crop_size
    edited_size = edited.shape[1]
    # edited crop pixels -> crop pixels (an upscaled or downscaled edit still lands in place)
    factor = size / edited_size
    from_edited = np.array([[factor, 0.0, 0.5 * factor - 0.5], [0.0, factor, 0.5 * factor - 0.5], [0, 0, 1]])
    if mask is not None and mask.shape[1] != size:
        mask = torch.nn.functional.interpolate(mask[:, None], size=(size, size), mode="bilinear",
                                               align_corners=False)[:, 0].clamp(0, 1)

    batch, height, width = photos.shape[:3]
    channels = 4 if alpha_channel is not None else 3
    result = torch.empty((variants * batch, height, width, channels))
    pasted = torch.zeros((variants * batch, height, width))
    for variant in range(variants):
        for index in range(batch):
            pieces = []
            for number, item in enumerate(crops.items):
                if item.image_index != index or item.is_placeholder:
                    continue
                position = variant * count + number
                weight = item.paste_weight
                if mask is not None:
                    weight = weight * mask[position if mask.shape[0] == count * variants else
                                           number if mask.shape[0] == count else 0].cpu().numpy()
                pieces.append((item, edited[position].cpu().numpy(), weight))
            target = result[variant * batch + index].numpy()
            if alpha_channel is not None:
                target[..., 3:] = alpha_channel[index].cpu().numpy()
            _stitch_photo(photos[index].cpu().numpy(), target[..., :3], pasted[variant * batch + index].numpy(),
                          pieces, from_edited, size)
    return result, pasted


@dataclass
class _Placed:
    """An edited crop warped into a rectangle [y0:y1, x0:x1] of its photo."""

    x0: int
    y0: int
    x1: int
    y1: int
    weight: np.ndarray  # [h,w] paste weight
    content: np.ndarray  # [h,w,C]
    to_crop: np.ndarray  # [3,3] rectangle pixels -> crop pixels
    size: int

    @property
    def rect(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def within(self, x0: int, y0: int) -> tuple[slice, slice]:
        return slice(self.y0 - y0, self.y1 - y0), slice(self.x0 - x0, self.x1 - x0)

    def overlaps(self, other: "_Placed") -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def centre_distance(self) -> np.ndarray:
        """[h,w] distance of each pixel from the crop's centre, in crop half-sides."""
        xs, ys = np.meshgrid(np.arange(self.x1 - self.x0, dtype=np.float64),
                             np.arange(self.y1 - self.y0, dtype=np.float64))
        m, centre = self.to_crop, (self.size - 1) / 2
        return np.hypot(m[0, 0] * xs + m[0, 1] * ys + m[0, 2] - centre,
                        m[1, 0] * xs + m[1, 1] * ys + m[1, 2] - centre) / (self.size / 2)


def _place(item: CroppedFace, edited: np.ndarray, weight: np.ndarray, from_edited: np.ndarray, size: int,
           height: int, width: int) -> _Placed | None:
    corners = np.array([[-1.0, -1.0, 1], [size, -1.0, 1], [-1.0, size, 1], [size, size, 1]]) @ _invert(item.matrix).T
    x0 = max(int(math.floor(corners[:, 0].min())) - 1, 0)
    y0 = max(int(math.floor(corners[:, 1].min())) - 1, 0)
    x1 = min(int(math.ceil(corners[:, 0].max())) + 2, width)
    y1 = min(int(math.ceil(corners[:, 1].max())) + 2, height)
    if x1 <= x0 or y1 <= y0:
        return None
    to_crop = _affine3(item.matrix) @ _affine3(np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]]))
    to_rect = _invert(to_crop[:2])
    w, h = x1 - x0, y1 - y0
    alpha = np.clip(warp(weight, to_rect, w, h, smooth=False, mirror=False), 0.0, 1.0)
    content = np.clip(warp(edited, (_affine3(to_rect) @ from_edited)[:2], w, h, smooth=True, mirror=True), 0.0, 1.0)
    return _Placed(x0, y0, x1, y1, alpha, content, to_crop, size)


def _stitch_photo(photo: np.ndarray, out: np.ndarray, total: np.ndarray,
                  pieces: list[tuple[CroppedFace, np.ndarray, np.ndarray]], from_edited: np.ndarray,
                  size: int) -> None:
    """Write ``photo`` with the pieces pasted into ``out`` ([H,W,3]) and their weight into ``total`` ([H,W],
    zeros)."""
    height, width = photo.shape[:2]
    placed = [p for p in (_place(item, edited, weight, from_edited, size, height, width)
                          for item, edited, weight in pieces if weight.any()) if p is not None]
    out[...] = photo
    for group in _overlapping_groups(placed):
        x0, y0 = min(p.x0 for p in group), min(p.y0 for p in group)
        x1, y1 = max(p.x1 for p in group), max(p.y1 for p in group)
        union = (slice(y0, y1), slice(x0, x1))
        for piece in group:
            np.maximum(total[piece.rect], piece.weight, out=total[piece.rect])
        mix = group[0].content if len(group) == 1 else _mix_overlapping(group, x0, y0, x1, y1, photo.shape[2])
        region, weight = photo[union], total[union]
        changed = weight > 0
        blended = region[changed] + weight[changed, None] * (mix[changed] - region[changed])
        out[union][changed] = np.clip(blended, 0.0, 1.0)


def _overlapping_groups(placed: list[_Placed]) -> list[list[_Placed]]:
    """The crops in groups whose rectangles overlap (transitively); each group is blended on its own."""
    groups: list[list[_Placed]] = []
    for piece in placed:
        joined = [g for g in groups if any(piece.overlaps(p) for p in g)]
        groups = [g for g in groups if all(g is not j for j in joined)] + [[p for g in joined for p in g] + [piece]]
    return groups


def _mix_overlapping(group: list[_Placed], x0: int, y0: int, x1: int, y1: int, channels: int) -> np.ndarray:
    """The content of overlapping crops over their union: per pixel a softmax over the crops of log(weight) minus
    distance from the crop's centre / softness, so each face comes from its own crop."""
    distances = [p.centre_distance() for p in group]
    nearest = np.full((y1 - y0, x1 - x0), np.inf)
    for piece, distance in zip(group, distances):
        local = piece.within(x0, y0)
        np.minimum(nearest[local], np.where(piece.weight > 0, distance, np.inf), out=nearest[local])
    scores, sums = [], np.zeros_like(nearest)
    for piece, distance in zip(group, distances):
        local = piece.within(x0, y0)
        with np.errstate(invalid="ignore", over="ignore"):
            score = np.where(piece.weight > 0,
                             piece.weight * np.exp(-(distance - nearest[local]) / OVERLAP_SOFTNESS), 0.0)
        scores.append(score)
        sums[local] += score
    # mix = main + sum of share * (content - main), main = the biggest share's content: where all crops agree
    # (an unedited overlap) the mix is that content exactly, not a rounded weighted sum
    main = np.zeros((y1 - y0, x1 - x0, channels), np.float32)
    best = np.zeros_like(nearest)
    for piece, score in zip(group, scores):
        local = piece.within(x0, y0)
        better = score > best[local]
        main[local][better] = piece.content[better]
        best[local][better] = score[better]
    mix = main.copy()
    for piece, score in zip(group, scores):
        local = piece.within(x0, y0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(score > 0, score / sums[local], 0.0).astype(np.float32)
        mix[local] += share[..., None] * (piece.content - main[local])
    return mix
