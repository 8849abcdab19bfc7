"""Identity stage with fake models in the real file formats: alignment, detectors, recognisers, loaders, masked
LPIPS, and IdentityGuard's choice, pass/fail and no-face handling."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from remaskable_core.errors import InvalidInputError, ModelFileError
from remaskable_core.faces import ARCFACE_TEMPLATE_112, Face, estimate_similarity, warp_face
from remaskable_core.faces.detect_onnx import SCRFDDetector, YuNetDetector
from remaskable_core.guard import (ANONYMIZE, PRESERVE, STOP, CandidateScore, IdentityCheckError, choose,
                                   guard_candidates, passes)
from remaskable_core.identity import (ARCFACE, ARCFACE_THRESHOLD, SCRFD, SFACE, SFACE_THRESHOLD, YUNET,
                                      ArcFaceEmbedder, box_iou, cosine, insightface_pack_files, load_identity_model,
                                      matching_face, target_face)
from remaskable_core.models import DirectoryLocator, require_model
from remaskable_core.perceptual import load_lpips, lpips_outside_mask
from tests.fixtures.fake_identity import FACE_BOX, LANDMARK_OFFSETS
from tests.fixtures.models import write_models

FAKES = ["models/buffalo_l", "face_recognition_sface_2021dec.onnx", "face_detection_yunet_2023mar.onnx",
         "alexnet-owt-7be5be79.pth", "vgg16-397923af.pth"]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("identity-models")
    write_models(root, FAKES)
    return root


@pytest.fixture(scope="session")
def buffalo(models_dir) -> Path:
    return models_dir / "insightface" / "models" / "buffalo_l"


@pytest.fixture(scope="session")
def arcface_model(buffalo):
    return load_identity_model(ARCFACE, buffalo)


@pytest.fixture(scope="session")
def sface_model(models_dir):
    return load_identity_model(SFACE, models_dir / "face_recognition" / "face_recognition_sface_2021dec.onnx", YUNET,
                               models_dir / "face_detection" / "face_detection_yunet_2023mar.onnx")


@pytest.fixture(scope="session")
def alex(models_dir):
    return load_lpips(models_dir / "lpips" / "alexnet-owt-7be5be79.pth", "alex")


def square_image(corners: list[tuple[int, int]], size: tuple[int, int] = (640, 640)) -> np.ndarray:
    """Dark RGB image with a white FACE_BOX square at each top-left corner: one fake 'face' each."""
    image = np.full((*size, 3), 20, np.uint8)
    for x, y in corners:
        image[y:y + FACE_BOX, x:x + FACE_BOX] = 255
    return image


def as_tensor(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images).astype(np.float32) / 255.0)


# --- alignment ------------------------------------------------------------------------------------------------------

def test_estimate_similarity_recovers_a_known_rotation_scale_and_shift():
    angle, scale, shift = np.deg2rad(17.0), 2.3, np.array([140.0, 75.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = ARCFACE_TEMPLATE_112 @ rotation.T + shift
    matrix = estimate_similarity(landmarks, ARCFACE_TEMPLATE_112)
    mapped = landmarks @ matrix[:, :2].T + matrix[:, 2]
    np.testing.assert_allclose(mapped, ARCFACE_TEMPLATE_112, atol=1e-3)


def test_warp_face_puts_the_five_landmarks_on_the_template():
    angle, scale, shift = np.deg2rad(-23.0), 1.7, np.array([60.0, 90.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = ARCFACE_TEMPLATE_112 @ rotation.T + shift
    for i, (x, y) in enumerate(ARCFACE_TEMPLATE_112):
        image = np.zeros((360, 400, 3), np.uint8)  # one landmark at a time, drawn as a small disc
        cv2.circle(image, (int(round(landmarks[i, 0] * 16)), int(round(landmarks[i, 1] * 16))), 3 * 16, (255, 255, 255),
                   -1, cv2.LINE_AA, shift=4)
        aligned = warp_face(image, landmarks)[..., 0].astype(np.float64)
        assert aligned.shape == (112, 112) and aligned.sum() > 0, f"landmark {i} missing after alignment"
        rows, cols = np.indices(aligned.shape)
        centroid = np.array([(cols * aligned).sum(), (rows * aligned).sum()]) / aligned.sum()
        np.testing.assert_allclose(centroid, (x, y), atol=0.3)


# --- detectors ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("detector", ["scrfd", "yunet"])
def test_fake_detectors_find_the_square_with_landmarks_in_arcface_order(detector, models_dir, buffalo):
    model = SCRFDDetector(buffalo / "det_10g.onnx") if detector == "scrfd" else \
        YuNetDetector(models_dir / "face_detection" / "face_detection_yunet_2023mar.onnx")
    (face,) = model.detect(square_image([(192, 128)]))
    np.testing.assert_allclose(face.box, (192, 128, 192 + FACE_BOX, 128 + FACE_BOX), atol=0.5)
    centre = np.array([192 + FACE_BOX / 2, 128 + FACE_BOX / 2])
    np.testing.assert_allclose(face.landmarks, centre + LANDMARK_OFFSETS, atol=0.5)
    assert face.landmarks[0, 0] < face.landmarks[1, 0], "the subject's right eye (image left) comes first"
    assert model.detect(np.full((640, 640, 3), 20, np.uint8)) == []


def test_scrfd_decoding_matches_insightface_scrfd(buffalo):
    insightface_zoo = pytest.importorskip("insightface.model_zoo")
    ours = SCRFDDetector(buffalo / "det_10g.onnx")
    theirs = insightface_zoo.get_model(str(buffalo / "det_10g.onnx"), providers=["CPUExecutionProvider"])
    theirs.prepare(-1, input_size=(640, 640), det_thresh=0.5)
    image = square_image([(64, 64), (320, 416), (480, 96)])
    boxes, points = theirs.detect(np.ascontiguousarray(image[..., ::-1]))  # insightface takes BGR
    faces = ours.detect(image)
    assert len(faces) == len(boxes) == 3
    for face in faces:
        match = np.argmin(np.abs(boxes[:, :4] - np.array(face.box)).sum(1))
        np.testing.assert_allclose(face.box, boxes[match, :4], atol=1e-3)
        np.testing.assert_allclose(face.score, boxes[match, 4], atol=1e-5)
        np.testing.assert_allclose(face.landmarks, points[match], atol=1e-3)


def test_detectors_report_faces_in_the_pixels_of_the_input_image(models_dir, buffalo):
    # 1280x1280: SCRFD letterboxes it into 640, YuNet scales it down to 640; boxes come back in input pixels
    big = cv2.resize(square_image([(192, 128)]), (1280, 1280), interpolation=cv2.INTER_NEAREST)
    for model in (SCRFDDetector(buffalo / "det_10g.onnx"),
                  YuNetDetector(models_dir / "face_detection" / "face_detection_yunet_2023mar.onnx")):
        (face,) = model.detect(big)
        np.testing.assert_allclose(face.box, (384, 256, 384 + 2 * FACE_BOX, 256 + 2 * FACE_BOX), atol=1.0)


def test_scrfd_without_landmarks_is_refused_with_the_files_to_use(buffalo, tmp_path):
    model = onnx.load(str(buffalo / "det_10g.onnx"))
    del model.graph.output[6:]  # keep scores and boxes: an SCRFD export without keypoints
    path = tmp_path / "det_nokps.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelFileError, match="without landmarks.*det_10g.onnx"):
        SCRFDDetector(path)


def test_corrupt_model_files_fail_with_the_file_name(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    for load in (SCRFDDetector, YuNetDetector, ArcFaceEmbedder):
        with pytest.raises(ModelFileError, match="broken.onnx"):
            load(broken)


# --- recognisers and loaders ----------------------------------------------------------------------------------------

def test_loaders_read_the_real_file_layouts(arcface_model, sface_model):
    assert isinstance(arcface_model.detector, SCRFDDetector) and arcface_model.threshold == ARCFACE_THRESHOLD
    assert "non-commercial" in arcface_model.licence
    assert isinstance(sface_model.detector, YuNetDetector) and sface_model.threshold == SFACE_THRESHOLD
    crops = [np.random.default_rng(i).integers(0, 255, (112, 112, 3), dtype=np.uint8) for i in range(3)]
    for model, dims in ((arcface_model, 512), (sface_model, 128)):
        embeddings = model.embedder.embed(crops)
        assert embeddings.shape == (3, dims)
        np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
        assert cosine(embeddings[0], embeddings[0]) == pytest.approx(1.0, abs=1e-6)
        assert cosine(embeddings[0], -embeddings[0]) == pytest.approx(-1.0, abs=1e-6)


def test_arcface_preprocessing_matches_insightface(buffalo):
    insightface_zoo = pytest.importorskip("insightface.model_zoo")
    theirs = insightface_zoo.get_model(str(buffalo / "w600k_r50.onnx"), providers=["CPUExecutionProvider"])
    crop = np.random.default_rng(3).integers(0, 255, (112, 112, 3), dtype=np.uint8)
    expected = theirs.get_feat(np.ascontiguousarray(crop[..., ::-1])).ravel()  # insightface takes BGR
    ours = ArcFaceEmbedder(buffalo / "w600k_r50.onnx").embed([crop])[0]
    np.testing.assert_allclose(ours, expected / np.linalg.norm(expected), atol=1e-5)


def test_scrfd_detector_can_pair_with_sface(models_dir, buffalo):
    model = load_identity_model(SFACE, models_dir / "face_recognition" / "face_recognition_sface_2021dec.onnx",
                                SCRFD, buffalo)
    assert isinstance(model.detector, SCRFDDetector) and "non-commercial" in model.licence


def test_nested_pack_folder_is_explained(buffalo, tmp_path):
    pack = tmp_path / "insightface" / "models" / "buffalo_l"
    shutil.copytree(buffalo, pack / "buffalo_l")
    with pytest.raises(ModelFileError, match="one folder too deep"):
        require_model(DirectoryLocator(tmp_path), "insightface", "models/buffalo_l")
    with pytest.raises(ModelFileError, match="one folder too deep"):
        insightface_pack_files(pack)


def test_unknown_pack_layouts_are_read_by_file_name_or_explained(buffalo, tmp_path):
    pack = tmp_path / "buffalo_s"
    pack.mkdir()
    shutil.copy(buffalo / "det_10g.onnx", pack / "det_500m.onnx")
    shutil.copy(buffalo / "w600k_r50.onnx", pack / "w600k_mbf.onnx")
    (pack / "2d106det.onnx").write_bytes(b"")
    assert insightface_pack_files(pack) == (pack / "det_500m.onnx", pack / "w600k_mbf.onnx")
    (pack / "w600k_mbf.onnx").unlink()
    with pytest.raises(ModelFileError, match="one recognition model.*det_500m.onnx"):
        insightface_pack_files(pack)


# --- which face -----------------------------------------------------------------------------------------------------

def test_target_face_follows_the_mask_and_candidates_match_by_place():
    left = Face((0, 0, 100, 100), 0.9)
    right = Face((300, 0, 380, 80), 0.99)
    mask = np.zeros((200, 400), bool)
    assert target_face([left, right], None) is left  # the largest without a mask
    mask[10:60, 310:370] = True
    assert target_face([left, right], mask) is right
    mask[:] = False
    mask[190:, :] = True  # far from both: back to the largest
    assert target_face([left, right], mask) is left
    assert target_face([], mask) is None
    moved = Face((10, 5, 105, 100), 0.8)
    assert matching_face([right, moved], left) is moved
    assert matching_face([right], left) is None
    assert box_iou(left.box, left.box) == pytest.approx(1.0)


# --- choice and pass rules ------------------------------------------------------------------------------------------

def scores(*rows: tuple[float | None, float | None]) -> list[CandidateScore]:
    return [CandidateScore(i, c, lp, "" if c is not None else "no face detected") for i, (c, lp) in enumerate(rows)]


def test_preserve_picks_the_highest_cosine_and_lpips_penalises_leakage():
    rows = scores((0.80, 0.30), (0.75, 0.01), (0.95, 0.9), (None, 0.0))
    assert choose(rows, PRESERVE, lpips_weight=0.0) == 2
    assert choose(rows, PRESERVE, lpips_weight=0.5) == 1  # 0.95-0.45 < 0.75-0.005 and 0.80-0.15
    assert choose(scores((0.8, 0.2), (0.8, 0.1)), PRESERVE, 0.0) == 1  # weight 0: LPIPS breaks the tie
    assert choose(scores((0.8, 0.1), (0.8, 0.1)), PRESERVE, 0.5) == 0  # then the lower index


def test_anonymize_picks_the_lowest_cosine_and_faceless_candidates_rank_last():
    rows = scores((0.80, 0.0), (0.10, 0.05), (None, 0.0), (0.30, 0.0))
    assert choose(rows, ANONYMIZE, 0.0) == 1
    assert choose(rows, ANONYMIZE, 5.0) == 3  # -0.30 beats -0.10 - 0.25
    assert choose(scores((None, 0.3), (None, 0.1)), PRESERVE, 0.5) == 1  # no faces at all: least leakage


def test_pass_rules_and_thresholds():
    at = CandidateScore(0, 0.40, 0.0)
    assert passes(at, PRESERVE, 0.40) and not passes(at, ANONYMIZE, 0.40)
    below = CandidateScore(0, 0.399, 0.0)
    assert not passes(below, PRESERVE, 0.40) and passes(below, ANONYMIZE, 0.40)
    faceless = CandidateScore(0, None, 0.0, "no face detected")
    assert not passes(faceless, PRESERVE, 0.40) and not passes(faceless, ANONYMIZE, 0.40)


# --- the guard end to end on fake models ----------------------------------------------------------------------------

def test_guard_scores_every_candidate_and_reports_the_faceless_one(arcface_model, alex):
    original = square_image([(192, 128)])
    faceless = np.full_like(original, 20)
    elsewhere = square_image([(448, 448)])
    changed_outside = original.copy()
    changed_outside[500:, :100] = 200
    candidates = as_tensor(original, faceless, elsewhere, changed_outside)
    mask = torch.zeros(1, 640, 640)
    mask[0, 100:260, 160:320] = 1
    result = guard_candidates(arcface_model, as_tensor(original), candidates, mask, lpips_net=alex, lpips_name="alex")
    by_index = result.candidates
    assert by_index[0].cosine == pytest.approx(1.0, abs=1e-5) and by_index[0].lpips == 0.0
    assert by_index[1].cosine is None and by_index[1].note == "no face detected"
    assert by_index[2].cosine is None and "elsewhere" in by_index[2].note
    assert by_index[3].cosine == pytest.approx(1.0, abs=1e-5) and by_index[3].lpips > 0
    assert result.chosen == 0 and result.passed and result.cosine == pytest.approx(1.0, abs=1e-5)
    lines = result.report.splitlines()
    assert sum(line.strip().startswith(("0 ", "1 ", "2 ", "3 ")) for line in lines) == 4
    assert "no face detected" in result.report and "CHOSEN" in result.report and "PASSED" in result.report


def test_no_face_in_the_original_is_reported_and_stops_only_when_asked(arcface_model, alex):
    dark = np.full((640, 640, 3), 20, np.uint8)
    candidates = as_tensor(square_image([(192, 128)]), dark)
    result = guard_candidates(arcface_model, as_tensor(dark), candidates, None, lpips_net=alex)
    assert not result.passed and math.isnan(result.cosine)
    assert all(s.note == "no face in the original" for s in result.candidates)
    assert result.chosen == 1  # identical to the original: least LPIPS
    assert "no face was found in the original" in result.verdict
    with pytest.raises(IdentityCheckError, match="no face was found in the original"):
        guard_candidates(arcface_model, as_tensor(dark), candidates, None, on_fail=STOP)


def test_stop_mode_raises_with_the_report_and_warn_mode_returns(arcface_model, caplog):
    original = square_image([(192, 128)])
    candidates = as_tensor(original, original)
    passed = guard_candidates(arcface_model, as_tensor(original), candidates, mode=ANONYMIZE, threshold=1.5)
    assert passed.passed  # cosine 1.0 < 1.5: the anonymize rule applied as written
    failed = guard_candidates(arcface_model, as_tensor(original), candidates, mode=ANONYMIZE)
    assert not failed.passed and "still recognisable" in failed.verdict
    assert "IdentityGuard" in caplog.text
    with pytest.raises(IdentityCheckError) as error:
        guard_candidates(arcface_model, as_tensor(original), candidates, mode=ANONYMIZE, on_fail=STOP)
    assert "still recognisable" in str(error.value) and "  0  yes" in str(error.value)


def test_candidates_a_vae_crop_smaller_are_compared_with_the_cropped_original(sface_model):
    original = np.full((645, 643, 3), 20, np.uint8)
    original[130:130 + FACE_BOX, 193:193 + FACE_BOX] = 255  # centre crop (2 top, 1 left) aligns it with the grid
    candidate = original[2:642, 1:641]
    mask = torch.zeros(1, 645, 643)
    result = guard_candidates(sface_model, as_tensor(original), as_tensor(candidate), mask)
    assert result.passed and result.candidates[0].cosine == pytest.approx(1.0, abs=1e-5)
    assert "centre-cropped" in result.report
    with pytest.raises(InvalidInputError, match="'candidates'"):
        guard_candidates(sface_model, as_tensor(original), as_tensor(original[:600, :600]))
    with pytest.raises(InvalidInputError, match="64x64 mask"):
        guard_candidates(sface_model, as_tensor(original), as_tensor(candidate), torch.zeros(1, 64, 64))
    with pytest.raises(InvalidInputError, match="'original'"):
        guard_candidates(sface_model, as_tensor(original, original), as_tensor(candidate, candidate, candidate))


# --- LPIPS outside the mask -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def astronaut() -> torch.Tensor:
    from skimage.data import astronaut as load

    return as_tensor(cv2.resize(load(), (161, 143), interpolation=cv2.INTER_AREA))  # odd, non-square


def test_lpips_is_zero_when_only_the_masked_region_changed(alex, astronaut):
    mask = torch.zeros(1, 143, 161)
    mask[0, 30:110, 40:120] = 1
    edited = astronaut.clone()
    edited[0, 30:110, 40:120] = torch.rand(80, 80, 3)
    (score,) = lpips_outside_mask(alex, astronaut, edited, mask)
    assert score == 0.0
    soft = mask.clone()
    soft[0, 25:30, 40:120] = 0.5  # a feathered edge: identical pixels stay identical
    (score,) = lpips_outside_mask(alex, astronaut, astronaut.clone(), soft)
    assert score == 0.0


def test_lpips_grows_with_changes_outside_the_mask(alex, astronaut):
    mask = torch.zeros(1, 143, 161)
    mask[0, 30:110, 40:120] = 1
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(astronaut.shape, generator=generator)
    candidates = torch.cat([(astronaut + s * noise).clamp(0, 1) for s in (0.0, 0.02, 0.2)])
    scores = lpips_outside_mask(alex, astronaut, candidates, mask)
    assert scores[0] == 0.0 < scores[1] < scores[2]
    full = torch.ones(1, 143, 161)
    assert lpips_outside_mask(alex, astronaut, candidates, full) == [0.0, 0.0, 0.0]


def test_lpips_vgg_backbone_loads_and_a_wrong_backbone_is_named(models_dir):
    vgg = load_lpips(models_dir / "lpips" / "vgg16-397923af.pth", "vgg")
    image = torch.rand(1, 64, 80, 3)
    assert lpips_outside_mask(vgg, image, image, torch.zeros(1, 64, 80)) == [0.0]
    with pytest.raises(ModelFileError, match="vgg16-397923af.pth is not torchvision's AlexNet"):
        load_lpips(models_dir / "lpips" / "vgg16-397923af.pth", "alex")


@pytest.mark.parametrize("choice", ["SCRFD: models/buffalo_l", "YuNet: face_detection_yunet_2023mar.onnx"])
def test_onnx_detectors_are_choices_of_the_face_detector_registry(choice, models_dir, buffalo):
    from remaskable_core.faces.detectors import DetectorOptions, parse_choice

    backend, name = parse_choice(choice)
    path = (models_dir / backend.model_folder / name)
    (face,) = backend.build(path, DetectorOptions(min_face_size=32)).detect(square_image([(192, 128)]))
    np.testing.assert_allclose(face.box, (192, 128, 192 + FACE_BOX, 128 + FACE_BOX), atol=0.5)
    assert backend.build(path, DetectorOptions(min_face_size=FACE_BOX + 1)).detect(square_image([(192, 128)])) == []
