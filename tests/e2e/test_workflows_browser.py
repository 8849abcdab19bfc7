"""Every shipped workflow (workflows/*.json) in ComfyUI's real frontend (headless Chromium) against the fake models:
it loads with no missing node type and no validation warning, is queued from the page as the Run button does, runs
to the end, and a screenshot of its canvas is saved to test-artifacts/workflows/<name>.jpg (usable as the
workflow's thumbnail).

To run quickly on the fake models, the page's widgets get tests/e2e/fake_model_settings.py's values before queueing
(2 steps, smaller crops, the landmark parser for the reference transfer); nothing else of the workflow is changed. The image every Load Image node names is written into ComfyUI's input folder
under that name (the astronaut, public domain)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from remaskable_core.shipped_workflows import all_workflows
from tests.e2e.browser import load_workflow, queue_and_wait, screenshot_canvas
from tests.e2e.fake_model_settings import fake_model_settings

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
SHIPPED = {w.name: w for w in all_workflows()}
SIZE = 256
WARNINGS = re.compile(r"invalid workflow|validation|missing", re.IGNORECASE)

APPLY_SETTINGS = """(settings) => {
    const missing = [];
    for (const [id, name, value] of settings) {
        const widget = app.graph.getNodeById(Number(id))?.widgets?.find((w) => w.name === name);
        if (widget) widget.value = value; else missing.push(`${id}.${name}`);
    }
    return missing;
}"""


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> Image.Image:
    import cv2
    import skimage.data

    return Image.fromarray(cv2.resize(skimage.data.astronaut(), (SIZE, SIZE), interpolation=cv2.INTER_AREA))


def provide_images(workflow: dict, picture: Image.Image, input_dir: Path) -> list[str]:
    """Writes ``picture`` under the name of every LoadImage node's image (``sub/name.png [input]`` style values)."""
    names = []
    for node in workflow.get("nodes", []):
        if node.get("type") == "LoadImage" and node.get("mode", 0) not in (2, 4):
            value = re.sub(r"\s*\[input\]$", "", node["widgets_values"][0])
            target = (input_dir / value).resolve()
            assert target.is_relative_to(input_dir.resolve()), f"LoadImage names {value!r}, outside input/"
            target.parent.mkdir(parents=True, exist_ok=True)
            picture.save(target)
            names.append(value)
    return names


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_shipped_workflow_loads_queues_and_runs_from_the_page(page, comfy, artifacts_dir, picture, path):
    workflow = json.loads(path.read_text())
    assert provide_images(workflow, picture, comfy.base_dir / "input"), "the workflow has no Load Image node"
    report = load_workflow(page, workflow)
    assert report["missing"] == [], f"missing node types: {report['missing']}"
    assert report["broken"] == [], f"nodes with errors after loading: {report['broken']}"
    assert not [t for t in report["toasts"] if WARNINGS.search(t)], report["toasts"]
    settings = fake_model_settings(SHIPPED[path.stem].prompt)
    assert page.evaluate(APPLY_SETTINGS, [[n, i, v] for (n, i), v in settings.items()]) == []
    outcome = queue_and_wait(page, timeout_s=900)
    screenshot_canvas(page, artifacts_dir / "workflows" / f"{path.stem}.jpg")
    assert outcome == {"status": "success"}, json.dumps(outcome)[:3000]
    assert not page.locator(".p-dialog").count(), page.locator(".p-dialog").first.text_content()
