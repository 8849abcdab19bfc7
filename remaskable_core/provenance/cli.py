"""``python -m remaskable_core provenance IMAGE...``: the edit manifest, the watermark and the C2PA status of
saved images (exit status 1 when a C2PA manifest is present but invalid, 2 when an image cannot be read).
``--make-test-certificate DIR`` writes a throwaway test CA and signing certificate for trying C2PA."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .content_credentials import make_test_credentials, read_content_credentials
from .manifest import TEXT_INPUTS, read_manifest
from .watermark import detect


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", type=Path, help="PNG files written by Save Image (Provenance)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image instead of text")
    parser.add_argument("--trust-anchors", type=Path,
                        help="PEM file of CA certificates to trust when validating C2PA signatures")
    parser.add_argument("--make-test-certificate", type=Path, metavar="DIR",
                        help="write a test CA (ca.pem), signing chain (chain.pem) and key (key.pem) into DIR")


def inspect(path: Path, trust_anchors: str | None = None) -> dict:
    """Everything the command reports about one image, as a dict."""
    from PIL import Image

    data = path.read_bytes()
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as exc:  # a damaged pixel stream: the metadata may still be readable
        watermark = {"found": False, "report": f"not checked, the pixels cannot be decoded ({exc})"}
    else:
        reading = detect(pixels)
        watermark = {"found": reading.found, "payload": reading.payload, "confidence": reading.confidence,
                     "check_bits": reading.check_bits, "strength": round(reading.strength, 4),
                     "false_positive_bound": reading.false_positive_bound, "report": reading.describe()}
    return {"file": str(path), "manifest": read_manifest(path), "watermark": watermark,
            "c2pa": read_content_credentials(data, trust_anchors)}


def _hash_note(record: dict) -> str:
    if record.get("matches_published") is None:
        return "no published hash"
    return "matches the published hash" if record["matches_published"] else \
        f"DIFFERS from the published {record['published_sha256']}"


def format_report(result: dict) -> str:
    lines = [result["file"]]
    manifest = result["manifest"]
    if manifest is None:
        lines.append("  manifest: none (not saved by Save Image (Provenance), or its metadata was stripped)")
    else:
        image = manifest["image"]
        lines.append(f"  manifest: ReMaskable {manifest['pack_version']}, created {manifest['created']}, image "
                     f"{image['batch_index'] + 1} of {image['batch_size']} ({image['width']}x{image['height']})")
        for p in manifest["prompts"]:
            text = next((p[k] for k in TEXT_INPUTS if k in p), "")
            lines.append(f"    prompt ({p['role']}): {json.dumps(text)}  [{p['class_type']} node {p['node']}]")
        for s in manifest["sampling"]:
            settings = ", ".join(f"{k} {v}" for k, v in s.items() if k not in ("node", "class_type"))
            lines.append(f"    sampling: {settings}  [{s['class_type']} node {s['node']}]")
        for r in manifest["regions"]:
            classes = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["classes"].items()) or "no class names"
            lines.append(f"    region: {classes}  [{r['class_type']} node {r['node']}]")
        if manifest.get("mask"):
            m = manifest["mask"]
            lines.append(f"    mask: {100 * m['fraction']:.2f}% of the image ({m['pixels']} px), box {m['bbox_xyxy']}")
        for m in manifest["models"]:
            for f in m.get("files", [m]):
                name = f"{m['name']}/{f['path']}" if "path" in f else m["name"]
                lines.append(f"    model: {name} ({m['folder']}) sha256 {f['sha256']} ({_hash_note(f)})")
        for s in manifest["sources"]:
            lines.append(f"    source image: {s['image']} sha256 {s.get('sha256', '(file not found)')}")
        identity = manifest.get("identity") or {}
        scores = ", ".join(f"{k} {v}" for k, v in identity.items() if k != "report")
        if scores:
            lines.append(f"    identity: {scores}")
        if identity.get("report"):
            lines.extend("      | " + line for line in identity["report"].splitlines())
        watermark = manifest.get("watermark") or {}
        lines.append(f"    watermark when saved: {watermark.get('payload') or 'none'}")
        c2pa = manifest["c2pa"]
        lines.append(f"    c2pa when saved: {'signed by ' + c2pa['signer'] if c2pa['signed'] else c2pa['reason']}")
    lines.append(f"  watermark: {result['watermark']['report']}")
    lines.append(f"  C2PA: {result['c2pa']['status']}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    if args.make_test_certificate:
        paths = make_test_credentials(args.make_test_certificate)
        print(f"Test credentials (never for real content): certificate chain {paths['chain']}, private key "
              f"{paths['key']}, trust anchor {paths['ca']}")
        if not args.images:
            return 0
    if not args.images:
        print("error: give one or more images (or --make-test-certificate DIR)", file=sys.stderr)
        return 2
    trust = args.trust_anchors.read_text() if args.trust_anchors else None
    status = 0
    for path in args.images:
        try:
            result = inspect(path, trust)
        except (OSError, ValueError) as exc:
            print(f"error: cannot read {path}: {exc}", file=sys.stderr)
            status = 2
            continue
        print(json.dumps(result, indent=2) if args.json else format_report(result))
        if result["c2pa"].get("state") == "Invalid":
            status = max(status, 1)
    return status
