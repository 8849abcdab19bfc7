"""Face-parsing speed per backend at real model sizes (random weights; speed does not depend on them).

    python bench/bench_parsing.py [--device cpu|cuda] [--repeats 3]

Prints, per backend: load time, the network alone on one 512x512 input, and FaceParse end to end (parse,
left/right, mask, preview) on the 512x512 astronaut and on it upscaled to 1024x1024. SegFormer is the
jonathandinu/face-parsing architecture (MiT-B5, decoder 768), built from a state dict through the same
shape-reading loader users get; BiSeNet is zllrunning's 79999_iter architecture.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from remaskable_core.parsing import face_parse  # noqa: E402
from remaskable_core.parsing.bisenet import BiSeNet, BiSeNetParser  # noqa: E402
from remaskable_core.parsing.labels import CLASSES  # noqa: E402
from remaskable_core.parsing.segformer import SegFormerParser, build_segformer, legacy_state, segformer_config  # noqa: E402

B5 = {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 6, 40, 3], "num_attention_heads": [1, 2, 5, 8],
      "decoder_hidden_size": 768, "num_labels": 19}


def segformer_b5() -> SegFormerParser:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    with torch.device("meta"):
        reference = SegformerForSemanticSegmentation(SegformerConfig(**B5))
    state = legacy_state({k: torch.randn(v.shape) * 0.02 if v.is_floating_point() else torch.zeros(v.shape, dtype=v.dtype)
                          for k, v in reference.state_dict().items()})
    config = segformer_config(state)
    assert all(config[k] == v for k, v in B5.items()), config  # the B5 architecture is read back from the shapes
    return SegFormerParser(build_segformer(config, state), CLASSES)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: allocator and kernel selection
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import skimage.data

    photo = torch.from_numpy(skimage.data.astronaut()).float()[None] / 255
    big = torch.nn.functional.interpolate(photo.permute(0, 3, 1, 2), size=(1024, 1024), mode="bilinear").permute(0, 2, 3, 1)
    torch.set_grad_enabled(False)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")

    def network(name, build):
        start = time.perf_counter()
        model = build()
        load = time.perf_counter() - start
        model = model.to(args.device)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        pixels = torch.randn(1, 3, 512, 512, device=args.device)
        net = timed(lambda: model.logits(pixels), args.repeats)
        print(f"{name:10s} {params:6.1f} M params  build {load:5.2f} s  network 512x512 {net * 1000:7.0f} ms", end="")
        return model

    segformer = network("segformer", segformer_b5)
    for image in (photo, big):
        print(f"  FaceParse {image.shape[2]}x{image.shape[1]} "
              f"{timed(lambda: face_parse(segformer, image), args.repeats) * 1000:7.0f} ms", end="")
    print()
    bisenet = network("bisenet", lambda: BiSeNetParser(BiSeNet(19).eval()))
    for image in (photo, big):
        print(f"  FaceParse {image.shape[2]}x{image.shape[1]} "
              f"{timed(lambda: face_parse(bisenet, image), args.repeats) * 1000:7.0f} ms", end="")
    print()
    from remaskable_core.parsing.landmarks import LandmarkParser

    start = time.perf_counter()
    landmarks = LandmarkParser()
    print(f"{'landmarks':10s} (mediapipe)       build {time.perf_counter() - start:5.2f} s  "
          f"parse only 512x512 {timed(lambda: landmarks.parse(photo), args.repeats) * 1000:7.0f} ms", end="")
    for image in (photo, big):
        print(f"  FaceParse {image.shape[2]}x{image.shape[1]} "
              f"{timed(lambda: face_parse(landmarks, image), args.repeats) * 1000:7.0f} ms", end="")
    print()


if __name__ == "__main__":
    main()
