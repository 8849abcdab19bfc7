"""SAMPrompt, DINOv2Refine and MaskFuse in real ComfyUI, chained on an uploaded RGBA image (odd size) with masks from
core nodes (LoadImage's alpha, SolidMask + MaskComposite), with the fake SAM and both fake DINOv2 layouts.
Random-weight models: the assertions are shapes, invariants and error messages, never appearance."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.e2e

WIDTH, HEIGHT = 131, 97  # not multiples of 8
BAND = 8


@pytest.fixture(scope="module")
def uploaded(comfy, tmp_path_factory) -> tuple[str, np.ndarray]:
    """Astronaut, resized, as RGBA with a transparent ellipse: LoadImage's mask (1 - alpha) is that ellipse."""
    import cv2
    import skimage.data

    rgb = cv2.resize(skimage.data.astronaut(), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
    region = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.ellipse(region, (62, 30), (22, 26), 0, 0, 360, 1, -1)
    rgba = np.dstack([rgb, np.where(region > 0, 0, 255).astype(np.uint8)])
    path = tmp_path_factory.mktemp("upload") / "astronaut_rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    return comfy.client.upload_image(path), region.astype(bool)


def _mask_png(comfy, result, node_id: str) -> np.ndarray:
    images = [image for nid, image in result.images() if nid == node_id]
    assert images, f"node {node_id} saved nothing"
    return np.stack([np.asarray(Image.open(comfy.output_path(image)).convert("L")) for image in images])


def _text(result, node_id: str) -> str:
    return result.outputs[node_id]["text"][0]


def _save_mask(prompt: dict, node_id: str, source: list, prefix: str) -> None:
    prompt[f"{node_id}a"] = {"class_type": "MaskToImage", "inputs": {"mask": source}}
    prompt[node_id] = {"class_type": "SaveImage", "inputs": {"images": [f"{node_id}a", 0], "filename_prefix": prefix}}


def test_sam_prompt_refine_and_fuse_chain(comfy, uploaded):
    name, region = uploaded
    user_prompt = json.dumps({"points": [{"x": 62, "y": 30, "label": 1}, {"x": 10, "y": 90, "label": 0}],
                              "boxes": [[35, 2, 90, 60]]})
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "ReMaskable.LoadSAM", "inputs": {"model_name": "sam_vit_b_01ec64.pth"}},
        "3": {"class_type": "ReMaskable.SAMPrompt",
              "inputs": {"image": ["1", 0], "sam_model": ["2", 0], "prompts": user_prompt, "selection": "score"}},
        "4": {"class_type": "ReMaskable.SAMPrompt",
              "inputs": {"image": ["1", 0], "sam_model": ["2", 0], "prompts": "", "selection": "agreement",
                         "mask": ["1", 1], "positive_points": 2, "negative_points": 2}},
        "5": {"class_type": "ReMaskable.LoadDINOv2", "inputs": {"model_name": "dinov2_vits14.safetensors"}},
        "6": {"class_type": "ReMaskable.DINOv2Refine",
              "inputs": {"image": ["1", 0], "mask": ["1", 1], "dinov2_model": ["5", 0], "band_width": BAND,
                         "context": 16, "resolution": 112}},
        "7": {"class_type": "ReMaskable.LoadDINOv2",
              "inputs": {"model_name": "vit_base_patch14_reg4_dinov2.safetensors"}},
        "8": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": WIDTH, "height": HEIGHT}},
        "9": {"class_type": "MaskComposite",
              "inputs": {"destination": ["8", 0], "source": ["4", 0], "x": 0, "y": 0, "operation": "add"}},
        "10": {"class_type": "ReMaskable.DINOv2Refine",
               "inputs": {"image": ["1", 0], "mask": ["9", 0], "dinov2_model": ["7", 0], "band_width": BAND,
                          "context": 16, "resolution": 112, "prototypes": 2}},
        "11": {"class_type": "ReMaskable.MaskFuse",
               "inputs": {"sam_mask": ["3", 0], "refined_mask": ["6", 0], "refine_weight": 1.5, "threshold": 0.5,
                          "grow": 1, "feather": 2.0, "composite_margin": 3, "composite_feather": 4.0}},
        "20": {"class_type": "PreviewAny", "inputs": {"source": ["3", 2]}},
        "21": {"class_type": "PreviewAny", "inputs": {"source": ["4", 2]}},
        "22": {"class_type": "PreviewAny", "inputs": {"source": ["6", 1]}},
        "23": {"class_type": "PreviewAny", "inputs": {"source": ["10", 1]}},
        "24": {"class_type": "PreviewAny", "inputs": {"source": ["3", 1]}},
    }
    for node_id, source, prefix in [("30", ["1", 1], "input"), ("31", ["6", 0], "refined"), ("32", ["3", 0], "sam"),
                                    ("33", ["4", 0], "sam_from_mask"), ("34", ["11", 0], "edit"),
                                    ("35", ["11", 1], "composite"), ("36", ["10", 0], "refined_reg4")]:
        _save_mask(prompt, node_id, source, prefix)
    result = comfy.client.wait(comfy.client.queue(prompt), timeout=600)
    assert result.status == "success", result.error

    source = _mask_png(comfy, result, "30")[0] > 127
    assert np.array_equal(source, region), "LoadImage's alpha mask is the uploaded ellipse"
    for node_id in ("31", "32", "33", "34", "35", "36"):
        assert _mask_png(comfy, result, node_id).shape == (1, HEIGHT, WIDTH)

    # SAMPrompt from JSON: the report echoes the user's prompt; from the mask: derived points lie in/around it
    user_report, = json.loads(_text(result, "20"))
    assert user_report["points"][0] == {"x": 62, "y": 30, "label": 1} and user_report["boxes"] == [[35, 2, 90, 60]]
    assert float(_text(result, "24")) == pytest.approx(user_report["score"], abs=1e-3)
    derived, = json.loads(_text(result, "21"))
    labels = [p["label"] for p in derived["points"]]
    assert labels.count(1) == 2 and labels.count(0) == 2 and len(derived["boxes"]) == 1
    for point in derived["points"]:
        assert region[int(point["y"]), int(point["x"])] == (point["label"] == 1)

    # DINOv2Refine: outside the band around the input boundary nothing changed (both DINOv2 layouts ran)
    import cv2

    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * BAND + 1, 2 * BAND + 1))
    band = (cv2.dilate(source.astype(np.uint8), disc) - cv2.erode(source.astype(np.uint8), disc,
                                                                borderType=cv2.BORDER_REPLICATE)) > 0
    refined = _mask_png(comfy, result, "31")[0] > 127
    assert np.array_equal(refined[~band], source[~band])
    assert "image 0:" in _text(result, "22") and "image 0:" in _text(result, "23")

    # MaskFuse: edit inside composite everywhere (also after 8-bit saving)
    edit, composite = _mask_png(comfy, result, "34")[0], _mask_png(comfy, result, "35")[0]
    assert (composite >= edit).all()


def test_batches_get_one_prompt_and_one_mask_each(comfy, uploaded):
    name, _ = uploaded
    prompts = json.dumps([{"points": [{"x": 62, "y": 30}]}, {"boxes": [[0, 0, 60, 50]]}])
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "RepeatImageBatch", "inputs": {"image": ["1", 0], "amount": 2}},
        "3": {"class_type": "ReMaskable.LoadSAM", "inputs": {"model_name": "sam_vit_b_01ec64.pth"}},
        "4": {"class_type": "ReMaskable.SAMPrompt",
              "inputs": {"image": ["2", 0], "sam_model": ["3", 0], "prompts": prompts, "selection": "score"}},
        "5": {"class_type": "ReMaskable.LoadDINOv2", "inputs": {"model_name": "dinov2_vits14.safetensors"}},
        "6": {"class_type": "ReMaskable.DINOv2Refine",
              "inputs": {"image": ["2", 0], "mask": ["1", 1], "dinov2_model": ["5", 0], "band_width": 6,
                         "resolution": 112}},
        "7": {"class_type": "ReMaskable.MaskFuse", "inputs": {"sam_mask": ["4", 0], "refined_mask": ["6", 0]}},
        "20": {"class_type": "PreviewAny", "inputs": {"source": ["4", 2]}},
    }
    _save_mask(prompt, "30", ["7", 1], "batch_composite")
    result = comfy.client.wait(comfy.client.queue(prompt), timeout=600)
    assert result.status == "success", result.error
    first, second = json.loads(_text(result, "20"))
    assert len(first["points"]) == 1 and not first["boxes"]
    assert second["boxes"] == [[0, 0, 60, 50]] and not second["points"]
    assert _mask_png(comfy, result, "30").shape == (2, HEIGHT, WIDTH)


def test_refine_with_a_head_trained_by_the_command(comfy, uploaded, tmp_path):
    from remaskable_core.__main__ import main
    from tests.fixtures.refine_cases import write_celebamask_style_dataset

    name, region = uploaded
    images, masks = write_celebamask_style_dataset(tmp_path)
    head = comfy.models_dir / "remaskable_heads" / "hair_e2e.safetensors"
    assert main(["train-head", "--images", str(images), "--masks", str(masks), "--dinov2",
                 str(comfy.models_dir / "dinov2" / "dinov2_vits14.safetensors"), "--out", str(head),
                 "--resolution", "98", "--epochs", "5"]) == 0
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "ReMaskable.LoadDINOv2", "inputs": {"model_name": "dinov2_vits14.safetensors"}},
        "3": {"class_type": "ReMaskable.DINOv2Refine",
              "inputs": {"image": ["1", 0], "mask": ["1", 1], "dinov2_model": ["2", 0], "band_width": BAND,
                         "resolution": 112, "head": "hair_e2e.safetensors"}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 1]}},
    }
    _save_mask(prompt, "30", ["3", 0], "refined_head")
    result = comfy.client.wait(comfy.client.queue(prompt), timeout=300)
    assert result.status == "success", result.error
    assert "image 0:" in _text(result, "4")
    assert _mask_png(comfy, result, "30").shape == (1, HEIGHT, WIDTH)


@pytest.mark.parametrize("node,inputs,fragments", [
    ("ReMaskable.SAMPrompt", {"prompts": '{"points": [{"x": 500, "y": 5}]}', "selection": "score"},
     ["'prompts'", "(500, 5)", "131x97"]),
    ("ReMaskable.SAMPrompt", {"prompts": '{"points": [', "selection": "score"}, ["'prompts'", "not valid JSON"]),
    ("ReMaskable.SAMPrompt", {"prompts": "", "selection": "score"}, ["'prompts'", "connect face_parse or mask"]),
    ("ReMaskable.DINOv2Refine", {"band_width": 8}, ["'mask'", "64x64", "131x97"]),
    ("ReMaskable.MaskFuse", {}, ["'sam_mask'", "no mask is connected"]),
])
def test_bad_inputs_fail_with_a_message_naming_the_input(comfy, uploaded, node, inputs, fragments):
    name, _ = uploaded
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "ReMaskable.LoadSAM", "inputs": {"model_name": "sam_vit_b_01ec64.pth"}},
        "3": {"class_type": "ReMaskable.LoadDINOv2", "inputs": {"model_name": "dinov2_vits14.safetensors"}},
        "4": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 64}},
    }
    wiring = {"ReMaskable.SAMPrompt": {"image": ["1", 0], "sam_model": ["2", 0]},
              "ReMaskable.DINOv2Refine": {"image": ["1", 0], "dinov2_model": ["3", 0], "mask": ["4", 0]},
              "ReMaskable.MaskFuse": {}}[node]
    prompt["5"] = {"class_type": node, "inputs": {**wiring, **inputs}}
    prompt["6"] = {"class_type": "PreviewAny", "inputs": {"source": ["5", 0]}}
    result = comfy.client.wait(comfy.client.queue(prompt), timeout=300)
    assert result.status == "error"
    assert result.error["exception_type"].endswith("InvalidInputError")
    for fragment in fragments:
        assert fragment in result.error["exception_message"], result.error["exception_message"]
