"""StructureHint's core: hint shapes and VAE-grid crop, edges restricted/weighted to the region, parse colours."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from remaskable_core.errors import InvalidInputError
from remaskable_core.latent_mask import LatentGrid
from remaskable_core.parsing.labels import CLASS_INDEX, CLASSES, PALETTE
from remaskable_core.parsing.result import FaceParseResult
from remaskable_core.structure import canny_edges, structure_hints


def astronaut(height: int = 101, width: int = 133, batch: int = 1) -> torch.Tensor:
    import cv2

    image = cv2.resize(data.astronaut(), (width, height), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(image.astype(np.float32) / 255.0)[None].repeat(batch, 1, 1, 1)


def two_class_parse(height: int, width: int, batch: int = 1) -> FaceParseResult:
    labels = torch.full((batch, height, width), CLASS_INDEX["background"])
    labels[:, height // 4:3 * height // 4, width // 4:3 * width // 4] = CLASS_INDEX["skin"]
    labels[:, height // 4:height // 2, width // 4:3 * width // 4] = CLASS_INDEX["hair"]
    probs = torch.nn.functional.one_hot(labels, len(CLASSES)).permute(0, 3, 1, 2).float()
    return FaceParseResult(probs, [[] for _ in range(batch)], "test")


@pytest.mark.parametrize("crop,expected", [(True, (2, 96, 128, 3)), (False, (2, 101, 133, 3))])
def test_hint_shapes_follow_the_vae_crop(crop, expected):
    hints = structure_hints(astronaut(batch=2), two_class_parse(101, 133), crop_to_vae_grid=crop)
    assert hints.edges.shape == expected and hints.parse_map.shape == expected
    assert hints.edges.dtype == torch.float32 and 0 <= float(hints.edges.min()) and float(hints.edges.max()) <= 1


def test_cropped_hints_are_the_vae_crop_of_the_full_hints():
    image, parse = astronaut(), two_class_parse(101, 133)
    full = structure_hints(image, parse, crop_to_vae_grid=False)
    cropped = structure_hints(image, parse, crop_to_vae_grid=True)
    grid = LatentGrid(101, 133)
    assert torch.equal(cropped.edges, grid.crop(full.edges))
    assert torch.equal(cropped.parse_map, grid.crop(full.parse_map))


def test_edges_are_restricted_or_weighted_to_the_grown_mask():
    image = astronaut(128, 128)
    mask = torch.zeros(1, 128, 128)
    mask[0, 40:80, 40:80] = 1
    all_edges = canny_edges(image)
    restricted = structure_hints(image, mask=mask, edge_source="canny", grow_px=4, crop_to_vae_grid=False).edges[0, ..., 0]
    region = torch.zeros(128, 128, dtype=torch.bool)
    region[36:84, 36:84] = True  # the square grown by a 4 px disc reaches 4 px out along the sides
    assert restricted[~region].sum() == 0
    assert torch.equal(restricted[40:80, 40:80], all_edges[0, 40:80, 40:80])
    assert all_edges[0, 40:80, 40:80].sum() > 20, "the test image has no edges in the region"
    weighted = structure_hints(image, mask=mask, edge_source="canny", grow_px=4, outside_strength=0.25,
                               crop_to_vae_grid=False).edges[0, ..., 0]
    outside = ~region & (all_edges[0] > 0)
    assert outside.sum() > 0 and bool((weighted[outside] == 0.25).all())


def test_without_a_mask_the_parse_bounds_edges_to_the_head():
    image = astronaut(96, 96)
    parse = two_class_parse(96, 96)
    hints = structure_hints(image, parse, edge_source="canny", grow_px=0, crop_to_vae_grid=False)
    head = parse.hard_mask("head")[0] > 0
    assert hints.edges[0, ..., 0][~head].sum() == 0
    assert hints.edges[0, ..., 0][head].sum() > 0


def test_parse_edges_and_colour_map():
    parse = two_class_parse(64, 64)
    hints = structure_hints(torch.zeros(1, 64, 64, 3), parse, edge_source="parse", crop_to_vae_grid=False)
    edges = hints.edges[0, ..., 0]
    assert edges[16, 32] == 1 or edges[15, 32] == 1  # background/hair boundary
    assert edges[32, 31] == 1 or edges[32, 32] == 1 or edges[31, 32] == 1  # hair/skin boundary
    assert edges[5, 5] == 0 and edges[40, 32] == 0
    colours = (hints.parse_map[0] * 255).round().to(torch.uint8)
    assert tuple(colours[20, 32].tolist()) == PALETTE["hair"]
    assert tuple(colours[40, 32].tolist()) == PALETTE["skin"]
    assert tuple(colours[2, 2].tolist()) == PALETTE["background"]


def test_without_parse_the_map_is_black_and_parse_edges_are_an_error():
    hints = structure_hints(astronaut(64, 64), edge_source="canny+parse", crop_to_vae_grid=False)
    assert hints.parse_map.shape == (1, 64, 64, 3) and hints.parse_map.sum() == 0
    assert hints.edges.sum() > 0
    with pytest.raises(InvalidInputError, match="face_parse"):
        structure_hints(astronaut(64, 64), edge_source="parse")


def test_mismatched_inputs_are_clear_errors():
    with pytest.raises(InvalidInputError, match="face_parse"):
        structure_hints(astronaut(64, 64), two_class_parse(32, 32))
    with pytest.raises(InvalidInputError, match="'mask'"):
        structure_hints(astronaut(64, 64), mask=torch.ones(1, 32, 32))
    with pytest.raises(InvalidInputError, match="at least 8x8"):
        structure_hints(astronaut(6, 64))


def test_greyscale_rgba_and_batched_parse():
    grey = astronaut(64, 64)[..., :1]
    rgba = torch.cat([astronaut(64, 64, batch=2), torch.ones(2, 64, 64, 1)], dim=-1)
    assert structure_hints(grey).edges.shape == (1, 64, 64, 3)
    hints = structure_hints(rgba, two_class_parse(64, 64, batch=1))
    assert hints.parse_map.shape == (2, 64, 64, 3) and torch.equal(hints.parse_map[0], hints.parse_map[1])
