"""``python -m remaskable_core run``: UI workflow in, image out, through a running server or one it starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.e2e.conftest import comfyui_or_skip, server_env

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
WORKFLOW = Path(__file__).parent / "data" / "invert_and_load_sam.json"


def _photo(path: Path, size=(67, 45)) -> np.ndarray:
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def _run(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "remaskable_core", "run", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_run_against_a_running_server_with_overrides(comfy, tmp_path):
    pixels = _photo(tmp_path / "in.png")
    out = tmp_path / "result" / "out.png"
    done = _run(str(WORKFLOW), "--server", comfy.server.url, "--image", str(tmp_path / "in.png"),
                "--out", str(out), "--set", "Result.filename_prefix=cli_override")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    result = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert result.shape == pixels.shape
    assert np.abs(result - (255 - pixels.astype(int))).max() <= 1
    assert "running node" in done.stderr  # progress is reported
    assert list((comfy.base_dir / "output").glob("cli_override_*.png"))


def test_run_reports_bad_overrides_and_failed_nodes(comfy, tmp_path):
    _photo(tmp_path / "in.png")
    args = [str(WORKFLOW), "--server", comfy.server.url, "--image", str(tmp_path / "in.png"),
            "--out", str(tmp_path / "o.png")]
    bad_input = _run(*args, "--set", "Result.no_such_input=1")
    assert bad_input.returncode == 1 and "has no input 'no_such_input'" in bad_input.stderr
    missing_model = _run(*args, "--set", "ReMaskable.LoadSAM.model_name=sam_vit_l_0b3195.pth")
    assert missing_model.returncode == 1
    assert "sam_vit_l_0b3195.pth" in missing_model.stderr and "ReMaskable.LoadSAM" in missing_model.stderr


def test_run_starts_comfyui_itself_with_a_models_directory(fake_models_dir, tmp_path):
    comfy_dir = comfyui_or_skip()
    pixels = _photo(tmp_path / "in.png", size=(33, 21))
    import os

    env = {**os.environ, **server_env()}
    done = _run(str(WORKFLOW), "--comfyui", str(comfy_dir), "--models", str(fake_models_dir), "--image",
                str(tmp_path / "in.png"), "--out", str(tmp_path / "out.png"), env=env)
    assert done.returncode == 0, done.stderr
    result = np.asarray(Image.open(tmp_path / "out.png").convert("RGB")).astype(int)
    assert np.abs(result - (255 - pixels.astype(int))).max() <= 1
