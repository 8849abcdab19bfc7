"""The mask editor in ComfyUI's real frontend (headless Chromium) with the fake SegFormer and SAM: real mouse clicks
on the node's button and on the editor's picture toggle FaceParse classes and add SAM points and a box, the state
lives in the nodes' widgets and survives saving and loading the workflow, the graph then runs with it, and the
preview route answers with an image-sized mask. Random-weight models: which class sits under a pixel is read from
the editor's own label map, never assumed."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.e2e.browser import load_workflow, queue_and_wait

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 203, 157  # odd sizes: image pixels must map exactly through the scaled editor canvas
IMAGE_NAME = "editor_astronaut.png"
PARSER = "segformer_face_parsing.safetensors"
SAM = "sam_vit_b_01ec64.pth"
PARSE_ID, SAM_ID = "3", "5"


@pytest.fixture(scope="module")
def graph_prompt(comfy) -> dict:
    import cv2
    import skimage.data

    picture = cv2.resize(skimage.data.astronaut(), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    Image.fromarray(picture).save(comfy.base_dir / "input" / IMAGE_NAME)
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": IMAGE_NAME}},
        "2": {"class_type": "ReMaskable.LoadFaceParser", "inputs": {"model_name": PARSER}},
        PARSE_ID: {"class_type": "ReMaskable.FaceParse",
                   "inputs": {"image": ["1", 0], "face_parser": ["2", 0], "preset": "none", "classes": "",
                              "mask_mode": "hard", "left_right": "subject's left/right (by position)"}},
        "4": {"class_type": "ReMaskable.LoadSAM", "inputs": {"model_name": SAM}},
        SAM_ID: {"class_type": "ReMaskable.SAMPrompt",
                 "inputs": {"image": ["1", 0], "sam_model": ["4", 0], "prompts": "", "selection": "score"}},
        "6": {"class_type": "MaskToImage", "inputs": {"mask": [PARSE_ID, 1]}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}},
        "8": {"class_type": "MaskToImage", "inputs": {"mask": [SAM_ID, 0]}},
        "9": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}},
    }


def node_of(page, class_type: str) -> int:
    return page.evaluate("(t) => app.graph.nodes.find((n) => n.type === t).id", class_type)


def widget_value(page, node_id: int, name: str):
    return page.evaluate("([id, name]) => app.graph.getNodeById(id).widgets.find((w) => w.name === name).value",
                         [node_id, name])


def click_editor_button(page, node_id: int) -> None:
    """A real click on the node's 'open mask editor' button, with the view pinned so the node is on screen."""
    where = page.evaluate("""async (id) => {
        const node = app.graph.getNodeById(id);
        app.canvas.ds.scale = 1;
        app.canvas.ds.offset = [200 - node.pos[0], 150 - node.pos[1]];
        app.canvas.setDirty(true, true);
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        const button = node.widgets.find((w) => w.name === "open mask editor");
        const [x, y] = app.canvas.ds.convertOffsetToCanvas([node.pos[0] + node.size[0] / 2, node.pos[1] + button.y + 10]);
        const r = app.canvas.canvas.getBoundingClientRect();
        return [r.left + x, r.top + y];
    }""", node_id)
    page.mouse.click(*where)
    page.wait_for_selector(".remaskable-editor canvas")
    wait_idle(page)


def wait_idle(page) -> dict:
    """Waits for the open editor's requests; returns its state (the last preview answer, status text)."""
    page.wait_for_function("() => window.ReMaskableMaskEditor?.current?.picture")
    return page.evaluate("""async () => {
        const editor = ReMaskableMaskEditor.current;
        await editor.idle();
        return {preview: editor.preview, status: editor.status.textContent,
                error: editor.status.classList.contains("remaskable-error")};
    }""")


def screen_point(page, x: float, y: float) -> tuple[float, float]:
    """Where image pixel (x, y) is on the screen, in the editor's canvas."""
    box = page.locator(".remaskable-editor canvas").bounding_box()
    return box["x"] + x / WIDTH * box["width"], box["y"] + y / HEIGHT * box["height"]


def close_editor(page) -> None:
    page.get_by_role("button", name="Close").click()
    page.wait_for_selector(".remaskable-editor", state="detached")


def decoded_mask(preview: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(preview["mask"]))))


def test_editor_clicks_state_save_load_and_preview(page, comfy, graph_prompt, artifacts_dir):
    names = page.evaluate("() => app.extensions.map((e) => e.name)")
    assert names.count("ReMaskable.MaskEditor") == 1
    assert not [e for e in page.console_errors if "mask_editor" in e]
    page.evaluate("(p) => app.loadApiJson(p, 'editor.json')", graph_prompt)
    parse_node, sam_node = node_of(page, "ReMaskable.FaceParse"), node_of(page, "ReMaskable.SAMPrompt")

    # FaceParse: the picture with the parse; a click toggles the class under it, a second click untoggles it
    click_editor_button(page, parse_node)
    state = wait_idle(page)
    assert not state["error"], state["status"]
    preview = state["preview"]
    assert (preview["mode"], preview["width"], preview["height"]) == ("parse", WIDTH, HEIGHT)
    assert decoded_mask(preview).shape == (HEIGHT, WIDTH) and not decoded_mask(preview).any()  # nothing chosen yet
    x, y = 101.5, 60.5
    expected = page.evaluate("([x, y]) => ReMaskableMaskEditor.current.classAt({x, y})", [x, y])
    assert expected in preview["class_names"]
    page.mouse.click(*screen_point(page, x, y))
    preview = wait_idle(page)["preview"]
    assert widget_value(page, parse_node, "classes") == expected == preview["classes"]
    assert preview["chosen"] == [expected]
    labels = page.evaluate("() => Array.from(ReMaskableMaskEditor.current.labels)")
    chosen_pixels = np.array(labels).reshape(HEIGHT, WIDTH) == preview["class_names"].index(expected)
    assert np.array_equal(decoded_mask(preview) > 127, chosen_pixels)  # hard mask = that class's pixels
    page.mouse.click(*screen_point(page, x, y))
    assert wait_idle(page)["preview"]["chosen"] == [] and widget_value(page, parse_node, "classes") == ""
    page.mouse.click(*screen_point(page, x, y))
    wait_idle(page)
    page.locator(".remaskable-editor").screenshot(path=str(artifacts_dir / "editor-face-parse.png"))
    close_editor(page)

    # SAMPrompt: click = object point, right-click = not-object point, drag = box
    click_editor_button(page, sam_node)
    assert wait_idle(page)["preview"]["mode"] == "sam"
    page.mouse.click(*screen_point(page, 100, 50))
    page.mouse.click(*screen_point(page, 30, 140), button="right")
    page.mouse.move(*screen_point(page, 60, 20))
    page.mouse.down()
    page.mouse.move(*screen_point(page, 100, 60), steps=4)
    page.mouse.move(*screen_point(page, 150, 110), steps=4)
    page.mouse.up()
    state = wait_idle(page)
    prompts = json.loads(widget_value(page, sam_node, "prompts"))
    assert [p["label"] for p in prompts["points"]] == [1, 0]
    assert [(round(p["x"]), round(p["y"])) for p in prompts["points"]] == [(100, 50), (30, 140)]
    assert [[round(v) for v in box] for box in prompts["boxes"]] == [[60, 20, 150, 110]]
    preview = state["preview"]
    assert not state["error"], state["status"]
    assert preview["mode"] == "sam" and decoded_mask(preview).shape == (HEIGHT, WIDTH)
    assert set(np.unique(decoded_mask(preview))) <= {0, 255} and np.isfinite(preview["score"])
    page.mouse.click(*screen_point(page, 30, 140))  # clicking a point removes it
    wait_idle(page)
    assert len(json.loads(widget_value(page, sam_node, "prompts"))["points"]) == 1
    page.mouse.click(*screen_point(page, 30, 140), button="right")
    wait_idle(page)
    page.locator(".remaskable-editor").screenshot(path=str(artifacts_dir / "editor-sam.png"))
    close_editor(page)

    # the editor's button is neither saved nor sent
    saved = page.evaluate("() => JSON.stringify(app.graph.serialize())")
    assert "open mask editor" not in saved
    sent = page.evaluate("async () => (await app.graphToPrompt()).output")
    assert all("open mask editor" not in node["inputs"] for node in sent.values())

    # save, load the saved file in a new tab: the editor shows the same state
    (artifacts_dir / "editor-workflow.json").write_text(saved)
    classes, prompts_text = widget_value(page, parse_node, "classes"), widget_value(page, sam_node, "prompts")
    report = load_workflow(page, json.loads((artifacts_dir / "editor-workflow.json").read_text()))
    assert report["missing"] == [] and report["broken"] == []
    assert widget_value(page, parse_node, "classes") == classes == expected
    assert widget_value(page, sam_node, "prompts") == prompts_text
    click_editor_button(page, sam_node)
    shown = page.evaluate("() => ReMaskableMaskEditor.current.prompts()")
    assert shown == json.loads(prompts_text)
    close_editor(page)

    # and the graph runs with what the editor wrote
    assert queue_and_wait(page, timeout_s=300) == {"status": "success"}
    assert not [e for e in page.console_errors if "mask_editor" in e]
