"""Generation and paste-back: LatentDownsample, MaskedInpaintSampler, StructureHint, PixelBlend."""

from __future__ import annotations

import torch

import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
import node_helpers
from comfy_api.latest import io

from ..remaskable_core.blend import COLOR_SPACES, MATCH_REGIONS, SIZE_POLICIES, ColorMatch, pixel_blend
from ..remaskable_core.errors import InvalidInputError
from ..remaskable_core.inpaint import (INPAINT_MODES, SEED_MAX, candidate_noise, candidate_seeds, grey_masked_pixels,
                                       keep_unmasked_exact, resolve_mode, tile_candidates)
from ..remaskable_core.latent_mask import (DOWNSAMPLE_MODES, LatentGrid, attach_noise_mask, describe, downsample_mask,
                                           noise_mask_to_grid, upsample_latent_mask)
from ..remaskable_core.parsing.labels import CLASSES
from ..remaskable_core.structure import EDGE_SOURCES, structure_hints
from ..remaskable_core.tensors import as_mask, as_rgb, mask_for_image, match_batch
from . import types
from .runtime import output_device

GENERATE = f"{types.CATEGORY}/generate"
COMPOSITE = f"{types.CATEGORY}/composite"
SD_LATENT_CHANNELS = 4


class LatentDownsample(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.LatentDownsample", display_name="Latent Downsample", category=GENERATE,
            description="Turns a pixel MASK into a latent-resolution noise mask (stride 8, on the same grid ComfyUI's "
                        "VAE Encode uses, including its centred crop of sizes that are not multiples of 8) and attaches "
                        "it to a LATENT as noise_mask. Reports how much of the latent is masked.",
            inputs=[
                io.Mask.Input("mask", tooltip="Where to edit (1 = regenerate), at the image's resolution."),
                io.Combo.Input("mode", options=list(DOWNSAMPLE_MODES), default="any-cover",
                               tooltip="How 8x8 pixel cells become one latent cell. any-cover: the cell takes the "
                                       "largest mask value in it (every masked pixel is regenerated). area: the mean "
                                       "(soft). fully-inside: the smallest value (only cells wholly inside the mask). "
                                       "threshold: 1 where the masked area fraction reaches 'threshold', else 0."),
                io.Float.Input("threshold", default=0.5, min=0.01, max=1.0, step=0.01,
                               tooltip="Area fraction a cell needs in 'threshold' mode; ignored by the other modes."),
                io.Latent.Input("latent", optional=True,
                                tooltip="The LATENT to attach the mask to (VAE Encode of the image the mask belongs "
                                        "to). Left empty: an empty latent carrying only the mask, which "
                                        "MaskedInpaintSampler fills by encoding its image."),
            ],
            outputs=[
                io.Latent.Output(display_name="latent", tooltip="The latent with noise_mask [batch, 1, h/8, w/8]."),
                io.Mask.Output(display_name="regenerated_mask",
                               tooltip="At the image's resolution: the pixels of every latent cell the sampler may "
                                       "change (cells with a mask value above 0). The paste-back mask of PixelBlend "
                                       "should contain the edit mask and may use this one."),
                io.Float.Output(display_name="coverage",
                                tooltip="Mean latent-mask value over all cells (0 = nothing regenerated, 1 = all)."),
                io.String.Output(display_name="report",
                                 tooltip="Cells masked, coverage, and masked pixels that cannot be regenerated (in the "
                                         "border the VAE crops away, or left out by the mode)."),
            ],
        )

    @classmethod
    def execute(cls, mask, mode: str, threshold: float, latent: dict | None = None) -> io.NodeOutput:
        mask = as_mask(mask)
        latent_mask = downsample_mask(mask, mode, threshold)
        report = describe(mask, latent_mask, mode)
        if latent is None:
            latent = {"samples": torch.zeros(latent_mask.shape[0], SD_LATENT_CHANNELS, *latent_mask.shape[1:])}
        out = attach_noise_mask(latent, latent_mask)
        return io.NodeOutput(out, output_device(report.regenerated), report.coverage, report.text)


def _is_inpaint_model(model) -> bool:
    return len(getattr(model.model, "concat_keys", ())) > 0


class MaskedInpaintSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.MaskedInpaintSampler", display_name="Masked Inpaint Sampler", category=GENERATE,
            description="Regenerates only the masked part of an image with ComfyUI's own sampling (every sampler, "
                        "scheduler and conditioning, ControlNet included). Inpainting checkpoints (9 input channels) "
                        "get the masked image as extra input; plain checkpoints do blended latent diffusion (the "
                        "unmasked latents are reset to the noised original every step). Either way the unmasked "
                        "latents of the result are exactly the input latents. Makes several candidates with seeds "
                        "seed, seed+1, ... in one batch. Defaults follow the ReMaskable paper: DDIM, 50 steps, CFG 7.5.",
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model (an inpainting or a plain checkpoint)."),
                io.Conditioning.Input("positive", tooltip="What the edited region should show (ControlNet "
                                                          "conditioning works)."),
                io.Conditioning.Input("negative", tooltip="What to steer away from."),
                io.Vae.Input("vae", tooltip="Encodes the image and decodes the candidates."),
                io.Image.Input("image", tooltip="The image to edit. Sides that are not multiples of 8 are cropped by "
                                                "the VAE (centred); PixelBlend puts the result back at full size."),
                io.Int.Input("seed", default=0, min=0, max=SEED_MAX, control_after_generate=True,
                             tooltip="Seed of the first candidate; candidate k uses seed + k."),
                io.Int.Input("steps", default=50, min=1, max=10000, tooltip="Sampling steps (the paper uses 50)."),
                io.Float.Input("cfg", default=7.5, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Classifier-free guidance scale (the paper uses 7.5)."),
                io.Combo.Input("sampler_name", options=comfy.samplers.SAMPLER_NAMES, default="ddim",
                               tooltip="ComfyUI sampler. 'ddim' is deterministic DDIM (eta 0), the paper's sampler."),
                io.Combo.Input("scheduler", options=comfy.samplers.SCHEDULER_NAMES, default="ddim_uniform",
                               tooltip="ComfyUI scheduler. 'ddim_uniform' spaces the steps as DDIM does."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="How much of the masked region to re-noise (1 = generate it anew)."),
                io.Int.Input("candidates", default=1, min=1, max=64,
                             tooltip="How many candidates to make in one batch. Candidate k starts from the noise KSampler "
                                     "would draw with seed + k. With a batch of images the output is ordered candidate "
                                     "by candidate: all images of candidate 1, then all of candidate 2..."),
                io.Combo.Input("mode", options=list(INPAINT_MODES), default="auto",
                               tooltip="auto: inpaint-model for inpainting checkpoints, blended otherwise. "
                                       "inpaint-model: masked image + mask as extra model input (needs an inpainting "
                                       "checkpoint). blended: noise mask only; on an inpainting checkpoint ComfyUI then "
                                       "fills its extra input from the unmasked latent, as KSampler does."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Where to edit, at the image's resolution; downsampled with any-cover. Used "
                                      "only when 'latent' carries no noise_mask (use LatentDownsample for other modes)."),
                io.Latent.Input("latent", optional=True,
                                tooltip="A LATENT with noise_mask (from LatentDownsample). Its samples are the starting "
                                        "latents when they are not empty; an empty latent means: encode 'image'."),
            ],
            outputs=[
                io.Latent.Output(display_name="latent",
                                 tooltip="The candidates' latents (batch = candidates x images) with their noise_mask."),
                io.Image.Output(display_name="images", tooltip="The candidates decoded (the VAE's cropped size)."),
                io.Image.Output(display_name="original", tooltip="The input image, unchanged, for PixelBlend."),
                io.Mask.Output(display_name="regenerated_mask",
                               tooltip="At the image's resolution: the pixels of the latent cells that were "
                                       "regenerated."),
            ],
        )

    @classmethod
    def execute(cls, model, positive, negative, vae, image, seed: int, steps: int, cfg: float, sampler_name: str,
                scheduler: str, denoise: float, candidates: int, mode: str, mask=None,
                latent: dict | None = None) -> io.NodeOutput:
        original = as_rgb(image)
        stride = int(vae.spacial_compression_encode())
        grid = LatentGrid(original.shape[1], original.shape[2], stride)
        grid.check("image")
        mode = resolve_mode(mode, _is_inpaint_model(model))
        seeds = candidate_seeds(seed, candidates)

        start = _start_latents(vae, original, latent, grid)
        batch = start.shape[0]
        image = match_batch(batch, original, "image", "latent")
        latent_mask = match_batch(batch, _latent_mask(image, mask, latent, grid), "mask", "image")
        channels = model.get_model_object("latent_format").latent_channels
        if start.shape[1] != channels:
            raise InvalidInputError("vae", f"makes latents with {start.shape[1]} channels but the model expects "
                                           f"{channels}.", "Use the VAE that belongs to the model's checkpoint.")

        height, width = image.shape[1:3]
        cells = (latent_mask > 0).float()
        if mode == "inpaint-model":
            pixel_mask = grid.crop(upsample_latent_mask(cells, height, width, stride))
            masked_image = vae.encode(grey_masked_pixels(grid.crop(image), pixel_mask))
            extra = {"concat_latent_image": tile_candidates(masked_image, candidates),
                     "concat_mask": tile_candidates(cells[:, None], candidates)}
            positive = node_helpers.conditioning_set_values(positive, extra)
            negative = node_helpers.conditioning_set_values(negative, extra)

        noise = candidate_noise(start, seeds)
        start = tile_candidates(start, candidates)
        noise_mask = tile_candidates(latent_mask[:, None], candidates)
        if bool(cells.any()):
            callback = latent_preview.prepare_callback(model, steps)
            sampled = comfy.sample.sample(model, noise, steps, cfg, sampler_name, scheduler, positive, negative, start,
                                          denoise=denoise, noise_mask=noise_mask, callback=callback,
                                          disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
            samples = keep_unmasked_exact(sampled, start, noise_mask)
        else:  # nothing to regenerate
            samples = start.clone()

        images = vae.decode(samples)
        if images.ndim == 5:
            images = images.reshape(-1, *images.shape[-3:])
        regenerated = upsample_latent_mask(cells, height, width, stride)
        out = {"samples": samples, "noise_mask": noise_mask}
        return io.NodeOutput(out, output_device(images), original, output_device(regenerated))


def _start_latents(vae, image: torch.Tensor, latent: dict | None, grid: LatentGrid) -> torch.Tensor:
    """The latent's samples, or the encoded image when there is no latent or it is empty (all zeros, as
    LatentDownsample makes without a latent input)."""
    samples = latent.get("samples") if isinstance(latent, dict) else None
    if samples is None:
        return vae.encode(image)
    if not isinstance(samples, torch.Tensor) or samples.ndim != 4 or \
            samples.shape[2:] != (grid.latent_height, grid.latent_width):
        shape = list(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise InvalidInputError("latent", f"has samples of shape {shape} but 'image' ({grid.width}x{grid.height}) "
                                          f"encodes to {grid.latent_width}x{grid.latent_height} latent cells: it (or "
                                          f"its mask) was made for another image size.",
                                "Make the mask and the latent from this image.")
    return vae.encode(image) if torch.count_nonzero(samples) == 0 else samples


def _latent_mask(image: torch.Tensor, mask, latent: dict | None, grid: LatentGrid) -> torch.Tensor:
    if isinstance(latent, dict) and latent.get("noise_mask") is not None:
        return noise_mask_to_grid(latent["noise_mask"], grid.latent_height, grid.latent_width)
    if mask is None:
        raise InvalidInputError("mask", "is not connected and 'latent' has no noise_mask, so nothing says where to "
                                        "edit.", "Connect an edit MASK, or a LATENT from LatentDownsample.")
    return downsample_mask(mask_for_image(mask, image), "any-cover", stride=grid.stride)


class PixelBlend(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.PixelBlend", display_name="Pixel Blend", category=COMPOSITE,
            description="Pastes the edited pixels into the original through the composite mask with a soft edge that "
                        "feathers inward only: outside the composite mask the output is the original, bit for bit "
                        "(also after saving as 8-bit PNG). Optional colour/lighting match, applied only inside the "
                        "mask. Accepts edited images a few pixels smaller than the original (the VAE's crop).",
            inputs=[
                io.Image.Input("original", tooltip="The unedited image (batch of 1 or one per edited image group)."),
                io.Image.Input("edited", tooltip="The edited image(s), e.g. MaskedInpaintSampler's candidates; a batch "
                                                 "that is a multiple of the original's repeats the original."),
                io.Mask.Input("composite_mask", tooltip="Where the edit may show (1 = edited pixels); outside it the "
                                                        "original is kept exactly."),
                io.Float.Input("feather", default=8.0, min=0.0, max=256.0, step=0.5,
                               tooltip="Width in pixels of the soft edge, laid inside the composite mask."),
                io.Combo.Input("size_policy", options=list(SIZE_POLICIES), default="pad with original",
                               tooltip="When 'edited' is up to 7 px smaller per side (the VAE crops to multiples of 8). "
                                       "pad with original: the edited pixels go where the VAE took them from (centred) "
                                       "and the border stays original. resize: stretch the edited image to the full "
                                       "size. Larger differences are an error."),
                io.Combo.Input("color_match", options=list(COLOR_SPACES), default="off",
                               tooltip="Match the edited image's colour and lighting (per-channel mean and standard "
                                       "deviation) to the original's, in Lab or RGB, measured outside the mask on the "
                                       "match region and applied inside the mask only."),
                io.Combo.Input("match_region", options=list(MATCH_REGIONS), default="ring",
                               tooltip="Where the colours are compared: a ring around the mask, or the pixels of "
                                       "'parse_class' outside the mask (needs face_parse)."),
                io.Int.Input("ring_px", default=16, min=1, max=512, tooltip="Width of the ring around the mask."),
                io.Float.Input("color_strength", default=1.0, min=0.0, max=1.0, step=0.05,
                               tooltip="How much of the colour correction to apply (1 = full)."),
                types.FaceParse.Input("face_parse", optional=True,
                                      tooltip="FaceParse's result for the original, for the 'parse class' region."),
                io.Combo.Input("parse_class", options=list(CLASSES), default="skin", optional=True,
                               tooltip="The face-parse class whose colours are compared (e.g. skin)."),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The blended image(s), the original's size."),
                io.Mask.Output(display_name="alpha", tooltip="The alpha used: 0 where the output is the original."),
                io.String.Output(display_name="report", tooltip="What was done: pixels changed, size policy, colour "
                                                                "match."),
            ],
        )

    @classmethod
    def execute(cls, original, edited, composite_mask, feather: float, size_policy: str, color_match: str,
                match_region: str, ring_px: int, color_strength: float, face_parse=None,
                parse_class: str = "skin") -> io.NodeOutput:
        color = ColorMatch(color_match, match_region, ring_px, face_parse, parse_class, color_strength)
        result = pixel_blend(original, edited, composite_mask, feather, size_policy, color)
        return io.NodeOutput(output_device(result.image), output_device(result.alpha), result.report)


class StructureHint(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.StructureHint", display_name="Structure Hint", category=GENERATE,
            description="Makes ControlNet hint images from the original: an edge map of the face (Canny and/or the "
                        "boundaries between face parts, restricted or weighted to the edit region) for a canny "
                        "ControlNet, and a parse-colour map. Connect them to Apply ControlNet's image input.",
            inputs=[
                io.Image.Input("image", tooltip="The original image."),
                types.FaceParse.Input("face_parse", optional=True,
                                      tooltip="FaceParse's result: adds face-part boundaries to the edges, bounds them "
                                              "to the head when no mask is given, and makes the parse-colour map."),
                io.Mask.Input("mask", optional=True, tooltip="The edit mask: edges keep full strength inside it (grown "
                                                             "by 'grow'). Without it: the head from face_parse, else "
                                                             "the whole image."),
                io.Combo.Input("edge_source", options=list(EDGE_SOURCES), default="canny+parse",
                               tooltip="canny: Canny edges of the image. parse: boundaries between face parts (needs "
                                       "face_parse). canny+parse: both (plain Canny without face_parse)."),
                io.Int.Input("low_threshold", default=100, min=0, max=1000, tooltip="Canny's lower hysteresis "
                                                                                    "threshold."),
                io.Int.Input("high_threshold", default=200, min=0, max=1000, tooltip="Canny's upper hysteresis "
                                                                                     "threshold."),
                io.Int.Input("grow", default=8, min=0, max=256,
                             tooltip="Pixels the region (the mask, or the head without a mask) extends outward, so "
                                     "its outline's edges are kept."),
                io.Float.Input("outside_strength", default=0.0, min=0.0, max=1.0, step=0.05,
                               tooltip="Strength of edges outside the region (0 = edges only in the region)."),
                io.Boolean.Input("crop_to_vae_grid", default=True,
                                 tooltip="Crop the hints as the VAE crops the image (sides to multiples of 8, "
                                         "centred), so they line up with the latent exactly instead of being "
                                         "stretched by the ControlNet."),
            ],
            outputs=[
                io.Image.Output(display_name="edges", tooltip="White edges on black, for a canny ControlNet."),
                io.Image.Output(display_name="parse_map",
                                tooltip="Face parts in the CelebAMask-HQ palette (black without face_parse)."),
            ],
        )

    @classmethod
    def execute(cls, image, edge_source: str, low_threshold: int, high_threshold: int, grow: int,
                outside_strength: float, crop_to_vae_grid: bool, face_parse=None, mask=None) -> io.NodeOutput:
        hints = structure_hints(image, face_parse, mask, edge_source, low_threshold, high_threshold, grow,
                                outside_strength, crop_to_vae_grid)
        return io.NodeOutput(output_device(hints.edges), output_device(hints.parse_map))


NODES = [LatentDownsample, MaskedInpaintSampler, PixelBlend, StructureHint]
