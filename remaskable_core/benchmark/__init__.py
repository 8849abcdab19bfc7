"""``python -m remaskable_core bench``: per-stage latency and peak memory of one edit, the sampler against ComfyUI's
stock KSampler, and resident memory over consecutive edits (cli.py). The ComfyUI half runs in a subprocess
(bench/comfyui_sampling.py at the pack root), since this library never imports comfy."""
