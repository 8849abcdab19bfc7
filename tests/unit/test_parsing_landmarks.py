"""The landmark backend with mediapipe's real face mesh weights (bundled in mediapipe 0.10.21) on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

from remaskable_core.parsing import CLASS_INDEX, face_parse
from remaskable_core.parsing import landmarks as lm
from remaskable_core.parsing.landmarks import LandmarkParser


@pytest.fixture(scope="module")
def parser() -> LandmarkParser:
    return LandmarkParser()


def as_image(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).float()[None] / 255.0


@pytest.fixture(scope="module")
def astronaut(parser):
    image = as_image(skimage.data.astronaut())
    return image, parser.parse(image)


def centroid(mask: torch.Tensor) -> tuple[float, float]:
    ys, xs = torch.nonzero(mask >= 0.5, as_tuple=True)
    assert len(xs), "empty mask"
    return float(xs.float().mean()), float(ys.float().mean())


def test_astronaut_lips_lie_below_the_eyes_and_inside_the_face_box(astronaut):
    _, result = astronaut
    assert result.messages == [] and len(result.boxes[0]) == 1
    x0, y0, x1, y1 = result.boxes[0][0]
    lips = result.hard_mask("lips")[0]
    eyes = result.hard_mask("eyes")[0]
    ys, xs = torch.nonzero(lips, as_tuple=True)
    assert len(ys) > 100
    assert x0 <= float(xs.min()) and float(xs.max()) <= x1 and y0 <= float(ys.min()) and float(ys.max()) <= y1
    eye_ys, _ = torch.nonzero(eyes, as_tuple=True)
    assert float(ys.min()) > float(eye_ys.max()), "every lip pixel is below every eye pixel"
    # the face box is the face (Eileen Collins' face spans about x 175-275, y 65-180 in the 512x512 photo)
    assert 150 < x0 < 200 and 250 < x1 < 300 and 50 < y0 < 100 and 160 < y1 < 200


def test_astronaut_skin_covers_the_face_and_the_parts_sit_where_faces_have_them(astronaut):
    _, result = astronaut
    x0, y0, x1, y1 = (int(v) for v in result.boxes[0][0])
    skin = result.hard_mask("skin")[0]
    face_area = (x1 - x0) * (y1 - y0)
    assert float(skin[y0:y1, x0:x1].sum()) > 0.45 * face_area
    assert float(skin.sum()) == float(skin[y0 - 2:y1 + 2, x0 - 2:x1 + 2].sum()), "no skin away from the face"
    cheek_y = y0 + (y1 - y0) * 0.6
    assert skin[int(cheek_y), x0 + (x1 - x0) // 5] == 1 and skin[int(cheek_y), x1 - (x1 - x0) // 5] == 1
    left_eye, right_eye = centroid(result.probs[0, CLASS_INDEX["l_eye"]]), centroid(result.probs[0, CLASS_INDEX["r_eye"]])
    nose, mouth = centroid(result.probs[0, CLASS_INDEX["nose"]]), centroid(result.probs[0, CLASS_INDEX["mouth"]])
    left_brow, right_brow = (centroid(result.probs[0, CLASS_INDEX[n]]) for n in ("l_brow", "r_brow"))
    upper, lower = centroid(result.probs[0, CLASS_INDEX["u_lip"]]), centroid(result.probs[0, CLASS_INDEX["l_lip"]])
    assert left_eye[0] > right_eye[0] + 20, "the subject's left eye is on the image's right"
    assert left_brow[0] > right_brow[0] and left_brow[1] < left_eye[1] and right_brow[1] < right_eye[1]
    assert right_eye[0] < nose[0] < left_eye[0] and nose[1] > left_eye[1]
    assert upper[1] < mouth[1] < lower[1] and mouth[1] > nose[1]


def test_only_the_covered_classes_have_probability(astronaut):
    _, result = astronaut
    assert set(result.covered) == {"skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip"}
    uncovered = [CLASS_INDEX[n] for n in CLASS_INDEX if n not in result.covered]
    assert float(result.probs[:, uncovered].abs().sum()) == 0.0
    total = result.probs.sum(1)
    assert float(total.max()) <= 1.0 + 1e-5 and float(total[0, 0, 0]) == 0.0  # no claim outside the face
    soft = result.soft_mask("skin")
    assert bool(((soft > 0.05) & (soft < 0.95)).any()), "edges are soft"
    assert float(result.hard_mask("background").sum()) == 0.0


def test_mirrored_photo_keeps_the_subjects_left_on_the_image_right(parser):
    result = parser.parse(as_image(skimage.data.astronaut()[:, ::-1]))
    left_eye, right_eye = centroid(result.probs[0, CLASS_INDEX["l_eye"]]), centroid(result.probs[0, CLASS_INDEX["r_eye"]])
    assert left_eye[0] > right_eye[0]


@pytest.mark.parametrize("image", [skimage.data.coffee(), np.full((120, 97, 3), 128, np.uint8)], ids=["coffee", "grey"])
def test_no_face_gives_empty_masks_and_a_message(parser, image):
    out = face_parse(parser, as_image(image), preset="skin", classes="lips")
    assert float(out.mask.sum()) == 0.0 and out.result.boxes == [[]]
    assert out.messages == ["No face found in the image: its masks are empty."]


def test_batch_with_a_face_and_without_and_the_odd_inputs(parser):
    photo = skimage.data.astronaut()
    odd = photo[11:302, 99:356]  # 291 x 257
    rgba = np.concatenate([odd, np.full(odd.shape[:2] + (1,), 255, np.uint8)], axis=2)
    grey = (odd.mean(2, keepdims=True)).astype(np.uint8)
    for image in (odd, rgba, grey):
        out = face_parse(parser, as_image(image), preset="lips")
        assert out.mask.shape == (1, 291, 257) and float(out.mask.sum()) > 50
        assert out.preview.shape[0] == 1 and out.preview.shape[1] >= 291 and out.preview.shape[2] > 257
    batch = torch.cat([as_image(odd), as_image(skimage.data.coffee()[:291, :257])])
    out = face_parse(parser, batch, preset="eyes")
    assert float(out.mask[0].sum()) > 20 and float(out.mask[1].sum()) == 0.0
    assert out.messages == ["No face found in image 2 of 2: its masks are empty."]


def test_large_and_tiny_images(parser):
    big = torch.nn.functional.interpolate(as_image(skimage.data.astronaut()).permute(0, 3, 1, 2), scale_factor=2.5,
                                          mode="bilinear").permute(0, 2, 3, 1)
    result = parser.parse(big)
    assert len(result.boxes[0]) == 1
    assert float(result.hard_mask("lips").sum()) > 6 * 100
    tiny = parser.parse(torch.rand(2, 5, 3, 3))
    assert tiny.probs.shape == (2, 19, 5, 3) and len(tiny.messages) == 2


def test_uncovered_classes_are_reported(parser, astronaut):
    image, _ = astronaut
    out = face_parse(parser, image, preset="hair")
    assert float(out.mask.sum()) == 0.0
    assert out.messages == ["The landmarks backend does not detect hair: that part of the mask stays empty."]
    out = face_parse(parser, image, preset="face")
    assert out.messages == ["The landmarks backend does not detect eyeglasses: that part of the mask stays empty."]
    assert float(out.mask.sum()) > 5000


def test_group_photo_finds_several_faces(parser):
    import insightface

    path = Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"  # read only, never committed
    if not path.is_file():
        pytest.skip("insightface's sample group photo is not installed")
    import cv2

    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    result = parser.parse(as_image(image))
    boxes = result.boxes[0]
    assert len(boxes) == 6
    centres = [((a[0] + a[2]) / 2, (a[1] + a[3]) / 2) for a in boxes]
    for i, (x, y) in enumerate(centres):  # distinct faces, not one face found twice
        for other_x, other_y in centres[i + 1:]:
            assert abs(x - other_x) + abs(y - other_y) > 50
    assert float(result.hard_mask("lips").flatten(1).sum()) > 6 * 50


def test_mesh_index_tables_follow_mediapipes_own_contours(parser):
    connections = parser.mp.solutions.face_mesh_connections

    def edges(name):
        return {frozenset(e) for e in getattr(connections, name)}

    def closed(ring):
        return {frozenset(p) for p in zip(ring, ring[1:] + ring[:1])}

    def path(line):
        return {frozenset(p) for p in zip(line, line[1:])}

    assert closed(lm.FACE_OVAL) == edges("FACEMESH_FACE_OVAL")
    assert closed(lm.EYES["l_eye"]) == edges("FACEMESH_LEFT_EYE")
    assert closed(lm.EYES["r_eye"]) == edges("FACEMESH_RIGHT_EYE")
    for side, name in (("l_brow", "FACEMESH_LEFT_EYEBROW"), ("r_brow", "FACEMESH_RIGHT_EYEBROW")):
        ring = lm.BROWS[side]
        assert path(ring[:5]) | path(ring[5:]) == edges(name)
    assert path(lm.UPPER_LIP_OUTER) | path(lm.LOWER_LIP_OUTER) | path(lm.UPPER_LIP_INNER) | \
        path(lm.LOWER_LIP_INNER) == edges("FACEMESH_LIPS")
    assert {i for e in edges("FACEMESH_LEFT_IRIS") for i in e} == set(lm.IRISES["l_eye"][1])
    assert {i for e in edges("FACEMESH_RIGHT_IRIS") for i in e} == set(lm.IRISES["r_eye"][1])
    assert {i for e in edges("FACEMESH_NOSE") for i in e} == set(lm.NOSE)


def test_missing_mediapipe_explains_how_to_install_it(monkeypatch):
    import sys

    from remaskable_core.errors import ModelFileError

    monkeypatch.setitem(sys.modules, "mediapipe", None)  # what an absent package looks like to an import
    with pytest.raises(ModelFileError) as error:
        LandmarkParser()
    message = str(error.value)
    assert "--no-deps mediapipe==0.10.21" in message and "protobuf" in message and "numpy" in message
