"""`python -m remaskable_core bench --quick` end to end: the table and the JSON have every stage, the sampler
comparison, the CFG-step unit and the memory over edits. Structure only: timings are never asserted."""

from __future__ import annotations

import json
import math

from remaskable_core.__main__ import main
from remaskable_core.benchmark.stages import MASK_STAGES, STAGES

ROW_KEYS = {"stage", "name", "model", "weights", "params_m", "median_ms", "runs_ms", "peak_mb", "cfg_steps"}


def table_rows(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| Stage")]


def test_quick_bench_end_to_end(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    printed = capsys.readouterr().out

    assert result["settings"]["quick"] and result["settings"]["device"] == "cpu"
    assert {"cpu", "logical_cores", "torch", "ram_gb"} <= set(result["machine"])
    assert [row["stage"] for row in result["stages"]] == list(STAGES)
    for row in result["stages"]:
        assert set(row) == ROW_KEYS
        assert len(row["runs_ms"]) == result["settings"]["repeats"]
        assert math.isfinite(row["median_ms"]) and row["median_ms"] > 0
        assert row["cfg_steps"] is not None and math.isfinite(row["cfg_steps"])
    weights = {row["stage"]: row["weights"] for row in result["stages"]}
    assert weights["faceparse-segformer"] == weights["sam-encoder"] == weights["dinov2refine"] == "random"
    assert weights["faceparse-landmarks"].startswith("real")

    comfy = result["comfyui"]
    sampler = comfy["sampler"]
    assert sampler["steps"] == result["settings"]["steps"]
    for path in ("stock", "ours"):
        assert len(sampler[path]["runs"]["wall_s"]) == result["settings"]["repeats"]  # the warm-up pair is dropped
        assert sampler[path]["step_ms"] > 0
    assert math.isclose(sampler["wall_ratio"], sampler["ours"]["wall_s"] / sampler["stock"]["wall_s"])
    edits = comfy["edits"]
    assert len(edits["seconds"]) == len(edits["rss_mb"]) == result["settings"]["edits"]

    targets = "\n".join(result["targets"])
    assert "MaskedInpaintSampler / stock KSampler path" in targets and "UNet CFG steps" in targets
    assert "not measurable without a GPU" in targets and "Resident memory over 3 edits" in targets
    assert all(STAGES[stage] in targets for stage in MASK_STAGES)

    rows = table_rows(printed)
    assert [row[0] for row in rows[:len(STAGES)]] == list(STAGES.values())
    assert all(len(row) == 7 for row in rows)
    assert any(row[0].startswith("UNet CFG step") and row[-1] == "1.00" for row in rows)
    assert any(row[0].startswith("Full edit") for row in rows)
    assert "Measured on:" in printed and "no GPU" in printed


def test_stage_subset_without_comfyui(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--stages", "maskfuse", "pixelblend", "sampler", "--comfyui",
                 str(tmp_path / "no-comfyui"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [row["stage"] for row in result["stages"]] == ["maskfuse", "pixelblend"]
    assert result["comfyui"] is None and result["stages"][0]["cfg_steps"] is None
    assert any("ComfyUI not found" in note for note in result["notes"])
    assert any("not measured" in line for line in result["targets"])
    assert len(table_rows(capsys.readouterr().out)) == 2
