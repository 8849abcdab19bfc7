"""The folder layout ``python -m remaskable_core eval`` reads, and reading its files.

    DIR/images/<name>.<ext>        the originals (png, jpg, jpeg, webp, bmp, tif)
    DIR/masks/<name>.<ext>         edit masks, same size as the original: white = edited region (read as greyscale,
                                   alpha ignored); metrics of the background are taken where the mask is black
    DIR/edits/<name>.<ext>         the edited images; any number of edit folders can be compared (--edits A B ...),
                                   e.g. raw sampler output and the pixel-blended result, BrushBench-style
    DIR/annotations/               face-parsing ground truth, either
        <name>.png                   label maps: pixel value = class index (CelebAMask-HQ order, see parsing/labels.py)
        <k>/<NNNNN>_<class>.png      or CelebAMask-HQ's CelebAMask-HQ-mask-anno layout: one binary mask per class,
                                     NNNNN the image index zero-padded to 5 digits, k = index // 2000; images are then
                                     named by their index (0.jpg ... 29999.jpg as in CelebA-HQ-img)
    DIR/predictions/<name>.png     predicted label maps, same encoding as label-map annotations

Files are matched by name without extension. Every folder can be given elsewhere on the command line.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from ..errors import InvalidInputError
from ..parsing.labels import CLASS_INDEX, CLASSES

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
IMAGES, MASKS, EDITS, ANNOTATIONS, PREDICTIONS = "images", "masks", "edits", "annotations", "predictions"

# CelebAMask-HQ-mask-anno: where class masks overlap, the later class here wins. This is FaRL's order
# (farl/datasets/celebamask_hq.py), the order behind the published FaRL/SegFace F1 numbers.
CELEBAMASK_PRECEDENCE: tuple[str, ...] = (
    "neck", "skin", "cloth", "l_ear", "r_ear", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "mouth", "l_lip",
    "u_lip", "hair", "eye_g", "hat", "ear_r", "neck_l",
)
_CELEBAMASK_FILE = re.compile(r"^\d{5}_[a-z_]+\.png$")


def image_files(folder: Path, option: str) -> dict[str, Path]:
    """name (file stem) -> image file directly in ``folder``; ``option`` names the folder in error messages."""
    if not folder.is_dir():
        raise InvalidInputError(option, f"'{folder}' is not a folder.")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if path.stem in found:
            raise InvalidInputError(option, f"'{found[path.stem].name}' and '{path.name}' in '{folder}' have the same "
                                            f"name.", "Keep one file per name: files are matched by name.")
        found[path.stem] = path
    return found


def _read(path: Path, flags: int) -> np.ndarray:
    data = np.fromfile(str(path), np.uint8)  # cv2.imread cannot open non-ASCII paths on Windows
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise InvalidInputError(str(path), "cannot be read as an image.", "Replace it with a PNG or JPEG file.")
    return image


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 [H,W,3] (greyscale repeated, alpha dropped, 16-bit scaled to 8)."""
    return np.ascontiguousarray(_read(path, cv2.IMREAD_COLOR)[..., ::-1])


def read_edited_region(path: Path, threshold: float) -> np.ndarray:
    """A mask file as bool [H,W]: True where the greyscale value is at least ``threshold`` (0..1) of white."""
    grey = _read(path, cv2.IMREAD_GRAYSCALE)
    return grey.astype(np.float32) / 255.0 >= threshold


def read_label_map(path: Path, order: tuple[str, ...] = CLASSES) -> np.ndarray:
    """A label-map PNG (one channel, or palette indices, or three equal channels) whose values index ``order``, as
    int64 [H,W] canonical class indices."""
    raw = _read(path, cv2.IMREAD_UNCHANGED)
    if raw.ndim == 3:
        if raw.shape[2] == 4:
            raw = raw[..., :3]
        if not (raw == raw[..., :1]).all():
            raise InvalidInputError(str(path), "is a colour image, not a label map.",
                                    "Save class indices (0, 1, 2...) as a greyscale PNG, one value per class.")
        raw = raw[..., 0]
    labels = raw.astype(np.int64)
    if labels.size and labels.max() >= len(order):
        raise InvalidInputError(str(path), f"has label {int(labels.max())}, but there are only {len(order)} classes "
                                           f"(0-{len(order) - 1}).", "Is it a label map in this class order?")
    to_canonical = np.array([CLASS_INDEX[name] for name in order], np.int64)
    return to_canonical[labels]


def is_celebamask_layout(root: Path) -> bool:
    """Whether ``root`` looks like CelebAMask-HQ-mask-anno (numbered folders of NNNNN_<class>.png files)."""
    for folder in root.iterdir():
        if folder.is_dir() and folder.name.isdigit():
            return any(_CELEBAMASK_FILE.match(p.name) for p in folder.iterdir())
    return False


class Annotations:
    """Face-parsing ground truth by image name: a folder of label maps or CelebAMask-HQ's per-class masks."""

    def __init__(self, root: Path, option: str = "--annotations"):
        if not root.is_dir():
            raise InvalidInputError(option, f"'{root}' is not a folder.")
        self.root = root
        self.celebamask = is_celebamask_layout(root)
        self.label_maps = {} if self.celebamask else image_files(root, option)
        self.kind = "CelebAMask-HQ per-class masks" if self.celebamask else "label maps"

    def label_map(self, name: str) -> np.ndarray | None:
        """int64 [H,W] canonical labels of image ``name``; None when it has no annotation."""
        if not self.celebamask:
            path = self.label_maps.get(name)
            return None if path is None else read_label_map(path)
        if not name.isdigit():
            return None
        index = int(name)
        stem = self.root / str(index // 2000) / f"{index:05d}"
        labels = None
        for class_name in CELEBAMASK_PRECEDENCE:
            path = Path(f"{stem}_{class_name}.png")
            if path.is_file():
                region = _read(path, cv2.IMREAD_GRAYSCALE) > 0
                if labels is None:
                    labels = np.full(region.shape, CLASS_INDEX["background"], np.int64)
                elif region.shape != labels.shape:
                    raise InvalidInputError(str(path), f"is {region.shape[1]}x{region.shape[0]} but the other masks "
                                                       f"of image {name} are {labels.shape[1]}x{labels.shape[0]}.")
                labels[region] = CLASS_INDEX[class_name]
        return labels
