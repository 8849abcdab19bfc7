"""Time MaskedInpaintSampler against ComfyUI's stock nodes doing the same edit, in one process, as a ratio.

    python -m tests.bench.masked_sampler_vs_ksampler [--size tiny|full] [--steps 50] [--res 128] [--repeats 3]
                                                     [--threads N]

Stock: VAE Encode + Set Latent Noise Mask + KSampler + VAE Decode (plain checkpoint), InpaintModelConditioning +
KSampler + VAE Decode (inpainting checkpoint). Ours: MaskedInpaintSampler with one candidate (it encodes, samples
and decodes). Same fake checkpoint, image, latent mask, seed, sampler (ddim / ddim_uniform), steps and CFG; runs
alternate, the first pair is a warm-up; the medians of the rest are printed, of wall time and of process CPU time
(less sensitive to other processes on a shared machine). Also prints how far the stock path
leaves the unmasked latents from the input (the float rounding MaskedInpaintSampler's final composite removes).
Random-weight models: the numbers say what the extra work costs, nothing about image quality.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from tests.fixtures.sd15 import comfyui_dir, import_comfy, write_sd15_checkpoint

PACK_DIR = Path(__file__).resolve().parents[2]


def load_module(name: str, path: Path, package_dir: Path | None = None):
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(package_dir)] if package_dir else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--res", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    import_comfy()
    import comfy.sd
    import comfy.utils

    comfy.utils.PROGRESS_BAR_ENABLED = False  # both samplers honour it

    stock = load_module("comfyui_stock_nodes", comfyui_dir() / "nodes.py")  # ComfyUI's nodes.py, not the pack's
    load_module("remaskable_pack", PACK_DIR / "__init__.py", PACK_DIR)
    generate = importlib.import_module("remaskable_pack.nodes.generate")

    image = torch.rand(1, args.res, args.res, 3)
    mask = torch.zeros(1, args.res, args.res)
    mask[:, args.res // 4:args.res // 2, args.res // 4:3 * args.res // 4] = 1.0
    cells = generate.downsample_mask(mask, "any-cover")
    pixel_mask = generate.upsample_latent_mask(cells, args.res, args.res)
    common = dict(seed=0, steps=args.steps, cfg=7.5, sampler_name="ddim", scheduler="ddim_uniform", denoise=1.0)

    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        for inpaint in (False, True):
            path = write_sd15_checkpoint(Path(tmp) / f"sd15_{inpaint}.ckpt", inpaint=inpaint, size=args.size)
            model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(str(path), output_vae=True, output_clip=True)
            positive = stock.CLIPTextEncode().encode(clip, "a face with red hair")[0]
            negative = stock.CLIPTextEncode().encode(clip, "")[0]

            def run_stock():
                if inpaint:
                    pos, neg, latent = stock.InpaintModelConditioning().encode(positive, negative, image, vae,
                                                                               pixel_mask, True)
                else:
                    pos, neg = positive, negative
                    latent = stock.SetLatentNoiseMask().set_mask(stock.VAEEncode().encode(vae, image)[0], pixel_mask)[0]
                sampled = stock.KSampler().sample(model, positive=pos, negative=neg, latent_image=latent, **common)[0]
                stock.VAEDecode().decode(vae, sampled)
                return sampled["samples"]

            def run_ours():
                return generate.MaskedInpaintSampler.execute(model, positive, negative, vae, image, candidates=1,
                                                             mode="auto", mask=mask, **common).args[0]["samples"]

            wall, cpu = {"stock": [], "ours": []}, {"stock": [], "ours": []}
            for _ in range(args.repeats + 1):
                for name, fn in (("stock", run_stock), ("ours", run_ours)):
                    start_wall, start_cpu = time.perf_counter(), time.process_time()
                    fn()
                    wall[name].append(time.perf_counter() - start_wall)
                    cpu[name].append(time.process_time() - start_cpu)
            stock_s, ours_s = (statistics.median(wall[k][1:]) for k in ("stock", "ours"))
            stock_cpu, ours_cpu = (statistics.median(cpu[k][1:]) for k in ("stock", "ours"))
            encoded = vae.encode(image)
            keep = (cells == 0)[:, None].expand_as(encoded)
            drift = (run_stock()[keep] - encoded[keep]).abs().max().item()
            exact = torch.equal(run_ours()[keep], encoded[keep])
            kind = "inpaint 9-ch" if inpaint else "plain 4-ch"
            print(f"{args.size} {kind} {args.res}x{args.res} ddim {args.steps} steps, median of {args.repeats}: "
                  f"wall stock {stock_s:.2f} s / ours {ours_s:.2f} s = {ours_s / stock_s:.3f}; "
                  f"CPU stock {stock_cpu:.2f} s / ours {ours_cpu:.2f} s = {ours_cpu / stock_cpu:.3f}; "
                  f"unmasked latents: stock max |diff| {drift:.2e}, ours exact: {exact}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
