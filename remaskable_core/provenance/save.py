"""Saving edited images as PNGs that carry their provenance: ComfyUI's metadata, the edit manifest, the
watermark reading and, when the user supplies a certificate, a signed C2PA manifest."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ..tensors import as_mask, as_rgb, match_batch
from .content_credentials import CERT_ENV, KEY_ENV, SigningCredentials, sign_png
from .manifest import MANIFEST_CHUNK, FileHasher, Locators, describe_workflow, image_manifest, mask_area, summary
from .watermark import MIN_SIDE, WatermarkReading, detect, edit_id_from_text, embed, to_uint8


@dataclass(frozen=True)
class SavedImage:
    path: Path
    manifest: dict


def encode_png(pixels: np.ndarray, text_chunks: dict[str, str], compress_level: int = 4) -> bytes:
    info = PngInfo()
    for key, value in text_chunks.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", pnginfo=info, compress_level=compress_level)
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _ensure_watermark(pixels: np.ndarray, add: bool) -> tuple[np.ndarray, WatermarkReading, bool]:
    """The pixels to save, their watermark reading, and whether the mark was added here: an image that carries no
    mark gets one (id from its pixels) when ``add``, unless it is too small or cannot carry it."""
    reading = detect(pixels)
    if reading.found or not add or min(pixels.shape[:2]) < MIN_SIDE:
        return pixels, reading, False
    marked = embed(pixels, edit_id_from_text("", pixels))
    marked_reading = detect(marked)
    return (marked, marked_reading, True) if marked_reading.found else (pixels, reading, False)


def _parent_image(workflow: dict, locators: Locators) -> Path | None:
    """The one source image of the edit (the C2PA parent ingredient); None when there are none or several."""
    names = {s["image"] for s in workflow["sources"]}
    return locators.input_image(names.pop()) if len(names) == 1 else None


def save_with_provenance(images: torch.Tensor, paths: list[Path], *, prompt: dict | None, save_node_id: str,
                         comfy_chunks: dict[str, str], locators: Locators, hasher: FileHasher,
                         mask: torch.Tensor | None = None, identity: dict | None = None,
                         credentials: SigningCredentials | None = None, add_watermark: bool = True,
                         compress_level: int = 4) -> list[SavedImage]:
    """Write each image of ``images`` to the matching path of ``paths`` as a PNG with ``comfy_chunks`` (ComfyUI's
    ``prompt``/``workflow``), the edit manifest in the ``remaskable`` chunk and, with ``credentials``, a signed
    C2PA manifest. With ``add_watermark``, images that carry no watermark get one first."""
    rgb = as_rgb(images, "images")
    masks = None
    if mask is not None:
        masks = match_batch(len(rgb), as_mask(mask), "mask", "images")
    workflow = describe_workflow(prompt or {}, save_node_id, locators, hasher)
    parent = _parent_image(workflow, locators) if credentials is not None else None
    if credentials is None:
        c2pa = {"signed": False, "reason": f"no signing certificate given (set the node's c2pa_certificate and "
                                           f"c2pa_private_key, or {CERT_ENV} and {KEY_ENV})"}
    else:
        c2pa = {"signed": True, "signer": credentials.signer, "algorithm": credentials.algorithm}
    saved = []
    for index, (image, path) in enumerate(zip(rgb, paths)):
        pixels, reading, added = _ensure_watermark(to_uint8(image), add_watermark)
        watermark = {"found": reading.found, "payload": reading.payload, "confidence": reading.confidence,
                     "check_bits": reading.check_bits, "strength": round(reading.strength, 4),
                     "added_when_saving": added}
        manifest = image_manifest(
            workflow, batch_index=index, batch_size=len(rgb), width=pixels.shape[1], height=pixels.shape[0],
            mask=mask_area(masks[index]) if masks is not None else None, identity=identity, watermark=watermark,
            c2pa=c2pa)
        png = encode_png(pixels, {**comfy_chunks, MANIFEST_CHUNK: json.dumps(manifest, allow_nan=False)}, compress_level)
        if credentials is not None:
            png = sign_png(png, manifest, credentials, title=path.name, description=summary(manifest), parent=parent)
        _write(path, png)
        saved.append(SavedImage(path, manifest))
    return saved
