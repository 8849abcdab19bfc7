"""The benchmark's results as one JSON-ready dict, and as a markdown table with the targets checked below it."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass

import torch

from .stages import MASK_STAGES

SAMPLER_RATIO_TARGET = 1.03  # MaskedInpaintSampler within 3 % of the stock KSampler path
MASK_STAGES_TARGET_CFG_STEPS = 1.5
H100_EDIT_TARGET_S = 0.6  # a full 30-step 512x512 edit on an H100
H100_EDIT_TARGET_GB = 6.0
H100_TARGET_STEPS, H100_TARGET_SIZE = 30, 512
MEMORY_GROWTH_TOLERANCE = 0.02  # resident memory may move this fraction between the second and the last edit


@dataclass
class Row:
    stage: str  # stage id
    name: str  # as the table shows it
    model: str
    weights: str
    params_m: float | None
    median_ms: float
    runs_ms: list[float]
    peak_mb: float | None
    cfg_steps: float | None = None  # median_ms in UNet CFG steps of this run


def machine(device: str) -> dict:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    described = {"cpu": cpu, "logical_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                 "ram_gb": round(psutil.virtual_memory().total / 2 ** 30, 1), "python": platform.python_version(),
                 "torch": torch.__version__, "os": platform.platform(), "device": device}
    if device == "cuda":
        described["gpu"] = torch.cuda.get_device_name()
    return described


def machine_line(info: dict) -> str:
    gpu = f"GPU {info['gpu']}" if info.get("gpu") else "no GPU (CPU run)"
    return (f"{info['cpu']}, {info['logical_cores']} logical cores ({info['torch_threads']} torch threads), "
            f"{info['ram_gb']} GB RAM, {gpu}; torch {info['torch']}, Python {info['python']}")


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def targets(rows: list[Row], comfy: dict | None, settings: dict, gpu: str | None) -> list[str]:
    """One line per target of issue 7: measured value, target, verdict (or why it was not measured)."""
    lines = []
    sampler = (comfy or {}).get("sampler")
    if sampler:
        lines.append(f"MaskedInpaintSampler / stock KSampler path ({sampler['steps']} steps, median of "
                     f"{sampler['repeats']}): wall {sampler['wall_ratio']:.3f}, process CPU time "
                     f"{sampler['cpu_ratio']:.3f}; target <= {SAMPLER_RATIO_TARGET:.2f}: "
                     f"{_verdict(sampler['wall_ratio'] <= SAMPLER_RATIO_TARGET)}")
    else:
        lines.append("MaskedInpaintSampler / stock KSampler: not measured (ComfyUI part not run)")
    by_stage = {row.stage: row for row in rows}
    if all(stage in by_stage for stage in MASK_STAGES) and sampler and sampler["stock"]["step_ms"]:
        total_ms = sum(by_stage[stage].median_ms for stage in MASK_STAGES)
        units = total_ms / sampler["stock"]["step_ms"]
        lines.append(f"Mask stages ({' + '.join(by_stage[s].name for s in MASK_STAGES)}): {total_ms:.0f} ms = "
                     f"{units:.2f} UNet CFG steps; target <= {MASK_STAGES_TARGET_CFG_STEPS}: "
                     f"{_verdict(units <= MASK_STAGES_TARGET_CFG_STEPS)}")
    else:
        lines.append("Mask stages in UNet CFG steps: not measured (needs all mask stages and the sampler part)")
    edits = (comfy or {}).get("edits")
    if edits:
        seconds = edits["seconds"][1:] or edits["seconds"]
        edit_s = sorted(seconds)[len(seconds) // 2]
        where = f"{edits['steps']} steps, {settings['size']}x{settings['size']}, {settings['device']}"
        if settings["device"] == "cuda":
            peak_gb = edits["peak_gpu_mb"] / 1024
            comparable = edits["steps"] == H100_TARGET_STEPS and settings["size"] == H100_TARGET_SIZE
            verdict = (f"{_verdict(edit_s < H100_EDIT_TARGET_S)} / {_verdict(peak_gb < H100_EDIT_TARGET_GB)}"
                       if comparable else f"not comparable ({H100_TARGET_STEPS} steps at {H100_TARGET_SIZE}x"
                                          f"{H100_TARGET_SIZE} needed)")
            lines.append(f"Full edit ({where}, {gpu}): median {edit_s:.2f} s, peak GPU memory "
                         f"{peak_gb:.2f} GB; H100 target < {H100_EDIT_TARGET_S} s and < {H100_EDIT_TARGET_GB:.0f} "
                         f"GB: {verdict}")
        else:
            lines.append(f"Full edit ({where}): median {edit_s:.1f} s, peak RSS {edits['peak_rss_mb'] / 1024:.2f} GB;"
                         f" H100 target (< {H100_EDIT_TARGET_S} s, < {H100_EDIT_TARGET_GB:.0f} GB GPU memory): not "
                         f"measurable without a GPU")
        rss = edits["rss_mb"]
        if len(rss) >= 3:
            growth = rss[-1] - rss[1]
            lines.append(f"Resident memory over {len(rss)} edits: {rss[0]:.0f} MB after the first, {rss[1]:.0f} MB "
                         f"after the second, {rss[-1]:.0f} MB after the last ({growth:+.0f} MB from the second); "
                         f"target: no growth (within {MEMORY_GROWTH_TOLERANCE:.0%}): "
                         f"{_verdict(growth <= MEMORY_GROWTH_TOLERANCE * rss[1])}")
        else:
            lines.append(f"Resident memory over {len(rss)} edits: {', '.join(f'{v:.0f}' for v in rss)} MB "
                         f"(3 or more edits needed to judge growth)")
        if edits.get("gpu_allocated_mb"):
            gpu = edits["gpu_allocated_mb"]
            lines.append(f"CUDA memory allocated after each edit: first {gpu[0]:.0f} MB, last {gpu[-1]:.0f} MB")
    else:
        lines.append("Full edit and memory over consecutive edits: not measured (ComfyUI part not run)")
    return lines


def _fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def sampler_rows(comfy: dict) -> list[list[str]]:
    """Table rows for the ComfyUI part: the CFG-step unit, the samplers per step and whole."""
    sampler, edits = comfy.get("sampler"), comfy.get("edits")
    checkpoint, params = comfy["checkpoint"], _fmt(comfy["unet_params_m"], 1)
    rows = []
    if sampler:
        unit, steps = sampler["stock"]["step_ms"], sampler["steps"]
        gpu = (lambda name: _fmt(sampler[name]["peak_gpu_mb"])) if comfy["device"] == "cuda" else (lambda name: "—")
        per_step = sampler["ours"]["step_ms"]
        rows += [
            ["UNet CFG step (stock KSampler step; the unit)", checkpoint, params, _fmt(unit), gpu("stock"),
             "1.00" if unit else "—"],
            ["MaskedInpaintSampler, per step", checkpoint, params, _fmt(per_step), gpu("ours"),
             _fmt(per_step / unit, 2) if unit and per_step else "—"],
            [f"Stock VAE Encode + Set Latent Noise Mask + KSampler + VAE Decode, {steps} steps", checkpoint, params,
             _fmt(sampler["stock"]["wall_s"] * 1000), gpu("stock"), _fmt(sampler["stock"]["wall_s"] * 1000 / unit, 1)
             if unit else "—"],
            [f"MaskedInpaintSampler (encode, sample, decode), {steps} steps", checkpoint, params,
             _fmt(sampler["ours"]["wall_s"] * 1000), gpu("ours"), _fmt(sampler["ours"]["wall_s"] * 1000 / unit, 1)
             if unit else "—"],
        ]
    if edits:
        seconds = edits["seconds"][1:] or edits["seconds"]
        edit_ms = sorted(seconds)[len(seconds) // 2] * 1000
        unit = sampler["stock"]["step_ms"] if sampler else None
        peak = _fmt(edits["peak_gpu_mb"]) if comfy["device"] == "cuda" else f"{edits['peak_rss_mb']:,.0f} (RSS)"
        rows.append([f"Full edit: mask stages + MaskedInpaintSampler ({edits['steps']} steps) + IdentityGuard + "
                     f"PixelBlend", "all of the above", "—", _fmt(edit_ms), peak,
                     _fmt(edit_ms / unit, 1) if unit else "—"])
    return rows


def markdown(result: dict) -> str:
    settings, rows = result["settings"], [Row(**row) for row in result["stages"]]
    comfy = result.get("comfyui") or {}
    header = (f"Measured on: {machine_line(result['machine'])}. Image {settings['size']}x{settings['size']}, "
              f"median of {settings['repeats']} runs after a warm-up. Peak memory: {result['memory_method']}.")
    lines = [header, "",
             "| Stage | Model | Weights | Params (M) | Median ms | Peak memory (MB) | UNet CFG steps |",
             "|---|---|---|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row.name} | {row.model} | {row.weights} | {_fmt(row.params_m, 1)} | "
                     f"{_fmt(row.median_ms, 1 if row.median_ms < 10 else 0)} | {_fmt(row.peak_mb)} | "
                     f"{_fmt(row.cfg_steps, 2)} |")
    for cells in sampler_rows(comfy) if comfy else []:
        name, model, params, ms, peak, units = cells
        lines.append(f"| {name} | {model} | random | {params} | {ms} | {peak} | {units} |")
    lines += ["", *[f"- {line}" for line in result["targets"]]]
    lines += [f"- {note}" for note in result["notes"]]
    return "\n".join(lines)


def as_dicts(rows: list[Row]) -> list[dict]:
    return [asdict(row) for row in rows]
