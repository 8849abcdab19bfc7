"""POST /remaskable/preview in real ComfyUI (no browser): masks for parse and SAM previews of images in input/ and
temp/, and HTTP 400 with a message for every bad field, path traversal and symlinks leading out of the folders."""

from __future__ import annotations

import base64
import io
import json
import os
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 77, 61
PARSER = "79999_iter.pth"
SAM = "sam_vit_b_01ec64.pth"


def post(comfy, body, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(comfy.server.url + "/api/remaskable/preview", data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def images(comfy):
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8))
    (comfy.base_dir / "input" / "route").mkdir(parents=True, exist_ok=True)
    (comfy.base_dir / "temp").mkdir(parents=True, exist_ok=True)
    picture.save(comfy.base_dir / "input" / "route" / "face.png")
    picture.save(comfy.base_dir / "temp" / "route_face.png")
    picture.save(comfy.base_dir / "outside.png")
    link = comfy.base_dir / "input" / "route_link.png"
    if not link.is_symlink():
        os.symlink(comfy.base_dir / "outside.png", link)
    return {"filename": "face.png", "subfolder": "route", "type": "input"}


def mask_of(answer: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["mask"]))))


def test_parse_and_sam_previews_answer_with_image_sized_masks(comfy, images):
    status, answer = post(comfy, {"image": images, "mode": "parse", "parser": PARSER, "preset": "none",
                                  "classes": "skin", "mask_mode": "hard", "toggle": "hair"})
    assert status == 200, answer
    assert answer["classes"] == "skin, hair" and answer["chosen"] == ["skin", "hair"]
    assert mask_of(answer).shape == (HEIGHT, WIDTH) and answer["backend"] == "bisenet"
    status, answer = post(comfy, {"image": {"filename": "route_face.png", "subfolder": "", "type": "temp"},
                                  "mode": "sam", "sam_model": SAM,
                                  "prompts": {"points": [{"x": 30, "y": 20, "label": 1}], "boxes": [[5, 5, 60, 50]]}})
    assert status == 200, answer
    assert mask_of(answer).shape == (HEIGHT, WIDTH) and np.isfinite(answer["score"])


@pytest.mark.parametrize("change, words", [
    ({"image": {"filename": "../outside.png", "subfolder": "", "type": "input"}}, "plain file name"),
    ({"image": {"filename": "outside.png", "subfolder": "..", "type": "input"}}, "without '..'"),
    ({"image": {"filename": "passwd", "subfolder": "/etc", "type": "input"}}, "relative"),
    ({"image": {"filename": "route_link.png", "subfolder": "", "type": "input"}}, "leads outside"),
    ({"image": {"filename": "face.png", "subfolder": "route", "type": "output"}}, "not one of"),
    ({"image": {"filename": "nothing.png", "subfolder": "", "type": "input"}}, "does not exist"),
    ({"parser": "../../secret.pth"}, "not one of"),
    ({"classes": "hair, wings"}, "unknown class"),
    ({"mode": "sam", "sam_model": SAM, "prompts": {"points": [{"x": WIDTH + 1, "y": 2, "label": 1}]}}, None),
    ({"mode": "sam", "sam_model": SAM, "prompts": "{\"points\": ["}, "not valid JSON"),
    ({"extra": 1}, "does not use"),
])
def test_bad_requests_are_refused_with_400_and_a_message(comfy, images, change, words):
    body = {"image": images, "mode": "parse", "parser": PARSER, **change}
    if body["mode"] == "sam":
        del body["parser"]
    status, answer = post(comfy, body)
    assert status == 400, answer
    assert (words or "outside the 77x61 image") in answer["error"]


def test_a_body_that_is_not_json_is_refused(comfy):
    status, answer = post(comfy, None, raw=b"{not json")
    assert status == 400 and "not JSON" in answer["error"]
