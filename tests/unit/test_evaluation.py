"""Evaluation metrics on synthetic data with known answers: background preservation (both protocols), parsing
IoU/F1 against CelebAMask-HQ-layout annotations, the folder layout, the report, and the command's error paths."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from remaskable_core.__main__ import main as cli_main
from remaskable_core.errors import InvalidInputError
from remaskable_core.evaluation import (BRUSHBENCH, REMASKABLE, Annotations, BackgroundScore, ParsingScores,
                                        background_score, evaluate_edits, evaluate_parsing, folder_predictions,
                                        image_files, parser_predictions, predictor_from_parser, read_label_map,
                                        summarize_background)
from remaskable_core.parsing import BISENET_ORDER, CLASS_INDEX, CLASSES, FaceParseResult, load_face_parser
from remaskable_core.perceptual import load_lpips
from tests.fixtures.fake_identity import FACE_BOX
from tests.fixtures.models import write_models

FAKES = ["alexnet-owt-7be5be79.pth", "squeezenet1_1-b8a52dc0.pth", "models/buffalo_l",
         "face_recognition_sface_2021dec.onnx", "face_detection_yunet_2023mar.onnx",
         "segformer_face_parsing.safetensors"]
NOISE = 8  # uniform integer noise in -8..8: mean square 8*9/3 = 24 (in 1/255 steps)
NOISE_PSNR = 10 * math.log10(255.0 ** 2 / (NOISE * (NOISE + 1) / 3))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaluation-models")
    write_models(root, FAKES)
    return root


@pytest.fixture(scope="module")
def alex(models_dir):
    return load_lpips(models_dir / "lpips" / "alexnet-owt-7be5be79.pth", "alex")


@pytest.fixture(scope="module")
def squeeze(models_dir):
    return load_lpips(models_dir / "lpips" / "squeezenet1_1-b8a52dc0.pth", "squeeze")


def photo(height: int, width: int) -> np.ndarray:
    """The astronaut at the given size, kept within 16..239 so noise of +-8 is never clipped."""
    image = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(image, 16, 239)


def box_mask(height: int, width: int) -> np.ndarray:
    edited = np.zeros((height, width), bool)
    edited[height // 5:height // 2, width // 4:3 * width // 4] = True
    return edited


def scribble_inside(image: np.ndarray, edited: np.ndarray, seed: int) -> np.ndarray:
    """``image`` with random pixels wherever ``edited``."""
    noise = np.random.default_rng(seed).integers(0, 256, image.shape, dtype=np.uint8)
    return np.where(edited[..., None], noise, image)


def noise_outside(image: np.ndarray, edited: np.ndarray, seed: int = 0, amplitude: int = NOISE) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(-amplitude, amplitude + 1, image.shape)
    noisy = (image.astype(np.int64) + noise).astype(np.uint8)
    return np.where(edited[..., None], image, noisy)


# --- background preservation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol, size", [(REMASKABLE, (97, 131)), (BRUSHBENCH, (512, 512))])
def test_an_edit_identical_outside_the_mask_scores_perfectly(protocol, size, alex):
    original = photo(*size)
    edited = box_mask(*size)
    score = background_score(original, scribble_inside(original, edited, 1), edited, protocol, alex)
    assert score.psnr == math.inf and score.mse == 0.0 and score.lpips == 0.0
    assert score.ssim == pytest.approx(1.0, abs=1e-9)
    assert score.unmasked_fraction == pytest.approx(1 - edited.mean())


def test_psnr_of_uniform_noise_outside_the_mask_is_the_analytic_value():
    original = photo(256, 256)
    edited = box_mask(256, 256)
    edit = scribble_inside(noise_outside(original, edited), edited, 2)  # the inside is garbage: it must not count
    score = background_score(original, edit, edited)
    assert abs(score.psnr - NOISE_PSNR) < 0.1, (score.psnr, NOISE_PSNR)
    assert score.mse == pytest.approx(10 ** (-score.psnr / 10))


def test_brushbench_sums_squared_error_over_the_channels():
    """BrushBench's MSE divides the channel-summed error by the pixel count: 3x ours, PSNR 4.77 dB lower (at 512x512
    its resize is the identity, so both protocols see the same pixels)."""
    original = photo(512, 512)
    edited = box_mask(512, 512)
    edit = noise_outside(original, edited, seed=3)
    ours = background_score(original, edit, edited, REMASKABLE)
    brushbench = background_score(original, edit, edited, BRUSHBENCH)
    assert brushbench.mse == pytest.approx(3 * ours.mse, rel=1e-12)
    assert brushbench.psnr == pytest.approx(ours.psnr - 10 * math.log10(3), abs=1e-9)
    assert abs(brushbench.psnr - (NOISE_PSNR - 10 * math.log10(3))) < 0.1
    assert brushbench.ssim == pytest.approx(ours.ssim, abs=1e-12)


def test_brushbench_resizes_to_512_which_blends_across_the_mask_edge():
    """Like BrushBench, both images are resized (bicubic) before masking: on images that are not 512x512 already,
    pixels next to the mask's edge mix in the inside, so even an edit identical outside the mask scores finite."""
    original = photo(200, 300)
    edited = box_mask(200, 300)
    score = background_score(original, scribble_inside(original, edited, 1), edited, BRUSHBENCH)
    assert 0 < score.mse < 0.01 and 25 < score.psnr < math.inf
    assert score.unmasked_fraction == pytest.approx(1 - edited.mean(), abs=0.01)


def test_ssim_is_wangs_with_the_standard_constants():
    """Two flat images: SSIM reduces to the luminance term (2 mx my + C1) / (mx^2 + my^2 + C1), C1 = (0.01 L)^2."""
    a, b = np.full((40, 50, 3), 128, np.uint8), np.full((40, 50, 3), 153, np.uint8)
    mx, my, c1 = 128 / 255, 153 / 255, 0.01 ** 2
    score = background_score(a, b, np.zeros((40, 50), bool))
    assert score.ssim == pytest.approx((2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1), abs=1e-9)


def test_ssim_and_lpips_fall_with_more_noise_outside(alex):
    original = photo(128, 128)
    edited = box_mask(128, 128)
    light, heavy = (background_score(original, noise_outside(original, edited, amplitude=a), edited, lpips_net=alex)
                    for a in (3, 15))
    assert 1.0 > light.ssim > heavy.ssim
    assert 0.0 < light.lpips < heavy.lpips
    assert light.psnr > heavy.psnr


@pytest.mark.parametrize("protocol, size", [(REMASKABLE, (97, 131)), (BRUSHBENCH, (512, 512))])
def test_what_an_edit_does_inside_the_mask_never_changes_the_scores(protocol, size, alex, squeeze):
    original = photo(*size)
    edited = box_mask(*size)
    outside = noise_outside(original, edited, seed=4)
    net = squeeze if protocol == BRUSHBENCH else alex
    first, second = (background_score(original, scribble_inside(outside, edited, seed), edited, protocol, net)
                     for seed in (5, 6))
    assert first == second
    assert first.lpips > 0


def test_a_fully_masked_image_has_nothing_to_score():
    original = photo(64, 64)
    score = background_score(original, 255 - original, np.ones((64, 64), bool))
    assert score == BackgroundScore(0.0)


def test_summary_counts_identical_and_fully_masked_images():
    scores = [BackgroundScore(0.9, 0.0, math.inf, 1.0, 0.0), BackgroundScore(0.9, 1e-3, 30.0, 0.9, 0.1),
              BackgroundScore(0.8, 1e-4, 40.0, 0.95, None), BackgroundScore(0.0)]
    summary = summarize_background(scores)
    assert (summary.images, summary.identical, summary.fully_masked) == (3, 1, 1)
    assert summary.psnr == pytest.approx(35.0)  # the mean over the images that changed outside the mask
    assert summary.mse == pytest.approx((0.0 + 1e-3 + 1e-4) / 3)
    assert summary.lpips == pytest.approx(0.05)
    assert summarize_background([scores[0], scores[0]]).psnr == math.inf


# --- face parsing -------------------------------------------------------------------------------------------------

SIZE = 40


def annotated_labels() -> np.ndarray:
    """40x40: rows 0-9 hair (400 px), rows 10-29 skin with a 4x4 left eye (784 + 16 px), rows 30-39 background."""
    labels = np.zeros((SIZE, SIZE), np.int64)
    labels[:10] = CLASS_INDEX["hair"]
    labels[10:30] = CLASS_INDEX["skin"]
    labels[14:18, 10:14] = CLASS_INDEX["l_eye"]
    return labels


def predicted_labels() -> np.ndarray:
    """The annotation with rows 10-11 (80 skin px) called hair and the eye missed (called skin)."""
    labels = annotated_labels()
    labels[10:12] = CLASS_INDEX["hair"]
    labels[14:18, 10:14] = CLASS_INDEX["skin"]
    return labels


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def write_celebamask(root: Path, index: int, labels: np.ndarray, extra: dict[str, np.ndarray] = {}) -> None:
    """One binary mask per class present, CelebAMask-HQ-mask-anno style: <index // 2000>/<index:05d>_<class>.png;
    the skin mask also covers the eye (annotators' masks overlap), ``extra`` adds overlapping masks."""
    masks = {CLASSES[c]: labels == c for c in np.unique(labels) if CLASSES[c] != "background"}
    if "skin" in masks:
        masks["skin"] = masks["skin"] | (labels == CLASS_INDEX["l_eye"])
    masks.update(extra)
    for name, region in masks.items():
        write_png(root / str(index // 2000) / f"{index:05d}_{name}.png", region.astype(np.uint8) * 255)


EXPECTED_IOU = {"background": 1.0, "skin": 704 / 800, "l_eye": 0.0, "hair": 400 / 480}
EXPECTED_F1 = {"background": 1.0, "skin": 1408 / 1504, "l_eye": 0.0, "hair": 800 / 880}


def check_expected(scores: ParsingScores) -> None:
    rows = scores.per_class()
    for name in CLASSES:
        assert rows[name]["iou"] == pytest.approx(EXPECTED_IOU.get(name)), name
        assert rows[name]["f1"] == pytest.approx(EXPECTED_F1.get(name)), name
    assert scores.miou == pytest.approx(np.mean(list(EXPECTED_IOU.values())))
    assert scores.mean_f1 == pytest.approx((EXPECTED_F1["skin"] + EXPECTED_F1["l_eye"] + EXPECTED_F1["hair"]) / 3)
    assert rows["skin"]["annotated_pixels"] == 784 * scores.images
    assert rows["skin"]["predicted_pixels"] == 720 * scores.images


def test_iou_and_f1_against_celebamask_hq_annotations(tmp_path):
    annotations_dir, predictions_dir = tmp_path / "anno", tmp_path / "pred"
    for index in (7, 2001):  # folders 0 and 1
        write_celebamask(annotations_dir, index, annotated_labels())
        write_png(predictions_dir / f"{index}.png", predicted_labels().astype(np.uint8))
    assert (annotations_dir / "1" / "02001_skin.png").is_file()
    annotations = Annotations(annotations_dir)
    assert annotations.celebamask
    np.testing.assert_array_equal(annotations.label_map("2001"), annotated_labels())  # the eye wins over skin

    result = evaluate_parsing(["7", "2001", "5"], annotations, folder_predictions(predictions_dir), "test")
    assert result.scores.images == 2 and result.missing_annotation == ["5"]
    check_expected(result.scores)
    check_expected(result.per_image["7"])


def test_label_map_annotations_give_the_same_scores_and_predictions_may_be_resized(tmp_path):
    write_png(tmp_path / "anno" / "face.png", annotated_labels().astype(np.uint8))
    upscaled = np.repeat(np.repeat(predicted_labels(), 2, 0), 2, 1).astype(np.uint8)  # 80x80
    write_png(tmp_path / "pred" / "face.png", upscaled)
    annotations = Annotations(tmp_path / "anno")
    assert not annotations.celebamask
    result = evaluate_parsing(["face", "other"], annotations, folder_predictions(tmp_path / "pred"), "test")
    assert result.resized == 1 and result.missing_annotation == ["other"]
    check_expected(result.scores)


def test_overlapping_celebamask_classes_follow_farls_precedence(tmp_path):
    """Glasses drawn over an eye: eye_g is later than l_eye in FaRL's order, so it wins; hair wins over skin."""
    labels = np.zeros((SIZE, SIZE), np.int64)
    labels[10:30] = CLASS_INDEX["skin"]
    labels[14:18, 10:14] = CLASS_INDEX["l_eye"]
    glasses = np.zeros((SIZE, SIZE), bool)
    glasses[12:20, 8:16] = True
    hair = np.zeros((SIZE, SIZE), bool)
    hair[:12] = True  # overlaps skin rows 10-11
    write_celebamask(tmp_path, 0, labels, {"eye_g": glasses, "hair": hair})
    expected = labels.copy()
    expected[glasses] = CLASS_INDEX["eye_g"]
    expected[hair] = CLASS_INDEX["hair"]
    np.testing.assert_array_equal(Annotations(tmp_path).label_map("0"), expected)
    assert Annotations(tmp_path).label_map("1") is None and Annotations(tmp_path).label_map("x") is None


def test_bisenet_order_predictions_are_mapped_by_name(tmp_path):
    canonical = predicted_labels()
    in_bisenet_order = np.vectorize(lambda c: BISENET_ORDER.index(CLASSES[c]))(canonical).astype(np.uint8)
    assert not np.array_equal(in_bisenet_order, canonical)
    write_png(tmp_path / "p.png", in_bisenet_order)
    np.testing.assert_array_equal(read_label_map(tmp_path / "p.png", BISENET_ORDER), canonical)


def test_bad_label_maps_are_named(tmp_path):
    write_png(tmp_path / "high.png", np.full((8, 8), 19, np.uint8))
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 2] = 200
    write_png(tmp_path / "colour.png", colour)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InvalidInputError, match="label 19"):
        read_label_map(tmp_path / "high.png")
    with pytest.raises(InvalidInputError, match="colour image"):
        read_label_map(tmp_path / "colour.png")
    with pytest.raises(InvalidInputError, match="cannot be read"):
        read_label_map(tmp_path / "broken.png")


class LabelMapParser:
    """A face parser that 'predicts' a fixed label map, through the real FaceParseResult."""

    def __init__(self, labels: np.ndarray):
        self.labels = torch.from_numpy(labels)

    def parse(self, images: torch.Tensor) -> FaceParseResult:
        probs = torch.nn.functional.one_hot(self.labels, len(CLASSES)).permute(2, 0, 1).float()[None]
        return FaceParseResult(probs.expand(images.shape[0], -1, -1, -1), [[] for _ in images], "fixed")


def test_a_face_parser_plugs_in_as_the_predictor(tmp_path):
    write_png(tmp_path / "images" / "a.png", np.zeros((SIZE, SIZE, 3), np.uint8))
    write_png(tmp_path / "anno" / "a.png", annotated_labels().astype(np.uint8))
    predictor = predictor_from_parser(LabelMapParser(predicted_labels()))
    np.testing.assert_array_equal(predictor(np.zeros((SIZE, SIZE, 3), np.uint8)), predicted_labels())
    images = image_files(tmp_path / "images", "--images")
    result = evaluate_parsing(["a"], Annotations(tmp_path / "anno"), parser_predictions(predictor, images), "parser")
    check_expected(result.scores)


def test_the_command_runs_a_face_parser_file_on_the_originals(tmp_path, models_dir, capsys):
    """--parser: predictions made by a (random-weight) SegFormer from models/face_parsing, exactly as
    predictor_from_parser makes them, scaled to the annotations' size."""
    for name in ("a", "b"):
        write_png(tmp_path / "images" / f"{name}.png", photo(64, 80)[..., ::-1])
        write_png(tmp_path / "annotations" / f"{name}.png", annotated_labels().astype(np.uint8))
    out = tmp_path / "eval.json"
    code = cli_main(["eval", str(tmp_path), "--parser", "segformer_face_parsing.safetensors", "--models",
                     str(models_dir), "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    parsing = json.loads(out.read_text())["parsing"]
    assert parsing["images"] == 2 and parsing["resized_predictions"] == 2
    assert parsing["predictions"].startswith("segformer (segformer_face_parsing.safetensors)")

    parser = load_face_parser(models_dir / "face_parsing" / "segformer_face_parsing.safetensors")
    predict = predictor_from_parser(parser)
    prediction = cv2.resize(predict(photo(64, 80)).astype(np.int32), (SIZE, SIZE), interpolation=cv2.INTER_NEAREST)
    expected = np.bincount(prediction.reshape(-1), minlength=len(CLASSES)) * 2
    assert [parsing["classes"][c]["predicted_pixels"] for c in CLASSES] == expected.tolist()

    assert cli_main(["eval", str(tmp_path), "--parser", "segformer_face_parsing.safetensors", "--predictions",
                     str(tmp_path / "images")]) == 2
    assert "exclude each other" in capsys.readouterr().err


# --- folders, edits, report, command -----------------------------------------------------------------------------

def write_dataset(root: Path) -> None:
    """Three originals; ``edits`` identical outside the mask, ``noisy`` with uniform noise there; one edit missing,
    one mask of the wrong size, one VAE-cropped edit, one JPEG."""
    for name, (height, width) in {"a": (256, 256), "b": (97, 131), "c": (64, 80)}.items():
        original = photo(height, width)
        edited = box_mask(height, width)
        write_png(root / "images" / f"{name}.png", original[..., ::-1])
        write_png(root / "masks" / f"{name}.png", edited.astype(np.uint8) * 255)
        edit = scribble_inside(original, edited, 7)
        if name == "b":
            edit = edit[2:-3, 1:-2]  # a VAE crop: 4 and 3 pixels smaller, centred
        write_png(root / "edits" / f"{name}{'.jpg' if name == 'c' else '.png'}", edit[..., ::-1])
        if name != "c":
            noisy = scribble_inside(noise_outside(original, edited), edited, 8)
            write_png(root / "noisy" / f"{name}.png", noisy[..., ::-1])
    write_png(root / "masks" / "c.png", np.zeros((10, 10), np.uint8))


def test_evaluate_edits_scores_every_folder_and_skips_with_reasons(tmp_path, alex):
    write_dataset(tmp_path)
    images = image_files(tmp_path / "images", "--images")
    masks = image_files(tmp_path / "masks", "--masks")
    folders = {name: image_files(tmp_path / name, "--edits") for name in ("edits", "noisy")}
    result = evaluate_edits(images, masks, folders, lpips_net=alex)

    rows = {(r.name, r.edits): r for r in result.rows}
    assert rows["a", "edits"].background.psnr == math.inf
    assert rows["b", "edits"].background.psnr == math.inf and "VAE crop" in rows["b", "edits"].note
    assert rows["c", "edits"].background is None and "mask is 10x10" in rows["c", "edits"].note
    assert abs(rows["a", "noisy"].background.psnr - NOISE_PSNR) < 0.1
    assert [(s.name, s.edits) for s in result.skipped] == [("c", "noisy")]
    assert result.background("edits").identical == 2
    assert result.identity("edits", 0.4) is None  # no identity model given


def test_the_command_prints_the_table_and_writes_json(tmp_path, models_dir, capsys):
    write_dataset(tmp_path / "data")
    write_png(tmp_path / "data" / "annotations" / "a.png", annotated_labels().astype(np.uint8))
    write_png(tmp_path / "data" / "predictions" / "a.png", predicted_labels().astype(np.uint8))
    out = tmp_path / "out" / "eval.json"
    code = cli_main(["eval", str(tmp_path / "data"), "--edits", "edits", "noisy", "--models", str(models_dir),
                     "--recogniser", "off", "--json", str(out), "--per-image"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "| edits | 2 | ∞ | 1.0000 | 0 | 0.0000 | 2 | 0 |" in printed
    assert "| noisy | 2 |" in printed and "## Face parsing" in printed and "## Identity" not in printed
    assert "- c (noisy): no edit of this image" in printed

    report = json.loads(out.read_text())
    edits, noisy = report["background"]["by_edits"]["edits"], report["background"]["by_edits"]["noisy"]
    assert edits["psnr"] is None and edits["identical_outside"] == 2 and edits["lpips"] == 0.0
    assert noisy["identical_outside"] == 0 and noisy["psnr"] > 30
    assert report["background"]["lpips_net"] == "alex" and report["background"]["protocol"] == REMASKABLE
    assert report["parsing"]["mean_f1"] == pytest.approx(np.mean([EXPECTED_F1[c] for c in ("skin", "l_eye", "hair")]))
    assert report["parsing"]["mean_f1_classes"] == [c for c in CLASSES if c != "background"]
    per_image = {(r["image"], r["edits"]): r for r in report["per_image"]["edits"]}
    assert abs(per_image["a", "noisy"]["psnr"] - NOISE_PSNR) < 0.1
    assert per_image["a", "edits"]["identical_outside"] is True and per_image["a", "edits"]["psnr"] is None


def test_the_help_documents_the_layout(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["eval", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for part in ("DIR/images/<name>.png", "DIR/masks/<name>.png", "white = edited region", "DIR/edits/<name>.png",
                 "<k>/<NNNNN>_<class>.png", "--protocol", "--threshold", "--json"):
        assert part in text, part


def test_command_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert cli_main(["eval", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli_main(["eval", str(tmp_path / "empty")]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err

    write_dataset(tmp_path / "data")
    assert cli_main(["eval", str(tmp_path / "data"), "--recogniser", "off"]) == 1  # LPIPS needs --models
    error = capsys.readouterr().err
    assert "--models" in error and "lpips/alexnet-owt-7be5be79.pth" in error
    assert cli_main(["eval", str(tmp_path / "data"), "--edits", "nowhere"]) == 2
    assert "--edits nowhere: no such folder" in capsys.readouterr().err


@pytest.mark.parametrize("options, recogniser, threshold, source", [
    (["--recogniser", "arcface", "--threshold", "0.5"],
     "ArcFace (w600k_r50), faces found by SCRFD (of models/buffalo_l)", 0.5, "--threshold"),
    (["--recogniser", "sface", "--detector", "yunet"],
     "SFace (face_recognition_sface_2021dec.onnx), faces found by YuNet (face_detection_yunet_2023mar.onnx)", 0.4,
     "the SFace default"),
])
def test_recognisers_from_the_models_directory(tmp_path, models_dir, capsys, options, recogniser, threshold, source):
    """Fake recognisers in the real formats: the fake detectors see a face in a white square, so an edit that leaves
    the square alone has cosine 1 (re-identified) and one that paints it over has no face."""
    image = np.full((640, 640, 3), 20, np.uint8)
    image[256:256 + FACE_BOX, 256:256 + FACE_BOX] = 255
    edited = np.zeros((640, 640), bool)
    edited[:100, :100] = True
    write_png(tmp_path / "images" / "face.png", image)
    write_png(tmp_path / "masks" / "face.png", edited.astype(np.uint8) * 255)
    write_png(tmp_path / "edits" / "face.png", np.where(edited[..., None], 128, image).astype(np.uint8))
    write_png(tmp_path / "hidden" / "face.png", np.full_like(image, 20))
    out = tmp_path / "eval.json"
    code = cli_main(["eval", str(tmp_path), "--edits", "edits", "hidden", "--models", str(models_dir), "--lpips",
                     "off", "--json", str(out), *options])
    assert code == 0, capsys.readouterr().err
    identity = json.loads(out.read_text())["identity"]
    assert (identity["recogniser"], identity["threshold"], identity["threshold_source"]) == (recogniser, threshold,
                                                                                             source)
    assert identity["by_edits"]["edits"]["mean_cosine"] == pytest.approx(1.0, abs=1e-5)
    assert identity["by_edits"]["edits"]["reid_rate"] == 1.0
    hidden = identity["by_edits"]["hidden"]
    assert hidden["no_face_in_edit"] == 1 and hidden["reid_rate"] is None
    assert f"threshold {threshold:.3f} ({source})" in capsys.readouterr().out
