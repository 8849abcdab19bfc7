"""The shipped workflows: files match their definitions, ComfyUI's template browser lists them, and every one runs
through ``python -m remaskable_core run`` on the fake models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from remaskable_core.shipped_workflows import all_workflows
from remaskable_core.workflow import ui_to_api
from tests.e2e.fake_model_settings import fake_model_settings

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO / "workflows"
WORKFLOWS = {w.name: w for w in all_workflows()}
SIZE = 128  # px; the fake models make any size work, small keeps CPU runs short


def _strip_meta(prompt: dict) -> dict:
    return {key: {"class_type": node["class_type"], "inputs": node["inputs"]} for key, node in prompt.items()}


def test_every_definition_has_a_file_and_a_thumbnail_and_nothing_else_is_shipped():
    files = {p.stem for p in WORKFLOWS_DIR.glob("*.json")}
    assert files == set(WORKFLOWS), "run: python -m remaskable_core workflows build"
    for name in WORKFLOWS:
        thumbnail = WORKFLOWS_DIR / f"{name}.jpg"
        assert thumbnail.is_file(), f"{thumbnail.name} is missing"
        with Image.open(thumbnail) as image:
            assert image.format == "JPEG" and min(image.size) >= 128


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_file_is_up_to_date_with_its_definition_and_has_a_note(comfy, name):
    workflow = json.loads((WORKFLOWS_DIR / f"{name}.json").read_text())
    prompt = ui_to_api(workflow, comfy.client.object_info())
    assert _strip_meta(prompt) == _strip_meta(WORKFLOWS[name].prompt), \
        "the file drifted from its definition: python -m remaskable_core workflows build"
    notes = [n for n in workflow["nodes"] if n["type"] in ("Note", "MarkdownNote")]
    assert notes and "## Model files" in notes[0]["widgets_values"][0]
    for folder, file in WORKFLOWS[name].models:
        assert f"models/{folder}/{file}" in notes[0]["widgets_values"][0]


def test_template_browser_lists_the_workflows(comfy):
    templates = comfy.client.get_json("/api/workflow_templates")
    pack = next(names for module, names in templates.items() if "remaskable" in module.lower())
    assert set(WORKFLOWS) <= set(pack)


def _face_photo(path: Path) -> np.ndarray:
    from skimage.data import astronaut

    pixels = np.asarray(Image.fromarray(astronaut()).resize((SIZE + 3, SIZE)))  # odd width on purpose
    Image.fromarray(pixels).save(path)
    return pixels


def _second_photo(prompt: dict, tmp_path: Path) -> list[str]:
    """The same photo for a workflow's second image loader (the reference of the reference transfer)."""
    loaders = [node for node, entry in prompt.items() if entry["class_type"] == "LoadImage"]
    return [arg for node in loaders[1:] for arg in ("--image", f"{node}={tmp_path / 'face.png'}")]


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_workflow_runs_through_the_run_command(comfy, tmp_path, name):
    pixels = _face_photo(tmp_path / "face.png")
    workflow = WORKFLOWS[name]
    quick = [f"{node}.{name}={value}" for (node, name), value in fake_model_settings(workflow.prompt).items()]
    out = tmp_path / "out.png"
    done = subprocess.run(
        [sys.executable, "-m", "remaskable_core", "run", str(WORKFLOWS_DIR / f"{name}.json"), "--server",
         comfy.server.url, "--image", str(tmp_path / "face.png"), "--out", str(out),
         *[arg for value in quick for arg in ("--set", value)], *_second_photo(workflow.prompt, tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    saved = sorted(tmp_path.glob("out*.png"))
    assert saved, done.stdout
    result = np.asarray(Image.open(saved[0]).convert("RGB"))
    assert result.shape == pixels.shape
