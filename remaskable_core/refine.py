"""DINOv2Refine's algorithm: move a coarse mask's boundary onto the object's real edge.

Only a band of ``band`` px on either side of the mask's boundary may change. Every feature-map cell touching
that band is reclassified by the cosine affinity of its feature vector to prototypes of cells that lie
confidently inside and confidently outside the mask nearby (or by a trained linear head). That per-cell
probability is upsampled to pixels edge-aware (joint bilateral upsampling with the image as guide), and a band
pixel flips only where this evidence contradicts the input mask by a margin. A mask that already follows
the object's edges therefore comes back unchanged, and refining twice gives what refining once gave.

The feature map may come from any backbone ([C, h, w] covering the image): DINOv2 in the node; the tests also
prove it on a real ImageNet CNN's features.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .errors import InvalidInputError, ModelFileError
from .mask_ops import bounding_box, drop_islands, grow

# image [H, W, 3] float 0..1 (a crop of the input) -> feature map [C, h, w] covering that image
FeatureExtractor = Callable[[torch.Tensor], torch.Tensor]

HEAD_FORMAT = "remaskable.linear_head.v1"
REFINE_ROUNDS = 3  # reclassification rounds at most; they stop early once nothing changes

# Joint bilateral upsampling: cells within UPSAMPLE_REACH cells of a pixel vote, with a Gaussian fall-off of
# UPSAMPLE_SPREAD cells; a cell's vote also counts by its confidence |2p - 1| ** UPSAMPLE_CONFIDENCE_POWER, so the
# undecided cells that straddle the edge (and cells whose feature blurs the two sides) give way to decided ones.
UPSAMPLE_REACH = 3
UPSAMPLE_SPREAD = 1.5
UPSAMPLE_CONFIDENCE_POWER = 2.0
_UPSAMPLE_CHUNK = 32768  # pixels per vectorised block (bounds memory on large bands)


@dataclass(frozen=True)
class RefineSettings:
    band: int = 16  # px on either side of the boundary that may change
    context: int = 48  # px beyond the band from which the inside/outside prototypes are drawn
    # 0: every sure cell within band + context of a band cell is a prototype (local affinity, the default);
    # N >= 1: N k-means sub-prototypes per side, pooled over all sure cells in the context
    prototypes: int = 0
    margin: float = 0.15  # a band pixel flips only where the evidence is past 0.5 by this much
    edge_sigma: float = 0.1  # colour difference (RGB 0..1) over which a pixel stops trusting a cell's verdict

    def __post_init__(self) -> None:
        if self.band < 1:
            raise InvalidInputError("band_width", f"must be at least 1 px, got {self.band}.")
        if self.context < 0:
            raise InvalidInputError("context", f"must not be negative, got {self.context}.")
        if self.prototypes < 0:
            raise InvalidInputError("prototypes", f"must not be negative, got {self.prototypes}.")
        if not 0.0 <= self.margin < 0.5:
            raise InvalidInputError("margin", f"must be in [0, 0.5), got {self.margin}.")
        if self.edge_sigma <= 0:
            raise InvalidInputError("edge_sigma", f"must be positive, got {self.edge_sigma}.")


@dataclass
class LinearHead:
    """A trained per-cell classifier: P(cell inside the target region) = sigmoid(w . f/|f| + b)."""

    weight: torch.Tensor  # [C]
    bias: float
    classes: tuple[str, ...]  # the classes whose union the head was trained to find
    feature_dim: int
    backbone: str = ""  # the feature extractor it was trained on (informative)
    resolution: int = 0  # the feature resolution it was trained at (informative)

    def logits(self, normalized_features: torch.Tensor) -> torch.Tensor:
        """[N, C] L2-normalised cell features -> [N] logits."""
        if normalized_features.shape[1] != self.feature_dim:
            raise InvalidInputError("head", f"was trained on {self.feature_dim}-dimensional features ({self.backbone}) "
                                            f"but the DINOv2 model gives {normalized_features.shape[1]}.",
                                    "Use the DINOv2 model the head was trained with, or no head.")
        return normalized_features @ self.weight.to(normalized_features) + self.bias

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        metadata = {"format": HEAD_FORMAT, "classes": json.dumps(list(self.classes)), "backbone": self.backbone,
                    "resolution": str(self.resolution)}
        save_file({"weight": self.weight.detach().float().reshape(1, -1).contiguous(),
                   "bias": torch.tensor([float(self.bias)])}, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> "LinearHead":
        from safetensors import safe_open

        path = Path(path)
        try:
            with safe_open(str(path), "pt") as f:
                metadata = f.metadata() or {}
                weight, bias = f.get_tensor("weight"), f.get_tensor("bias")
        except Exception as exc:  # not safetensors, or missing tensors
            raise ModelFileError(f"{path.name} is not a ReMaskable refinement head ({type(exc).__name__}: {exc}). "
                                 f"Train one with `python -m remaskable_core train-head`.") from None
        if metadata.get("format") != HEAD_FORMAT or weight.ndim != 2 or weight.shape[0] != 1 or bias.numel() != 1:
            raise ModelFileError(f"{path.name} is not a ReMaskable refinement head (format "
                                 f"{metadata.get('format')!r}, weight {list(weight.shape)}). Train one with "
                                 f"`python -m remaskable_core train-head`.")
        return cls(weight=weight[0].float(), bias=float(bias.reshape(-1)[0]),
                   classes=tuple(json.loads(metadata.get("classes", "[]"))), feature_dim=weight.shape[1],
                   backbone=metadata.get("backbone", ""), resolution=int(metadata.get("resolution", "0") or 0))


@dataclass
class RefineOutcome:
    mask: torch.Tensor  # [H, W]
    changed: int  # pixels that flipped
    message: str = ""


def boundary_band(inside: torch.Tensor, width: int) -> torch.Tensor:
    """[H, W] bool: pixels within ``width`` px of the boundary of ``inside``, on either side. The image border is
    not a boundary."""
    m = inside.float()[None]
    return (grow(m, width) - grow(m, -width))[0] > 0.5


def _to_grid(mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """[H, W] -> [h, w] fraction of each feature cell's pixels that are set."""
    return F.adaptive_avg_pool2d(mask.float()[None, None], grid)[0, 0]


def cosine_kmeans(points: torch.Tensor, k: int, iterations: int = 10) -> torch.Tensor:
    """[k', C] unit-length centres of L2-normalised ``points`` [N, C] (k' = min(k, N)); deterministic
    farthest-point initialisation."""
    k = min(k, points.shape[0])
    centres = [F.normalize(points.mean(0), dim=0)]
    for _ in range(1, k):
        nearest = (points @ torch.stack(centres).T).max(1).values
        centres.append(points[int(nearest.argmin())])
    centres = torch.stack(centres)
    for _ in range(iterations if k > 1 else 0):
        assignment = (points @ centres.T).argmax(1)
        for j in range(k):
            members = points[assignment == j]
            if members.shape[0]:
                centres[j] = F.normalize(members.mean(0), dim=0)
    return centres


def prototype_logits(features: torch.Tensor, inside: torch.Tensor, outside: torch.Tensor,
                     prototypes: int) -> torch.Tensor:
    """Per-cell logit of "inside" from cosine affinity to the nearest inside vs. outside prototype. ``features``,
    ``inside`` and ``outside`` are L2-normalised rows. The temperature is set so that the confident cells' typical
    affinity difference maps to a probability of about 0.95, whatever the backbone's similarity scale."""
    inside_centres = cosine_kmeans(inside, prototypes)
    outside_centres = cosine_kmeans(outside, prototypes)

    def difference(x: torch.Tensor) -> torch.Tensor:
        return (x @ inside_centres.T).max(1).values - (x @ outside_centres.T).max(1).values

    reference = torch.cat([difference(inside), -difference(outside)])
    temperature = max(float(reference.abs().median()) / 3.0, 1e-4)
    return difference(features) / temperature


def local_affinity_logits(cells: torch.Tensor, grid: tuple[int, int], evaluate: torch.Tensor, sure_in: torch.Tensor,
                          sure_out: torch.Tensor, radius: float, top_k: int = 3) -> torch.Tensor:
    """Per-cell logit of "inside" for the cells flagged in ``evaluate``: the mean of the ``top_k`` cosine affinities
    to sure-inside cells within ``radius`` cells, minus the same for sure-outside cells. Cells farther away do not
    vote, so a boundary is judged against what lies next to it, not against the whole image. The temperature maps the
    sure cells' own typical difference (each judged without itself) to a probability of about 0.95."""
    h, w = grid
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    positions = torch.stack([ys.flatten(), xs.flatten()], 1).float()

    def side_affinity(targets: torch.Tensor, side: torch.Tensor, exclude_self: bool) -> torch.Tensor:
        similarity = cells[targets] @ cells[side].T
        near = torch.cdist(positions[targets], positions[side]) <= radius
        if exclude_self:
            near &= targets.nonzero()[:, :1] != side.nonzero()[:, 0][None]
        similarity = torch.where(near, similarity, -torch.inf)
        best = similarity.topk(min(top_k, similarity.shape[1]), dim=1).values
        counted = torch.isfinite(best)
        local = torch.where(counted, best, 0.0).sum(1) / counted.sum(1).clamp_min(1)
        # a cell with no sure cell of this side within reach is judged against the nearest-looking ones anywhere
        anywhere = (cells[targets] @ cells[side].T).topk(min(top_k, int(side.sum())), dim=1).values.mean(1)
        return torch.where(counted.any(1), local, anywhere)

    def difference(targets: torch.Tensor, exclude_self: bool = False) -> torch.Tensor:
        return side_affinity(targets, sure_in, exclude_self) - side_affinity(targets, sure_out, exclude_self)

    reference = torch.cat([difference(sure_in, True), -difference(sure_out, True)])
    reference = reference[torch.isfinite(reference)]
    temperature = max(float(reference.abs().median()) / 3.0, 1e-4) if reference.numel() else 1.0
    logits = torch.zeros(cells.shape[0])
    logits[evaluate] = difference(evaluate) / temperature
    return logits


def refine_mask(image: torch.Tensor, mask: torch.Tensor, features: torch.Tensor,
                settings: RefineSettings = RefineSettings(), head: LinearHead | None = None) -> RefineOutcome:
    """Refine one [H, W] mask of one [H, W, 3] image, given the image's feature map [C, h, w].

    The reclassification is repeated (at most ``REFINE_ROUNDS`` times) with prototypes drawn from the updated mask,
    always within the band of the *input* boundary, until nothing changes: the result is then a fixed point, which
    is what makes refining a refined mask a no-op."""
    mask = mask.float()
    inside = mask >= 0.5
    if not bool(inside.any()) or bool(inside.all()):
        return RefineOutcome(mask, 0, "the mask is empty or full: there is no boundary to refine")
    allowed = boundary_band(inside, settings.band)
    cells = F.normalize(features.detach().float().cpu().flatten(1).T, dim=1)  # [h*w, C]
    grid = (features.shape[1], features.shape[2])
    refined = mask
    for _ in range(REFINE_ROUNDS):
        step = _reclassify_band(image, refined, allowed, cells, grid, settings, head)
        if isinstance(step, str):
            if refined is mask:
                return RefineOutcome(mask, 0, step)
            break
        if torch.equal(step, refined):
            break
        refined = step
    return RefineOutcome(refined, int(((refined >= 0.5) != inside).sum()))



def _reclassify_band(image: torch.Tensor, mask: torch.Tensor, allowed: torch.Tensor, cells: torch.Tensor,
                     grid: tuple[int, int], settings: RefineSettings, head: LinearHead | None) -> torch.Tensor | str:
    """One round: the mask with its band pixels (within ``allowed``) re-decided, or why that is impossible."""
    inside = mask >= 0.5
    band = boundary_band(inside, settings.band) & allowed
    cell_px = max(image.shape[0] / grid[0], image.shape[1] / grid[1])
    near_band = (_to_grid(band, grid) > 0).flatten()
    if head is not None:
        logits = head.logits(cells)
    else:
        coverage = _to_grid(inside, grid).flatten()
        in_context = (_to_grid(boundary_band(inside, settings.band + settings.context), grid) > 0).flatten()
        sure_in, sure_out = (coverage >= 1.0 - 1e-6) & ~near_band, (coverage <= 1e-6) & ~near_band
        if bool((sure_in & in_context).any()) and bool((sure_out & in_context).any()):
            sure_in, sure_out = sure_in & in_context, sure_out & in_context
        if not bool(sure_in.any()) or not bool(sure_out.any()):
            side = "inside" if not bool(sure_in.any()) else "outside"
            return (f"no feature cell lies wholly {side} the mask beyond the band: the mask is too thin or the "
                    f"band too wide for this feature resolution")
        if settings.prototypes > 0:
            logits = prototype_logits(cells, cells[sure_in], cells[sure_out], settings.prototypes)
        else:
            logits = local_affinity_logits(cells, grid, near_band, sure_in, sure_out,
                                           (settings.band + settings.context) / cell_px)
    probability = edge_aware_upsample(torch.sigmoid(logits).reshape(grid), image, band, settings.edge_sigma)
    # specks smaller than a feature cell are pixel noise, not evidence: keeping them out makes rounds converge
    speck = int(cell_px ** 2)
    grow_here = drop_islands((band & ~inside & (probability > 0.5 + settings.margin)).float()[None], speck)[0]
    shrink_here = drop_islands((band & inside & (probability < 0.5 - settings.margin)).float()[None], speck)[0]
    refined = mask.clone()
    refined[grow_here > 0.5] = 1.0
    refined[shrink_here > 0.5] = 0.0
    return refined


def edge_aware_upsample(cell_probability: torch.Tensor, image: torch.Tensor, pixels: torch.Tensor,
                        sigma_color: float) -> torch.Tensor:
    """Joint bilateral upsampling (Kopf et al. 2007) of [h, w] cell probabilities to the [H, W] pixels set in
    ``pixels``: each pixel averages the probabilities of the cells around it, weighted by distance, by how close
    the pixel's colour is to each cell's mean colour, and by each cell's confidence. A pixel so takes the verdict
    of the nearby decided cells that look like it, and the result's edges follow the image's edges. Other pixels
    get the bilinear upsampling."""
    height, width = image.shape[0], image.shape[1]
    h, w = cell_probability.shape
    cell_probability = cell_probability.float()
    result = F.interpolate(cell_probability[None, None], size=(height, width), mode="bilinear",
                           align_corners=False)[0, 0]
    ys, xs = torch.nonzero(pixels, as_tuple=True)
    if ys.numel() == 0:
        return result
    image = image.detach().float().cpu()
    cell_colour = F.adaptive_avg_pool2d(image.permute(2, 0, 1)[None], (h, w))[0].permute(1, 2, 0)  # [h, w, 3]
    smoothed = torch.from_numpy(cv2.GaussianBlur(image.numpy(), (0, 0), 1.0))  # pixel noise is not an edge
    confidence = (2.0 * cell_probability - 1.0).abs().add(1e-3).pow(UPSAMPLE_CONFIDENCE_POWER)
    offsets = torch.arange(-UPSAMPLE_REACH, UPSAMPLE_REACH + 1)
    for start in range(0, ys.numel(), _UPSAMPLE_CHUNK):
        py, px = ys[start:start + _UPSAMPLE_CHUNK], xs[start:start + _UPSAMPLE_CHUNK]
        cell_y = (py.float() + 0.5) * h / height - 0.5  # pixel position in cell units (cell centres at integers)
        cell_x = (px.float() + 0.5) * w / width - 0.5
        ny, nx = torch.broadcast_tensors(cell_y.round().long()[:, None, None] + offsets[None, :, None],
                                         cell_x.round().long()[:, None, None] + offsets[None, None, :])
        valid = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        ny, nx = ny.clamp(0, h - 1), nx.clamp(0, w - 1)
        distance2 = (ny.float() - cell_y[:, None, None]) ** 2 + (nx.float() - cell_x[:, None, None]) ** 2
        colour2 = ((cell_colour[ny, nx] - smoothed[py, px][:, None, None, :]) ** 2).sum(-1)
        energy = torch.where(valid, 0.5 * distance2 / UPSAMPLE_SPREAD ** 2 + 0.5 * colour2 / sigma_color ** 2,
                             torch.inf)
        weight = torch.exp(-(energy - energy.amin((1, 2), keepdim=True)))  # shifted: no underflow for odd colours
        weight = weight * confidence[ny, nx]
        votes = (weight * cell_probability[ny, nx]).sum((1, 2)) / weight.sum((1, 2)).clamp_min(1e-12)
        result[py, px] = votes
    return result


def refine_crop_box(inside: torch.Tensor, settings: RefineSettings) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the region refinement looks at: the band plus its context, or None without a boundary."""
    return bounding_box(boundary_band(inside, settings.band + settings.context).float())


def refine_masks(images: torch.Tensor, masks: torch.Tensor, extract: FeatureExtractor,
                 settings: RefineSettings = RefineSettings(), head: LinearHead | None = None,
                 progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, list[str]]:
    """Refine a batch: images [B, H, W, 3], masks [B, H, W] (same batch). Features are computed on the crop around
    each mask's boundary band (plus context), so a small region gets the backbone's full resolution. Returns the
    refined masks and one line per image saying what happened."""
    refined = masks.detach().float().cpu().clone()
    report = []
    for index in range(images.shape[0]):
        image, mask = images[index].detach().float().cpu(), refined[index]
        box = refine_crop_box(mask >= 0.5, settings)
        if box is None:
            report.append(f"image {index}: unchanged (the mask is empty or full: there is no boundary to refine)")
        else:
            x0, y0, x1, y1 = box
            crop = image[y0:y1, x0:x1]
            outcome = refine_mask(crop, mask[y0:y1, x0:x1], extract(crop), settings, head)
            refined[index, y0:y1, x0:x1] = outcome.mask
            report.append(f"image {index}: {outcome.changed} px changed" if not outcome.message
                          else f"image {index}: unchanged ({outcome.message})")
        if progress is not None:
            progress(index + 1, images.shape[0])
    return refined, report
