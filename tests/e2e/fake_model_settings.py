"""What the end-to-end runs of the shipped workflows change so that they run quickly on the fake models: fewer
sampling steps, smaller face crops, and for the reference transfer the real landmark parser on the lips (a small
astronaut's face is ~26 px, and the fake SegFormer's random parse may hold no hair). Nothing else is changed."""

from __future__ import annotations

STEPS = 2
CROP_SIZE = 128
LANDMARK_PARSER = "landmarks (mediapipe, no download)"


def fake_model_settings(prompt: dict) -> dict[tuple[str, str], object]:
    """(node id, input name) → value, for an API prompt of a shipped workflow (its ids are the UI node ids)."""
    settings: dict[tuple[str, str], object] = {}
    for node, entry in prompt.items():
        if entry["class_type"] == "ReMaskable.MaskedInpaintSampler":
            settings[node, "steps"] = STEPS
        elif entry["class_type"] == "ReMaskable.FaceCrop":
            settings[node, "size"] = CROP_SIZE
        elif entry["class_type"] == "ReMaskable.ReferenceTransfer":
            settings[node, "attribute"] = "lips"
            settings[prompt[entry["inputs"]["identity_parse"][0]]["inputs"]["face_parser"][0], "model_name"] = \
                LANDMARK_PARSER
            settings[entry["inputs"]["face_detector"][0], "min_face_size"] = 16
    return settings
