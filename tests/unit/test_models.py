"""Model management: the manifest, finding files, the named-file error, opt-in verified download, safe loading."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from remaskable_core.errors import ModelFileError
from remaskable_core.models import (MODEL_FOLDERS, MODELS, DirectoryLocator, ModelEntry, RemoteFile, find_model,
                                    list_model_names, load_state_dict, require_model)
from remaskable_core.models import download as download_module
from remaskable_core.models.manifest import entry_by_name


def test_manifest_entries_are_complete():
    names = set()
    for entry in MODELS:
        assert (entry.folder, entry.name) not in names, f"duplicate {entry.name}"
        names.add((entry.folder, entry.name))
        assert entry.files and entry.source.startswith("https://") and entry.license and entry.description
        for remote in entry.files:
            assert remote.url.startswith("https://")
            assert remote.sha256 is None or (len(remote.sha256) in (8, 64) and int(remote.sha256, 16) >= 0)
    # every default model of a pack-owned kind lives in a folder the pack registers
    for entry in MODELS:
        if entry.kind not in ("checkpoint", "controlnet"):
            assert entry.folder in MODEL_FOLDERS
    # the non-commercial ones are flagged
    assert not entry_by_name("insightface", "models/buffalo_l").commercial_use
    assert "non-commercial" in entry_by_name("face_parsing", "79999_iter.pth").licence_note()
    assert entry_by_name("sams", "sam_vit_b_01ec64.pth").commercial_use


def test_every_kind_has_exactly_one_default():
    kinds = {e.kind for e in MODELS}
    for kind in kinds:
        defaults = [e.name for e in MODELS if e.kind == kind and e.default]
        assert len(defaults) == 1, (kind, defaults)


def test_missing_known_model_error_names_file_folder_source_and_licence(tmp_path):
    locator = DirectoryLocator(tmp_path)
    with pytest.raises(ModelFileError) as error:
        require_model(locator, "sams", "sam_vit_h_4b8939.pth")
    message = str(error.value)
    assert "sam_vit_h_4b8939.pth" in message and "'sams'" in message
    assert str(tmp_path / "sams") in message
    assert "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth" in message
    assert "Apache-2.0" in message and "download_if_missing" in message


def test_unknown_missing_model_error_names_the_folder(tmp_path):
    with pytest.raises(ModelFileError, match="mine.pth.*'sams'"):
        require_model(DirectoryLocator(tmp_path), "sams", "mine.pth")


def test_names_list_present_files_in_subfolders_and_known_ones(tmp_path):
    (tmp_path / "sams" / "sub").mkdir(parents=True)
    (tmp_path / "sams" / "sub" / "custom.pth").write_bytes(b"x")
    (tmp_path / "sams" / "notes.txt").write_text("not a model")
    names = list_model_names(DirectoryLocator(tmp_path), "sams", "sam")
    assert "sub/custom.pth" in names and "notes.txt" not in names
    assert {"sam_vit_b_01ec64.pth", "sam_vit_l_0b3195.pth", "sam_vit_h_4b8939.pth"} <= set(names)


def test_insightface_packs_are_listed_as_directories(tmp_path):
    (tmp_path / "insightface" / "models" / "mypack").mkdir(parents=True)
    names = list_model_names(DirectoryLocator(tmp_path), "insightface", "insightface")
    assert "models/mypack" in names and "models/buffalo_l" in names


def test_nested_pack_folder_mistake_is_explained(tmp_path):
    nested = tmp_path / "insightface" / "models" / "antelopev2" / "antelopev2"
    nested.mkdir(parents=True)
    for name in ("scrfd_10g_bnkps.onnx", "glintr100.onnx"):
        (nested / name).write_bytes(b"onnx")
    with pytest.raises(ModelFileError, match="one folder too deep"):
        require_model(DirectoryLocator(tmp_path), "insightface", "models/antelopev2")


def test_model_names_cannot_leave_the_folder(tmp_path):
    with pytest.raises(ModelFileError):
        find_model(DirectoryLocator(tmp_path), "sams", "../../etc/passwd")


class _FileServer:
    """A loopback HTTP server for download tests (the network guard allows 127.0.0.1 only)."""

    def __init__(self, files: dict[str, bytes], honour_range: bool = True):
        self.files = files
        self.requests: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.requests.append({"path": self.path, "range": self.headers.get("Range")})
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if honour_range and self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    self.send_response(206)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _single_file_entry(url: str, body: bytes, sha: str | None = None) -> ModelEntry:
    return ModelEntry(name="demo.pth", folder="sams", kind="demo", variant="x", description="d",
                      source="https://example.org", license="MIT", commercial_use=True,
                      files=(RemoteFile("", url, sha or hashlib.sha256(body).hexdigest(), len(body)),))


def test_download_verifies_sha256_reports_progress_and_resumes(tmp_path):
    body = bytes(range(256)) * 4096
    with _FileServer({"/demo.pth": body}) as server:
        entry = _single_file_entry(server.base + "/demo.pth", body)
        target_dir = tmp_path / "sams"
        target_dir.mkdir()
        (target_dir / "demo.pth.part").write_bytes(body[:1000])  # an interrupted earlier attempt
        seen = []
        path = download_module.download_model(entry, target_dir, progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == body
    assert server.requests[-1]["range"] == "bytes=1000-"
    assert seen[-1] == (len(body), len(body)) and all(d <= t for d, t in seen)
    assert not (target_dir / "demo.pth.part").exists()


def test_download_with_wrong_hash_deletes_the_file(tmp_path):
    body = b"weights" * 100
    with _FileServer({"/demo.pth": body}) as server:
        entry = _single_file_entry(server.base + "/demo.pth", body, sha="0" * 64)
        with pytest.raises(ModelFileError, match="does not match"):
            download_module.download_model(entry, tmp_path)
    assert not (tmp_path / "demo.pth").exists()


def test_download_failure_explains_manual_install(tmp_path):
    with _FileServer({}) as server:
        entry = _single_file_entry(server.base + "/missing.pth", b"x")
        with pytest.raises(ModelFileError, match="by hand"):
            download_module.download_model(entry, tmp_path)


def test_archive_members_are_extracted_and_verified(tmp_path):
    det, rec = b"detector" * 50, b"recogniser" * 70
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("pack/det.onnx", det)
        zf.writestr("pack/rec.onnx", rec)
    with _FileServer({"/pack.zip": buffer.getvalue()}) as server:
        url = server.base + "/pack.zip"
        entry = ModelEntry(name="models/pack", folder="insightface", kind="demo", variant="pack", description="d",
                           source="https://example.org", license="MIT", commercial_use=True, files=(
                               RemoteFile("det.onnx", url, hashlib.sha256(det).hexdigest(), len(det), "pack/det.onnx"),
                               RemoteFile("rec.onnx", url, hashlib.sha256(rec).hexdigest(), len(rec), "pack/rec.onnx")))
        path = download_module.download_model(entry, tmp_path / "insightface")
    assert (path / "det.onnx").read_bytes() == det and (path / "rec.onnx").read_bytes() == rec
    assert sorted(p.name for p in path.iterdir()) == ["det.onnx", "rec.onnx"]


def test_download_happens_only_when_allowed(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(download_module, "download_model", lambda *a, **k: calls.append(a) or tmp_path)
    with pytest.raises(ModelFileError):
        require_model(DirectoryLocator(tmp_path), "sams", "sam_vit_b_01ec64.pth")
    assert calls == []
    require_model(DirectoryLocator(tmp_path), "sams", "sam_vit_b_01ec64.pth", allow_download=True)
    monkeypatch.setenv("REMASKABLE_ALLOW_DOWNLOAD", "1")
    require_model(DirectoryLocator(tmp_path), "sams", "sam_vit_b_01ec64.pth")
    assert len(calls) == 2


def test_load_state_dict_reads_safetensors_and_plain_torch_files(tmp_path):
    from safetensors.torch import save_file

    state = {"a.weight": torch.randn(3, 2), "b.bias": torch.zeros(4)}
    save_file(state, tmp_path / "w.safetensors")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        loaded = load_state_dict(tmp_path / name)
        assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)


class _NotWeights:
    pass


def test_load_state_dict_refuses_pickled_objects(tmp_path):
    torch.save({"payload": _NotWeights()}, tmp_path / "evil.pth")
    with pytest.raises(ModelFileError, match="pickled Python objects"):
        load_state_dict(tmp_path / "evil.pth")


def test_truncated_known_file_suggests_redownload(tmp_path):
    (tmp_path / "sam_vit_b_01ec64.pth").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelFileError, match="375042383.*incomplete"):
        load_state_dict(tmp_path / "sam_vit_b_01ec64.pth")


def test_sam_loader_reads_architecture_from_the_file(tmp_path):
    from remaskable_core.sam import load_sam
    from tests.fixtures.models import write_models

    write_models(tmp_path, ["sam_vit_b_01ec64.pth"])
    model = load_sam(tmp_path / "sams" / "sam_vit_b_01ec64.pth")
    assert model.image_encoder.patch_embed.proj.out_channels == 32 and len(model.image_encoder.blocks) == 2


def test_sam_loader_rejects_other_checkpoints(tmp_path):
    from safetensors.torch import save_file

    save_file({"conv.weight": torch.zeros(1)}, tmp_path / "other.safetensors")
    from remaskable_core.sam import load_sam

    with pytest.raises(ModelFileError, match="not a Segment Anything"):
        load_sam(tmp_path / "other.safetensors")


def test_default_names_resolve_after_fixture_writes(tmp_path):
    from tests.fixtures.models import FAKE_MODELS, write_models

    write_models(tmp_path, ["sam_vit_b_01ec64.pth"])
    assert ("sams", "sam_vit_b_01ec64.pth") in FAKE_MODELS
    assert require_model(DirectoryLocator(tmp_path), "sams", "sam_vit_b_01ec64.pth") == \
        Path(tmp_path) / "sams" / "sam_vit_b_01ec64.pth"


def test_readme_model_table_is_the_manifest():
    from remaskable_core.models.cli import markdown_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("<!-- model-table:begin -->")[1].split("<!-- model-table:end -->")[0].strip()
    assert table == markdown_table(), "README's model table is stale: paste `python -m remaskable_core models markdown`"
