"""The mask editor's preview logic without ComfyUI: request validation, the image lookup that must stay inside the
input/temp folders, class toggling, and the payload (mask PNG, label map, overlay) for parse and SAM previews."""

from __future__ import annotations

import base64
import io
import json
import os
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from remaskable_core.editor import (UNCLAIMED, ImageRef, PreviewChoices, label_pixels, load_image, overlay_pixels,
                                    parse_preview, read_preview_request, resolve_image, sam_preview, toggle_class)
from remaskable_core.errors import InvalidInputError
from remaskable_core.parsing import CLASS_INDEX, FaceParseResult, select_classes

SIDES = {"subject's left/right (by position)": "subject", "as the model labels them": "model"}
CHOICES = PreviewChoices(parsers=["landmarks", "79999_iter.pth"], sam_models=["sam_vit_b_01ec64.pth"], sides=SIDES)
IMAGE = {"filename": "face.png", "subfolder": "", "type": "input"}


def parse_body(**fields) -> dict:
    return {"image": IMAGE, "mode": "parse", "parser": "79999_iter.pth", "preset": "face", "classes": "",
            **fields}


def decode_png(data: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))


# --- request validation ---------------------------------------------------------------------------------------------

def test_a_parse_request_is_read_with_defaults_and_the_node_widget_values():
    request = read_preview_request(parse_body(left_right="as the model labels them", mask_mode="hard",
                                              toggle="hair"), CHOICES)
    assert (request.parser, request.preset, request.hard, request.sides, request.toggle) == (
        "79999_iter.pth", "face", True, "model", "hair")
    default = read_preview_request({"image": IMAGE, "mode": "parse", "parser": "landmarks"}, CHOICES)
    assert (default.preset, default.classes, default.hard, default.sides, default.toggle) == (
        "none", "", False, "subject", None)


def test_a_sam_request_takes_the_prompts_as_text_or_as_an_object():
    prompts = {"points": [{"x": 3, "y": 4, "label": 1}], "boxes": []}
    as_object = read_preview_request({"image": IMAGE, "mode": "sam", "sam_model": "sam_vit_b_01ec64.pth",
                                      "prompts": prompts}, CHOICES)
    as_text = read_preview_request({"image": IMAGE, "mode": "sam", "sam_model": "sam_vit_b_01ec64.pth",
                                    "prompts": json.dumps(prompts)}, CHOICES)
    assert json.loads(as_object.prompts) == json.loads(as_text.prompts) == prompts


@pytest.mark.parametrize("body, field, words", [
    ([1, 2], "body", "JSON object"),
    ({"image": IMAGE}, "mode", "missing"),
    ({"image": IMAGE, "mode": "edit"}, "mode", "not one of"),
    (parse_body(sam_model="x"), "body", "does not use"),
    ({"image": IMAGE, "mode": "parse"}, "parser", "missing"),
    ({"image": IMAGE, "mode": "sam"}, "sam_model", "missing"),
    (parse_body(parser="other.pth"), "parser", "not one of"),
    (parse_body(parser=3), "parser", "must be a string"),
    (parse_body(classes="hair, wings"), "classes", "unknown class"),
    (parse_body(preset="everything"), "preset", "unknown preset"),
    (parse_body(toggle="wings"), "toggle", "not one of"),
    (parse_body(mask_mode="fuzzy"), "mask_mode", "not one of"),
    (parse_body(left_right="mirror"), "left_right", "not one of"),
    (parse_body(classes="hair\x00"), "classes", "NUL"),
    (parse_body(image="face.png"), "image", "must be an object"),
    (parse_body(image={**IMAGE, "path": "/etc"}), "image", "unknown key"),
    (parse_body(image={**IMAGE, "type": "output"}), "image.type", "not one of"),
    (parse_body(image={**IMAGE, "filename": "../secret.png"}), "image.filename", "plain file name"),
    (parse_body(image={**IMAGE, "filename": "..\\secret.png"}), "image.filename", "plain file name"),
    (parse_body(image={**IMAGE, "filename": ".."}), "image.filename", "plain file name"),
    (parse_body(image={**IMAGE, "filename": ""}), "image.filename", "plain file name"),
    (parse_body(image={**IMAGE, "subfolder": "a/../../b"}), "image.subfolder", "without '..'"),
    (parse_body(image={**IMAGE, "subfolder": "/etc"}), "image.subfolder", "relative"),
    (parse_body(image={**IMAGE, "subfolder": "C:\\Windows"}), "image.subfolder", "relative"),
    (parse_body(image={**IMAGE, "subfolder": "a\\..\\.."}), "image.subfolder", "without '..'"),
    ({"image": IMAGE, "mode": "sam", "sam_model": "sam_vit_b_01ec64.pth", "prompts": 5}, "prompts", "string"),
    ({"image": IMAGE, "mode": "sam", "sam_model": "vit_z.pth"}, "sam_model", "not one of"),
])
def test_every_field_is_validated(body, field, words):
    with pytest.raises(InvalidInputError) as caught:
        read_preview_request(body, CHOICES)
    assert caught.value.input_name == field
    assert words in str(caught.value)


# --- the image stays inside input/temp -------------------------------------------------------------------------------

@pytest.fixture
def roots(tmp_path):
    folders = {"input": tmp_path / "input", "temp": tmp_path / "temp"}
    for folder in folders.values():
        (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (6, 4), (10, 20, 30)).save(folders["input"] / "sub" / "face.png")
    Image.new("RGB", (5, 5)).save(folders["temp"] / "t.png")
    (tmp_path / "secret.png").write_bytes(b"not for the browser")
    return folders


def test_images_resolve_inside_their_folder(roots):
    assert resolve_image(ImageRef("face.png", "sub", "input"), roots) == (roots["input"] / "sub" / "face.png").resolve()
    assert resolve_image(ImageRef("t.png", "", "temp"), roots) == (roots["temp"] / "t.png").resolve()


def test_symlinks_leading_out_of_the_folder_are_refused(roots, tmp_path):
    os.symlink(tmp_path / "secret.png", roots["input"] / "link.png")
    os.symlink(tmp_path, roots["input"] / "outside")
    os.symlink(roots["input"] / "sub" / "face.png", roots["input"] / "inside.png")
    for ref in (ImageRef("link.png", "", "input"), ImageRef("secret.png", "outside", "input")):
        with pytest.raises(InvalidInputError, match="outside ComfyUI's input folder"):
            resolve_image(ref, roots)
    assert resolve_image(ImageRef("inside.png", "", "input"), roots).name == "face.png"


@pytest.mark.parametrize("ref, words", [
    (ImageRef("missing.png", "", "input"), "does not exist"),
    (ImageRef("sub", "", "input"), "not a file"),
    (ImageRef("face.png", "sub", "output"), "not one of"),
])
def test_missing_files_folders_and_unknown_types_are_refused(roots, ref, words):
    with pytest.raises(InvalidInputError, match=words):
        resolve_image(ref, roots)


def test_images_load_like_load_image(roots, tmp_path):
    image = load_image(roots["input"] / "sub" / "face.png")
    assert image.shape == (1, 4, 6, 3) and torch.allclose(image[0, 0, 0], torch.tensor([10, 20, 30]) / 255.0)
    Image.fromarray(np.full((3, 7), 40000, np.int32)).save(tmp_path / "grey32.tiff")
    assert load_image(tmp_path / "grey32.tiff").shape == (1, 3, 7, 3)
    (tmp_path / "bad.png").write_bytes(b"no image")
    with pytest.raises(InvalidInputError, match="not a readable image"):
        load_image(tmp_path / "bad.png")


# --- toggling classes ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset, classes, name, expected", [
    ("none", "", "hair", "hair"),
    ("none", "hair", "hair", ""),
    ("face", "", "l_eye", "-l_eye"),
    ("face", "-l_eye", "l_eye", ""),
    ("none", "lips", "u_lip", "lips, -u_lip"),
    ("none", "lips, -u_lip", "u_lip", "lips"),
    ("face", "hair; -nose", "hair", "-nose"),
    ("none", "hair, hair", "hair", ""),
])
def test_toggling_flips_exactly_one_class(preset, classes, name, expected):
    toggled = toggle_class(preset, classes, name)
    assert toggled == expected
    before, after = set(select_classes(preset, classes)), set(select_classes(preset, toggled))
    assert before ^ after == {name}


# --- payloads --------------------------------------------------------------------------------------------------------

def two_class_parse(height: int = 6, width: int = 8, landmark_style: bool = False) -> FaceParseResult:
    """Hair on the left half, skin on the right; the landmark style leaves the top row unclaimed."""
    probs = torch.zeros(1, 19, height, width)
    probs[0, CLASS_INDEX["hair"], :, : width // 2] = 1.0
    probs[0, CLASS_INDEX["skin"], :, width // 2:] = 1.0
    if landmark_style:
        probs[0, :, 0] = 0.0
    return FaceParseResult(probs, [[(0.0, 0.0, float(width), float(height))]], "test")


class Parser:
    backend = "test"
    sides = "subject"


def test_label_map_and_overlay_name_each_pixel_and_skip_unclaimed_ones():
    labels = label_pixels(two_class_parse(landmark_style=True))
    assert labels.dtype == np.uint8 and labels.shape == (6, 8)
    assert (labels[0] == UNCLAIMED).all()
    assert (labels[1:, :4] == CLASS_INDEX["hair"]).all() and (labels[1:, 4:] == CLASS_INDEX["skin"]).all()
    overlay = overlay_pixels(labels)
    assert overlay.shape == (6, 8, 4) and (overlay[0, :, 3] == 0).all() and (overlay[1:, :, 3] == 255).all()


def test_a_parse_preview_toggles_then_masks_and_maps_every_pixel_to_its_class():
    request = read_preview_request(parse_body(preset="none", classes="skin", toggle="hair", mask_mode="hard"), CHOICES)
    payload = parse_preview(Parser(), two_class_parse(), request)
    assert payload["classes"] == "skin, hair" and payload["chosen"] == ["skin", "hair"]
    assert (payload["width"], payload["height"]) == (8, 6)
    assert (decode_png(payload["mask"]) == 255).all()
    labels = np.frombuffer(zlib.decompress(base64.b64decode(payload["labels"]["data"])), np.uint8).reshape(6, 8)
    assert payload["class_names"][labels[0, 0]] == "hair" and payload["class_names"][labels[0, 7]] == "skin"
    assert decode_png(payload["overlay"]).shape == (6, 8, 4)
    json.dumps(payload)  # plain JSON

    off = parse_preview(Parser(), two_class_parse(), read_preview_request(
        parse_body(preset="none", classes="skin, hair", toggle="hair", mask_mode="hard"), CHOICES))
    mask = decode_png(off["mask"])
    assert off["classes"] == "skin" and (mask[:, :4] == 0).all() and (mask[:, 4:] == 255).all()


def test_an_empty_selection_says_so():
    payload = parse_preview(Parser(), two_class_parse(), read_preview_request(parse_body(preset="none"), CHOICES))
    assert (decode_png(payload["mask"]) == 0).all()
    assert any("No classes are chosen" in m for m in payload["messages"])


@pytest.fixture(scope="module")
def tiny_sam():
    pytest.importorskip("segment_anything")
    from remaskable_core.sam import build_sam
    from tests.fixtures.models import TINY_SAM, randomize

    return randomize(build_sam(TINY_SAM), seed=3)


def sam_request(prompts) -> object:
    return read_preview_request({"image": IMAGE, "mode": "sam", "sam_model": "sam_vit_b_01ec64.pth",
                                 "prompts": prompts}, CHOICES)


def test_a_sam_preview_gives_an_image_sized_mask(tiny_sam):
    image = torch.rand(1, 37, 53, 3)
    payload = sam_preview(tiny_sam, image, sam_request({"points": [{"x": 20, "y": 10, "label": 1}],
                                                        "boxes": [[5, 5, 40, 30]]}))
    mask = decode_png(payload["mask"])
    assert mask.shape == (37, 53) and set(np.unique(mask)) <= {0, 255}
    assert (payload["width"], payload["height"]) == (53, 37) and 0.0 <= abs(payload["score"]) < 10


def test_a_sam_preview_without_a_positive_prompt_is_empty_and_says_what_to_do(tiny_sam):
    payload = sam_preview(tiny_sam, torch.rand(1, 20, 30, 3), sam_request({"points": [{"x": 3, "y": 3, "label": 0}]}))
    assert (decode_png(payload["mask"]) == 0).all() and "click the object" in payload["messages"][0]


@pytest.mark.parametrize("prompts, words", [
    ({"points": [{"x": 31, "y": 3, "label": 1}]}, "outside the 30x20 image"),
    ("{not json", "not valid JSON"),
    ({"points": [{"x": 3, "y": 3, "label": 2}]}, "label"),
    ({"boxes": [[10, 10, 5, 5]]}, "x0 < x1"),
])
def test_bad_or_out_of_range_prompts_are_refused(tiny_sam, prompts, words):
    with pytest.raises(InvalidInputError, match=words):
        sam_preview(tiny_sam, torch.rand(1, 20, 30, 3), sam_request(prompts))
