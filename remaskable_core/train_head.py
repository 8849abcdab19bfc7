"""``python -m remaskable_core train-head``: train DINOv2Refine's optional linear head on image/mask pairs.

The dataset is laid out like CelebAMask-HQ: ``IMAGES/<N>.jpg`` and ``MASKS/<N // 2000>/<N:05d>_<class>.png``
(a missing mask file means the class is absent from that image). The head learns, per DINOv2 patch, whether it
lies in the union of ``--classes``; its target is the fraction of the patch inside. The result is a small
.safetensors for models/remaskable_heads, to be used with the same DINOv2 file.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ReMaskableError
from .parsing.labels import resolve_classes
from .refine import LinearHead

IMAGE_NAME = re.compile(r"^(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--images", type=Path, required=True, help="folder of <N>.jpg images (CelebA-HQ-img)")
    parser.add_argument("--masks", type=Path, required=True,
                        help="folder of <N//2000>/<N:05d>_<class>.png masks (CelebAMask-HQ-mask-anno)")
    parser.add_argument("--dinov2", type=Path, required=True, help="the DINOv2 weights file the head is for")
    parser.add_argument("--out", type=Path, required=True, help="the head file to write (.safetensors)")
    parser.add_argument("--classes", default="hair", help="classes or presets whose union the head finds "
                                                          "(default: hair)")
    parser.add_argument("--resolution", type=int, default=644, help="DINOv2 input long side in px (default 644, "
                                                                    "as DINOv2Refine)")
    parser.add_argument("--limit", type=int, default=0, help="use at most this many images (0 = all)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--validation", type=float, default=0.1, help="share of images held out (default 0.1)")
    parser.add_argument("--seed", type=int, default=0)


def dataset_pairs(images: Path, masks: Path, classes: tuple[str, ...]) -> list[tuple[Path, list[Path]]]:
    """(image, existing mask files of ``classes``) per image, in numeric order."""
    if not images.is_dir():
        raise ReMaskableError(f"--images {images} is not a folder.")
    if not masks.is_dir():
        raise ReMaskableError(f"--masks {masks} is not a folder.")
    pairs = []
    for path in sorted(images.iterdir(), key=lambda p: (len(p.stem), p.stem)):
        match = IMAGE_NAME.match(path.name)
        if not match:
            continue
        number = int(match.group(1))
        folder = masks / str(number // 2000)
        pairs.append((path, [f for c in classes if (f := folder / f"{number:05d}_{c}.png").is_file()]))
    if not pairs:
        raise ReMaskableError(f"no <N>.jpg images in {images}.")
    if not any(files for _, files in pairs):
        raise ReMaskableError(f"no mask of {', '.join(classes)} found under {masks} "
                              f"(expected e.g. {masks / '0' / f'00000_{classes[0]}.png'}).")
    return pairs


def _read_rgb(path: Path) -> torch.Tensor:
    from PIL import Image

    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)


def _read_target(files: list[Path], height: int, width: int) -> torch.Tensor:
    from PIL import Image

    target = torch.zeros(height, width)
    for file in files:
        with Image.open(file) as mask:
            layer = np.asarray(mask.convert("L").resize((width, height), Image.NEAREST), dtype=np.float32) / 255.0
        target = torch.maximum(target, torch.from_numpy(layer))
    return (target >= 0.5).float()


def cell_dataset(pairs, backbone, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised patch features [N, C] and the fraction [N] of each patch inside the target region."""
    features, targets = [], []
    for index, (image_path, mask_files) in enumerate(pairs):
        image = _read_rgb(image_path)
        cells = backbone.patch_features(image, resolution)  # [C, h, w]
        target = _read_target(mask_files, image.shape[0], image.shape[1])
        fraction = F.adaptive_avg_pool2d(target[None, None], cells.shape[1:])[0, 0]
        features.append(F.normalize(cells.flatten(1).T, dim=1))
        targets.append(fraction.flatten())
        print(f"\rfeatures: {index + 1}/{len(pairs)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return torch.cat(features), torch.cat(targets)


def train_linear_head(features: torch.Tensor, targets: torch.Tensor, epochs: int, seed: int = 0,
                      batch_size: int = 4096) -> tuple[torch.Tensor, float, list[float]]:
    """Logistic regression on soft targets: (weight [C], bias, loss per epoch)."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.zeros(features.shape[1], requires_grad=True)
    prior = targets.mean().clamp(1e-4, 1 - 1e-4)
    bias = torch.log(prior / (1 - prior)).clone().requires_grad_(True)  # start at the base rate
    optimizer = torch.optim.Adam([weight, bias], lr=0.05, weight_decay=1e-4)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(features.shape[0], generator=generator)
        total = 0.0
        for start in range(0, features.shape[0], batch_size):
            rows = order[start:start + batch_size]
            loss = F.binary_cross_entropy_with_logits(features[rows] @ weight + bias, targets[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * rows.numel()
        losses.append(total / features.shape[0])
    return weight.detach(), float(bias.detach()), losses


def cell_accuracy(head: LinearHead, features: torch.Tensor, targets: torch.Tensor) -> float:
    predicted = torch.sigmoid(head.logits(features)) >= 0.5
    return float((predicted == (targets >= 0.5)).float().mean())


def main(args: argparse.Namespace) -> int:
    from .dinov2 import load_dinov2

    try:
        classes = resolve_classes(args.classes)
        pairs = dataset_pairs(args.images, args.masks, classes)
        if args.limit > 0:
            pairs = pairs[:args.limit]
        backbone = load_dinov2(args.dinov2)
    except ReMaskableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(args.seed)).tolist()
    held_out = int(round(args.validation * len(pairs))) if len(pairs) > 1 else 0
    validation = [pairs[i] for i in order[:held_out]]
    training = [pairs[i] for i in order[held_out:]]
    features, targets = cell_dataset(training, backbone, args.resolution)
    weight, bias, losses = train_linear_head(features, targets, args.epochs, args.seed)
    head = LinearHead(weight, bias, classes, features.shape[1], f"{args.dinov2.name} ({backbone.arch.variant})",
                      args.resolution)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    head.save(args.out)
    print(f"trained on {len(training)} images ({features.shape[0]} patches, {100 * float(targets.mean()):.1f}% "
          f"{'+'.join(classes)}): loss {losses[0]:.4f} -> {losses[-1]:.4f}, patch accuracy "
          f"{100 * cell_accuracy(head, features, targets):.1f}%")
    if validation:
        val_features, val_targets = cell_dataset(validation, backbone, args.resolution)
        print(f"held-out {len(validation)} images: patch accuracy "
              f"{100 * cell_accuracy(head, val_features, val_targets):.1f}%")
    print(f"wrote {args.out}")
    return 0
