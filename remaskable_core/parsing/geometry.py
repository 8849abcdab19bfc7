"""Face geometry read off a parse: where the faces are, and which side of each face is the subject's left.

"Left" is the subject's left: on a photo of a person facing the camera (not mirrored) their left eye appears
on the right of the image. Networks trained on CelebAMask-HQ do not reliably follow any convention:
zllrunning's BiSeNet training flipped images horizontally without swapping the l_/r_ labels (its
HorizontalFlip compares a PIL image with an int, so the swap is a no-op), so its l_/r_ split is close to
arbitrary. ``assign_sides`` re-labels every paired class by where it lies relative to the face's midline.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .labels import CLASS_INDEX

Box = tuple[float, float, float, float]

# classes whose pixels make up a face region (ears, hair and accessories are not needed to call it a face)
FACE_CLASSES = ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip", "eye_g")
PAIRED_CLASSES = (("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear"))
# a face smaller than this share of the image is taken as a stray blob (a 23x23 face in a 1024x1024 image)
MIN_FACE_FRACTION = 0.0005
MIN_FACE_PIXELS = 16


def face_class_mass(probs: torch.Tensor) -> torch.Tensor:
    """[H,W] probability of any face class, from one image's [19,H,W] probabilities."""
    return probs[[CLASS_INDEX[name] for name in FACE_CLASSES]].sum(0)


def find_faces(probs: torch.Tensor) -> list[Box]:
    """Boxes (x0, y0, x1, y1, px, x1/y1 exclusive) of the connected face regions of one [19,H,W] parse,
    largest first; regions below ``MIN_FACE_FRACTION`` of the image are ignored."""
    height, width = probs.shape[1:]
    labels = probs.argmax(0)
    is_face = torch.isin(labels, torch.tensor([CLASS_INDEX[n] for n in FACE_CLASSES])).numpy().astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(is_face, connectivity=8)
    min_area = max(MIN_FACE_PIXELS, MIN_FACE_FRACTION * height * width)
    faces = [stats[i] for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= min_area]
    faces.sort(key=lambda s: -s[cv2.CC_STAT_AREA])
    return [(float(x), float(y), float(x + w), float(y + h)) for x, y, w, h, _ in faces]


def _centroid(weight: torch.Tensor) -> tuple[float, float] | None:
    total = float(weight.sum())
    if total < 1.0:
        return None
    ys, xs = torch.meshgrid(torch.arange(weight.shape[0], dtype=torch.float32),
                            torch.arange(weight.shape[1], dtype=torch.float32), indexing="ij")
    return float((weight * xs).sum()) / total, float((weight * ys).sum()) / total


def _midline(probs: torch.Tensor, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """A point on the face's midline and its upward direction (image coordinates, y down).

    The nose and the mouth both lie on the midline (also in profile), so the line through their centroids
    follows the head's roll; without a mouth it is vertical through the nose, without a nose through the
    box centre.
    """
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    crop = probs[:, y0:y1, x0:x1]
    nose = _centroid(crop[CLASS_INDEX["nose"]])
    mouth = _centroid(crop[[CLASS_INDEX[n] for n in ("mouth", "u_lip", "l_lip")]].sum(0))
    up = np.array([0.0, -1.0])
    if nose is None:
        return np.array([(x0 + x1) / 2, (y0 + y1) / 2]), up
    origin = np.array([nose[0] + x0, nose[1] + y0])
    if mouth is not None:
        direction = np.array(nose) - np.array(mouth)
        length = float(np.hypot(*direction))
        if length > 1.0:
            up = direction / length
    return origin, up


def assign_sides(probs: torch.Tensor, boxes: list[Box]) -> torch.Tensor:
    """One image's [19,H,W] probabilities with each l_/r_ pair re-split by side of the face midline:
    subject's left = the right-hand side of the midline in the image. Pixels belong to the nearest face."""
    if not boxes:
        return probs
    height, width = probs.shape[1:]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    owner_distance = np.full((height, width), np.inf, dtype=np.float32)
    subject_left = np.zeros((height, width), dtype=bool)
    for box in boxes:
        origin, up = _midline(probs, box)
        centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        distance = (xs - centre_x) ** 2 + (ys - centre_y) ** 2
        mine = distance < owner_distance
        owner_distance[mine] = distance[mine]
        # z of up x (p - origin) > 0  <=>  p lies to the image-right of the upward midline
        side = up[0] * (ys - origin[1]) - up[1] * (xs - origin[0]) > 0
        subject_left[mine] = side[mine]
    left = torch.from_numpy(subject_left)
    out = probs.clone()
    for left_name, right_name in PAIRED_CLASSES:
        li, ri = CLASS_INDEX[left_name], CLASS_INDEX[right_name]
        pair = probs[li] + probs[ri]
        out[li] = torch.where(left, pair, torch.zeros_like(pair))
        out[ri] = torch.where(left, torch.zeros_like(pair), pair)
    return out
