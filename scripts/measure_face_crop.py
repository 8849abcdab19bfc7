"""Time face detection, crop and stitch on insightface's t1.jpg group photo (six faces) at its own size and
upscaled 3x, and report how far an unedited crop -> stitch round trip moves the pasted pixels.

    python scripts/measure_face_crop.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from remaskable_core.faces.crop import CropSettings, crop_faces, stitch_faces  # noqa: E402
from remaskable_core.faces.detect_mediapipe import MediapipeFaceDetector  # noqa: E402
from remaskable_core.faces.select import detect_batch  # noqa: E402
from scripts.measure_face_landmarks import test_images  # noqa: E402


def timed(fn, repeats: int = 3):
    fn()  # first call pays one-time set-up
    start = time.perf_counter()
    for _ in range(repeats):
        result = fn()
    return result, (time.perf_counter() - start) / repeats


def main() -> None:
    import cv2

    t1 = test_images().get("t1")
    if t1 is None:
        raise SystemExit("needs insightface's t1.jpg")
    detector = MediapipeFaceDetector("full_range")
    for scale in (1, 3):
        pixels = t1 if scale == 1 else cv2.resize(t1, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        photo = torch.from_numpy(pixels.astype(np.float32) / 255.0)[None]
        faces, detect_s = timed(lambda: detect_batch(detector, photo), repeats=2)
        print(f"{pixels.shape[1]}x{pixels.shape[0]}: {len(faces[0])} faces, detection {detect_s * 1000:.0f} ms")
        for settings in (CropSettings(size=512), CropSettings(size=None, align=False), CropSettings(size=None)):
            (crops, _, face_crops), crop_s = timed(lambda: crop_faces(photo, faces, settings))
            (stitched, pasted), stitch_s = timed(lambda: stitch_faces(photo, 1 - crops, face_crops))
            identity, _ = stitch_faces(photo, crops, face_crops)
            inside = pasted[0] > 0
            error = (identity - photo).abs()[0][inside] * 255
            mode = f"size {settings.size}" if settings.size else "keep scale"
            print(f"  {mode:10s} align={settings.align!s:5s}: {len(face_crops)} crops of {face_crops.crop_size} px, "
                  f"crop {crop_s * 1000:.0f} ms, stitch {stitch_s * 1000:.0f} ms; unedited round trip inside the "
                  f"paste: mean {float(error.mean()):.2f}, max {float(error.max()):.1f} levels of 255")
    detector.close()


if __name__ == "__main__":
    main()
