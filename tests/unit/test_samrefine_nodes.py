"""The SAMPrompt and MaskFuse nodes with a FACE_PARSE input, in-process (no FaceParse node exists yet to feed them in
a running ComfyUI): class-derived prompts, agreement with the parse, broadcasting, RGBA/greyscale images, and the
include/exclude rules. Needs ComfyUI's modules ($COMFYUI_DIR, default ~/ComfyUI); skipped without them."""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    """The pack imported the way ComfyUI imports it (a package named after its folder), with the fake SAM."""
    from tests.fixtures.sd15 import import_comfy

    try:
        import_comfy()
        import folder_paths  # noqa: F401
    except (RuntimeError, ImportError) as exc:
        pytest.skip(f"ComfyUI is not importable: {exc}")
    name = "remaskable_pack_under_test"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "__init__.py",
                                                      submodule_search_locations=[str(REPO)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    from tests.fixtures.models import write_models

    models = tmp_path_factory.mktemp("models")
    write_models(models, ["sam_vit_b_01ec64.pth"])
    sam_nodes = importlib.import_module(f"{name}.nodes.sam")
    sam_model = sam_nodes.PackModel.wrap(importlib.import_module(f"{name}.remaskable_core.sam").load_sam(
        models / "sams" / "sam_vit_b_01ec64.pth"), "sam_vit_b_01ec64.pth", models / "sams")

    class Pack:
        SAMPrompt = sam_nodes.SAMPrompt
        MaskFuse = importlib.import_module(f"{name}.nodes.fuse").MaskFuse
        FaceParseResult = importlib.import_module(f"{name}.remaskable_core.parsing").FaceParseResult
        CLASS_INDEX = importlib.import_module(f"{name}.remaskable_core.parsing").CLASS_INDEX
        InvalidInputError = importlib.import_module(f"{name}.remaskable_core.errors").InvalidInputError
        sam = sam_model

    return Pack


def head_parse(pack, batch: int = 1, height: int = 90, width: int = 121):
    """Hair cap above a skin face with two eyes, background elsewhere."""
    labels = torch.zeros(height, width, dtype=torch.long)
    labels[10:45, 20:100] = pack.CLASS_INDEX["hair"]
    labels[40:80, 35:85] = pack.CLASS_INDEX["skin"]
    labels[52:56, 45:52] = pack.CLASS_INDEX["l_eye"]
    labels[52:56, 68:75] = pack.CLASS_INDEX["r_eye"]
    labels[58:66, 57:63] = pack.CLASS_INDEX["nose"]
    probs = torch.nn.functional.one_hot(labels, 19).permute(2, 0, 1).float()[None].repeat(batch, 1, 1, 1)
    return pack.FaceParseResult(probs=probs, boxes=[[(35.0, 40.0, 85.0, 80.0)]] * batch, backend="test")


def test_sam_prompt_derives_prompts_from_parse_classes(pack):
    parse = head_parse(pack)
    image = torch.rand(2, 90, 121, 4)  # RGBA, a batch of 2 against a parse of 1
    mask, score, report = pack.SAMPrompt.execute(image=image, sam_model=pack.sam, prompts="", selection="agreement",
                                                 face_parse=parse, classes="hair", negative_points=2).args
    assert mask.shape == (2, 90, 121)
    assert math.isfinite(score)  # a random model's predicted IoU may lie anywhere
    labels = parse.label_map()[0]
    for entry in json.loads(report):
        for point in entry["points"]:
            on = int(labels[int(point["y"]), int(point["x"])])
            assert (on == pack.CLASS_INDEX["hair"]) == (point["label"] == 1)
        assert len(entry["boxes"]) == 1


def test_sam_prompt_user_points_join_derived_ones_on_a_greyscale_image(pack):
    parse = head_parse(pack)
    extra = json.dumps({"points": [{"x": 60, "y": 85, "label": 0}]})
    _, _, report = pack.SAMPrompt.execute(image=torch.rand(1, 90, 121, 1), sam_model=pack.sam, prompts=extra,
                                          selection="score", face_parse=parse, classes="skin").args
    entry, = json.loads(report)
    assert {"x": 60, "y": 85, "label": 0} in entry["points"]
    assert sum(p["label"] for p in entry["points"]) == 3  # the derived positives are still there


def test_sam_prompt_with_an_absent_class_returns_an_empty_mask_and_says_why(pack):
    mask, score, report = pack.SAMPrompt.execute(image=torch.rand(1, 90, 121, 3), sam_model=pack.sam, prompts="",
                                                 selection="score", face_parse=head_parse(pack), classes="hat").args
    assert float(mask.abs().sum()) == 0.0 and score == 0.0
    assert "no prompt" in json.loads(report)[0]["message"]


def test_sam_prompt_refuses_a_parse_of_another_size(pack):
    with pytest.raises(pack.InvalidInputError, match="face_parse"):
        pack.SAMPrompt.execute(image=torch.rand(1, 64, 64, 3), sam_model=pack.sam, prompts="", selection="score",
                               face_parse=head_parse(pack), classes="hair")


def test_mask_fuse_parse_vote_with_exclusion_and_inclusion(pack):
    parse = head_parse(pack)
    sam_mask = torch.zeros(1, 90, 121)
    sam_mask[0, 38:82, 33:87] = 1  # a bit larger than the skin
    edit, composite, report = pack.MaskFuse.execute(
        face_parse=parse, classes="skin", sam_mask=sam_mask, threshold=1.0, exclude_classes="eyes",
        include_classes="nose", composite_margin=4, composite_feather=4.0).args
    eyes, skin, nose = (parse.hard_mask(c)[0] > 0 for c in ("eyes", "skin", "nose"))
    assert float(edit[0][eyes].max()) == 0.0 and float(composite[0][eyes].max()) == 0.0
    assert bool((edit[0][skin] == 1).all())  # both voters agree on skin; the eye holes were not filled back
    assert bool((edit[0][nose] == 1).all())  # not skin, so only the include rule puts it in at threshold 1
    assert bool((composite >= edit).all())
    assert "image 0" in report


def test_mask_fuse_rules_need_a_parse(pack):
    with pytest.raises(pack.InvalidInputError, match="exclude_classes"):
        pack.MaskFuse.execute(sam_mask=torch.ones(1, 8, 8), exclude_classes="eyes")
    with pytest.raises(pack.InvalidInputError, match="refined_mask"):
        pack.MaskFuse.execute(sam_mask=torch.ones(1, 8, 8), refined_mask=torch.ones(1, 9, 8))
