"""The edit manifest: what it reads from a prompt, the hash cache, and the PNG round trip."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from remaskable_core import __version__
from remaskable_core.__main__ import main as cli
from remaskable_core.models import entry_by_name
from remaskable_core.provenance.manifest import (FileHasher, Locators, describe_workflow, is_link, read_manifest,
                                                 upstream)
from remaskable_core.provenance.save import save_with_provenance
from tests.fixtures.provenance import CKPT, edit_prompt, locators, marked_image, write_files

@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    return write_files(tmp_path)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_upstream_is_topological_and_ignores_unconnected_nodes():
    prompt = edit_prompt()
    order = upstream(prompt, "13")
    assert set(order) == {str(i) for i in range(1, 13)}
    for node_id in order:
        for value in prompt[node_id]["inputs"].values():
            if is_link(value):
                assert order.index(value[0]) < order.index(node_id), f"{value[0]} should come before {node_id}"


def test_workflow_description_names_prompts_regions_models_and_sources(files):
    workflow = describe_workflow(edit_prompt(), "13", locators(files), FileHasher())
    assert workflow["pack_version"] == __version__
    assert [(p["node"], p["role"], p["text"]) for p in workflow["prompts"]] == [
        ("2", "positive", "vivid red hair"), ("4", "negative", "blurry, deformed")]
    assert workflow["sampling"] == [{"node": "10", "class_type": "ReMaskable.MaskedInpaintSampler", "seed": 42,
                                     "steps": 30, "cfg": 7.5, "sampler_name": "ddim", "scheduler": "normal",
                                     "denoise": 1.0}]
    regions = {r["class_type"]: r for r in workflow["regions"]}
    assert regions["ReMaskable.FaceParse"]["classes"] == {"classes": ["hair", "l_brow", "r_brow"]}
    assert regions["ReMaskable.FaceParse"]["settings"] == {"classes": "hair, brows", "threshold": 0.5}
    assert regions["ReMaskable.MaskFuse"]["classes"] == {"exclude_classes": ["l_eye", "r_eye"]}

    models = {m["name"]: m for m in workflow["models"]}
    assert set(models) == {CKPT, "79999_iter.pth"}, "only models that reach the saved image"
    checkpoint = models[CKPT]
    assert checkpoint["folder"] == "checkpoints" and checkpoint["input"] == "ckpt_name"
    assert checkpoint["sha256"] == sha(files["checkpoints"]) and checkpoint["size"] == 1000
    assert checkpoint["published_sha256"] == entry_by_name("checkpoints", CKPT).files[0].sha256
    assert checkpoint["matches_published"] is False
    assert models["79999_iter.pth"]["sha256"] == sha(files["face_parsing"])

    assert workflow["sources"] == [{"node": "5", "class_type": "LoadImage", "image": "portrait.png",
                                    "size": files["input"].stat().st_size, "sha256": sha(files["input"])}]
    remaskable = {n["class_type"]: n["inputs"] for n in workflow["remaskable_nodes"]}
    assert remaskable["ReMaskable.Watermark"] == {"payload": "1a2b3c4d"}
    assert "ReMaskable.LoadSAM" not in remaskable and "ReMaskable.SaveImageWithProvenance" not in remaskable
    assert "never used" not in json.dumps(workflow)


def test_directory_models_list_every_file_with_published_hashes(tmp_path):
    pack = tmp_path / "insightface" / "models" / "buffalo_l"
    pack.mkdir(parents=True)
    (pack / "det_10g.onnx").write_bytes(b"d")
    (pack / "w600k_r50.onnx").write_bytes(b"w")
    prompt = {"1": {"class_type": "ReMaskable.LoadIdentityModel",
                    "inputs": {"recognizer": "ArcFace: models/buffalo_l", "detector": "auto", "lpips": "off"}},
              "2": {"class_type": "ReMaskable.SaveImageWithProvenance", "inputs": {"x": ["1", 0]}}}
    locate = Locators(lambda n: ("insightface", pack) if n == "models/buffalo_l" else None, lambda n: None)
    (model,) = describe_workflow(prompt, "2", locate, FileHasher())["models"]
    assert (model["name"], model["input"], model["folder"]) == ("models/buffalo_l", "recognizer", "insightface")
    published = {f.path: f.sha256 for f in entry_by_name("insightface", "models/buffalo_l").files}
    assert [(f["path"], f["sha256"], f["published_sha256"], f["matches_published"]) for f in model["files"]] == [
        ("det_10g.onnx", hashlib.sha256(b"d").hexdigest(), published["det_10g.onnx"], False),
        ("w600k_r50.onnx", hashlib.sha256(b"w").hexdigest(), published["w600k_r50.onnx"], False)]


def test_hashes_are_cached_by_path_mtime_and_size_also_across_restarts(tmp_path):
    path, cache_file = tmp_path / "big.ckpt", tmp_path / "cache" / "sha.json"
    path.write_bytes(b"a" * 100)
    first = FileHasher(cache_file).sha256(path)
    assert first == hashlib.sha256(b"a" * 100).hexdigest() and cache_file.is_file()
    stat = path.stat()
    path.write_bytes(b"b" * 100)  # same size; restore the mtime: the cache must answer without reading
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert FileHasher(cache_file).sha256(path) == first, "a new hasher did not use the saved cache"
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert FileHasher(cache_file).sha256(path) == hashlib.sha256(b"b" * 100).hexdigest(), "a changed mtime must rehash"
    cache_file.write_text("not json")
    assert FileHasher(cache_file).sha256(path) == hashlib.sha256(b"b" * 100).hexdigest()


def test_manifest_round_trips_through_the_png_next_to_comfyui_metadata(tmp_path, files):
    images = marked_image(batch=2)
    mask = torch.zeros(1, 192, 208)
    mask[:, 20:60, 30:130] = 1.0
    prompt = edit_prompt()
    chunks = {"prompt": json.dumps(prompt), "workflow": json.dumps({"nodes": [], "links": []})}
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    saved = save_with_provenance(images, paths, prompt=prompt, save_node_id="13", comfy_chunks=chunks,
                                 locators=locators(files), hasher=FileHasher(), mask=mask,
                                 identity={"identity_cosine": 0.71, "report": "pass"})
    for index, (path, result) in enumerate(zip(paths, saved)):
        manifest = read_manifest(path)
        assert manifest == json.loads(json.dumps(result.manifest))
        assert manifest["image"] == {"batch_index": index, "batch_size": 2, "width": 208, "height": 192}
        assert manifest["mask"] == {"pixels": 4000, "fraction": round(4000 / (192 * 208), 6),
                                    "soft_fraction": round(4000 / (192 * 208), 6), "bbox_xyxy": [30, 20, 130, 60],
                                    "size": [208, 192]}
        assert manifest["identity"] == {"identity_cosine": 0.71, "report": "pass"}
        assert manifest["watermark"]["found"] and manifest["watermark"]["payload"] == "1a2b3c4d"
        assert manifest["c2pa"]["signed"] is False and "REMASKABLE_C2PA_CERT" in manifest["c2pa"]["reason"]
        assert [p["text"] for p in manifest["prompts"]] == ["vivid red hair", "blurry, deformed"]
        with Image.open(path) as image:
            assert json.loads(image.text["prompt"]) == prompt and "workflow" in image.text
            pixels = np.asarray(image.convert("RGB"))
        assert np.array_equal(pixels, np.clip(255 * images[index].numpy(), 0, 255).astype(np.uint8))


def test_read_manifest_is_none_for_other_pngs(tmp_path):
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(plain)
    assert read_manifest(plain) is None


def test_provenance_command_prints_manifest_watermark_and_c2pa(tmp_path, files, capsys):
    path = tmp_path / "out.png"
    save_with_provenance(marked_image(), [path], prompt=edit_prompt(), save_node_id="13", comfy_chunks={},
                         locators=locators(files), hasher=FileHasher())
    assert cli(["provenance", str(path)]) == 0
    text = capsys.readouterr().out
    assert 'prompt (positive): "vivid red hair"' in text and 'prompt (negative): "blurry, deformed"' in text
    assert f"model: {CKPT} (checkpoints) sha256 {sha(files['checkpoints'])} (DIFFERS from the published" in text
    assert "region: classes: hair, l_brow, r_brow" in text
    assert "watermark: ReMaskable watermark found: edit id 1a2b3c4d" in text

    assert cli(["provenance", "--json", str(path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["manifest"]["pack_version"] == __version__ and result["watermark"]["payload"] == "1a2b3c4d"
    assert result["c2pa"]["present"] is False

    assert cli(["provenance", str(tmp_path / "missing.png")]) == 2


def test_without_c2pa_python_signing_is_a_clear_error_and_reading_says_unchecked(tmp_path, monkeypatch):
    import sys

    from remaskable_core.errors import InvalidInputError
    from remaskable_core.provenance.content_credentials import read_content_credentials, signing_credentials

    monkeypatch.setitem(sys.modules, "c2pa", None)  # as if c2pa-python were not installed
    (tmp_path / "chain.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    with pytest.raises(InvalidInputError, match="pip install c2pa-python") as missing:
        signing_credentials(str(tmp_path / "chain.pem"), str(tmp_path / "key.pem"))
    assert missing.value.input_name == "c2pa_certificate"
    assert read_content_credentials(b"")["present"] is None


def test_save_adds_the_watermark_to_unmarked_images_unless_told_not_to(tmp_path, files):
    from remaskable_core.provenance.watermark import detect, edit_id_from_text, format_edit_id, to_uint8

    photo = torch.from_numpy(np.array(Image.open(files["input"]).resize((160, 150)))) / 255
    red = torch.zeros(150, 160, 3)
    red[..., 0] = 1.0
    images = torch.stack([photo.float(), red])
    paths = [tmp_path / "photo.png", tmp_path / "red.png"]
    common = dict(prompt=edit_prompt(), save_node_id="13", comfy_chunks={}, locators=locators(files),
                  hasher=FileHasher())
    photo_saved, red_saved = save_with_provenance(images, paths, **common)
    expected = format_edit_id(edit_id_from_text("", to_uint8(images[0])))
    assert photo_saved.manifest["watermark"]["added_when_saving"] is True
    assert photo_saved.manifest["watermark"]["payload"] == expected
    assert detect(np.asarray(Image.open(paths[0]).convert("RGB"))).payload == expected
    assert red_saved.manifest["watermark"]["found"] is False, "a colour that cannot carry it is saved unmarked"
    assert red_saved.manifest["watermark"]["added_when_saving"] is False

    (kept,) = save_with_provenance(images[:1], [tmp_path / "kept.png"], add_watermark=False, **common)
    assert kept.manifest["watermark"]["found"] is False
    assert np.array_equal(np.asarray(Image.open(tmp_path / "kept.png").convert("RGB")), to_uint8(images[0]))


def test_manifest_is_strict_json_when_a_score_is_nan(tmp_path, files):
    path = tmp_path / "nan.png"
    save_with_provenance(marked_image(), [path], prompt=edit_prompt(), save_node_id="13", comfy_chunks={},
                         locators=locators(files), hasher=FileHasher(),
                         identity={"identity_cosine": float("nan"), "passed": False})

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    with Image.open(path) as image:
        manifest = json.loads(image.text["remaskable"], parse_constant=refuse)
    assert manifest["identity"] == {"identity_cosine": None, "passed": False}
