"""LoadFaceParser + FaceParse in real ComfyUI: the landmark backend on the astronaut, the fake SegFormer and BiSeNet
files, faceless and odd images, typed sockets."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from PIL import Image

pytestmark = pytest.mark.e2e

LANDMARKS = "landmarks (mediapipe, no download)"
SUBJECT = "subject's left/right (by position)"


@pytest.fixture(scope="module")
def uploads(comfy, tmp_path_factory):
    folder = tmp_path_factory.mktemp("parse-inputs")
    astronaut = skimage.data.astronaut()
    odd = astronaut[11:302, 99:356]
    images = {
        "astronaut.png": Image.fromarray(astronaut),
        "odd_rgba.png": Image.fromarray(np.concatenate([odd, np.full(odd.shape[:2] + (1,), 255, np.uint8)], 2)),
        "grey.png": Image.fromarray(np.full((96, 131), 128, np.uint8), mode="L"),
    }
    names = {}
    for name, image in images.items():
        image.save(folder / name)
        names[name] = comfy.client.upload_image(folder / name)
    return names


def parse_prompt(image: str, model_name: str, preset: str = "lips", mask_mode: str = "hard") -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "ReMaskable.LoadFaceParser", "inputs": {"model_name": model_name}},
        "3": {"class_type": "ReMaskable.FaceParse",
              "inputs": {"image": ["1", 0], "face_parser": ["2", 0], "preset": preset, "classes": "",
                         "mask_mode": mask_mode, "left_right": SUBJECT}},
        "4": {"class_type": "MaskToImage", "inputs": {"mask": ["3", 1]}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "parse_mask"}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["3", 2], "filename_prefix": "parse_preview"}},
    }


def run(comfy, prompt: dict):
    result = comfy.client.wait(comfy.client.queue(prompt), timeout=600)
    assert result.status == "success", result.error
    saved = {node: np.asarray(Image.open(comfy.output_path(image))) for node, image in result.images()}
    return result, saved["5"], saved["6"]


def test_sockets_are_typed_and_the_landmark_choice_is_offered(comfy):
    info = comfy.client.object_info()
    loader, parse = info["ReMaskable.LoadFaceParser"], info["ReMaskable.FaceParse"]
    options = loader["input"]["required"]["model_name"][1]["options"]
    assert LANDMARKS in options and "segformer_face_parsing.safetensors" in options and "79999_iter.pth" in options
    assert loader["output"] == ["REMASKABLE_FACE_PARSER"]
    required = parse["input"]["required"]
    assert required["image"][0] == "IMAGE" and required["face_parser"][0] == "REMASKABLE_FACE_PARSER"
    assert "lips" in required["preset"][1]["options"] and "hair" in required["preset"][1]["options"]
    assert parse["output"] == ["FACE_PARSE", "MASK", "IMAGE"]
    assert "subject" in parse["description"] and "subject" in required["classes"][1]["tooltip"]


def test_landmarks_on_the_astronaut_put_the_lips_in_the_lower_face(comfy, uploads):
    result, mask, preview = run(comfy, parse_prompt(uploads["astronaut.png"], LANDMARKS))
    assert mask.shape[:2] == (512, 512)
    ys, xs = np.nonzero(mask[..., 0] > 127)
    assert len(ys) > 100
    assert 125 < ys.min() and ys.max() < 175 and 190 < xs.min() and xs.max() < 260  # Eileen Collins' lips
    assert preview.shape[0] >= 512 and preview.shape[1] > 512
    shown = result.outputs["3"]
    assert shown["images"] and shown["images"][0]["type"] == "temp"


def test_fake_segformer_and_bisenet_run_through_the_nodes(comfy, uploads):
    for model in ("segformer_face_parsing.safetensors", "79999_iter.pth"):
        _, mask, preview = run(comfy, parse_prompt(uploads["astronaut.png"], model, preset="face", mask_mode="soft"))
        assert mask.shape[:2] == (512, 512) and preview.shape[0] >= 512 and preview.shape[1] > 512


def test_odd_rgba_and_faceless_grey_images(comfy, uploads):
    _, mask, _ = run(comfy, parse_prompt(uploads["odd_rgba.png"], LANDMARKS, preset="eyes"))
    assert mask.shape[:2] == (291, 257) and (mask[..., 0] > 127).sum() > 20
    result, mask, preview = run(comfy, parse_prompt(uploads["grey.png"], LANDMARKS))
    assert mask.shape[:2] == (96, 131) and mask.max() == 0
    assert "No face found in the image" in result.outputs["3"]["text"][0]
    assert preview.shape[0] >= 96


def test_missing_parser_file_says_where_to_get_it(comfy, uploads):
    failed = comfy.client.wait(comfy.client.queue(parse_prompt(uploads["astronaut.png"], "parsing_bisenet.pth")),
                               timeout=120)
    assert failed.status == "error"
    message = failed.error["exception_message"]
    assert "parsing_bisenet.pth" in message and "face_parsing" in message
    assert "https://github.com/xinntao/facexlib/releases/download/v0.2.0/parsing_bisenet.pth" in message


def test_unknown_class_is_refused_before_anything_runs(comfy, uploads):
    from remaskable_core.client import ComfyRequestError

    prompt = parse_prompt(uploads["astronaut.png"], LANDMARKS)
    prompt["3"]["inputs"]["classes"] = "lips, beard"
    with pytest.raises(ComfyRequestError, match="unknown class or preset 'beard'"):
        comfy.client.queue(prompt)
