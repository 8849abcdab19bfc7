"""LatentDownsample → MaskedInpaintSampler → PixelBlend in real ComfyUI with the fake SD1.5 checkpoints (9-channel
inpainting and plain), StructureHint through the stock ControlNet nodes, and /interrupt during sampling.

Asserted: pixels outside the composite mask identical to the uploaded PNG (odd sizes too), unmasked latents
identical to stock VAE Encode's, regenerated latents identical to the stock KSampler's on the same inputs, the
nesting edit ⊆ regenerated ⊆ composite, clean interruption. Never the look of the random-weight outputs."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from remaskable_core.latent_mask import MIN_COMPOSITE_GROW_PX, downsample_mask
from tests.unit.test_generate_latent_mask import blob_mask

pytestmark = pytest.mark.e2e

INPAINT_CKPT = "sd-v1-5-inpainting.ckpt"
PLAIN_CKPT = "v1-5-pruned-emaonly.ckpt"
CONTROLNET = "control_v11p_sd15_canny_fp16.safetensors"
_names = itertools.count()


def upload_masked_png(comfy, tmp_path: Path, height: int, width: int, seed: int) -> tuple[str, np.ndarray, np.ndarray]:
    """A random RGB image whose alpha carries the edit mask (LoadImage's mask = 1 - alpha). Returns the uploaded
    name, the RGB pixels and the binary edit mask."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    edit = blob_mask(height, width, seed, blobs=2)[0].numpy() > 0
    edit[height // 3:height // 2, width // 3:width // 2] = True  # never empty
    rgba = np.dstack([rgb, np.where(edit, 0, 255).astype(np.uint8)])
    path = tmp_path / f"gen_{next(_names)}_{width}x{height}.png"
    Image.fromarray(rgba, "RGBA").save(path)
    return comfy.client.upload_image(path), rgb, edit


def inpaint_prompt(ckpt: str, image: str, *, seed: int = 3, steps: int = 2, candidates: int = 3,
                   control_strength: float = 0.0) -> dict:
    prompt = {
        "ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "a face with red hair", "clip": ["ckpt", 1]}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["ckpt", 1]}},
        "load": {"class_type": "LoadImage", "inputs": {"image": image}},
        "down": {"class_type": "ReMaskable.LatentDownsample",
                 "inputs": {"mask": ["load", 1], "mode": "any-cover", "threshold": 0.5}},
        "sampler": {"class_type": "ReMaskable.MaskedInpaintSampler",
                    "inputs": {"model": ["ckpt", 0], "positive": ["pos", 0], "negative": ["neg", 0], "vae": ["ckpt", 2],
                               "image": ["load", 0], "latent": ["down", 0], "seed": seed, "steps": steps, "cfg": 7.5,
                               "sampler_name": "ddim", "scheduler": "ddim_uniform", "denoise": 1.0,
                               "candidates": candidates, "mode": "auto"}},
        "composite": {"class_type": "GrowMask",
                      "inputs": {"mask": ["load", 1], "expand": MIN_COMPOSITE_GROW_PX, "tapered_corners": False}},
        "blend": {"class_type": "ReMaskable.PixelBlend",
                  "inputs": {"original": ["load", 0], "edited": ["sampler", 1], "composite_mask": ["composite", 0],
                             "feather": 4.0, "size_policy": "pad with original", "color_match": "lab",
                             "match_region": "ring", "ring_px": 8, "color_strength": 1.0}},
        "save_blend": {"class_type": "SaveImage", "inputs": {"images": ["blend", 0], "filename_prefix": "gen/blend"}},
        "composite_image": {"class_type": "MaskToImage", "inputs": {"mask": ["composite", 0]}},
        "save_composite": {"class_type": "SaveImage",
                           "inputs": {"images": ["composite_image", 0], "filename_prefix": "gen/composite"}},
        "regenerated_image": {"class_type": "MaskToImage", "inputs": {"mask": ["down", 1]}},
        "save_regenerated": {"class_type": "SaveImage",
                             "inputs": {"images": ["regenerated_image", 0], "filename_prefix": "gen/regenerated"}},
        "save_sampled": {"class_type": "SaveLatent", "inputs": {"samples": ["sampler", 0],
                                                               "filename_prefix": "gen/sampled"}},
        "encode": {"class_type": "VAEEncode", "inputs": {"pixels": ["load", 0], "vae": ["ckpt", 2]}},
        "save_encoded": {"class_type": "SaveLatent", "inputs": {"samples": ["encode", 0],
                                                               "filename_prefix": "gen/encoded"}},
    }
    if control_strength:
        prompt["controlnet"] = {"class_type": "ControlNetLoader", "inputs": {"control_net_name": CONTROLNET}}
        prompt["hint"] = {"class_type": "ReMaskable.StructureHint",
                          "inputs": {"image": ["load", 0], "mask": ["load", 1], "edge_source": "canny",
                                     "low_threshold": 100, "high_threshold": 200, "grow": 8, "outside_strength": 0.2,
                                     "crop_to_vae_grid": True}}
        prompt["apply"] = {"class_type": "ControlNetApplyAdvanced",
                           "inputs": {"positive": ["pos", 0], "negative": ["neg", 0], "control_net": ["controlnet", 0],
                                      "image": ["hint", 0], "strength": control_strength, "start_percent": 0.0,
                                      "end_percent": 1.0, "vae": ["ckpt", 2]}}
        prompt["save_hint"] = {"class_type": "SaveImage", "inputs": {"images": ["hint", 0],
                                                                     "filename_prefix": "gen/hint"}}
        prompt["sampler"]["inputs"]["positive"] = ["apply", 0]
        prompt["sampler"]["inputs"]["negative"] = ["apply", 1]
    return prompt


def run(comfy, prompt: dict, timeout: float = 600):
    result = comfy.client.wait(comfy.client.queue(prompt), timeout=timeout)
    assert result.status == "success", result.error
    return result


def saved_images(comfy, result, node: str) -> list[np.ndarray]:
    return [np.array(Image.open(comfy.output_path(image))) for image in result.outputs[node]["images"]]


def saved_latent(comfy, result, node: str) -> torch.Tensor:
    (item,) = result.outputs[node]["latents"]
    return load_file(str(comfy.output_path(item)))["latent_tensor"]


@pytest.mark.parametrize("ckpt,height,width", [(PLAIN_CKPT, 101, 133), (INPAINT_CKPT, 101, 133), (PLAIN_CKPT, 64, 64)],
                         ids=["plain-133x101", "inpaint-133x101", "plain-64x64"])
def test_edit_keeps_every_pixel_outside_the_composite_and_every_unmasked_latent(comfy, tmp_path, ckpt, height, width):
    name, rgb, edit = upload_masked_png(comfy, tmp_path, height, width, seed=height + width)
    result = run(comfy, inpaint_prompt(ckpt, name))

    composite = saved_images(comfy, result, "save_composite")[0][..., 0] > 0
    regenerated = saved_images(comfy, result, "save_regenerated")[0][..., 0] > 0
    blends = saved_images(comfy, result, "save_blend")
    assert len(blends) == 3
    outside = ~composite
    assert outside.sum() > 0
    for blend in blends:  # (a) the saved PNG equals the uploaded one outside the composite mask
        assert blend.shape == (height, width, 3)
        assert np.array_equal(blend[outside], rgb[outside])
    assert any(not np.array_equal(blend[composite], rgb[composite]) for blend in blends)

    # nesting: edit (inside the VAE's crop) ⊆ regenerated ⊆ composite
    top, left = (height % 8) // 2, (width % 8) // 2
    crop = np.zeros_like(edit)
    crop[top:top + height // 8 * 8, left:left + width // 8 * 8] = True
    assert not (edit & crop & ~regenerated).any()
    assert not (regenerated & ~composite).any()

    # (b) unmasked latents exactly the stock VAE Encode's, for every candidate
    sampled = saved_latent(comfy, result, "save_sampled")
    encoded = saved_latent(comfy, result, "save_encoded")
    assert sampled.shape == (3, 4, height // 8, width // 8) and encoded.shape == (1, 4, height // 8, width // 8)
    cells = downsample_mask(torch.from_numpy(edit).float()[None], "any-cover")[0] > 0
    assert torch.equal(torch.from_numpy(np.kron(cells.numpy(), np.ones((8, 8), bool))),
                       torch.from_numpy(regenerated[top:top + height // 8 * 8, left:left + width // 8 * 8]))
    for candidate in sampled:
        assert torch.equal(candidate[:, ~cells], encoded[0][:, ~cells])
        assert not torch.equal(candidate[:, cells], encoded[0][:, cells])
    assert not torch.equal(sampled[0], sampled[1]), "candidates with different seeds are identical"


def stock_prompt(ckpt: str, image: str, seed: int, steps: int) -> dict:
    """The same edit with ComfyUI's own nodes: LatentDownsample's regenerated mask as the mask, then
    InpaintModelConditioning (inpainting checkpoint) or VAE Encode + Set Latent Noise Mask (plain), then KSampler."""
    prompt = inpaint_prompt(ckpt, image, seed=seed, steps=steps, candidates=1)
    keep = ("ckpt", "pos", "neg", "load", "down", "sampler", "save_sampled", "encode")
    prompt = {k: v for k, v in prompt.items() if k in keep}
    if ckpt == INPAINT_CKPT:
        prompt["cond"] = {"class_type": "InpaintModelConditioning",
                          "inputs": {"positive": ["pos", 0], "negative": ["neg", 0], "vae": ["ckpt", 2],
                                     "pixels": ["load", 0], "mask": ["down", 1], "noise_mask": True}}
        positive, negative, latent = ["cond", 0], ["cond", 1], ["cond", 2]
    else:
        prompt["set_mask"] = {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["encode", 0],
                                                                            "mask": ["down", 1]}}
        positive, negative, latent = ["pos", 0], ["neg", 0], ["set_mask", 0]
    prompt["ksampler"] = {"class_type": "KSampler",
                          "inputs": {"model": ["ckpt", 0], "seed": seed, "steps": steps, "cfg": 7.5,
                                     "sampler_name": "ddim", "scheduler": "ddim_uniform", "positive": positive,
                                     "negative": negative, "latent_image": latent, "denoise": 1.0}}
    prompt["save_stock"] = {"class_type": "SaveLatent", "inputs": {"samples": ["ksampler", 0],
                                                                  "filename_prefix": "gen/stock"}}
    return prompt


@pytest.mark.parametrize("ckpt", [PLAIN_CKPT, INPAINT_CKPT], ids=["plain", "inpaint"])
def test_regenerated_latents_equal_the_stock_ksampler(comfy, tmp_path, ckpt):
    name, _, edit = upload_masked_png(comfy, tmp_path, 101, 133, seed=11)
    result = run(comfy, stock_prompt(ckpt, name, seed=42, steps=3))
    ours, stock = saved_latent(comfy, result, "save_sampled"), saved_latent(comfy, result, "save_stock")
    cells = downsample_mask(torch.from_numpy(edit).float()[None], "any-cover")[0] > 0
    assert torch.equal(ours[0][:, cells], stock[0][:, cells])
    # outside, the stock path is the input only up to float rounding; ours is exact (checked above)
    torch.testing.assert_close(ours[0][:, ~cells], stock[0][:, ~cells], rtol=1e-4, atol=1e-4)


def test_structure_hint_drives_a_stock_controlnet_through_the_sampler(comfy, tmp_path):
    name, rgb, _ = upload_masked_png(comfy, tmp_path, 101, 133, seed=5)
    without = run(comfy, inpaint_prompt(PLAIN_CKPT, name, candidates=1))
    result = run(comfy, inpaint_prompt(PLAIN_CKPT, name, candidates=1, control_strength=1.0))
    (hint,) = saved_images(comfy, result, "save_hint")
    assert hint.shape == (96, 128, 3)  # cropped like the VAE's input: aligned with the latent
    assert hint.max() > 0
    controlled, plain = saved_latent(comfy, result, "save_sampled"), saved_latent(comfy, without, "save_sampled")
    assert torch.isfinite(controlled).all()
    assert not torch.equal(controlled, plain), "the ControlNet had no effect on sampling"
    encoded = saved_latent(comfy, result, "save_encoded")
    unmasked = (controlled == encoded).all(dim=1)[0]
    assert unmasked.any()
    (blend,) = saved_images(comfy, result, "save_blend")
    composite = saved_images(comfy, result, "save_composite")[0][..., 0] > 0
    assert np.array_equal(blend[~composite], rgb[~composite])


@pytest.mark.parametrize("ckpt", [PLAIN_CKPT, INPAINT_CKPT], ids=["plain", "inpaint"])
def test_interrupt_during_sampling_stops_cleanly_and_the_server_goes_on(comfy, tmp_path, ckpt):
    name, _, _ = upload_masked_png(comfy, tmp_path, 64, 64, seed=1)
    long = inpaint_prompt(ckpt, name, steps=5000, candidates=1)
    progress = []

    def on_event(kind: str, data: dict) -> None:
        if kind == "progress" and data.get("node") == "sampler":
            progress.append(data["value"])
            if len(progress) == 2:
                comfy.client.interrupt()

    interrupted = comfy.client.run(long, timeout=600, on_event=on_event)
    assert interrupted.status == "interrupted", interrupted.error
    assert progress and progress[-1] < 5000
    assert "save_blend" not in interrupted.outputs
    run(comfy, inpaint_prompt(ckpt, name, steps=2, candidates=1, seed=9))


def test_clear_errors_for_missing_mask_and_wrong_mode(comfy, tmp_path):
    name, _, _ = upload_masked_png(comfy, tmp_path, 64, 64, seed=2)
    prompt = inpaint_prompt(PLAIN_CKPT, name, steps=1, candidates=1)
    del prompt["sampler"]["inputs"]["latent"]
    failed = comfy.client.wait(comfy.client.queue(prompt), timeout=300)
    assert failed.status == "error" and "nothing says where to edit" in failed.error["exception_message"]
    prompt = inpaint_prompt(PLAIN_CKPT, name, steps=1, candidates=1)
    prompt["sampler"]["inputs"]["mode"] = "inpaint-model"
    failed = comfy.client.wait(comfy.client.queue(prompt), timeout=300)
    assert failed.status == "error" and "plain checkpoint" in failed.error["exception_message"]
    assert failed.error["exception_type"].endswith("InvalidInputError")


def upload_plain_png(comfy, tmp_path: Path, height: int, width: int) -> tuple[str, np.ndarray]:
    """An RGB PNG without alpha: LoadImage gives it the 64x64 empty mask."""
    rgb = np.random.default_rng(height * width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path = tmp_path / f"gen_{next(_names)}_plain.png"
    Image.fromarray(rgb, "RGB").save(path)
    return comfy.client.upload_image(path), rgb


def test_empty_mask_changes_nothing_and_a_mask_of_another_size_is_a_clear_error(comfy, tmp_path):
    name, rgb = upload_plain_png(comfy, tmp_path, 64, 64)
    result = run(comfy, inpaint_prompt(PLAIN_CKPT, name, steps=2, candidates=2))
    for blend in saved_images(comfy, result, "save_blend"):
        assert np.array_equal(blend, rgb)
    sampled, encoded = saved_latent(comfy, result, "save_sampled"), saved_latent(comfy, result, "save_encoded")
    assert torch.equal(sampled, encoded.repeat(2, 1, 1, 1))

    name, _ = upload_plain_png(comfy, tmp_path, 101, 133)
    failed = comfy.client.wait(comfy.client.queue(inpaint_prompt(PLAIN_CKPT, name, steps=1, candidates=1)),
                               timeout=300)
    assert failed.status == "error" and failed.error["node_id"] == "sampler"
    assert "made for another image size" in failed.error["exception_message"]
