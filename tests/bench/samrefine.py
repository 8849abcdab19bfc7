"""DINOv2Refine's quality (numbers printed, nothing asserted; speed is measured by `python -m remaskable_core bench`):

    python -m tests.bench.samrefine

IoU with the true mask before/after refining masks eroded/dilated by 4, 8 and 12 px, on MobileNetV2 ImageNet
features (tests/fixtures/refine_cases.py), the pixels a second refinement changes, and those a clean mask loses.
"""

from __future__ import annotations

import time

try:
    import torchvision  # noqa: F401  (before transformers/timm in the CPU environment, see tests/conftest.py)
except ImportError:
    pass

from remaskable_core.mask_ops import grow
from remaskable_core.refine import RefineSettings, refine_masks
from tests.fixtures.refine_cases import MobileNetFeatures, astronaut_suit, coins, iou, mobilenet_weights, \
    textured_shapes


def bench_refine() -> None:
    extract = MobileNetFeatures(mobilenet_weights())
    settings = RefineSettings()
    print(f"refine, {settings}")
    cases = [(f"synthetic{seed}", *textured_shapes(seed)) for seed in range(3)]
    cases += [("astronaut suit", *astronaut_suit()), ("coins", *coins())]
    print(f"{'case':15} {'shift':>5} {'IoU before':>10} {'IoU after':>9} {'gain':>7} {'2nd pass px':>11} {'s':>5}")
    for name, image, truth in cases:
        for shift in (-12, -8, -4, 4, 8, 12):
            coarse = grow(truth[None], shift)
            start = time.perf_counter()
            once, _ = refine_masks(image[None], coarse, extract, settings)
            seconds = time.perf_counter() - start
            twice, _ = refine_masks(image[None], once, extract, settings)
            before, after = iou(coarse[0], truth), iou(once[0], truth)
            print(f"{name:15} {shift:+5d} {before:10.4f} {after:9.4f} {after - before:+7.4f} "
                  f"{int((twice != once).sum()):11d} {seconds:5.2f}")
        clean, _ = refine_masks(image[None], truth[None], extract, settings)
        print(f"{name:15} clean mask: {int((clean[0] != truth).sum())} of {truth.numel()} px changed")


if __name__ == "__main__":
    bench_refine()
