"""The canonical face-parsing schema: CelebAMask-HQ's 19 classes, addressed by name.

Every backend maps its own class order onto these names (never by index): SegFormer face-parsing uses
CelebAMask-HQ's official order, BiSeNet-79999 its own. "l_"/"r_" mean the *subject's* left and right
(the person's left eye appears on the right of a frontal photo), as in CelebAMask-HQ's annotations.
"""

from __future__ import annotations

# CelebAMask-HQ's official order; also jonathandinu/face-parsing's id2label
CLASSES: tuple[str, ...] = (
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)
CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}

DISPLAY_NAMES = {
    "background": "background", "skin": "skin", "nose": "nose", "eye_g": "eyeglasses",
    "l_eye": "left eye (subject's)", "r_eye": "right eye (subject's)", "l_brow": "left brow (subject's)",
    "r_brow": "right brow (subject's)", "l_ear": "left ear (subject's)", "r_ear": "right ear (subject's)",
    "mouth": "mouth (inside)", "u_lip": "upper lip", "l_lip": "lower lip", "hair": "hair", "hat": "hat",
    "ear_r": "earring", "neck_l": "necklace", "neck": "neck", "cloth": "clothes",
}

# BiSeNet 79999_iter.pth / facexlib parsing_bisenet.pth (zllrunning's prepropess_data.py `atts` order)
BISENET_ORDER: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)

# Named selections users pick from; each is a set of canonical classes.
PRESETS: dict[str, tuple[str, ...]] = {
    "hair": ("hair",),
    "eyes": ("l_eye", "r_eye"),
    "brows": ("l_brow", "r_brow"),
    "lips": ("u_lip", "l_lip"),
    "mouth": ("mouth", "u_lip", "l_lip"),
    "skin": ("skin",),
    "nose": ("nose",),
    "ears": ("l_ear", "r_ear"),
    "eyeglasses": ("eye_g",),
    "eye_region": ("l_eye", "r_eye", "l_brow", "r_brow", "eye_g"),
    "neck": ("neck",),
    "face": ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip", "eye_g"),
    "head": ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip", "eye_g",
             "l_ear", "r_ear", "hair", "hat", "ear_r"),
    "accessories": ("eye_g", "hat", "ear_r", "neck_l"),
    "clothes": ("cloth",),
    "background": ("background",),
}

# Colours of the preview overlay and the parse-colour map (CelebAMask-HQ's usual palette).
PALETTE: dict[str, tuple[int, int, int]] = {
    "background": (0, 0, 0), "skin": (204, 0, 0), "nose": (76, 153, 0), "eye_g": (204, 204, 0),
    "l_eye": (51, 51, 255), "r_eye": (204, 0, 204), "l_brow": (0, 255, 255), "r_brow": (255, 204, 204),
    "l_ear": (102, 51, 0), "r_ear": (255, 0, 0), "mouth": (102, 204, 0), "u_lip": (255, 255, 0),
    "l_lip": (0, 0, 153), "hair": (0, 0, 204), "hat": (255, 51, 153), "ear_r": (0, 204, 204),
    "neck_l": (0, 51, 0), "neck": (255, 153, 51), "cloth": (0, 204, 0),
}


def resolve_classes(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Canonical class names from presets and/or class names, comma-separated or as a list."""
    from ..errors import InvalidInputError

    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    names: list[str] = []
    for item in filter(None, items):
        for name in PRESETS.get(item, (item,)):
            if name not in CLASS_INDEX:
                raise InvalidInputError("classes", f"unknown class or preset '{item}'.",
                                        f"Use presets {', '.join(PRESETS)} or classes {', '.join(CLASSES)}.")
            if name not in names:
                names.append(name)
    return tuple(names)


def select_classes(preset: str, classes: str = "") -> tuple[str, ...]:
    """Canonical classes from a preset name ("none" for nothing) adjusted by a comma-separated list of class
    names or presets: plain entries are added, entries starting with "-" removed (e.g. "face" + "-l_eye, -r_eye")."""
    from ..errors import InvalidInputError

    if preset != "none" and preset not in PRESETS:
        raise InvalidInputError("preset", f"unknown preset '{preset}'.", f"Use one of {', '.join(PRESETS)} or none.")
    chosen = list(PRESETS.get(preset, ()))
    for item in filter(None, (s.strip() for s in classes.replace(";", ",").split(","))):
        remove = item.startswith("-")
        names = resolve_classes(item.lstrip("-+ "))
        if remove:
            chosen = [name for name in chosen if name not in names]
        else:
            chosen += [name for name in names if name not in chosen]
    return tuple(chosen)


# other spellings of the canonical names seen in model configs (e.g. a config.json's id2label)
LABEL_ALIASES = {
    "bg": "background", "face": "skin", "eyeglass": "eye_g", "eyeglasses": "eye_g", "eye_glasses": "eye_g",
    "glasses": "eye_g", "left_eye": "l_eye", "right_eye": "r_eye", "left_brow": "l_brow", "right_brow": "r_brow",
    "left_eyebrow": "l_brow", "right_eyebrow": "r_brow", "left_ear": "l_ear", "right_ear": "r_ear",
    "earring": "ear_r", "necklace": "neck_l", "upper_lip": "u_lip", "lower_lip": "l_lip", "inner_mouth": "mouth",
    "clothes": "cloth", "cloths": "cloth",
}


def canonical_name(label: str) -> str | None:
    """The canonical class a model's label names ("l_eye", "L_Eye.png", "left eye"...), or None."""
    key = label.strip().lower().removesuffix(".png").replace("-", "_").replace(" ", "_")
    key = LABEL_ALIASES.get(key, key)
    return key if key in CLASS_INDEX else None


def reorder(probs_in_order, order: tuple[str, ...]):
    """Per-class tensor [B, len(order), H, W] in a backend's order → canonical order [B, 19, H, W]."""
    index = [order.index(name) for name in CLASSES]
    return probs_in_order[:, index]
