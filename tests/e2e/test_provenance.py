"""Provenance in real ComfyUI: an edit workflow watermarks and saves with the manifest; the saved PNG names what
the workflow did, keeps ComfyUI's own metadata, carries the watermark (also through JPEG and resizing, read by the
Detect Watermark node) and, with a certificate, a valid C2PA manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from remaskable_core import __version__
from remaskable_core.models import entry_by_name
from remaskable_core.provenance.manifest import read_manifest
from remaskable_core.provenance.watermark import detect

pytestmark = pytest.mark.e2e

CKPT = "v1-5-pruned-emaonly.ckpt"
WORKFLOW = {"last_node_id": 0, "last_link_id": 0, "nodes": [], "links": [], "version": 0.4}


def _upload(comfy, tmp_path: Path, pixels: np.ndarray, name: str, fmt: str = "PNG", **save) -> tuple[str, bytes]:
    path = tmp_path / name
    Image.fromarray(pixels).save(path, format=fmt, **save)
    return comfy.client.upload_image(path), path.read_bytes()


SFACE = "face_recognition_sface_2021dec.onnx"
YUNET = "face_detection_yunet_2023mar.onnx"


def edit_workflow(image: str, **save_inputs) -> dict:
    """Load a photo, img2img it with a (fake) SD1.5 checkpoint and two prompts, check identity with (fake) SFace and
    YuNet, watermark, save with provenance and the identity scores."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "vivid red hair", "clip": ["2", 1]}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["2", 1]}},
        "5": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["2", 2]}},
        "6": {"class_type": "KSampler", "inputs": {"model": ["2", 0], "positive": ["3", 0], "negative": ["4", 0],
                                                   "latent_image": ["5", 0], "seed": 3, "steps": 1, "cfg": 5.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "denoise": 0.5}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["2", 2]}},
        "8": {"class_type": "ReMaskable.Watermark", "inputs": {"image": ["13", 0], "payload": "1a2b3c4d"}},
        "9": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 192, "height": 176}},
        "12": {"class_type": "ReMaskable.LoadIdentityModel",
               "inputs": {"recognizer": f"SFace: {SFACE}", "detector": f"YuNet: {YUNET}", "lpips": "off"}},
        "13": {"class_type": "ReMaskable.IdentityGuard",
               "inputs": {"original": ["1", 0], "candidates": ["7", 0], "identity_model": ["12", 0],
                          "mode": "preserve", "on_fail": "warn", "threshold": 0.0, "lpips_weight": 0.5}},
        "11": {"class_type": "ReMaskable.SaveImageWithProvenance",
               "inputs": {"images": ["8", 0], "filename_prefix": "provenance_e2e", "mask": ["9", 0],
                          "identity_cosine": ["13", 1], "lpips_outside": ["13", 2], "identity_passed": ["13", 3],
                          "identity_report": ["13", 4], **save_inputs}},
    }


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[40:216, 150:342])  # 192 x 176, the face


def _run(comfy, prompt: dict):
    result = comfy.client.wait(comfy.client.queue(prompt, {"extra_pnginfo": {"workflow": WORKFLOW}}), timeout=600)
    assert result.status == "success", result.error
    return result


def test_saved_png_names_what_the_workflow_did(comfy, photo, tmp_path):
    image_name, image_bytes = _upload(comfy, tmp_path, photo, "provenance_photo.png")
    prompt = edit_workflow(image_name)
    result = _run(comfy, prompt)
    [(node_id, image)] = result.images()
    assert node_id == "11"
    path = comfy.output_path(image)

    with Image.open(path) as png:
        stored = json.loads(png.text["prompt"])  # ComfyUI adds is_changed to the prompt it stores
        assert {k: (n["class_type"], n["inputs"]) for k, n in stored.items()} == \
            {k: (n["class_type"], n["inputs"]) for k, n in prompt.items()}, "ComfyUI's own prompt metadata is missing"
        assert json.loads(png.text["workflow"]) == WORKFLOW, "ComfyUI's own workflow metadata is missing"
        pixels = np.asarray(png.convert("RGB"))
    assert pixels.shape == (176, 192, 3)

    manifest = read_manifest(path)
    assert manifest["pack_version"] == __version__
    assert [(p["node"], p["role"], p["text"]) for p in manifest["prompts"]] == [
        ("3", "positive", "vivid red hair"), ("4", "negative", "blurry")]
    assert manifest["sampling"] == [{"node": "6", "class_type": "KSampler", "seed": 3, "steps": 1, "cfg": 5.0,
                                     "sampler_name": "euler", "scheduler": "normal", "denoise": 0.5}]
    models = {m["name"]: m for m in manifest["models"]}
    assert set(models) == {CKPT, SFACE, YUNET}
    for name, folder, node, input_name in [(CKPT, "checkpoints", "2", "ckpt_name"), (SFACE, "face_recognition", "12",
                                           "recognizer"), (YUNET, "face_detection", "12", "detector")]:
        model = models[name]
        assert (model["folder"], model["node"], model["input"]) == (folder, node, input_name)
        fake_file = comfy.models_dir / folder / name
        assert model["sha256"] == hashlib.sha256(fake_file.read_bytes()).hexdigest()
        assert model["published_sha256"] == entry_by_name(folder, name).files[0].sha256
        assert model["matches_published"] is False, "the fake file is not the published one"
    assert manifest["sources"] == [{"node": "1", "class_type": "LoadImage", "image": image_name,
                                    "size": len(image_bytes), "sha256": hashlib.sha256(image_bytes).hexdigest()}]
    remaskable = {n["class_type"]: n["inputs"] for n in manifest["remaskable_nodes"]}
    assert remaskable["ReMaskable.Watermark"] == {"payload": "1a2b3c4d"}
    assert remaskable["ReMaskable.IdentityGuard"]["mode"] == "preserve"
    assert remaskable["ReMaskable.LoadIdentityModel"]["recognizer"] == f"SFace: {SFACE}"
    assert manifest["mask"]["fraction"] == 1.0 and manifest["mask"]["bbox_xyxy"] == [0, 0, 192, 176]
    identity = manifest["identity"]
    assert set(identity) == {"identity_cosine", "lpips_outside", "passed", "report"}
    # the fake detector finds no face in this photo: Identity Guard reports NaN, which the manifest stores as null
    assert identity["identity_cosine"] is None or isinstance(identity["identity_cosine"], float)
    assert isinstance(identity["passed"], bool) and "IdentityGuard" in identity["report"]
    assert manifest["watermark"]["found"] and manifest["watermark"]["payload"] == "1a2b3c4d"
    assert manifest["watermark"]["added_when_saving"] is False, "the Watermark node's mark is kept"
    assert manifest["c2pa"]["signed"] is False
    reading = detect(pixels)
    assert reading.found and reading.payload == "1a2b3c4d"


def test_detect_watermark_node_reads_saved_jpeg_and_resized_copies(comfy, photo, tmp_path):
    result = _run(comfy, edit_workflow(_upload(comfy, tmp_path, photo, "provenance_photo.png")[0]))
    with Image.open(comfy.output_path(result.images()[0][1])) as png:
        saved = np.asarray(png.convert("RGB"))
    smaller = np.asarray(Image.fromarray(saved).resize((154, 141), Image.Resampling.BICUBIC))
    copies = {"png": _upload(comfy, tmp_path, saved, "provenance_saved.png")[0],
              "jpeg": _upload(comfy, tmp_path, saved, "provenance_saved_q90.jpg", "JPEG", quality=90)[0],
              "small": _upload(comfy, tmp_path, smaller, "provenance_saved_small.png")[0],
              "unmarked": _upload(comfy, tmp_path, photo, "provenance_unmarked.png")[0]}
    prompt = {}
    for i, (label, name) in enumerate(copies.items()):
        load, detector, shown = f"{label}_load", f"{label}_detect", f"{label}_show"
        prompt[load] = {"class_type": "LoadImage", "inputs": {"image": name}}
        prompt[detector] = {"class_type": "ReMaskable.DetectWatermark", "inputs": {"image": [load, 0]}}
        prompt[shown] = {"class_type": "PreviewAny", "inputs": {"source": [detector, 3]}}
        prompt[f"{label}_payload"] = {"class_type": "PreviewAny", "inputs": {"source": [detector, 1]}}
    outputs = comfy.client.wait(comfy.client.queue(prompt), timeout=300).outputs
    for label in ("png", "jpeg", "small"):
        assert outputs[f"{label}_payload"]["text"] == ["1a2b3c4d"], label
        assert "ReMaskable watermark found: edit id 1a2b3c4d" in outputs[f"{label}_show"]["text"][0], label
    assert outputs["unmarked_payload"]["text"] == [""]
    assert "no ReMaskable watermark" in outputs["unmarked_show"]["text"][0]


def test_c2pa_manifest_signed_with_a_user_certificate(comfy, photo, tmp_path):
    pytest.importorskip("c2pa")
    from remaskable_core.provenance.content_credentials import make_test_credentials, read_content_credentials

    credentials = make_test_credentials(tmp_path / "certs")
    image_name, _ = _upload(comfy, tmp_path, photo, "provenance_photo.png")
    result = _run(comfy, edit_workflow(image_name, c2pa_certificate=str(credentials["chain"]),
                                       c2pa_private_key=str(credentials["key"])))
    path = comfy.output_path(result.images()[0][1])
    status = read_content_credentials(path.read_bytes(), credentials["ca"].read_text())
    assert status["state"] == "Trusted", status
    assert status["actions"] == ["c2pa.opened", "c2pa.edited"] and status["ingredients"] == [image_name]
    assert status["edit_manifest"] == read_manifest(path)
    assert status["edit_manifest"]["c2pa"]["signed"] is True
    with Image.open(path) as png:
        assert "prompt" in png.text and "workflow" in png.text


def test_too_small_image_is_a_clear_error_and_the_server_keeps_serving(comfy, tmp_path):
    name, _ = _upload(comfy, tmp_path, np.zeros((64, 64, 3), np.uint8), "provenance_tiny.png")
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": name}},
              "2": {"class_type": "ReMaskable.Watermark", "inputs": {"image": ["1", 0]}},
              "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    failed = comfy.client.wait(comfy.client.queue(prompt), timeout=120)
    assert failed.status == "error"
    assert failed.error["exception_type"].endswith("InvalidInputError")
    assert "'image'" in failed.error["exception_message"] and "128 pixels" in failed.error["exception_message"]
    prompt["2"] = {"class_type": "ReMaskable.DetectWatermark", "inputs": {"image": ["1", 0]}}
    prompt["3"] = {"class_type": "PreviewAny", "inputs": {"source": ["2", 3]}}
    served = comfy.client.wait(comfy.client.queue(prompt), timeout=120)
    assert served.status == "success", served.error
    assert "no ReMaskable watermark" in served.outputs["3"]["text"][0]
