"""One edit's stages outside the sampler, as the nodes call the core: FaceParse per backend, SAMPrompt split into
its encoder and decoder, DINOv2Refine, MaskFuse, LatentDownsample, IdentityGuard and PixelBlend.

The input is skimage's astronaut at the benchmark size. With random weights FaceParse's and SAM's masks are noise,
so DINOv2Refine refines a fixed ellipse over the hair and MaskFuse always includes it: every stage after parsing
does the work a real edit gives it, whatever the weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import models as zoo

# stage id -> what the table calls it
FACE_PARSE_STAGES = {"faceparse-segformer": "FaceParse (SegFormer)", "faceparse-bisenet": "FaceParse (BiSeNet)",
                     "faceparse-landmarks": "FaceParse (landmarks)"}
STAGES = {**FACE_PARSE_STAGES, "sam-encoder": "SAMPrompt: encoder (new image)",
          "sam-decoder": "SAMPrompt: decoder (one prompt, cached embedding)", "dinov2refine": "DINOv2Refine",
          "maskfuse": "MaskFuse", "latentdownsample": "LatentDownsample", "identityguard": "IdentityGuard (1 candidate)",
          "pixelblend": "PixelBlend"}
# the stages that make an edit's masks with the default parser and SAM ViT-B, costed in UNet CFG steps
MASK_STAGES = ("faceparse-segformer", "sam-encoder", "sam-decoder", "dinov2refine", "maskfuse", "latentdownsample")


def test_image(size: int) -> torch.Tensor:
    """skimage's astronaut (public domain) as a [1, size, size, 3] IMAGE."""
    import skimage.data

    photo = torch.from_numpy(skimage.data.astronaut()).float().permute(2, 0, 1)[None] / 255
    photo = F.interpolate(photo, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return photo.clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def hair_ellipse(size: int) -> torch.Tensor:
    """[1, size, size] 0/1: an ellipse over the astronaut's hair."""
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    inside = ((xs / size - 0.46) / 0.17) ** 2 + ((ys / size - 0.20) / 0.15) ** 2 <= 1
    return inside.float()[None]


def sam_prompt(size: int):
    from ..sam_prompts import Prompt

    return Prompt(points=[(0.46 * size, 0.15 * size)], labels=[1],
                  boxes=[(0.29 * size, 0.05 * size, 0.63 * size, 0.35 * size)])


@dataclass
class EditMasks:
    parse_mask: torch.Tensor
    sam_mask: torch.Tensor
    refined: torch.Tensor
    edit: torch.Tensor
    composite: torch.Tensor
    latent: dict  # LATENT with the noise_mask attached (empty samples: the sampler encodes the image)


@dataclass
class Pipeline:
    """The models of one edit, built on first use."""

    device: str = "cpu"
    quick: bool = False
    built: dict[str, zoo.Built] = field(default_factory=dict)

    def model(self, name: str) -> zoo.Built:
        if name not in self.built:
            builders: dict[str, Callable[[], zoo.Built]] = {
                "faceparse-segformer": lambda: zoo.segformer(self.quick, self.device),
                "faceparse-bisenet": lambda: zoo.bisenet(self.device),
                "faceparse-landmarks": zoo.landmarks,
                "sam": lambda: zoo.sam(self.quick, self.device),
                "dinov2": lambda: zoo.dinov2(self.quick, self.device),
                "identity": zoo.identity,
                "lpips": lambda: zoo.lpips_alex(self.device),
            }
            self.built[name] = builders[name]()
        return self.built[name]

    @property
    def refine_resolution(self) -> int:
        return zoo.REFINE_RESOLUTION_QUICK if self.quick else zoo.REFINE_RESOLUTION

    # --- the stages, as the nodes call the core --------------------------------------------------------------------
    def face_parse(self, backend: str, image: torch.Tensor) -> torch.Tensor:
        from ..parsing.pipeline import face_parse

        return face_parse(self.model(backend).model, image, preset="hair").mask

    def sam_embed(self, image: torch.Tensor):
        from ..sam_prompts import embed_image

        pixels = (image[0].cpu().numpy() * 255).round().astype(np.uint8)
        return embed_image(self.model("sam").model, pixels, cache=None)

    def sam_decode(self, embedding, size: int) -> torch.Tensor:
        from ..sam_prompts import predict

        prompt = sam_prompt(size)
        masks, scores = predict(self.model("sam").model, embedding, prompt.points, prompt.labels, prompt.boxes[0])
        return masks[int(scores.argmax())].float()[None]

    def refine(self, image: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        from ..refine import refine_masks

        backbone = self.model("dinov2").model
        refined, _ = refine_masks(image, coarse, lambda crop: backbone.patch_features(crop, self.refine_resolution))
        return refined

    @staticmethod
    def fuse(parse_mask: torch.Tensor, sam_mask: torch.Tensor, refined: torch.Tensor, include: torch.Tensor):
        from ..fuse import Vote, fuse_masks

        votes = [Vote("face_parse", parse_mask, 1.0), Vote("sam_mask", sam_mask, 1.0), Vote("refined", refined, 1.0)]
        return fuse_masks(votes, include=include)

    @staticmethod
    def latent_downsample(edit: torch.Tensor) -> dict:
        from ..latent_mask import LATENT_STRIDE, attach_noise_mask, describe, downsample_mask

        latent_mask = downsample_mask(edit, "any-cover")
        describe(edit, latent_mask, "any-cover")
        samples = torch.zeros(latent_mask.shape[0], 4, edit.shape[1] // LATENT_STRIDE, edit.shape[2] // LATENT_STRIDE)
        return attach_noise_mask({"samples": samples}, latent_mask)

    def guard(self, original: torch.Tensor, candidates: torch.Tensor, composite: torch.Tensor):
        from ..guard import guard_candidates

        return guard_candidates(self.model("identity").model, original, candidates, composite,
                                lpips_net=self.model("lpips").model, lpips_name="alex")

    @staticmethod
    def blend(original: torch.Tensor, edited: torch.Tensor, composite: torch.Tensor) -> torch.Tensor:
        from ..blend import pixel_blend

        return pixel_blend(original, edited, composite).image

    def edit_masks(self, image: torch.Tensor) -> EditMasks:
        """The mask half of an edit, stage after stage."""
        size = image.shape[1]
        parse_mask = self.face_parse("faceparse-segformer", image)
        sam_mask = self.sam_decode(self.sam_embed(image), size)
        coarse = hair_ellipse(size)
        refined = self.refine(image, coarse)
        fused = self.fuse(parse_mask, sam_mask, refined, include=coarse)
        return EditMasks(parse_mask, sam_mask, refined, fused.edit, fused.composite,
                         self.latent_downsample(fused.edit))

    def finish(self, original: torch.Tensor, candidates: torch.Tensor, composite: torch.Tensor) -> torch.Tensor:
        """IdentityGuard picks a candidate, PixelBlend pastes it back."""
        chosen = self.guard(original, candidates, composite).chosen
        return self.blend(original, candidates[chosen:chosen + 1], composite)


def stage_calls(pipeline: Pipeline, image: torch.Tensor, wanted: list[str]) -> dict[str, Callable[[], object]]:
    """stage id -> a call that runs that stage alone on inputs prepared once (by running the stages before it)."""
    size = image.shape[1]
    masks = pipeline.edit_masks(image) if set(wanted) - set(FACE_PARSE_STAGES) else None
    calls: dict[str, Callable[[], object]] = {}
    for stage in wanted:
        if stage in FACE_PARSE_STAGES:
            calls[stage] = lambda stage=stage: pipeline.face_parse(stage, image)
        elif stage == "sam-encoder":
            calls[stage] = lambda: pipeline.sam_embed(image)
        elif stage == "sam-decoder":
            embedding = pipeline.sam_embed(image)
            calls[stage] = lambda: pipeline.sam_decode(embedding, size)
        elif stage == "dinov2refine":
            calls[stage] = lambda: pipeline.refine(image, hair_ellipse(size))
        elif stage == "maskfuse":
            calls[stage] = lambda: pipeline.fuse(masks.parse_mask, masks.sam_mask, masks.refined, hair_ellipse(size))
        elif stage == "latentdownsample":
            calls[stage] = lambda: pipeline.latent_downsample(masks.edit)
        elif stage == "identityguard":
            candidate = edited_stand_in(image, masks.edit)
            calls[stage] = lambda: pipeline.guard(image, candidate, masks.composite)
        elif stage == "pixelblend":
            candidate = edited_stand_in(image, masks.edit)
            calls[stage] = lambda: pipeline.blend(image, candidate, masks.composite)
        else:
            raise ValueError(f"unknown stage {stage!r}")
    return calls


def edited_stand_in(image: torch.Tensor, edit: torch.Tensor) -> torch.Tensor:
    """A candidate for the stages after the sampler: the image with its hue rotated inside the edit mask."""
    generator = torch.Generator().manual_seed(0)
    recoloured = image[..., [1, 2, 0]] * 0.9 + 0.05 * torch.rand(image.shape, generator=generator)
    return torch.lerp(image, recoloured, edit[..., None])
