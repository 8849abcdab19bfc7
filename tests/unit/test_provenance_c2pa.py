"""C2PA Content Credentials: signing with a user's certificate chain (a test CA made here), reading back,
trust, tamper evidence, and the refusals."""

from __future__ import annotations

import datetime
import io
import json
import struct
import zlib

import pytest
import torch

pytest.importorskip("c2pa")
pytest.importorskip("cryptography")

from remaskable_core.__main__ import main as cli  # noqa: E402
from remaskable_core.errors import InvalidInputError  # noqa: E402
from remaskable_core.provenance.content_credentials import (  # noqa: E402
    CERT_ENV, EDIT_ASSERTION, KEY_ENV, make_test_credentials, read_content_credentials, signing_credentials)
from remaskable_core.provenance.manifest import FileHasher, read_manifest  # noqa: E402
from remaskable_core.provenance.save import save_with_provenance  # noqa: E402
from tests.fixtures.provenance import edit_prompt, locators, marked_image, write_files  # noqa: E402


@pytest.fixture
def files(tmp_path):
    return write_files(tmp_path)


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    return make_test_credentials(tmp_path_factory.mktemp("c2pa"))


def _save(path, files, signing):
    image = marked_image()
    mask = torch.zeros(image.shape[:3])
    mask[:, 10:20, 30:50] = 0.75  # number arrays (the box) must survive the C2PA assertion exactly
    (saved,) = save_with_provenance(image, [path], prompt=edit_prompt(), save_node_id="13", comfy_chunks={},
                                    locators=locators(files), hasher=FileHasher(), credentials=signing, mask=mask)
    return saved


def test_signed_png_carries_a_valid_c2pa_manifest_with_the_edit(tmp_path, files, credentials):
    signing = signing_credentials(str(credentials["chain"]), str(credentials["key"]))
    assert signing.algorithm == "es256" and "ReMaskable test signer" in signing.signer
    path = tmp_path / "signed.png"
    saved = _save(path, files, signing)
    assert saved.manifest["c2pa"] == {"signed": True, "signer": signing.signer, "algorithm": "es256"}

    status = read_content_credentials(path.read_bytes())
    assert status["present"] and status["state"] == "Valid"
    assert status["failures"] == ["signingCredential.untrusted"], "only the trust list may be missing"
    assert status["actions"] == ["c2pa.opened", "c2pa.edited"], "the known source image is the parent"
    assert status["ingredients"] == ["portrait.png"]
    assert status["edit_manifest"] == json.loads(json.dumps(saved.manifest))
    assert read_manifest(path) == status["edit_manifest"], "the PNG text chunk survives signing"

    trusted = read_content_credentials(path.read_bytes(), credentials["ca"].read_text())
    assert trusted["state"] == "Trusted" and trusted["failures"] == []


def _edit_chunk(png: bytes, kind: bytes, edit) -> bytes:
    """``png`` with the first chunk of type ``kind`` replaced by ``edit(data)`` and its CRC recomputed, so the file
    stays a well-formed PNG and only the signature can notice."""
    out, at, done = bytearray(png[:8]), 8, False
    while at < len(png):
        length = struct.unpack(">I", png[at:at + 4])[0]
        chunk_type, data = png[at + 4:at + 8], png[at + 8:at + 8 + length]
        if chunk_type == kind and not done:
            data, done = edit(data), True
        out += struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", zlib.crc32(chunk_type + data))
        at += 12 + length
    assert done, f"no {kind!r} chunk"
    return bytes(out)


def _flip_pixel_data(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[len(data) // 2] ^= 0x01
    return bytes(changed)


def test_changing_a_pixel_or_the_manifest_chunk_breaks_the_signature(tmp_path, files, credentials):
    path = tmp_path / "signed.png"
    _save(path, files, signing_credentials(str(credentials["chain"]), str(credentials["key"])))
    original = path.read_bytes()
    assert read_content_credentials(original)["state"] == "Valid"

    status = read_content_credentials(_edit_chunk(original, b"IDAT", _flip_pixel_data))
    assert status["state"] == "Invalid" and "assertion.dataHash.mismatch" in status["failures"]

    def forge(data: bytes) -> bytes:
        assert data.startswith(b"remaskable\x00") and b'"steps": 30' in data
        return data.replace(b'"steps": 30', b'"steps": 31')

    status = read_content_credentials(_edit_chunk(original, b"tEXt", forge))
    assert status["state"] == "Invalid" and "assertion.dataHash.mismatch" in status["failures"]


def test_without_a_certificate_there_is_no_c2pa_and_the_manifest_says_so(tmp_path, files, monkeypatch):
    monkeypatch.delenv(CERT_ENV, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert signing_credentials("", "") is None
    path = tmp_path / "plain.png"
    saved = _save(path, files, None)
    assert saved.manifest["c2pa"]["signed"] is False
    assert read_content_credentials(path.read_bytes()) == {"present": False, "status": "no C2PA manifest"}


def test_credentials_come_from_the_environment(monkeypatch, credentials):
    monkeypatch.setenv(CERT_ENV, str(credentials["chain"]))
    monkeypatch.setenv(KEY_ENV, str(credentials["key"]))
    assert signing_credentials("", "").algorithm == "es256"


def test_refusals_name_the_input_and_the_fix(tmp_path, files, credentials, monkeypatch):
    monkeypatch.delenv(CERT_ENV, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(InvalidInputError) as half:
        signing_credentials(str(credentials["chain"]), "")
    assert half.value.input_name == "c2pa_private_key"
    with pytest.raises(InvalidInputError) as missing:
        signing_credentials(str(tmp_path / "nope.pem"), str(credentials["key"]))
    assert missing.value.input_name == "c2pa_certificate" and "nope.pem" in str(missing.value)
    with pytest.raises(InvalidInputError) as not_a_key:
        signing_credentials(str(credentials["chain"]), str(credentials["chain"]))
    assert not_a_key.value.input_name == "c2pa_private_key"

    self_signed = _self_signed(tmp_path)
    with pytest.raises(InvalidInputError, match="not self-signed") as refused:
        _save(tmp_path / "x.png", files, signing_credentials(str(self_signed["chain"]), str(self_signed["key"])))
    assert refused.value.input_name == "c2pa_certificate"
    assert not (tmp_path / "x.png").exists()


def test_provenance_command_reports_c2pa_and_fails_on_tampering(tmp_path, files, credentials, capsys):
    assert cli(["provenance", "--make-test-certificate", str(tmp_path / "certs")]) == 0
    made = {p.name for p in (tmp_path / "certs").iterdir()}
    assert made == {"ca.pem", "chain.pem", "key.pem"}
    path = tmp_path / "signed.png"
    _save(path, files, signing_credentials(str(credentials["chain"]), str(credentials["key"])))
    capsys.readouterr()
    assert cli(["provenance", str(path), "--trust-anchors", str(credentials["ca"])]) == 0
    assert "C2PA: signed, signature valid, signer trusted" in capsys.readouterr().out
    (tmp_path / "tampered.png").write_bytes(_edit_chunk(path.read_bytes(), b"IDAT", _flip_pixel_data))
    assert cli(["provenance", str(tmp_path / "tampered.png")]) == 1
    assert "C2PA: INVALID" in capsys.readouterr().out
    assert EDIT_ASSERTION.startswith("io.github.remaskable")


def _self_signed(directory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                   .sign(key, hashes.SHA256()))
    paths = {"chain": directory / "self.pem", "key": directory / "self-key.pem"}
    paths["chain"].write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


def test_editing_a_signed_image_carries_its_c2pa_history(tmp_path, files, credentials):
    import c2pa

    signing = signing_credentials(str(credentials["chain"]), str(credentials["key"]))
    first = tmp_path / "first.png"
    _save(first, files, signing)
    files["input"].write_bytes(first.read_bytes())  # the next edit starts from the signed result
    second = tmp_path / "second.png"
    _save(second, files, signing)
    with c2pa.Reader("image/png", io.BytesIO(second.read_bytes())) as reader:
        store = json.loads(reader.json())
    assert sorted(m["title"] for m in store["manifests"].values()) == ["first.png", "second.png"]
    assert read_content_credentials(second.read_bytes())["ingredients"] == ["portrait.png"]
