"""Faces read off a parse, left/right by position, class selection and the preview (no model needed)."""

from __future__ import annotations

import math

import pytest
import torch

from remaskable_core.errors import InvalidInputError
from remaskable_core.parsing import CLASS_INDEX, FaceParseResult, select_classes
from remaskable_core.parsing.geometry import assign_sides, find_faces
from remaskable_core.parsing.pipeline import settle_sides
from remaskable_core.parsing.preview import render_preview


def synthetic_face(height=120, width=160, cx=80.0, cy=60.0, roll_degrees=0.0, eye_label="r_eye"):
    """A one-face parse: skin disc, two eyes, nose, mouth; both eyes labelled ``eye_label`` (as a model with
    mixed-up sides might). Parts are placed in the face's own frame, rotated by ``roll_degrees``."""
    probs = torch.zeros(19, height, width)
    probs[CLASS_INDEX["background"]] = 1.0
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    angle = math.radians(roll_degrees)

    def place(name, u, v, radius):
        x = cx + u * math.cos(angle) - v * math.sin(angle)
        y = cy + u * math.sin(angle) + v * math.cos(angle)
        inside = (xs - x) ** 2 + (ys - y) ** 2 <= radius ** 2
        probs[:, inside] = 0.0
        probs[CLASS_INDEX[name], inside] = 1.0
        return x, y

    place("skin", 0, 0, 40)
    image_left_eye = place(eye_label, -15, -12, 5)  # u < 0: the image's left on an upright face
    image_right_eye = place(eye_label, 15, -12, 5)
    place("nose", 0, 2, 5)
    place("mouth", 0, 20, 6)
    return probs, image_left_eye, image_right_eye


def centroid(mask):
    ys, xs = torch.nonzero(mask >= 0.5, as_tuple=True)
    return float(xs.float().mean()), float(ys.float().mean())


@pytest.mark.parametrize("roll", [0.0, 35.0, -35.0, 80.0])
@pytest.mark.parametrize("eye_label", ["l_eye", "r_eye"])
def test_sides_follow_the_subject_whatever_the_model_said(roll, eye_label):
    probs, image_left, image_right = synthetic_face(roll_degrees=roll, eye_label=eye_label)
    boxes = find_faces(probs)
    assert len(boxes) == 1
    settled = assign_sides(probs, boxes)
    subject_left, subject_right = centroid(settled[CLASS_INDEX["l_eye"]]), centroid(settled[CLASS_INDEX["r_eye"]])
    assert math.dist(subject_left, image_right) < 1.5, "the subject's left eye is the one on the image's right"
    assert math.dist(subject_right, image_left) < 1.5
    assert torch.allclose(settled.sum(0), probs.sum(0))
    untouched = [i for i in range(19) if i not in (CLASS_INDEX["l_eye"], CLASS_INDEX["r_eye"])]
    assert torch.equal(settled[untouched], probs[untouched])


def test_two_faces_each_split_on_their_own_midline():
    left, *_ = synthetic_face(width=320, cx=80)
    right, *_ = synthetic_face(width=320, cx=240)
    probs = torch.where(right[CLASS_INDEX["background"]] < 1, right, left)
    boxes = find_faces(probs)
    assert len(boxes) == 2
    result = settle_sides(FaceParseResult(probs[None], [boxes], "test"))
    l_eye = result.probs[0, CLASS_INDEX["l_eye"]]
    xs = torch.nonzero(l_eye >= 0.5, as_tuple=True)[1]
    on_first, on_second = (xs >= 90) & (xs <= 100), (xs >= 250) & (xs <= 260)  # the eyes at x = cx + 15
    assert bool((on_first | on_second).all()) and bool(on_first.any()) and bool(on_second.any()), \
        "one subject-left eye per face, each right of its own nose"


def test_small_blobs_are_not_faces():
    probs = torch.zeros(19, 200, 200)
    probs[CLASS_INDEX["background"]] = 1.0
    probs[:, 10:13, 10:13] = 0.0
    probs[CLASS_INDEX["skin"], 10:13, 10:13] = 1.0  # 9 px: below MIN_FACE_PIXELS
    probs[:, 100:140, 50:80] = 0.0
    probs[CLASS_INDEX["skin"], 100:140, 50:80] = 1.0
    assert find_faces(probs) == [(50.0, 100.0, 80.0, 140.0)]


def test_select_classes_from_presets_and_lists():
    assert select_classes("lips") == ("u_lip", "l_lip")
    assert select_classes("face", "-l_eye, -r_eye, hair") == (
        "skin", "nose", "l_brow", "r_brow", "mouth", "u_lip", "l_lip", "eye_g", "hair")
    assert select_classes("none", "eyes; nose") == ("l_eye", "r_eye", "nose")
    assert select_classes("eyes", "-eyes") == ()
    with pytest.raises(InvalidInputError, match="unknown class or preset 'beard'"):
        select_classes("face", "beard")
    with pytest.raises(InvalidInputError, match="preset"):
        select_classes("faces")


def test_hard_mask_ignores_unclaimed_probability():
    probs = torch.zeros(1, 19, 2, 2)
    probs[0, CLASS_INDEX["skin"], 0, 0] = 0.3  # a landmark backend's soft edge: 70 % unclaimed
    probs[0, CLASS_INDEX["skin"], 0, 1] = 0.8
    result = FaceParseResult(probs, [[]], "landmarks", ("skin",))
    assert result.hard_mask("skin")[0].tolist() == [[0.0, 1.0], [0.0, 0.0]]
    assert result.hard_mask("background").sum() == 0


def test_preview_has_one_size_for_the_batch_and_outlines_the_mask():
    probs, *_ = synthetic_face()
    other = torch.zeros_like(probs)
    other[CLASS_INDEX["background"]] = 1.0
    result = FaceParseResult(torch.stack([probs, other]), [find_faces(probs), []], "test",
                             messages=["No face found in image 2 of 2: its masks are empty."])
    mask = result.hard_mask("skin")
    images = torch.rand(2, 120, 160, 3)
    preview = render_preview(images, result, ("skin",), mask, "left/right = the subject's own", ["a note"])
    assert preview.shape[0] == 2 and preview.shape[1] >= 120 and preview.shape[2] > 160
    assert float(preview.min()) >= 0.0 and float(preview.max()) <= 1.0
    white = (preview[0, :120, :160] == 1.0).all(-1)
    assert int(white.sum()) > 100, "the mask outline is drawn"
    assert not bool((preview[1, :120, :160] == 1.0).all(-1).any()), "no outline without a mask"
    legend = preview[:, :, 160:]
    assert float(legend.std()) > 0.05, "the legend holds text and swatches"
    tiny = render_preview(torch.rand(1, 9, 7, 3), FaceParseResult(torch.zeros(1, 19, 9, 7), [[]], "landmarks",
                                                                  ("skin",)),
                          ("skin",), torch.zeros(1, 9, 7), "left/right = the subject's own")
    assert tiny.shape[1] > 9 and tiny.shape[2] > 7, "the legend stays readable on tiny images"
