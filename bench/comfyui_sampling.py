"""The ComfyUI half of ``python -m remaskable_core bench`` (which starts it as a subprocess: the library never
imports comfy). In one process, on one random-weight SD1.5 checkpoint (tests/fixtures/sd15.py; the real UNet and
VAE architectures, or tiny ones with --quick):

* sampler: ReMaskable.MaskedInpaintSampler against ComfyUI's stock nodes doing the same edit (VAE Encode + Set
  Latent Noise Mask + KSampler + VAE Decode), same model, latent, latent mask, seed, sampler (ddim /
  ddim_uniform), steps and CFG 7.5. Runs alternate and the first pair is a warm-up; medians of wall time, process
  CPU time and the time per sampling step (between the samplers' progress callbacks; KSampler's step is one UNet
  CFG step: the conditional and unconditional UNet passes in one batch).
* edits: complete edits one after another (remaskable_core.benchmark.stages' mask stages, MaskedInpaintSampler,
  IdentityGuard, PixelBlend) with the resident memory after each.

    python bench/comfyui_sampling.py --comfyui ~/ComfyUI --json out.json [--device cpu|cuda] [--size 512]
        [--steps 30] [--repeats 3] [--edits 20] [--quick] [--parts sampler edits]
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

PACK_DIR = Path(__file__).resolve().parents[1]
PARTS = ("sampler", "edits")
SAMPLING = dict(cfg=7.5, sampler_name="ddim", scheduler="ddim_uniform", denoise=1.0)


def import_comfy(comfyui: Path, device: str) -> None:
    """ComfyUI on sys.path (appended: its nodes.py must not shadow anything), its argv parsing off, and CPU mode
    unless CUDA is asked for, all before comfy.model_management probes the hardware."""
    os.environ["COMFYUI_DIR"] = str(comfyui)  # what tests/fixtures/sd15.py reads
    sys.path.append(str(comfyui))
    import comfy.options

    comfy.options.enable_args_parsing(False)
    import comfy.cli_args

    comfy.cli_args.args.cpu = device == "cpu"
    import comfy.model_management  # noqa: F401
    import comfy.utils

    comfy.utils.PROGRESS_BAR_ENABLED = False  # no tqdm bars; the progress callbacks still run


def load_module(name: str, path: Path, package_dir: Path | None = None):
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(package_dir)] if package_dir else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class StepClock:
    """Times between consecutive sampling-step callbacks (ComfyUI's progress bar hook)."""

    def __init__(self, device: str):
        self.device = device
        self.stamps: list[float] = []

    def __call__(self, value, total, preview, node_id=None) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())

    def steps_ms(self) -> list[float]:
        return [(b - a) * 1000 for a, b in zip(self.stamps, self.stamps[1:])]


def cuda_peak_mb(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2 ** 20 if device == "cuda" else None


def compare_samplers(stock, generate, model, positive, negative, vae, image, latent, steps: int, repeats: int,
                     device: str) -> dict:
    """Stock KSampler path against MaskedInpaintSampler, alternating; the first pair is a warm-up."""
    import comfy.utils

    from remaskable_core.latent_mask import upsample_latent_mask

    pixel_mask = upsample_latent_mask(latent["noise_mask"][:, 0], image.shape[1], image.shape[2])

    def run_stock():
        masked = stock.SetLatentNoiseMask().set_mask(stock.VAEEncode().encode(vae, image)[0], pixel_mask)[0]
        sampled = stock.KSampler().sample(model, positive=positive, negative=negative, latent_image=masked,
                                          seed=0, steps=steps, **SAMPLING)[0]
        return stock.VAEDecode().decode(vae, sampled)[0]

    def run_ours():
        return generate.MaskedInpaintSampler.execute(model, positive, negative, vae, image, seed=0, steps=steps,
                                                     candidates=1, mode="auto", latent=latent, **SAMPLING).args[1]

    runs = {name: {"wall_s": [], "cpu_s": [], "step_ms": [], "peak_gpu_mb": []} for name in ("stock", "ours")}
    for _ in range(repeats + 1):
        for name, fn in (("stock", run_stock), ("ours", run_ours)):
            clock = StepClock(device)
            comfy.utils.set_progress_bar_global_hook(clock)
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            runs[name]["wall_s"].append(time.perf_counter() - start_wall)
            runs[name]["cpu_s"].append(time.process_time() - start_cpu)
            runs[name]["step_ms"].append(clock.steps_ms())
            runs[name]["peak_gpu_mb"].append(cuda_peak_mb(device))
    comfy.utils.set_progress_bar_global_hook(None)

    def summary(name: str) -> dict:
        kept = {key: values[1:] for key, values in runs[name].items()}  # drop the warm-up
        steps_ms = [ms for run in kept["step_ms"] for ms in run]
        return {"wall_s": statistics.median(kept["wall_s"]), "cpu_s": statistics.median(kept["cpu_s"]),
                "step_ms": statistics.median(steps_ms) if steps_ms else None,
                "peak_gpu_mb": max(kept["peak_gpu_mb"]) if device == "cuda" else None, "runs": kept}

    stock_summary, ours_summary = summary("stock"), summary("ours")
    return {"steps": steps, "repeats": repeats, "stock": stock_summary, "ours": ours_summary,
            "wall_ratio": ours_summary["wall_s"] / stock_summary["wall_s"],
            "cpu_ratio": ours_summary["cpu_s"] / stock_summary["cpu_s"]}


def consecutive_edits(pipeline, generate, model, positive, negative, vae, image, steps: int, edits: int,
                      device: str) -> dict:
    """Complete edits one after another; resident memory (and CUDA memory) after each, after garbage collection."""
    from remaskable_core.benchmark.measure import PeakRSS, resident_mb

    seconds, rss_mb, gpu_mb = [], [], []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with PeakRSS() as peak:
        for index in range(edits):
            start = time.perf_counter()
            masks = pipeline.edit_masks(image)
            candidates = generate.MaskedInpaintSampler.execute(
                model, positive, negative, vae, image, seed=index, steps=steps, candidates=1, mode="auto",
                latent=masks.latent, **SAMPLING).args[1]
            pipeline.finish(image, candidates.cpu(), masks.composite)
            if device == "cuda":
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - start)
            gc.collect()
            rss_mb.append(resident_mb())
            if device == "cuda":
                gpu_mb.append(torch.cuda.memory_allocated() / 2 ** 20)
    return {"count": edits, "steps": steps, "seconds": seconds, "rss_mb": rss_mb, "peak_rss_mb": peak.peak_mb,
            "gpu_allocated_mb": gpu_mb or None, "peak_gpu_mb": cuda_peak_mb(device)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfyui", type=Path, required=True)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args(argv)

    comfyui = args.comfyui.expanduser().resolve()
    sys.path.insert(0, str(PACK_DIR))
    import_comfy(comfyui, args.device)
    import comfy.sd

    from remaskable_core.benchmark.stages import Pipeline, hair_ellipse, test_image
    from tests.fixtures.sd15 import write_sd15_checkpoint

    stock = load_module("comfyui_stock_nodes", comfyui / "nodes.py")  # ComfyUI's nodes.py, not the pack's
    load_module("remaskable_pack", PACK_DIR / "__init__.py", PACK_DIR)
    generate = importlib.import_module("remaskable_pack.nodes.generate")

    torch.set_grad_enabled(False)
    size = "tiny" if args.quick else "full"
    image = test_image(args.size)
    pipeline = Pipeline(args.device, args.quick)
    result: dict = {"checkpoint": "SD1.5 tiny UNet + TAESD" if args.quick else "SD1.5 UNet + VAE", "device": args.device}
    with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
        path = write_sd15_checkpoint(Path(folder) / "sd15.ckpt", size=size)
        model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(str(path), output_vae=True, output_clip=True)
        result["unet_params_m"] = sum(p.numel() for p in model.model.diffusion_model.parameters()) / 1e6
        positive = stock.CLIPTextEncode().encode(clip, "a face with red hair")[0]
        negative = stock.CLIPTextEncode().encode(clip, "")[0]
        if "sampler" in args.parts:
            latent = pipeline.latent_downsample(hair_ellipse(args.size))
            result["sampler"] = compare_samplers(stock, generate, model, positive, negative, vae, image, latent,
                                                 args.steps, args.repeats, args.device)
        if "edits" in args.parts and args.edits > 0:
            result["edits"] = consecutive_edits(pipeline, generate, model, positive, negative, vae, image, args.steps,
                                                args.edits, args.device)
    args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
