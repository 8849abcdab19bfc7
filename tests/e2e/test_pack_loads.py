"""The pack in real ComfyUI: it imports cleanly, its nodes are well described, and model errors are readable."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import import_failures, pack_node_ids

pytestmark = pytest.mark.e2e


def test_pack_imports_without_failure(comfy):
    log = comfy.server.log_text()
    assert "remaskable" in log, "the pack's directory does not appear in ComfyUI's start-up log"
    assert import_failures(log) == []


def test_object_info_lists_every_node_with_category_tooltips_and_types(comfy):
    info = comfy.client.object_info()
    declared = pack_node_ids()
    assert declared, "no node ids found in nodes/*.py"
    missing = declared - set(info)
    assert not missing, f"declared but not served by /object_info: {missing}"
    for node_id in declared:
        node = info[node_id]
        assert node["category"].startswith("ReMaskable"), node_id
        assert node["display_name"] and node["description"], node_id
        assert node["python_module"].startswith("custom_nodes."), node_id
        inputs = {**node["input"].get("required", {}), **node["input"].get("optional", {})}
        for name, (kind, options) in inputs.items():
            assert kind not in ("*", ""), f"{node_id}.{name} has an untyped socket"
            assert options.get("tooltip"), f"{node_id}.{name} has no tooltip"
        assert node["output"], f"{node_id} has no outputs"
        assert all(t not in ("*", "") for t in node["output"]), f"{node_id} has an untyped output"
        assert all(node["output_tooltips"]), f"{node_id} has an output without tooltip"


def _load_sam_prompt(model_name: str) -> dict:
    return {
        "1": {"class_type": "ReMaskable.LoadSAM", "inputs": {"model_name": model_name}},
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
    }


def test_known_model_missing_names_file_folder_and_source_then_server_keeps_serving(comfy):
    options = comfy.client.object_info()["ReMaskable.LoadSAM"]["input"]["required"]["model_name"]
    assert "sam_vit_h_4b8939.pth" in options[1]["options"], "known-but-missing models must be selectable"

    failed = comfy.client.wait(comfy.client.queue(_load_sam_prompt("sam_vit_h_4b8939.pth")), timeout=120)
    assert failed.status == "error"
    message = failed.error["exception_message"]
    assert "sam_vit_h_4b8939.pth" in message
    assert "'sams'" in message and str(comfy.models_dir / "sams") in message
    assert "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth" in message
    assert "Apache-2.0" in message
    assert failed.error["exception_type"].endswith("ModelFileError")

    served = comfy.client.wait(comfy.client.queue(_load_sam_prompt("sam_vit_b_01ec64.pth")), timeout=300)
    assert served.status == "success", served.error


def test_unknown_model_name_fails_with_the_folder_to_put_it_in(comfy):
    # this ComfyUI does not check V3 combo values against their options, so the loader itself must explain
    failed = comfy.client.wait(comfy.client.queue(_load_sam_prompt("no_such_model.pth")), timeout=120)
    assert failed.status == "error"
    message = failed.error["exception_message"]
    assert "no_such_model.pth" in message and str(comfy.models_dir / "sams") in message
