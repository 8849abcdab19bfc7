"""Face ordering and selection, the detector registry, and the detector-independent parts of the mediapipe module."""

from __future__ import annotations

import numpy as np
import pytest

from remaskable_core.errors import InvalidInputError, ModelFileError
from remaskable_core.faces import detect_mediapipe
from remaskable_core.faces.detectors import DETECTOR_BACKENDS, choice_label, parse_choice
from remaskable_core.faces.face import Face
from remaskable_core.faces.select import choose_faces, draw_faces, order_faces, parse_selection, select_faces


def box_face(x0, y0, size, score=0.9) -> Face:
    return Face((x0, y0, x0 + size, y0 + size), score)


# (name, face): positions on a 200x100 image
SMALL_LEFT_LOW = box_face(10, 60, 20, 0.7)
BIG_MIDDLE = box_face(80, 20, 50, 0.8)
MEDIUM_RIGHT_HIGH = box_face(160, 5, 30, 0.95)
FACES = [BIG_MIDDLE, SMALL_LEFT_LOW, MEDIUM_RIGHT_HIGH]


@pytest.mark.parametrize("order, expected", [
    ("largest first", [BIG_MIDDLE, MEDIUM_RIGHT_HIGH, SMALL_LEFT_LOW]),
    ("left to right", [SMALL_LEFT_LOW, BIG_MIDDLE, MEDIUM_RIGHT_HIGH]),
    ("right to left", [MEDIUM_RIGHT_HIGH, BIG_MIDDLE, SMALL_LEFT_LOW]),
    ("top to bottom", [MEDIUM_RIGHT_HIGH, BIG_MIDDLE, SMALL_LEFT_LOW]),
    ("most confident", [MEDIUM_RIGHT_HIGH, BIG_MIDDLE, SMALL_LEFT_LOW]),
])
def test_orders(order, expected):
    assert [id(f) for f in order_faces(FACES, order, 200, 100)] == [id(f) for f in expected]


def test_nearest_to_point_uses_fractions_of_the_image():
    ordered = order_faces(FACES, "nearest to point", 200, 100, point=(0.0, 1.0))
    assert ordered[0] is SMALL_LEFT_LOW
    ordered = order_faces(FACES, "nearest to point", 200, 100, point=(1.0, 0.0))
    assert ordered[0] is MEDIUM_RIGHT_HIGH


@pytest.mark.parametrize("text, expected", [
    ("all", None), ("", None), (" ALL ", None), ("0", [0]), ("0,2", [0, 2]), ("1-3", [1, 2, 3]),
    ("3-1", [3, 2, 1]), ("-1", [-1]), ("-2--1", [-2, -1]), ("0, 2 , 4", [0, 2, 4]), ("1 to 2", [1, 2]),
])
def test_parse_selection(text, expected):
    assert parse_selection(text) == expected


@pytest.mark.parametrize("text", ["first", "1,,2", "1-", "0--1", "1.5"])
def test_parse_selection_rejects_what_it_cannot_read(text):
    with pytest.raises(InvalidInputError, match="select"):
        parse_selection(text)


def test_select_skips_missing_indices_and_repeats():
    chosen = select_faces(FACES, "left to right", [2, 0, 7, -1, -3], 200, 100)
    assert [id(f) for f in chosen] == [id(MEDIUM_RIGHT_HIGH), id(SMALL_LEFT_LOW)]
    assert select_faces([], "largest first", [0], 200, 100) == []
    per_image = choose_faces([FACES, [], FACES[:1]], "largest first", "0", 200, 100)
    assert [len(f) for f in per_image] == [1, 0, 1] and per_image[0][0] is BIG_MIDDLE


def test_unknown_order_is_an_input_error():
    with pytest.raises(InvalidInputError, match="order"):
        order_faces(FACES, "alphabetical", 200, 100)


def test_preview_marks_chosen_faces_and_leaves_the_input_alone():
    image = np.zeros((100, 200, 3), np.uint8)
    drawn = draw_faces(image, FACES, [BIG_MIDDLE])
    assert image.sum() == 0 and drawn.shape == image.shape
    assert tuple(drawn[20, 100]) == (40, 220, 60)  # chosen: green box edge
    assert tuple(drawn[60, 15]) == (150, 150, 150)  # not chosen: grey


def test_registry_choices_round_trip():
    for backend in DETECTOR_BACKENDS:
        model = None if backend.model_kind is None else "some_file.onnx"
        assert parse_choice(choice_label(backend, model)) == (backend, model)
    with pytest.raises(InvalidInputError, match="detector"):
        parse_choice("no such detector")


@pytest.mark.parametrize("height, width, smallest, overlap", [(886, 1280, 267, 0.3), (100, 100, 10, 0.5),
                                                              (37, 1000, 60, 0.3), (5, 5, 1, 0.3)])
def test_tiles_cover_every_small_face_whole(height, width, smallest, overlap):
    tiles = detect_mediapipe.tile_grid(height, width, smallest, overlap)
    assert tiles[0] == (0, 0, 0, width, height)
    rng = np.random.default_rng(height)
    for level in {t[0] for t in tiles if t[0] > 0}:
        level_tiles = [t for t in tiles if t[0] == level]
        side = max(max(t[3] - t[1], t[4] - t[2]) for t in level_tiles)
        assert side >= smallest
        for _ in range(200):  # any box at most ``overlap`` of a tile wide lies inside one tile of the level
            w = rng.uniform(1, min(side * overlap, width))
            h = rng.uniform(1, min(side * overlap, height))
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            assert any(t[1] <= x and x + w <= t[3] and t[2] <= y and y + h <= t[4] for t in level_tiles)


def test_merge_keeps_one_detection_per_face():
    a, b = box_face(10, 10, 40, 0.9), box_face(14, 12, 40, 0.8)  # the same face twice
    inner = box_face(20, 20, 12, 0.95)  # a part of it, seen by a tile
    apart = box_face(100, 10, 40, 0.5)
    kept = detect_mediapipe.merge_detections([b, a, apart, inner])
    assert [id(f) for f in kept] == [id(a), id(apart)]
    assert [id(f) for f in detect_mediapipe.merge_detections([a, b])] == [id(a)]


def test_arcface_points_from_mediapipe_keypoints():
    keypoints = np.array([[40, 50], [60, 50], [50, 60], [50, 70], [30, 52], [70, 52]], np.float32)
    points = detect_mediapipe.arcface_points(keypoints)
    assert points.shape == (5, 2)
    assert np.allclose(points[:3], keypoints[:3])
    assert np.allclose(points[3:, 1], 70) and np.allclose(points[3:, 0].mean(), 50)
    assert np.isclose(points[4, 0] - points[3, 0], 20 * (70.7299 - 41.5493) / (73.5318 - 38.2946))


def test_missing_mediapipe_says_how_to_install_it(monkeypatch):
    real_import = detect_mediapipe.importlib.import_module

    def no_mediapipe(name, *args):
        if name == "mediapipe":
            raise ImportError("No module named 'mediapipe'")
        return real_import(name, *args)

    monkeypatch.setattr(detect_mediapipe.importlib, "import_module", no_mediapipe)
    with pytest.raises(ModelFileError) as error:
        detect_mediapipe.MediapipeFaceDetector()
    assert "pip install --no-deps mediapipe==0.10.21" in str(error.value)
    assert "numpy" in str(error.value)


def test_a_graph_mediapipe_cannot_build_is_explained():
    def broken(**_):
        raise RuntimeError("Failed to parse: node { calculator: ... }")

    with pytest.raises(ModelFileError, match="protobuf"):
        detect_mediapipe._build(broken)
