"""C2PA Content Credentials for saved PNGs, signed with a certificate the user supplies.

Needs the optional ``c2pa-python`` package (and ``cryptography``, which it depends on). What c2pa accepts, as
measured with c2pa-python 0.38 (c2pa-rs 0.91): an end-entity certificate issued by a CA, given as a PEM chain
(end-entity first, then intermediates), with the digitalSignature key usage and an extended key usage such as
emailProtection; a self-signed end-entity certificate is refused ("the certificate is invalid"). Keys: EC P-256 /
P-384 / P-521 (ES256/384/512), RSA (PS256) or Ed25519. Without a trust list, a correct signature reads back as
``Valid`` with ``signingCredential.untrusted``; with the signer's CA as a trust anchor it reads ``Trusted``.

The manifest holds a ``c2pa.actions`` assertion (``c2pa.opened`` on the source image when it is known, as a
``parentOf`` ingredient, then ``c2pa.edited`` with the IPTC digital source type
``compositeWithTrainedAlgorithmicMedia``; ``c2pa.created`` of that type when no source is known) and the whole edit
manifest as the assertion ``io.github.remaskable.edit`` = ``{"manifest_json": "<the manifest as JSON text>"}``
(text, because c2pa-rs turns JSON arrays of numbers into CBOR byte strings, losing e.g. ``[0.5, 1]``). The PNG's
hard binding covers the pixels and the text chunks, so changing either shows as ``assertion.dataHash.mismatch``.
Nothing reaches the network: no timestamp authority, no OCSP, no remote manifests.
"""

from __future__ import annotations

import datetime
import io
import json
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import InvalidInputError

CERT_ENV = "REMASKABLE_C2PA_CERT"
KEY_ENV = "REMASKABLE_C2PA_KEY"
TRUST_ENV = "REMASKABLE_C2PA_TRUST_ANCHORS"
EDIT_ASSERTION = "io.github.remaskable.edit"
AI_COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
# never reach the network: no remote manifests, no OCSP (and signing names no timestamp authority)
OFFLINE_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
CERTIFICATE_HELP = ("C2PA needs a PEM certificate chain issued by a CA (not self-signed) with the digitalSignature "
                    "key usage and an extended key usage such as emailProtection, and its private key. To try it, "
                    "make a test chain with: python -m remaskable_core provenance --make-test-certificate DIR")


@dataclass(frozen=True)
class SigningCredentials:
    certificate_chain: bytes  # PEM, end-entity certificate first
    private_key: bytes  # PEM
    algorithm: str  # es256, es384, es512, ps256 or ed25519
    signer: str  # the end-entity certificate's subject


def _c2pa():
    try:
        import c2pa
    except ImportError as exc:
        raise InvalidInputError("c2pa_certificate", "C2PA signing needs the c2pa-python package, which is not "
                                                    "installed.",
                                "Install it (pip install c2pa-python) or leave the certificate inputs empty.") from exc
    return c2pa


def _read(path: str, input_name: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise InvalidInputError(input_name, f"cannot read '{path}' ({exc.strerror or exc}).",
                                "Give the absolute path of a PEM file readable by ComfyUI.") from exc


def _algorithm(private_key: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(private_key, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError("c2pa_private_key", f"is not an unencrypted PEM private key ({exc}).",
                                CERTIFICATE_HELP) from exc
    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_curve = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in by_curve:
            return by_curve[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise InvalidInputError("c2pa_private_key", f"uses a key type C2PA does not sign with ({type(key).__name__}).",
                            "Use an EC P-256/P-384/P-521, RSA or Ed25519 key.")


def _subject(chain: bytes) -> str:
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificates(chain)[0]
    except ValueError as exc:
        raise InvalidInputError("c2pa_certificate", f"is not a PEM certificate chain ({exc}).",
                                CERTIFICATE_HELP) from exc
    return certificate.subject.rfc4514_string()


def signing_credentials(certificate: str = "", private_key: str = "") -> SigningCredentials | None:
    """Credentials from the given paths, else from ``REMASKABLE_C2PA_CERT`` / ``REMASKABLE_C2PA_KEY``; None when
    neither is set (no C2PA)."""
    cert_path = certificate.strip() or os.environ.get(CERT_ENV, "").strip()
    key_path = private_key.strip() or os.environ.get(KEY_ENV, "").strip()
    if not cert_path and not key_path:
        return None
    if not cert_path or not key_path:
        missing = "c2pa_certificate" if not cert_path else "c2pa_private_key"
        raise InvalidInputError(missing, "is empty, but signing needs both the certificate chain and its private key.",
                                f"Set both (or the environment variables {CERT_ENV} and {KEY_ENV}), or neither.")
    _c2pa()
    chain, key = _read(cert_path, "c2pa_certificate"), _read(key_path, "c2pa_private_key")
    return SigningCredentials(chain, key, _algorithm(key), _subject(chain))


def sign_png(png: bytes, edit_manifest: dict, credentials: SigningCredentials, *, title: str,
             description: str, parent: Path | None = None) -> bytes:
    """``png`` with a signed C2PA manifest embedded (a ``caBX`` chunk). ``parent`` (the source image) becomes the
    ``parentOf`` ingredient when c2pa can read it; otherwise the edit is declared as created."""
    c2pa = _c2pa()
    try:
        if _supported_format(c2pa, parent):
            try:
                return _sign(c2pa, png, edit_manifest, credentials, title, description, parent)
            except c2pa.C2paError.Other:  # the source image is not a file c2pa can parse
                pass
        return _sign(c2pa, png, edit_manifest, credentials, title, description, None)
    except c2pa.C2paError as exc:
        raise InvalidInputError("c2pa_certificate", f"C2PA signing with '{credentials.signer}' failed: {exc}",
                                CERTIFICATE_HELP) from exc


def _sign(c2pa, png: bytes, edit_manifest: dict, credentials: SigningCredentials, title: str, description: str,
          parent: Path | None) -> bytes:
    agent = {"name": "ReMaskable", "version": __version__}
    edit = {"digitalSourceType": AI_COMPOSITE, "softwareAgent": agent, "description": description}
    if parent is not None:
        actions = [{"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}},
                   {"action": "c2pa.edited", **edit}]
    else:
        actions = [{"action": "c2pa.created", **edit}]
    definition = {"claim_generator_info": [agent], "title": title, "format": "image/png",
                  "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}},
                                 {"label": EDIT_ASSERTION, "data": {"manifest_json": json.dumps(edit_manifest, allow_nan=False)}}]}
    info = c2pa.C2paSignerInfo(credentials.algorithm, credentials.certificate_chain, credentials.private_key, None)
    signed = io.BytesIO()
    context = c2pa.Context.from_dict({**OFFLINE_SETTINGS, "builder": {"thumbnail": {"enabled": False}}})
    with c2pa.Builder(definition, context=context) as builder, c2pa.Signer.from_info(info) as signer:
        if parent is not None:
            with open(parent, "rb") as source:
                builder.add_ingredient({"title": parent.name, "relationship": "parentOf", "label": "parent"},
                                       _supported_format(c2pa, parent), source)
        builder.sign(signer, "image/png", io.BytesIO(png), signed)
    return signed.getvalue()


def _supported_format(c2pa, path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    mime = mimetypes.guess_type(path.name)[0]
    return mime if mime in c2pa.Builder.get_supported_mime_types() else None


def read_content_credentials(png: bytes, trust_anchors: str | None = None) -> dict:
    """C2PA status of a PNG: ``present`` (None when c2pa-python is missing), ``state`` (Valid / Trusted /
    Invalid), the failure codes, the signer and the embedded edit manifest. ``trust_anchors`` (PEM text, default
    ``$REMASKABLE_C2PA_TRUST_ANCHORS``'s file) decides what counts as Trusted."""
    try:
        import c2pa
    except ImportError:
        return {"present": None, "status": "c2pa-python is not installed: C2PA not checked"}
    if trust_anchors is None and os.environ.get(TRUST_ENV):
        trust_anchors = Path(os.environ[TRUST_ENV]).expanduser().read_text()
    trust = {"trust": {"trust_anchors": trust_anchors}} if trust_anchors else {}
    context = c2pa.Context.from_dict({**OFFLINE_SETTINGS, **trust})
    try:
        reader = c2pa.Reader("image/png", io.BytesIO(png), context=context)
    except c2pa.C2paError.ManifestNotFound:
        return {"present": False, "status": "no C2PA manifest"}
    except c2pa.C2paError as exc:
        return {"present": True, "state": "Invalid", "status": f"unreadable C2PA manifest: {exc}", "failures": []}
    with reader:
        state = reader.get_validation_state()
        results = (reader.get_validation_results() or {}).get("activeManifest", {})
        active = reader.get_active_manifest() or {}
    failures = [f["code"] for f in results.get("failure", [])]
    assertions = {a["label"]: a.get("data") for a in active.get("assertions", [])}
    signature = active.get("signature_info", {})
    untrusted_only = failures == ["signingCredential.untrusted"]
    status = {"Trusted": "signed, signature valid, signer trusted",
              "Valid": "signed, signature valid" + ("; the signer is not in the trust list" if untrusted_only else ""),
              }.get(state, f"INVALID: {', '.join(failures) or state}")
    return {"present": True, "state": state, "status": status, "failures": failures,
            "signer": {"issuer": signature.get("issuer"), "common_name": signature.get("common_name")},
            "actions": [a.get("action") for a in (assertions.get("c2pa.actions.v2") or assertions.get("c2pa.actions")
                                                  or {}).get("actions", [])],
            "ingredients": [i.get("title") for i in active.get("ingredients", [])],
            "edit_manifest": _edit_manifest(assertions.get(EDIT_ASSERTION))}


def _edit_manifest(assertion: dict | None) -> dict | None:
    try:
        return json.loads(assertion["manifest_json"])
    except (TypeError, KeyError, ValueError):
        return None


def make_test_credentials(directory: str | os.PathLike, days: int = 30) -> dict[str, Path]:
    """A throwaway test CA and a signing certificate it issued (EC P-256), for trying C2PA: writes ``ca.pem`` (the
    trust anchor), ``chain.pem`` (signing certificate + CA) and ``key.pem``. Never use them for real content."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ReMaskable test (not for real content)")])

    now = datetime.datetime.now(datetime.timezone.utc)
    valid_from, valid_to = now - datetime.timedelta(days=1), now + datetime.timedelta(days=days)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("ReMaskable test CA")).issuer_name(name("ReMaskable test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(valid_from).not_valid_after(valid_to)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name("ReMaskable test signer")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(valid_from).not_valid_after(valid_to)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"ca": directory / "ca.pem", "chain": directory / "chain.pem", "key": directory / "key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(pem))
    paths["chain"].write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    paths["key"].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(paths["key"], 0o600)
    return paths
