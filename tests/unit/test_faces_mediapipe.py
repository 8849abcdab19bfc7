"""The mediapipe detector on real photos, and the whole crop -> edit -> stitch path on a group photo.

insightface's t1.jpg (six people round a table) is read from the installed insightface package, never copied
into the repository. Skipped when mediapipe or insightface is not installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from remaskable_core.errors import InvalidInputError
from remaskable_core.faces.crop import CropSettings, crop_faces, stitch_faces
from remaskable_core.faces.select import choose_faces, detect_batch
from tests.unit.test_faces_crop import as_png_bytes, outside_all_crops

pytest.importorskip("mediapipe")
from remaskable_core.faces.detect_mediapipe import MediapipeFaceDetector  # noqa: E402

# the six faces of t1.jpg (1280x886), left to right: box centres, checked by eye on the preview
T1_FACES = [(112, 339), (311, 218), (517, 349), (784, 419), (936, 140), (1173, 343)]


def t1_path() -> Path:
    spec = importlib.util.find_spec("insightface")
    if spec is None or spec.origin is None:
        pytest.skip("insightface is not installed: its t1.jpg group photo is the test image")
    path = Path(spec.origin).parent / "data" / "images" / "t1.jpg"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def t1() -> torch.Tensor:
    pixels = np.array(Image.open(t1_path()).convert("RGB"))
    return torch.from_numpy(pixels.astype(np.float32) / 255.0)[None]


@pytest.fixture(scope="module")
def detector():
    detector = MediapipeFaceDetector("full_range")
    yield detector
    detector.close()


def test_full_range_finds_every_face_of_the_group_photo(t1, detector):
    faces = detect_batch(detector, t1)[0]
    assert len(faces) == len(T1_FACES)
    for x, y in T1_FACES:
        nearest = min(faces, key=lambda f: np.hypot(f.center[0] - x, f.center[1] - y))
        assert np.hypot(nearest.center[0] - x, nearest.center[1] - y) < 30
        assert 60 < nearest.width < 200 and nearest.score >= 0.5
        assert nearest.landmarks.shape == (5, 2)
        right_eye, left_eye = nearest.landmarks[:2]
        assert right_eye[0] < left_eye[0]  # the subject's right eye is on the image's left


def test_crop_edit_stitch_of_every_face_leaves_the_rest_of_the_photo_exact(t1, detector):
    """The done criterion: all six faces cropped, inverted as a batch, stitched back; outside the crops the saved
    PNG equals the original byte for byte."""
    chosen = choose_faces(detect_batch(detector, t1), "left to right", "all", 1280, 886)
    assert len(chosen[0]) == 6
    for settings in (CropSettings(size=256, align=True, context=1.6), CropSettings(size=None, align=False)):
        crops, masks, face_crops = crop_faces(t1, chosen, settings)
        assert crops.shape[0] == 6 and crops.shape[1] % 8 == 0
        stitched, pasted = stitch_faces(t1, 1.0 - crops, face_crops)
        outside = outside_all_crops(face_crops, 0)
        assert outside.mean() > 0.5
        saved, original = as_png_bytes(stitched[0]), as_png_bytes(t1[0])
        assert np.array_equal(saved[outside], original[outside])
        untouched = (pasted[0] == 0).numpy()
        assert np.array_equal(saved[untouched], original[untouched])
        for x, y in T1_FACES:  # every face got its edit
            assert pasted[0, y, x] == 1.0
            assert np.abs(saved[y, x].astype(int) - (255 - original[y, x].astype(int))).max() <= 40


def test_one_face_with_levelled_landmarks_on_the_astronaut():
    from skimage import data

    for landmarks in ("face mesh", "keypoints"):
        detector = MediapipeFaceDetector("full_range", landmarks=landmarks)
        faces = detector.detect(data.astronaut())
        detector.close()
        assert len(faces) == 1
        face = faces[0]
        assert 180 < face.center[0] < 270 and 80 < face.center[1] < 160
        right_eye, left_eye, nose, right_mouth, left_mouth = face.landmarks
        assert right_eye[0] < nose[0] < left_eye[0] and right_mouth[0] < left_mouth[0]
        assert max(right_eye[1], left_eye[1]) < nose[1] < min(right_mouth[1], left_mouth[1])
        angle = np.degrees(np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0]))
        assert abs(angle) < 10


def test_no_face_in_a_photo_without_people(detector):
    from skimage import data

    assert detector.detect(data.coffee()) == []
    assert detector.detect(np.zeros((17, 23, 3), np.uint8)) == []


def test_short_range_sees_close_ups_only(t1):
    from skimage import data

    detector = MediapipeFaceDetector("short_range")
    assert len(detector.detect(data.astronaut())) == 1
    assert len(detector.detect((t1[0].numpy() * 255).round().astype(np.uint8))) < 6
    detector.close()


def test_detector_rejects_float_images(detector):
    with pytest.raises(InvalidInputError, match="uint8"):
        detector.detect(np.zeros((10, 10, 3), np.float32))
