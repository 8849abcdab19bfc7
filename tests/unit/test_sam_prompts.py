"""SAMPrompt's core: prompt JSON, prompts derived from parse classes and masks, choosing among SAM's three masks,
the cached image embedding, and batches/odd sizes/empty regions, with the tiny SAM written in the real .pth format."""

from __future__ import annotations

import json

import pytest
import torch

from remaskable_core.errors import InvalidInputError
from remaskable_core.parsing import CLASS_INDEX, FaceParseResult
from remaskable_core.sam import load_sam
from remaskable_core.sam_prompts import (DeriveSettings, EmbeddingCache, Prompt, choose_mask, derive_prompt,
                                         dominant_classes, parse_prompts, segment)


@pytest.fixture(scope="module")
def sam(tmp_path_factory):
    from tests.fixtures.models import write_models

    models = tmp_path_factory.mktemp("models")
    write_models(models, ["sam_vit_b_01ec64.pth"])
    return load_sam(models / "sams" / "sam_vit_b_01ec64.pth")


def counting_encoder(model) -> list[int]:
    calls = [0]
    forward = model.image_encoder.forward

    def counted(x):
        calls[0] += 1
        return forward(x)

    model.image_encoder.forward = counted
    return calls


# --- user prompts -------------------------------------------------------------------------------------------------

def test_prompt_json_with_points_boxes_and_default_label():
    text = json.dumps({"points": [{"x": 10, "y": 20.5, "label": 1}, {"x": 0, "y": 77, "label": 0}, {"x": 5, "y": 5}],
                       "boxes": [[1, 2, 101, 77]]})
    prompts = parse_prompts(text, batch_size=2, width=101, height=77)
    assert len(prompts) == 2 and prompts[0] == prompts[1]
    assert prompts[0].points == [(10.0, 20.5), (0.0, 77.0), (5.0, 5.0)]
    assert prompts[0].labels == [1, 0, 1]
    assert prompts[0].boxes == [(1.0, 2.0, 101.0, 77.0)]


def test_a_json_list_gives_one_prompt_per_image():
    text = json.dumps([{"points": [{"x": 1, "y": 1}]}, {"boxes": [[0, 0, 5, 5]]}])
    first, second = parse_prompts(text, 2, 10, 10)
    assert first.points == [(1.0, 1.0)] and not first.boxes
    assert second.boxes == [(0.0, 0.0, 5.0, 5.0)] and not second.points
    assert len(parse_prompts(json.dumps([{"points": [{"x": 1, "y": 1}]}]), 3, 10, 10)) == 3


def test_empty_text_means_no_user_prompt():
    assert all(p.empty for p in parse_prompts("  ", 2, 10, 10))


@pytest.mark.parametrize("text,fragment", [
    ('{"points": [', "not valid JSON"),
    ('{"points": [{"x": 120, "y": 5}]}', "point 0 at (120, 5) lies outside the 100x50 image"),
    ('{"points": [{"x": 10, "y": -1}]}', "(10, -1) lies outside"),
    ('{"points": [{"x": 10, "y": 5, "label": 2}]}', "label 2"),
    ('{"points": [{"x": "a", "y": 5}]}', 'x must be a number, got "a"'),
    ('{"points": [[10, 5]]}', 'must be {"x"'),
    ('{"boxes": [[10, 10, 5, 20]]}', "box 0 [10, 10, 5, 20] is not inside"),
    ('{"boxes": [[0, 0, 101, 20]]}', "box 0 [0, 0, 101, 20]"),
    ('{"boxes": [[0, 0, 10]]}', "must be [x0, y0, x1, y1]"),
    ('{"point": []}', "unknown key"),
    ('[{}, {}, {}]', "lists 3 prompts but the batch has 2"),
    ('42', "must be a JSON object or a list"),
])
def test_bad_prompts_name_the_input_and_the_offending_value(text, fragment):
    with pytest.raises(InvalidInputError) as error:
        parse_prompts(text, batch_size=2, width=100, height=50)
    assert error.value.input_name == "prompts"
    assert fragment in str(error.value)


def test_a_user_prompt_adds_points_and_its_boxes_replace_the_derived_box():
    derived = Prompt([(5.0, 5.0)], [1], [(0.0, 0.0, 10.0, 10.0)])
    user = Prompt([(7.0, 7.0)], [0], [(1.0, 1.0, 8.0, 8.0)])
    merged = derived.merged(user)
    assert merged.points == [(5.0, 5.0), (7.0, 7.0)] and merged.labels == [1, 0]
    assert merged.boxes == [(1.0, 1.0, 8.0, 8.0)]
    assert derived.merged(Prompt()).boxes == derived.boxes


# --- derived prompts ----------------------------------------------------------------------------------------------

def _head_parse(height: int = 90, width: int = 121) -> FaceParseResult:
    """A synthetic parse: hair cap above a skin face, background elsewhere."""
    labels = torch.zeros(height, width, dtype=torch.long)
    labels[10:45, 20:100] = CLASS_INDEX["hair"]
    labels[40:80, 35:85] = CLASS_INDEX["skin"]
    probs = torch.nn.functional.one_hot(labels, 19).permute(2, 0, 1).float()[None]
    return FaceParseResult(probs=probs, boxes=[[(35.0, 40.0, 85.0, 80.0)]], backend="test")


def test_positive_points_lie_deep_inside_and_spread_and_the_box_holds_the_region():
    region = torch.zeros(60, 101)
    region[10:50, 10:90] = 1
    prompt = derive_prompt(region, DeriveSettings(positive_points=3, negative_points=0, box_margin=0.1))
    assert prompt.labels == [1, 1, 1]
    for x, y in prompt.points:
        assert 14 <= x <= 86 and 14 <= y <= 46, (x, y)  # at least 4 px (30% of the 20 px depth) inside
    xs = sorted(x for x, _ in prompt.points)
    assert xs[-1] - xs[0] > 30  # spread along the region, not stacked at its centre
    (x0, y0, x1, y1), = prompt.boxes
    assert (x0, y0, x1, y1) == pytest.approx((2.0, 6.0, 98.0, 54.0))


def test_negative_points_go_into_the_neighbouring_classes_not_the_region():
    parse = _head_parse()
    labels = parse.label_map()[0]
    region = parse.hard_mask("hair")[0]
    prompt = derive_prompt(region, DeriveSettings(positive_points=2, negative_points=2), labels, ("hair",))
    negatives = [p for p, label in zip(prompt.points, prompt.labels) if label == 0]
    positives = [p for p, label in zip(prompt.points, prompt.labels) if label == 1]
    classes = {int(labels[int(y), int(x)]) for x, y in negatives}
    assert classes == {CLASS_INDEX["skin"], CLASS_INDEX["background"]}
    assert all(int(labels[int(y), int(x)]) == CLASS_INDEX["hair"] for x, y in positives)


def test_negative_points_around_a_mask_without_parse_lie_outside_it_near_its_edge():
    region = torch.zeros(100, 100)
    region[30:70, 30:70] = 1
    prompt = derive_prompt(region, DeriveSettings(positive_points=1, negative_points=4))
    negatives = [p for p, label in zip(prompt.points, prompt.labels) if label == 0]
    assert len(negatives) == 4
    for x, y in negatives:
        assert region[int(y), int(x)] == 0
        assert 20 <= x <= 80 and 20 <= y <= 80  # within the ring, not at the image's far corners
    assert len({(round(x / 10), round(y / 10)) for x, y in negatives}) == 4  # apart from each other


def test_an_empty_region_gives_an_empty_prompt():
    assert derive_prompt(torch.zeros(20, 20), DeriveSettings()).empty


def test_a_masks_own_classes_are_its_dominant_parse_classes():
    parse = _head_parse()
    region = torch.zeros(90, 121)
    region[12:30, 22:98] = 1  # mostly hair, a sliver of background
    assert dominant_classes(parse.label_map()[0], region) == ("hair",)


# --- choosing among the three candidates --------------------------------------------------------------------------

def test_selection_by_score_or_by_agreement_with_the_region():
    masks = torch.zeros(3, 10, 10, dtype=torch.bool)
    masks[0, :5] = True  # half the image
    masks[1, :2, :2] = True  # a corner
    masks[2] = True  # everything
    scores = torch.tensor([0.5, 0.9, 0.7])
    region = torch.zeros(10, 10, dtype=torch.bool)
    region[:5] = True
    assert choose_mask(masks, scores, "score") == 1
    assert choose_mask(masks, scores, "agreement", region) == 0
    tie = torch.stack([masks[0], masks[0], masks[2]])
    assert choose_mask(tie, scores, "agreement", region) == 1  # equal agreement: the higher score wins


def test_agreement_needs_a_region(sam):
    with pytest.raises(InvalidInputError, match="selection"):
        segment(sam, torch.rand(1, 32, 32, 3), [Prompt([(5.0, 5.0)], [1])], "agreement", regions=None)


# --- SAM inference ------------------------------------------------------------------------------------------------

def test_reprompting_the_same_image_reuses_the_embedding(sam):
    calls = counting_encoder(sam)
    cache = EmbeddingCache()
    image = torch.rand(1, 45, 67, 3)
    first = segment(sam, image, [Prompt([(10.0, 10.0)], [1])], cache=cache)
    second = segment(sam, image, [Prompt([(30.0, 20.0), (5.0, 40.0)], [1, 0], [(2.0, 2.0, 60.0, 40.0)])],
                     cache=cache)
    assert calls[0] == 1
    assert first.masks.shape == second.masks.shape == (1, 45, 67)
    segment(sam, image.flip(1), [Prompt([(10.0, 10.0)], [1])], cache=cache)  # other content: encoded again
    assert calls[0] == 2
    segment(sam, image, [Prompt([(10.0, 10.0)], [1])], cache=None)  # no cache: always encoded
    assert calls[0] == 3


def test_the_cache_keeps_a_bounded_number_of_images_per_model(sam):
    calls = counting_encoder(sam)
    cache = EmbeddingCache(per_model=2)
    images = [torch.full((1, 16, 16, 3), v) for v in (0.1, 0.5, 0.9)]
    for image in images + images[-1:]:
        segment(sam, image, [Prompt([(4.0, 4.0)], [1])], cache=cache)
    assert calls[0] == 3
    segment(sam, images[0], [Prompt([(4.0, 4.0)], [1])], cache=cache)  # evicted, encoded again
    assert calls[0] == 4


def test_a_batch_with_odd_sizes_and_an_empty_prompt(sam):
    images = torch.rand(3, 37, 53, 3)
    prompts = [Prompt([(20.0, 15.0)], [1]), Prompt(), Prompt(boxes=[(3.0, 4.0, 40.0, 30.0), (41.0, 2.0, 53.0, 37.0)])]
    steps = []
    result = segment(sam, images, prompts, progress=lambda done, total: steps.append((done, total)),
                     cache=EmbeddingCache())
    assert result.masks.shape == (3, 37, 53) and result.masks.dtype == torch.float32
    assert set(result.masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(result.masks[1], torch.zeros(37, 53))
    assert result.scores[1] == 0.0 and "no prompt" in result.messages[1]
    assert all(torch.isfinite(torch.tensor(s)) for s in result.scores)
    assert steps == [(1, 3), (2, 3), (3, 3)]


def test_segmentation_is_deterministic_and_boxes_are_united(sam):
    image = torch.rand(1, 40, 40, 3)
    left, right = (0.0, 0.0, 20.0, 40.0), (20.0, 0.0, 40.0, 40.0)
    cache = EmbeddingCache()
    one = segment(sam, image, [Prompt(boxes=[left])], cache=cache).masks
    other = segment(sam, image, [Prompt(boxes=[right])], cache=cache).masks
    both = segment(sam, image, [Prompt(boxes=[left, right])], cache=cache).masks
    assert torch.equal(both, torch.maximum(one, other))
    assert torch.equal(segment(sam, image, [Prompt(boxes=[left])], cache=cache).masks, one)


def test_agreement_picks_the_candidate_closest_to_the_region(sam):
    image = torch.rand(1, 48, 48, 3)
    prompt = Prompt([(24.0, 24.0)], [1])
    from remaskable_core.sam_prompts import embed_image, predict

    pixels = (image[0] * 255).round().to(torch.uint8).numpy()
    cache = EmbeddingCache()
    candidates, _ = predict(sam, embed_image(sam, pixels, cache), prompt.points, prompt.labels, None)
    for target in range(3):
        result = segment(sam, image, [prompt], "agreement", regions=candidates[target][None].float(), cache=cache)
        ious = [float((c & candidates[target]).sum() / (c | candidates[target]).sum().clamp_min(1))
                for c in candidates]
        assert torch.equal(result.masks[0].bool(), candidates[max(range(3), key=lambda i: ious[i])])
