"""An invisible watermark that names an edit, and survives PNG, JPEG (quality 90) and resizing.

The embedding primitive is the DWT-DCT-SVD method of the ``invisible-watermark`` package (a sibling of the
``dwtDct`` method SDXL uses): one level of Haar DWT, 4x4 blocks of the approximation band, and quantisation index
modulation (QIM) of each block's largest singular value with step 36 (moved to the nearest lattice point of the
wanted bit, where the package always keeps the lower one: less distortion, same decoder). The orthonormal 4x4 DCT
does not change singular values, so it is left out here; a unit test checks that our decisions equal the package's
on the same frames and that its decoder reads our bits. Plain ``dwtDct`` (what SDXL ships) is not used: with a
64-bit payload it decodes about half the bits (chance) after JPEG q90 or a 0.8x resize, and even unattacked its
per-block decisions are only ~84% right (it re-picks the largest coefficient, which the embedding itself can change);
``python scripts/measure_watermark.py`` measures both.

On top of that primitive, for robustness and a meaningful confidence:

* Canonical grid. The mark lives in the image resized to 256x256 (OpenCV INTER_AREA, aspect ignored), so any
  later resize, uniform or not, maps back onto the same grid: detection needs no scale search. The change is
  computed there and resized back to the image (bilinear), a few times over (a projection that absorbs the
  resampling and the clipping), then rounded to 8-bit levels so what is verified is what gets saved.
* Chroma only. Blocks of U (1024) then V (1024), BT.601 as OpenCV defines it; a per-pixel common offset of R, G
  and B (which leaves U and V unchanged) keeps saturated pixels in range.
* Message (64 bits, MSB first): ``b"RM"`` magic (16 bits) | edit id (32-bit unsigned, big-endian) |
  CRC-16/CCITT-FALSE of the magic and id (16 bits).
* Code: each message bit is repeated 32 times, spread over the 2048 blocks by a fixed permutation and XORed with
  a fixed whitening sequence (both from SHA-256 in counter mode keyed with ``KEY``), so flat or periodic images
  give no structured answer. Decoding is a soft majority: each block votes -sin(2*pi*s/36), the matched QIM
  statistic (+1 at the bit-1 lattice point, -1 at the bit-0 one, 0 half-way).
* Confidence = the fraction of the 32 check bits (16 magic bits, and the 16 CRC bits against the CRC of the magic
  and the decoded id) that agree. For an unmarked image these are fair coin flips, so the chance of 30 or more
  agreeing is 529 / 2**32 = 1.2e-7; ``found`` requires 30 (``DETECTION_THRESHOLD``). A damaged id fails the CRC
  and is not reported.

Images to mark must be at least ``MIN_SIDE`` pixels on each side (256 and more survive JPEG best); any size can be
checked. Cropping, rotation and flips break the grid (not handled).
"""

from __future__ import annotations

import binascii
import hashlib
import math
import re
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..errors import InvalidInputError
from ..tensors import as_rgb

KEY = b"ReMaskable watermark v1"
CANONICAL = 256  # side of the square grid the mark lives on
BLOCK = 4  # block side in the Haar approximation band (the package's default)
STEP = 36.0  # QIM step on the largest singular value (the package's default scale)
MAGIC = b"RM"
MESSAGE_BITS = 64
CHECK_BITS = 32  # magic + CRC
DETECTION_THRESHOLD = 30  # of CHECK_BITS
MIN_SIDE = 128
EMBED_ITERATIONS = 4

_BLOCKS_PER_CHANNEL = (CANONICAL // 2 // BLOCK) ** 2
CODE_BITS = 2 * _BLOCKS_PER_CHANNEL
_HEX_ID = re.compile(r"^(?:0x)?([0-9a-fA-F]{8})$")


def _keystream(label: bytes, n_bytes: int) -> bytes:
    blocks = (hashlib.sha256(KEY + label + i.to_bytes(4, "big")).digest() for i in range(-(-n_bytes // 32)))
    return b"".join(blocks)[:n_bytes]


def _permutation(n: int) -> np.ndarray:
    """Fisher-Yates driven by the keystream: fixed forever, independent of numpy's generators."""
    words = np.frombuffer(_keystream(b"/permutation", 4 * n), dtype=">u4").astype(np.int64)
    order = list(range(n))
    for i in range(n - 1, 0, -1):
        j = int(words[i] % (i + 1))
        order[i], order[j] = order[j], order[i]
    return np.array(order)


# code position j carries message bit MESSAGE_BIT_AT[j], XORed with WHITENING[j]
MESSAGE_BIT_AT = _permutation(CODE_BITS) % MESSAGE_BITS
WHITENING = np.unpackbits(np.frombuffer(_keystream(b"/whitening", CODE_BITS // 8), dtype=np.uint8))
_SIGN = 1.0 - 2.0 * WHITENING  # whitening as a sign on the soft votes


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF)."""
    return binascii.crc_hqx(data, 0xFFFF)


def message_bits(edit_id: int) -> np.ndarray:
    if not 0 <= edit_id < 2**32:
        raise ValueError(f"edit id {edit_id} is not a 32-bit unsigned integer")
    head = MAGIC + edit_id.to_bytes(4, "big")
    return np.unpackbits(np.frombuffer(head + crc16(head).to_bytes(2, "big"), dtype=np.uint8))


def code_bits(edit_id: int) -> np.ndarray:
    return message_bits(edit_id)[MESSAGE_BIT_AT] ^ WHITENING


def format_edit_id(edit_id: int) -> str:
    return f"{edit_id:08x}"


def edit_id_from_text(text: str, pixels: np.ndarray | None = None) -> int:
    """The 32-bit id a payload text stands for: 8 hex digits (optionally ``0x``) are the id itself; any other
    text is hashed (first 4 bytes of its SHA-256); empty text takes the hash of the pixels instead."""
    text = text.strip()
    match = _HEX_ID.match(text)
    if match:
        return int(match.group(1), 16)
    source = text.encode("utf-8") if text else np.ascontiguousarray(pixels).tobytes()
    return int.from_bytes(hashlib.sha256(source).digest()[:4], "big")


# --- the transform: canonical view -> chroma -> Haar approximation -> 4x4 blocks ---------------------------------

_LUMA = np.array([0.299, 0.587, 0.114])  # Y; U = 0.492 (B - Y), V = 0.877 (R - Y) (OpenCV's BT.601)


def _resize(array: np.ndarray, width: int, height: int) -> np.ndarray:
    shrinking = width <= array.shape[1] and height <= array.shape[0]
    return cv2.resize(array, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """[2, H, W] U and V of a float RGB array in 0..255."""
    y = rgb @ _LUMA
    return np.stack([0.492 * (rgb[..., 2] - y) + 128.0, 0.877 * (rgb[..., 0] - y) + 128.0])


def _chroma_delta_to_rgb(du: np.ndarray, dv: np.ndarray) -> np.ndarray:
    """The RGB change with unchanged luma that moves U and V by (du, dv)."""
    return np.stack([dv / 0.877, -(0.114 / 0.492 * du + 0.299 / 0.877 * dv) / 0.587, du / 0.492], axis=-1)


def _blocks(chroma: np.ndarray) -> np.ndarray:
    """[2, H, W] canonical chroma -> [CODE_BITS, 4, 4] Haar approximation blocks, U then V, raster order."""
    c = chroma
    approx = (c[:, 0::2, 0::2] + c[:, 0::2, 1::2] + c[:, 1::2, 0::2] + c[:, 1::2, 1::2]) / 2.0
    n = approx.shape[1] // BLOCK
    return approx.reshape(2, n, BLOCK, n, BLOCK).transpose(0, 1, 3, 2, 4).reshape(-1, BLOCK, BLOCK)


def _unblock(blocks: np.ndarray) -> np.ndarray:
    """Inverse of ``_blocks`` for a change of the approximation band, as the change of the pixels (Haar synthesis
    with unchanged detail bands adds half the approximation change to each pixel of its 2x2 cell)."""
    n = CANONICAL // 2 // BLOCK
    approx = blocks.reshape(2, n, n, BLOCK, BLOCK).transpose(0, 1, 3, 2, 4).reshape(2, n * BLOCK, n * BLOCK)
    return np.repeat(np.repeat(approx / 2.0, 2, axis=1), 2, axis=2)


def _as_float_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InvalidInputError("image", f"expected an H x W x 3 RGB array, got shape {list(rgb.shape)}.")
    return rgb.astype(np.float32) * np.float32(255.0 if rgb.dtype.kind == "f" else 1.0)


def _canonical_blocks(rgb255: np.ndarray) -> np.ndarray:
    view = _resize(rgb255, CANONICAL, CANONICAL).astype(np.float64)
    return _blocks(_chroma(view))


# --- embedding and detection --------------------------------------------------------------------------------------

def embed(rgb: np.ndarray, edit_id: int) -> np.ndarray:
    """``rgb`` (H x W x 3, uint8 or float in 0..1) with the watermark of ``edit_id``, as uint8. Check the result
    with ``detect``: a flat, fully saturated colour (pure red, say) cannot carry it."""
    image = _as_float_rgb(rgb)
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise InvalidInputError("image", f"is {width}x{height}; the watermark needs at least {MIN_SIDE} pixels on "
                                         f"each side.", "Watermark the full-size result.")
    offsets = 0.25 + 0.5 * code_bits(edit_id)
    for _ in range(EMBED_ITERATIONS):
        blocks = _canonical_blocks(image)
        u, s, vh = np.linalg.svd(blocks)
        t = s[:, 0] / STEP
        lattice = np.maximum(np.round(t - offsets), 0.0)  # nearest lattice point of the wanted bit
        delta = (lattice + offsets - t) * STEP
        change = _unblock(delta[:, None, None] * u[:, :, :1] * vh[:, :1, :])
        rgb_change = _chroma_delta_to_rgb(change[0], change[1]).astype(np.float32)
        image = _fit_range(image + _resize(rgb_change, width, height))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _fit_range(image: np.ndarray) -> np.ndarray:
    """Shift R, G and B of each pixel by the same amount (U and V unchanged) to stay within 0..255, then clip."""
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    low, high = -np.minimum(np.minimum(r, g), b), 255.0 - np.maximum(np.maximum(r, g), b)
    shift = np.where(low <= high, np.clip(0.0, low, high), (low + high) / 2.0)
    image += shift[..., None]
    return np.clip(image, 0.0, 255.0, out=image)


def _binomial_tail(successes: int, trials: int) -> float:
    return sum(math.comb(trials, k) for k in range(successes, trials + 1)) / 2.0**trials


@dataclass(frozen=True)
class WatermarkReading:
    found: bool
    edit_id: int | None  # None unless found
    confidence: float  # fraction of the CHECK_BITS that agree (about 0.5 on unmarked images)
    check_bits: int  # how many of the CHECK_BITS agree
    strength: float  # mean |soft vote| of the 64 message bits: about 1 for a fresh mark, about 0.1 when absent
    false_positive_bound: float  # chance that an unmarked image agrees on this many check bits or more

    @property
    def payload(self) -> str:
        return format_edit_id(self.edit_id) if self.edit_id is not None else ""

    def describe(self) -> str:
        agreement = f"{self.check_bits}/{CHECK_BITS} check bits agree, strength {self.strength:.2f}"
        if self.found:
            return (f"ReMaskable watermark found: edit id {self.payload} ({agreement}; an unmarked image scores "
                    f"this high with probability {self.false_positive_bound:.1e})")
        return f"no ReMaskable watermark ({agreement}; {DETECTION_THRESHOLD} needed)"


def detect(rgb: np.ndarray) -> WatermarkReading:
    """Read the watermark from ``rgb`` (H x W x 3, uint8 or float in 0..1)."""
    s = np.linalg.svd(_canonical_blocks(_as_float_rgb(rgb)), compute_uv=False)[:, 0]
    votes = -np.sin(2.0 * np.pi * s / STEP) * _SIGN
    soft = np.bincount(MESSAGE_BIT_AT, weights=votes, minlength=MESSAGE_BITS) / (CODE_BITS / MESSAGE_BITS)
    bits = (soft > 0).astype(np.uint8)
    decoded = np.packbits(bits).tobytes()
    edit_id = int.from_bytes(decoded[2:6], "big")
    expected = message_bits(edit_id)
    check = int((bits[:16] == expected[:16]).sum() + (bits[48:] == expected[48:]).sum())
    found = check >= DETECTION_THRESHOLD
    return WatermarkReading(found=found, edit_id=edit_id if found else None, confidence=check / CHECK_BITS,
                            check_bits=check, strength=float(np.abs(soft).mean()),
                            false_positive_bound=_binomial_tail(check, CHECK_BITS))


# --- ComfyUI IMAGE batches ----------------------------------------------------------------------------------------

def to_uint8(image: torch.Tensor) -> np.ndarray:
    """One [H,W,3] float image as the 8-bit pixels ComfyUI's SaveImage would write."""
    return np.clip(255.0 * image.detach().cpu().float().numpy(), 0, 255).astype(np.uint8)


def watermark_images(images: torch.Tensor, payload: str = "") -> tuple[torch.Tensor, list[int]]:
    """IMAGE [B,H,W,C] -> the watermarked IMAGE (exact 8-bit levels, RGB) and each image's edit id. Every image is
    checked after embedding; one that cannot carry the mark is an error, never a silently unmarked output."""
    rgb = as_rgb(images)
    marked, ids = [], []
    for index, image in enumerate(rgb):
        pixels = to_uint8(image)
        edit_id = edit_id_from_text(payload, pixels)
        result = embed(pixels, edit_id)
        reading = detect(result)
        if not reading.found or reading.edit_id != edit_id:
            raise InvalidInputError("image", f"image {index + 1} of {len(rgb)} cannot carry the watermark "
                                             f"({reading.describe()}); it is too flat or too saturated in colour.",
                                    "Watermark the edited photo itself, not a blank or single-colour image.")
        marked.append(torch.from_numpy(result))
        ids.append(edit_id)
    return torch.stack(marked).float() / 255.0, ids


def detect_images(images: torch.Tensor) -> list[WatermarkReading]:
    return [detect(to_uint8(image)) for image in as_rgb(images)]
