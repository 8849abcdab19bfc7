"""The fake SD1.5 checkpoints of tests/fixtures/sd15.py load, sample and decode in real ComfyUI.

In-process: needs a ComfyUI checkout at $COMFYUI_DIR (default ~/ComfyUI); skipped with a reason if absent.
"""
from __future__ import annotations

import hashlib
import importlib.util
import pathlib
import sys

import pytest
import torch

_FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "sd15.py"


def _load_fixture_module():
    # Loaded by path so it works whatever pytest's import mode / rootdir package layout is.
    name = "remaskable_test_fixture_sd15"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _FIXTURE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


sd15 = _load_fixture_module()


@pytest.fixture(scope="module")
def comfy_mods():
    try:
        sd15.import_comfy()
    except RuntimeError as e:  # ComfyUI not at $COMFYUI_DIR
        pytest.skip(str(e))
    import comfy.model_management
    import comfy.sample
    import comfy.sd
    import comfy.supported_models
    import comfy.taesd.taesd
    return comfy


def _sample(comfy, model, clip, latent, noise_mask=None, steps=2, seed=0):
    tokens = clip.tokenize("a photo of a face")
    cond, pooled = clip.encode_from_tokens(tokens, return_pooled=True)
    assert cond.shape == (1, 77, 768)
    assert torch.isfinite(cond).all()
    positive = [[cond, {"pooled_output": pooled}]]
    ntokens = clip.tokenize("")
    ncond, npooled = clip.encode_from_tokens(ntokens, return_pooled=True)
    negative = [[ncond, {"pooled_output": npooled}]]
    noise = comfy.sample.prepare_noise(latent, seed)
    return comfy.sample.sample(model, noise, steps, 7.0, "euler", "normal", positive, negative, latent,
                               denoise=1.0, noise_mask=noise_mask, disable_pbar=True, seed=seed)


@pytest.mark.parametrize("inpaint", [False, True], ids=["tiny-4ch", "tiny-9ch"])
def test_tiny_checkpoint_loads_samples_decodes(comfy_mods, tmp_path, inpaint):
    comfy = comfy_mods
    path = sd15.write_sd15_checkpoint(tmp_path / "fake_sd15.ckpt", inpaint=inpaint, size="tiny", seed=0)
    assert path.is_file() and path.stat().st_size < 16e6  # strided views: a few MB, not 600

    model, clip, vae, _ = comfy.sd.load_checkpoint_guess_config(str(path), output_vae=True, output_clip=True)
    base = model.model
    assert type(base.model_config) is comfy.supported_models.SD15
    assert base.model_config.unet_config["in_channels"] == (9 if inpaint else 4)
    assert base.model_config.unet_config["context_dim"] == 768
    if inpaint:
        assert tuple(base.concat_keys) == ("mask", "masked_image")
    else:
        assert tuple(base.concat_keys) == ()
    assert isinstance(vae.first_stage_model, comfy.taesd.taesd.TAESD)
    assert clip is not None

    with torch.inference_mode():  # as ComfyUI's executor runs nodes
        _encode_sample_decode(comfy, model, clip, vae, inpaint)


def _encode_sample_decode(comfy, model, clip, vae, inpaint):
    # 64x64 image -> 8x8 latent
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    enc = vae.encode(image)
    assert enc.shape == (1, 4, 8, 8) and torch.isfinite(enc).all()

    latent = torch.zeros(1, 4, 8, 8)
    mask = None
    if inpaint:
        mask = torch.zeros(1, 1, 64, 64)
        mask[..., 16:48, 16:48] = 1.0
        latent = enc
    out = _sample(comfy, model, clip, latent, noise_mask=mask)
    assert out.shape == (1, 4, 8, 8)
    assert torch.isfinite(out).all()
    assert out.abs().max() < 1e4
    if inpaint:
        # KSamplerX0Inpaint keeps latents outside the mask; equal up to the float rounding of
        # process_latent_in/out (x * 0.18215 / 0.18215), not bit-exact.
        torch.testing.assert_close(out[..., 0, :], latent[..., 0, :], rtol=1e-5, atol=1e-7)
        assert not torch.allclose(out[..., 3:5, 3:5], latent[..., 3:5, 3:5])  # inside: resampled

    img = vae.decode(out)
    assert img.shape == (1, 64, 64, 3)
    assert torch.isfinite(img).all()
    assert float(img.min()) >= 0.0 and float(img.max()) <= 1.0


def test_deterministic_per_seed(comfy_mods, tmp_path):
    def digest(p):
        return hashlib.sha256(pathlib.Path(p).read_bytes()).hexdigest()

    a = sd15.write_sd15_checkpoint(tmp_path / "a.ckpt", seed=3)
    b = sd15.write_sd15_checkpoint(tmp_path / "b.ckpt", seed=3)
    c = sd15.write_sd15_checkpoint(tmp_path / "c.ckpt", seed=4)
    assert digest(a) == digest(b)
    assert digest(a) != digest(c)
    sd = torch.load(a, weights_only=True)["state_dict"]
    w1 = sd["model.diffusion_model.input_blocks.1.0.in_layers.2.weight"]
    w2 = sd["model.diffusion_model.input_blocks.1.0.out_layers.3.weight"]
    assert not torch.equal(w1, w2)  # random per-tensor offsets: layers differ
    assert sd["model.diffusion_model.input_blocks.0.0.weight"].shape == (320, 4, 3, 3)
    assert all(k.startswith(("model.diffusion_model.", "cond_stage_model.transformer.text_model.",
                             "first_stage_model.taesd_", "first_stage_model.vae_")) for k in sd)


def test_missing_comfyui_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("COMFYUI_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(RuntimeError, match="COMFYUI_DIR"):
        sd15.comfyui_dir()
