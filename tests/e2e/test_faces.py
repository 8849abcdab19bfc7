"""Face crop -> edit (core ImageInvert) -> stitch in real ComfyUI, checked on the saved PNGs.

The group photo is insightface's t1.jpg, read from the installed package (never committed); mediapipe must be
installed in ComfyUI's Python (it is optional for users).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.unit.test_faces_mediapipe import T1_FACES, t1_path

pytestmark = pytest.mark.e2e
pytest.importorskip("mediapipe")


def crop_edit_stitch_prompt(image_name: str, size: int = 256) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "2": {"class_type": "ReMaskable.LoadFaceDetector",
              "inputs": {"detector": "mediapipe full-range", "min_score": 0.5, "min_face_size": 32,
                         "precise_landmarks": True}},
        "3": {"class_type": "ReMaskable.FaceCrop",
              "inputs": {"image": ["1", 0], "face_detector": ["2", 0], "order": "left to right", "select": "all",
                         "context": 1.5, "resize": "to size", "size": size, "align": True,
                         "paste_region": "whole crop", "feather": 16, "if_no_face": "pass through"}},
        "4": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
        "5": {"class_type": "ReMaskable.FaceStitch",
              "inputs": {"image": ["1", 0], "edited_crops": ["4", 0], "face_crop": ["3", 2]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "faces_stitched"}},
        "7": {"class_type": "MaskToImage", "inputs": {"mask": ["5", 1]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "faces_pasted"}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "faces_crops"}},
        "10": {"class_type": "ReMaskable.FaceDetect",
               "inputs": {"image": ["1", 0], "face_detector": ["2", 0], "order": "left to right", "select": "0,2"}},
        "11": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": "faces_preview"}},
    }


def run(comfy, prompt: dict) -> dict[str, list[np.ndarray]]:
    result = comfy.client.wait(comfy.client.queue(prompt), timeout=600)
    assert result.status == "success", result.error
    saved: dict[str, list[np.ndarray]] = {}
    for node_id, image in result.images():
        saved.setdefault(node_id, []).append(np.array(Image.open(comfy.output_path(image))))
    return saved


def upload_png(comfy, pixels: np.ndarray, name: str, tmp_path) -> str:
    path = tmp_path / name
    Image.fromarray(pixels).save(path)
    return comfy.client.upload_image(path)


def test_every_face_of_a_group_photo_edited_and_the_rest_bit_exact(comfy, tmp_path):
    original = np.array(Image.open(t1_path()).convert("RGB"))
    saved = run(comfy, crop_edit_stitch_prompt(upload_png(comfy, original, "faces_t1.png", tmp_path)))

    crops = saved["9"]
    assert len(crops) == 6 and all(c.shape == (256, 256, 3) for c in crops)
    (stitched,), (pasted,) = saved["6"], saved["8"]
    assert stitched.shape == original.shape
    # the saved mask is truncated to 8 bits: weights below 1/255 sit in the outermost pixel of each crop's fade,
    # so three pixels around its visible part bound everything that may have changed
    touched = cv2.dilate((pasted[..., 0] > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert 0.05 < touched.mean() < 0.5
    assert np.array_equal(stitched[~touched], original[~touched])
    for x, y in T1_FACES:
        assert pasted[y, x, 0] == 255
        assert np.abs(stitched[y, x].astype(int) - (255 - original[y, x].astype(int))).max() <= 40

    (preview,) = saved["11"]
    assert preview.shape == original.shape and not np.array_equal(preview, original)


def test_a_photo_without_faces_passes_through_unchanged(comfy, tmp_path):
    rng = np.random.default_rng(0)
    original = cv2.GaussianBlur(rng.integers(0, 256, (97, 141, 3), dtype=np.uint8), (0, 0), 3)
    saved = run(comfy, crop_edit_stitch_prompt(upload_png(comfy, original, "faces_none.png", tmp_path), size=64))
    assert len(saved["9"]) == 1 and saved["9"][0].shape == (64, 64, 3)
    assert np.array_equal(saved["6"][0], original)
    assert saved["8"][0].max() == 0


def test_crop_with_if_no_face_error_names_the_image(comfy, tmp_path):
    name = upload_png(comfy, np.full((40, 50, 3), 128, np.uint8), "faces_grey.png", tmp_path)
    prompt = crop_edit_stitch_prompt(name, size=64)
    prompt["3"]["inputs"]["if_no_face"] = "error"
    result = comfy.client.wait(comfy.client.queue(prompt), timeout=300)
    assert result.status == "error"
    assert "no face was found in image(s) [0]" in result.error["exception_message"]
