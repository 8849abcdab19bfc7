"""Per-stage latency and peak memory of one ReMaskable edit, MaskedInpaintSampler against ComfyUI's stock KSampler,
the mask stages in SD1.5 UNet CFG steps, and resident memory over consecutive edits. Prints a markdown table and
writes JSON.

Every model has its real architecture and size; weights are random where the real files are not bundled with an
installed package (the table's Weights column says which). The sampler and the full edits run in a ComfyUI
subprocess (bench/comfyui_sampling.py) on a random-weight SD1.5 checkpoint with the real UNet and VAE.

    python -m remaskable_core bench [--device cpu|cuda] [--size 512] [--repeats 3] [--steps 30] [--edits 20]
        [--stages faceparse-segformer sam-encoder ... sampler edits] [--comfyui DIR] [--json out.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .stages import STAGES

COMFY_PARTS = ("sampler", "edits")
PACK_DIR = Path(__file__).resolve().parents[2]
COMFY_SCRIPT = PACK_DIR / "bench" / "comfyui_sampling.py"
# --quick: tiny architectures and sizes, for the command's own test
QUICK = {"size": 64, "repeats": 1, "steps": 3, "edits": 3}
FULL = {"size": 512, "repeats": 3, "steps": 30, "edits": 20}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--size", type=int, help=f"image side in px (default {FULL['size']})")
    parser.add_argument("--repeats", type=int, help=f"timed runs per stage after a warm-up (default {FULL['repeats']})")
    parser.add_argument("--steps", type=int, help=f"sampling steps of the sampler comparison and the edits "
                                                  f"(default {FULL['steps']}; at least 2 for a time per step)")
    parser.add_argument("--edits", type=int, help=f"consecutive full edits for the memory check "
                                                  f"(default {FULL['edits']})")
    parser.add_argument("--stages", nargs="+", choices=(*STAGES, *COMFY_PARTS), metavar="STAGE",
                        help=f"what to measure (default all): {', '.join((*STAGES, *COMFY_PARTS))}")
    parser.add_argument("--comfyui", type=Path, default=Path(os.environ.get("COMFYUI_DIR") or Path.home() / "ComfyUI"),
                        help="ComfyUI checkout for the sampler and edit parts (default $COMFYUI_DIR or ~/ComfyUI)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--quick", action="store_true", help="tiny models and sizes (checks the command works)")


def settings_from(args: argparse.Namespace) -> dict:
    defaults = QUICK if args.quick else FULL
    settings = {key: getattr(args, key) if getattr(args, key) is not None else value
                for key, value in defaults.items()}
    for key in ("size", "repeats", "steps"):
        if settings[key] < 1:
            raise SystemExit(f"--{key} must be at least 1")
    if settings["size"] % 8:
        raise SystemExit("--size must be a multiple of 8 (the latent stride)")
    settings.update(device=args.device, quick=args.quick)
    return settings


def run_comfy_part(args: argparse.Namespace, settings: dict, parts: list[str]) -> tuple[dict | None, str | None]:
    """The ComfyUI subprocess's results, or None and why not."""
    if not (args.comfyui / "comfy" / "sd.py").is_file():
        return None, f"ComfyUI not found at {args.comfyui} (pass --comfyui DIR): sampler and edits not measured"
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "comfyui.json"
        command = [sys.executable, str(COMFY_SCRIPT), "--comfyui", str(args.comfyui), "--json", str(out),
                   "--device", settings["device"], "--size", str(settings["size"]), "--steps", str(settings["steps"]),
                   "--repeats", str(settings["repeats"]), "--edits", str(settings["edits"]), "--parts", *parts]
        if settings["quick"]:
            command.append("--quick")
        print(f"running the ComfyUI part ({', '.join(parts)}) in a subprocess ...", file=sys.stderr, flush=True)
        completed = subprocess.run(command, cwd=PACK_DIR)
        if completed.returncode != 0:
            raise SystemExit(f"the ComfyUI part failed (exit code {completed.returncode}): {' '.join(command)}")
        return json.loads(out.read_text()), None


def measure_stages(settings: dict, wanted: list[str]) -> list:
    import torch

    with torch.no_grad():  # scoped: the command also runs in-process (tests), where grad must stay on afterwards
        return _measure_stages(settings, wanted)


def _measure_stages(settings: dict, wanted: list[str]) -> list:
    from .measure import measure
    from .report import Row
    from .stages import Pipeline, stage_calls, test_image

    pipeline = Pipeline(settings["device"], settings["quick"])
    calls = stage_calls(pipeline, test_image(settings["size"]), wanted)  # builds the models and the inputs
    model_of = {"sam-encoder": "sam", "sam-decoder": "sam", "dinov2refine": "dinov2", "identityguard": "identity"}
    rows = []
    for stage, call in calls.items():
        print(f"measuring {stage} ...", file=sys.stderr, flush=True)
        timing = measure(call, settings["repeats"], settings["device"])
        built = pipeline.built.get(model_of.get(stage, stage))
        model, weights, params = (built.architecture, built.weights, built.params_m) if built else ("—", "—", None)
        if stage == "identityguard":
            lpips = pipeline.built["lpips"]
            model, weights = f"{model} + {lpips.architecture}", f"{weights}; LPIPS: {lpips.weights}"
            params = lpips.params_m
        rows.append(Row(stage, STAGES[stage], model, weights, params, timing.median_ms, timing.runs_ms,
                        timing.peak_mb))
    return rows


def main(args: argparse.Namespace) -> int:
    from .measure import memory_method
    from .report import as_dicts, machine, markdown, targets

    settings = settings_from(args)
    wanted = args.stages or [*STAGES, *COMFY_PARTS]
    stage_ids = [stage for stage in STAGES if stage in wanted]
    parts = [part for part in COMFY_PARTS if part in wanted]
    info = machine(settings["device"])
    rows = measure_stages(settings, stage_ids) if stage_ids else []
    comfy, notes = None, []
    if parts:
        comfy, why_not = run_comfy_part(args, settings, parts)
        if why_not:
            notes.append(why_not)
    unit = ((comfy or {}).get("sampler") or {}).get("stock", {}).get("step_ms")
    for row in rows:
        row.cfg_steps = row.median_ms / unit if unit else None
    if comfy:
        notes.append("The SD1.5 checkpoint is tests/fixtures/sd15.py's: the real UNet and VAE architectures with random "
                     "weights, loaded by ComfyUI's own checkpoint loader; sampler ddim / ddim_uniform, CFG 7.5.")
    if settings["device"] == "cpu":
        notes.append("CPU run: the GPU targets (H100) cannot be measured here.")
    if settings["quick"]:
        notes.append("--quick: tiny architectures; the numbers only show that the command works.")
    result = {"machine": info, "settings": settings, "memory_method": memory_method(settings["device"]),
              "stages": as_dicts(rows), "comfyui": comfy,
              "targets": targets(rows, comfy, settings, info.get("gpu")), "notes": notes}
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0
