"""remaskable_core.workflow: UI workflow -> API prompt, checked against the real frontend's graphToPrompt().

Every ``data/<name>.api.json`` was produced by comfyui-frontend-package 1.27.10 in headless Chromium from
``data/<name>.json`` (see ``data/regenerate_expected.py``); ``data/object_info_core.json`` holds the matching
``/object_info`` entries of ComfyUI v0.3.64. No ComfyUI is needed here.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import datetime
from pathlib import Path

import pytest

from remaskable_core.errors import ReMaskableError
from remaskable_core.workflow import WorkflowError, is_api_format, ui_to_api

DATA = Path(__file__).resolve().parent / "data"
CASES = sorted(p.name[: -len(".api.json")] for p in DATA.glob("*.api.json"))


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


@pytest.fixture(scope="module")
def object_info() -> dict:
    return load("object_info_core.json")


def test_all_cases_present():
    assert set(CASES) >= {
        "default_txt2img", "reroute_chain", "bypass_mute", "primitive_seed", "widget_to_input", "notes",
        "load_image", "links_v1", "dynamic_prompts", "primitive_edge_cases", "bypass_edge_cases",
    }


@pytest.mark.parametrize("name", CASES)
def test_matches_frontend(name, object_info):
    workflow = load(f"{name}.json")
    expected = load(f"{name}.api.json")
    before = copy.deepcopy(workflow)
    assert ui_to_api(workflow, object_info, rng=random.Random(0)) == expected
    assert workflow == before  # the input is not modified


@pytest.mark.parametrize("name", CASES)
def test_is_api_format(name):
    assert is_api_format(load(f"{name}.api.json"))
    assert not is_api_format(load(f"{name}.json"))


@pytest.mark.parametrize("data", [{}, [], None, "x", {"nodes": []}, {"1": {"inputs": {}}}, {"1": 5}])
def test_is_api_format_rejects(data):
    assert not is_api_format(data)


# ---- what the frontend-made cases show, spelled out ----------------------------------------------------------

def test_default_graph(object_info):
    out = ui_to_api(load("default_txt2img.json"), object_info)
    ks = out["3"]
    assert ks["class_type"] == "KSampler" and ks["_meta"] == {"title": "KSampler"}
    # widgets_values [seed, control_after_generate, steps, ...]: the control value is not an input
    assert ks["inputs"]["seed"] == 156680208700286 and ks["inputs"]["steps"] == 20
    assert "control_after_generate" not in ks["inputs"]
    assert ks["inputs"]["model"] == ["4", 0] and ks["inputs"]["latent_image"] == ["5", 0]


def test_load_image_upload_value_is_skipped(object_info):
    out = ui_to_api(load("load_image.json"), object_info)
    assert out["1"]["inputs"] == {"image": "example.png"}
    assert out["4"]["inputs"] == {"image": "subdir/mask.png", "channel": "red"}  # upload slot comes last


def test_bypass_and_mute(object_info):
    out = ui_to_api(load("bypass_mute.json"), object_info)
    assert out["5"]["inputs"]["model"] == ["1", 0]  # through the bypassed LoraLoader, by type
    assert out["6"]["inputs"]["samples"] == ["5", 0]  # through the bypassed KSampler: LATENT found by type
    assert out["10"]["inputs"]["images"] == ["6", 0]  # through the bypassed ImageInvert
    assert "images" not in out["12"]["inputs"]  # linked from a muted node: dropped
    assert "mask" not in out["15"]["inputs"]  # bypassed ImageToMask has no MASK input to pass
    assert not {"7", "8", "11", "13", "14"} & set(out)  # bypassed and muted nodes are not sent


def test_primitive_values_are_inlined(object_info):
    out = ui_to_api(load("primitive_seed.json"), object_info)
    assert out["5"]["inputs"]["seed"] == 42
    assert out["5"]["inputs"]["sampler_name"] == "dpmpp_2m"
    assert out["4"]["inputs"]["width"] == out["4"]["inputs"]["height"] == 768
    assert out["5"]["inputs"]["cfg"] == 8  # a primitive behind a Reroute is not applied by the frontend either
    assert all(v["class_type"] != "PrimitiveNode" for v in out.values())


def test_converted_widgets(object_info):
    out = ui_to_api(load("widget_to_input.json"), object_info)
    assert out["2"]["inputs"]["text"] == ["8", 0]  # the link wins over widgets_values
    assert out["4"]["inputs"] == {"width": ["9", 0], "height": 512, "batch_size": 1}
    assert out["5"]["inputs"]["steps"] == ["10", 0]
    assert "denoise" not in out["5"]["inputs"]  # linked from a muted node: the input disappears


def test_notes_dropped(object_info):
    out = ui_to_api(load("notes.json"), object_info)
    assert set(out) == {"3", "4", "5", "6", "7", "8", "9"}


def test_v1_links_and_reroute(object_info):
    workflow = load("links_v1.json")
    assert workflow["version"] == 1 and isinstance(workflow["links"][0], dict)
    out = ui_to_api(workflow, object_info)
    assert out["8"]["inputs"]["vae"] == ["4", 2]  # through the legacy Reroute node 10


def test_links_v1_same_as_v04(object_info):
    workflow = load("default_txt2img.json")
    as_v1 = copy.deepcopy(workflow)
    as_v1["version"] = 1
    as_v1["links"] = [dict(zip(("id", "origin_id", "origin_slot", "target_id", "target_slot", "type"), link))
                      for link in workflow["links"]]
    assert ui_to_api(as_v1, object_info) == ui_to_api(workflow, object_info)


# ---- behaviour not covered by frontend-made files ------------------------------------------------------------

def test_widgets_values_dict_mapped_by_name(object_info):
    # Some packs save widgets_values as {name: value}. Frontend 1.27 ignores such a dict for core nodes and
    # sends the defaults; the converter maps it by name, which is what those packs' own JS does.
    workflow = load("default_txt2img.json")
    ks = next(n for n in workflow["nodes"] if n["type"] == "KSampler")
    ks["widgets_values"] = {"seed": 5, "control_after_generate": "fixed", "steps": 3, "cfg": 2.5,
                            "sampler_name": "dpmpp_2m", "scheduler": "karras"}
    inputs = ui_to_api(workflow, object_info)[str(ks["id"])]["inputs"]
    assert {k: inputs[k] for k in ("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise")} == {
        "seed": 5, "steps": 3, "cfg": 2.5, "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 1.0}


def test_missing_widgets_values_give_defaults(object_info):
    workflow = load("default_txt2img.json")
    for node in workflow["nodes"]:
        node.pop("widgets_values", None)
    out = ui_to_api(workflow, object_info)
    assert out["5"]["inputs"] == {"width": 512, "height": 512, "batch_size": 1}
    assert out["3"]["inputs"]["seed"] == 0 and out["3"]["inputs"]["scheduler"] == "simple"
    assert "ckpt_name" not in out["4"]["inputs"]  # an empty combo has no default (JS undefined)


def _text_node_workflow(text: str, prefix: str = "ComfyUI") -> dict:
    workflow = load("dynamic_prompts.json")
    for node in workflow["nodes"]:
        if node.get("title") == "Positive":
            node["widgets_values"] = [text]
        if node["type"] == "SaveImage":
            node["widgets_values"] = [prefix]
    return workflow


def test_dynamic_prompt_choices_use_rng(object_info):
    workflow = _text_node_workflow("a {cat|dog|bird} /* x */ photo")
    seen = {ui_to_api(workflow, object_info, rng=random.Random(seed))["2"]["inputs"]["text"] for seed in range(40)}
    assert seen == {"a cat  photo", "a dog  photo", "a bird  photo"}
    first = ui_to_api(workflow, object_info, rng=random.Random(3))
    assert ui_to_api(workflow, object_info, rng=random.Random(3)) == first


def test_filename_prefix_date(object_info):
    workflow = _text_node_workflow("x", "run_%date:yyyy-MM-dd_hh.mm%_%date:yyMd%_%KSampler.steps%")
    out = ui_to_api(workflow, object_info, now=datetime(2024, 3, 7, 9, 5, 1))
    # "%date:yyyy-MM-dd_hh.mm%" has a dot, so the frontend reads it as Node.widget and leaves it alone
    assert out["7"]["inputs"]["filename_prefix"] == "run_%date:yyyy-MM-dd_hh.mm%_2437_20"
    out = ui_to_api(_text_node_workflow("x", "%date:yyyy-MM-dd hh-mm-ss%"), object_info,
                    now=datetime(2024, 3, 7, 9, 5, 1))
    assert out["7"]["inputs"]["filename_prefix"] == "2024-03-07 09-05-01"


def test_title_falls_back_to_display_name_then_name(object_info):
    workflow = {"nodes": [
        {"id": 1, "type": "ImageBlend", "mode": 0, "inputs": [], "outputs": [], "widgets_values": [0.5, "normal"]},
        {"id": 2, "type": "EmptyLatentImage", "mode": 0, "inputs": [], "outputs": [], "widgets_values": [8, 8, 1]},
        {"id": 3, "type": "EmptyLatentImage", "title": "Mine", "mode": 0, "widgets_values": [8, 8, 1]},
    ], "links": [], "version": 0.4}
    out = ui_to_api(workflow, object_info)
    # The frontend shows "Image Blend" from its own English locale; the server has no display_name for it.
    assert [out[k]["_meta"]["title"] for k in "123"] == ["ImageBlend", "Empty Latent Image", "Mine"]


def test_unknown_unlinked_node_is_dropped(object_info):
    workflow = load("default_txt2img.json")
    workflow["nodes"].append({"id": 50, "type": "Label (rgthree)", "mode": 0, "inputs": [], "outputs": [],
                              "widgets_values": ["hello"]})
    assert ui_to_api(workflow, object_info) == ui_to_api(load("default_txt2img.json"), object_info)


# ---- errors ----------------------------------------------------------------------------------------------------

def _add_unknown(workflow: dict, node_id: int, node_type: str, source: tuple[int, int], title: str | None = None):
    link_id = max(link[0] for link in workflow["links"]) + 1
    node = {"id": node_id, "type": node_type, "mode": 0, "inputs": [{"name": "image", "type": "IMAGE",
                                                                    "link": link_id}], "outputs": []}
    if title:
        node["title"] = title
    workflow["nodes"].append(node)
    workflow["links"].append([link_id, source[0], source[1], node_id, 0, "IMAGE"])


def test_unknown_types_listed(object_info):
    workflow = load("default_txt2img.json")
    _add_unknown(workflow, 20, "VHS_VideoCombine", (8, 0))
    _add_unknown(workflow, 21, "FaceDetailer", (8, 0))
    _add_unknown(workflow, 22, "FaceDetailer", (8, 0))
    with pytest.raises(WorkflowError) as err:
        ui_to_api(workflow, object_info)
    message = str(err.value)
    assert "FaceDetailer (node 21, 22)" in message and "VHS_VideoCombine (node 20)" in message
    assert "install the pack" in message


def test_unknown_muted_or_bypassed_is_fine(object_info):
    workflow = load("default_txt2img.json")
    _add_unknown(workflow, 20, "VHS_VideoCombine", (8, 0))
    workflow["nodes"][-1]["mode"] = 2
    assert "20" not in ui_to_api(workflow, object_info)


def test_error_is_value_error():
    assert issubclass(WorkflowError, ValueError) and issubclass(WorkflowError, ReMaskableError)


def test_subgraph_rejected(object_info):
    workflow = load("links_v1.json")
    sub_id = "a3b4c5d6-0000-4000-8000-000000000001"
    workflow["definitions"] = {"subgraphs": [{
        "id": sub_id, "name": "Upscale block", "version": 1, "state": {}, "revision": 0, "config": {},
        "inputNode": {"id": -10, "bounding": [0, 0, 75, 100]}, "outputNode": {"id": -20, "bounding": [0, 0, 75, 100]},
        "inputs": [], "outputs": [], "widgets": [], "nodes": [], "links": [], "groups": []}]}
    workflow["nodes"].append({"id": 30, "type": sub_id, "title": "My upscaler", "mode": 0, "inputs": [],
                              "outputs": [], "properties": {}, "widgets_values": []})
    with pytest.raises(WorkflowError, match=r"node 30 .*My upscaler.*subgraph 'Upscale block'.*not supported"):
        ui_to_api(workflow, object_info)


def test_group_node_rejected(object_info):
    workflow = load("default_txt2img.json")
    workflow["extra"] = {"groupNodes": {"Sampler group": {"nodes": [], "links": []}}}
    workflow["nodes"].append({"id": 30, "type": "workflow>Sampler group", "mode": 0, "inputs": [], "outputs": []})
    with pytest.raises(WorkflowError, match="legacy group node"):
        ui_to_api(workflow, object_info)


def test_browser_only_node_rejected(object_info):
    workflow = {"nodes": [{"id": 1, "type": "WebcamCapture", "title": "Cam", "mode": 0, "inputs": [], "outputs": [],
                           "widgets_values": ["", 512, 512, True, "capture"]}], "links": [], "version": 0.4}
    with pytest.raises(WorkflowError, match=r"node 1 \('WebcamCapture', title 'Cam'\).*'image'.*browser"):
        ui_to_api(workflow, object_info)
    workflow["nodes"][0]["mode"] = 2
    assert ui_to_api(workflow, object_info) == {}


def test_dangling_link_id(object_info):
    workflow = load("default_txt2img.json")
    node = next(n for n in workflow["nodes"] if n["id"] == 8)
    node["inputs"][1]["link"] = 999
    with pytest.raises(WorkflowError, match=r"node 8 \('VAEDecode'\).*'vae'.*link 999"):
        ui_to_api(workflow, object_info)


def test_link_from_missing_node(object_info):
    workflow = load("default_txt2img.json")
    link = next(link for link in workflow["links"] if link[0] == 8)
    link[1] = 77
    with pytest.raises(WorkflowError, match=r"node 8 .*from node 77"):
        ui_to_api(workflow, object_info)


def test_circular_reroutes(object_info):
    workflow = load("default_txt2img.json")
    reroute = {"properties": {}, "mode": 0, "type": "Reroute"}
    workflow["nodes"] += [
        dict(reroute, id=40, inputs=[{"name": "", "type": "*", "link": 41}], outputs=[{"name": "", "type": "*",
                                                                                       "links": [40, 42]}]),
        dict(reroute, id=41, inputs=[{"name": "", "type": "*", "link": 40}], outputs=[{"name": "", "type": "*",
                                                                                       "links": [41]}]),
    ]
    workflow["links"] += [[40, 40, 0, 41, 0, "*"], [41, 41, 0, 40, 0, "*"], [42, 40, 0, 8, 1, "VAE"]]
    next(n for n in workflow["nodes"] if n["id"] == 8)["inputs"][1]["link"] = 42
    with pytest.raises(WorkflowError, match="circular"):
        ui_to_api(workflow, object_info)


@pytest.mark.parametrize("bad", [{}, {"nodes": "x"}, [], {"last_node_id": 3}])
def test_not_a_workflow(bad, object_info):
    with pytest.raises(WorkflowError, match="not a UI workflow"):
        ui_to_api(bad, object_info)


def test_api_format_given(object_info):
    with pytest.raises(WorkflowError, match="already an API-format prompt"):
        ui_to_api(load("default_txt2img.api.json"), object_info)


def test_bad_widgets_values(object_info):
    workflow = load("default_txt2img.json")
    next(n for n in workflow["nodes"] if n["id"] == 5)["widgets_values"] = "512x512"
    with pytest.raises(WorkflowError, match=r"node 5 \('EmptyLatentImage'\): widgets_values"):
        ui_to_api(workflow, object_info)


@pytest.mark.parametrize("name", ["default_txt2img", "load_image", "primitive_seed", "reroute_chain", "bypass_mute"])
def test_api_to_ui_round_trips_through_ui_to_api(name, object_info):
    from remaskable_core.workflow import Note, api_to_ui

    api = load(f"{name}.api.json")
    ui = api_to_ui(api, object_info, notes=(Note("# hello", (0, 0)),))
    assert ui_to_api(ui, object_info) == api
    assert any(n["type"] == "MarkdownNote" for n in ui["nodes"])
    seeds = [n for n in ui["nodes"] if n["type"] == "KSampler"]
    assert all("fixed" in n["widgets_values"] for n in seeds)
