"""Face-aware conditioning inside real ComfyUI, fed by the stock text encoder."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_face_aware_conditioning_reports_the_mask_share(comfy):
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd-v1-5-inpainting.ckpt"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "red hair", "clip": ["1", 1]}},
        "3": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 32, "height": 32}},
        "4": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": 64, "height": 64}},
        "5": {"class_type": "MaskComposite",
              "inputs": {"destination": ["4", 0], "source": ["3", 0], "x": 0, "y": 0, "operation": "add"}},
        "6": {"class_type": "ReMaskable.FaceAwareConditioning",
              "inputs": {"conditioning": ["2", 0], "mask": ["5", 0], "strength": 1.5}},
        "7": {"class_type": "PreviewAny", "inputs": {"source": ["6", 1]}},
        "8": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["6", 0]}},
        "9": {"class_type": "PreviewAny", "inputs": {"source": ["8", 0]}},
    }
    result = comfy.client.wait(comfy.client.queue(prompt), timeout=300)
    assert result.status == "success", result.error
    assert float(result.outputs["7"]["text"][0]) == pytest.approx(0.25)
