"""Measures the edit watermark: invisibility (PSNR), robustness per attack, speed; and, for comparison, the
invisible-watermark package's plain ``dwtDct`` as SDXL uses it (same 64-bit message, no canonical grid or code).

    python scripts/measure_watermark.py

Prints numbers only; nothing here is asserted (the unit tests hold the pass/fail bars).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from remaskable_core.provenance import watermark as wm  # noqa: E402
from tests.fixtures.provenance import ATTACKS, as_rgb, gradient, jpeg, resize  # noqa: E402

EDIT_ID = 0x1A2B3C4D
SOURCES = {  # short name -> (description, pixels)
    "astro512": ("astronaut 512x512", data.astronaut()),
    "coffee": ("coffee 600x400", data.coffee()),
    "chelsea": ("chelsea 451x300", data.chelsea()),
    "camera": ("camera 512x512 (grey)", as_rgb(data.camera())),
    "rocket": ("rocket 640x427", data.rocket()),
    "gradient": ("gradient 320x256", gradient(256, 320)),
    "astro1024": ("astronaut 1024x1024", cv2.resize(data.astronaut(), (1024, 1024), interpolation=cv2.INTER_CUBIC)),
    "astro160": ("astronaut 160x160", cv2.resize(data.astronaut(), (160, 160), interpolation=cv2.INTER_AREA)),
}
MORE_ATTACKS = {
    **ATTACKS,
    "JPEG q75": lambda p: jpeg(p, 75),
    "0.5x resize": lambda p: resize(p, 0.5),
    "1.5x resize": lambda p: resize(p, 1.5),
    "crop 5% each side": lambda p: p[p.shape[0] // 20:-(p.shape[0] // 20), p.shape[1] // 20:-(p.shape[1] // 20)],
}


def package_dwt_dct_bit_accuracy(pixels: np.ndarray) -> dict[str, float]:
    from imwatermark import WatermarkDecoder, WatermarkEncoder

    bits = wm.message_bits(EDIT_ID)
    encoder = WatermarkEncoder()
    encoder.set_watermark("bits", list(bits))
    marked = encoder.encode(np.ascontiguousarray(pixels[..., ::-1]), "dwtDct")[..., ::-1]
    decoder = WatermarkDecoder("bits", len(bits))
    result = {}
    for name in ("PNG save/load", "JPEG q90", "0.8x resize (bicubic)"):
        attacked = np.ascontiguousarray(ATTACKS[name](np.ascontiguousarray(marked)))
        if attacked.shape[0] * attacked.shape[1] < 256 * 256:
            result[name] = float("nan")
            continue
        decoded = np.array(decoder.decode(np.ascontiguousarray(attacked[..., ::-1]), "dwtDct"), dtype=np.uint8)
        result[name] = float((decoded == bits).mean())
    return result


def main() -> None:
    print(f"{'image':10} {'':24} {'PSNR dB':>7} {'max|d|':>6} {'embed s':>7} {'detect s':>8}")
    marked = {}
    for name, (description, pixels) in SOURCES.items():
        start = time.perf_counter()
        marked[name] = wm.embed(pixels, EDIT_ID)
        embed_s = time.perf_counter() - start
        start = time.perf_counter()
        wm.detect(marked[name])
        detect_s = time.perf_counter() - start
        difference = marked[name].astype(np.float64) - pixels
        psnr = 10 * np.log10(255**2 / np.mean(difference**2))
        print(f"{name:10} {description:24} {psnr:7.1f} {np.abs(difference).max():6.0f} {embed_s:7.2f} {detect_s:8.3f}")
    print("\nafter each attack: check bits agreeing (of 32; 30 needed) / signal strength; '!' = not found or wrong id")
    print(f"{'attack':28}" + "".join(f"{n:>11}" for n in SOURCES))
    for attack, apply in MORE_ATTACKS.items():
        cells = []
        for name in SOURCES:
            try:
                reading = wm.detect(np.ascontiguousarray(apply(marked[name])))
            except ValueError:
                cells.append(f"{'n/a':>11}")
                continue
            ok = reading.found and reading.edit_id == EDIT_ID
            cells.append(f"{reading.check_bits:>4}/{reading.strength:.2f}{'' if ok else '!':1}")
        print(f"{attack:28}" + "".join(f"{c:>11}" for c in cells))
    try:
        print("\ninvisible-watermark dwtDct as SDXL uses it, same 64-bit message: share of bits decoded correctly")
        for name in ("astro512", "coffee", "rocket"):
            accuracy = package_dwt_dct_bit_accuracy(SOURCES[name][1])
            print(f"  {name:10} " + ", ".join(f"{k}: {v:.2f}" for k, v in accuracy.items()))
    except ImportError:
        print("(invisible-watermark not installed: no comparison)")


if __name__ == "__main__":
    main()
