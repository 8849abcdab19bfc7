"""Measurements for SAMPrompt and DINOv2Refine (numbers printed, nothing asserted):

    python -m tests.bench.samrefine [refine] [sam]

refine: IoU with the true mask before/after refining masks eroded/dilated by 4, 8 and 12 px, on MobileNetV2 ImageNet
features (tests/fixtures/refine_cases.py), the pixels a second refinement changes, and those a clean mask loses.
sam: time of SAMPrompt's first call on an image (encoder + decoder) against a re-prompt of the same image (cached
embedding), with the real SAM ViT-B architecture (random weights: speed does not depend on them).
"""

from __future__ import annotations

import sys
import time

try:
    import torchvision  # noqa: F401  (before transformers/timm in the CPU environment, see tests/conftest.py)
except ImportError:
    pass
import torch

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


def bench_sam() -> None:
    from remaskable_core.sam import build_sam
    from remaskable_core.sam_prompts import EmbeddingCache, Prompt, segment

    torch.set_grad_enabled(False)
    model = build_sam({"variant": "vit_b", "embed_dim": 768, "depth": 12, "num_heads": 12,
                       "global_attn_indexes": [2, 5, 8, 11], "image_size": 1024, "prompt_embed_dim": 256,
                       "decoder_mlp_dim": 2048}).eval()
    image = torch.rand(1, 512, 512, 3)
    cache = EmbeddingCache()
    prompts = [[Prompt([(100.0 + 10 * i, 200.0)], [1])] for i in range(4)]
    start = time.perf_counter()
    segment(model, image, prompts[0], cache=cache)
    first = time.perf_counter() - start
    again = []
    for prompt in prompts[1:]:
        start = time.perf_counter()
        segment(model, image, prompt, cache=cache)
        again.append(time.perf_counter() - start)
    cached = sorted(again)[len(again) // 2]
    print(f"SAM ViT-B on a 512x512 image, {torch.get_num_threads()} threads: first prompt {first:.2f} s (encoder + "
          f"decoder), re-prompt {cached:.3f} s (median of {len(again)}, cached embedding): {first / cached:.0f}x faster")


if __name__ == "__main__":
    wanted = set(sys.argv[1:]) or {"refine", "sam"}
    if "refine" in wanted:
        bench_refine()
    if "sam" in wanted:
        bench_sam()
