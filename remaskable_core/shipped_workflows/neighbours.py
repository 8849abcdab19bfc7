"""The neighbouring ideas of the field as workflows: reference-based attribute transfer, localized anonymization, and
face-aware text conditioning on the edit chain of ``edits``."""

from __future__ import annotations

from . import Graph, ShippedWorkflow
from .edits import (DEFAULT_HOW_TO, PIPELINE_MODELS, EditMasks, EditSpec, add_face_detector, add_guarded_output,
                    add_loaders, add_masks, add_photo, add_prompts, add_sampler)

TRANSFER_DENOISE = 0.55  # enough to blend the pasted region in, little enough to keep its colour and shape
TRANSFER_NEGATIVE = "blurry, lowres, seam, visible edge, deformed, cartoon, painting, watermark, text"


def reference_transfer() -> ShippedWorkflow:
    g = Graph()
    loaders = add_loaders(g, use_sam=False, use_dinov2=False)
    detector = add_face_detector(g)
    photo = add_photo(g)
    reference = add_photo(g, "Reference")
    parse_kw = dict(face_parser=loaders.face_parser, preset="hair", classes="", mask_mode="soft",
                    left_right="subject's left/right (by position)")
    photo_parse = g.add("ReMaskable.FaceParse", title="Parse photo", image=photo, **parse_kw)
    reference_parse = g.add("ReMaskable.FaceParse", title="Parse reference", image=reference, **parse_kw)
    transfer = g.add("ReMaskable.ReferenceTransfer", identity=photo, reference=reference, face_detector=detector,
                     identity_parse=photo_parse[0], reference_parse=reference_parse[0], attribute="hair", classes="",
                     grow=8, feather=12.0, fill_gaps=True)
    positive, negative = add_prompts(g, loaders.clip, "natural hair, seamless hairline, photo, detailed",
                                     TRANSFER_NEGATIVE)
    sampler = add_sampler(g, loaders, transfer[0], transfer[1], positive, negative, denoise=TRANSFER_DENOISE)
    masks = EditMasks(photo_parse[0], transfer[2], transfer[1])
    add_guarded_output(g, loaders, photo, sampler[1], masks, prefix="ReMaskable/reference_transfer")
    g.add("PreviewImage", title="Coarse composite", images=transfer[0])
    models = tuple(m for m in PIPELINE_MODELS if m[0] not in ("sams", "dinov2"))
    return ShippedWorkflow(
        "remaskable_reference_transfer", "ReMaskable: transfer hair (or glasses, lips, brows) from a reference photo",
        "Reference-based local attribute transfer, in 2D. The reference face is aligned onto the photo's face by "
        "their five landmarks (mediapipe, bundled), its hair is pasted where the photo's hair is, the photo's old "
        "hair that the new one leaves uncovered is filled with the photo's mean skin colour, and the inpainting "
        "model refines old + new region at denoise 0.55 so the paste blends in. Identity Guard keeps the candidate "
        "that still looks most like the person; outside the refine mask every pixel is the photo's.",
        g, models,
        ("Load the person to edit in **Photo** and the one with the wanted hair in **Reference** (both roughly "
         "frontal).",
         "Pick the attribute on **Reference Attribute Transfer** (hair, eyeglasses, lips, brows...). Hair, "
         "eyeglasses and ears need the SegFormer or BiSeNet parser; lips, brows, eyes and nose also work with the "
         "landmark parser.",
         "Queue. **Coarse composite** shows the paste before refinement; raise the sampler's denoise for a "
         "smoother blend, lower it to keep more of the reference."),
        ("The alignment is a similarity (rotation, scale, shift): a reference turned far from the photo's pose "
         "gives a poorer fit; the refinement hides small offsets, not large ones.",))


def anonymize_keep_eyes() -> ShippedWorkflow:
    g = Graph()
    loaders = add_loaders(g, use_sam=False)
    image = add_photo(g)
    spec = EditSpec("face", "a photo of a person, natural face, realistic skin, detailed", use_sam=False,
                    exclude_classes="eyes", grow=4, feather=2.0)
    masks = add_masks(g, loaders, image, spec)
    positive, negative = add_prompts(g, loaders.clip, spec.prompt, spec.negative)
    sampler = add_sampler(g, loaders, image, masks.edit, positive, negative)
    add_guarded_output(g, loaders, image, sampler[1], masks, mode="anonymize", prefix="ReMaskable/anonymized")
    models = tuple(m for m in PIPELINE_MODELS if m[0] != "sams")
    return ShippedWorkflow(
        "remaskable_anonymize_keep_eyes", "ReMaskable: anonymize a face, keep the eyes",
        "Localized anonymization: the face (skin, nose, brows, mouth and lips) is regenerated while the regions the "
        "user keeps, here the eyes, stay the original's (Mask Fuse excludes them from the edit and the composite). "
        "Three candidates are made; Identity Guard in anonymize mode keeps the least similar one and reports the "
        "re-identification decision against the recogniser's published threshold (SFace: cosine 0.363).",
        g, models,
        ("Load the photo in **Photo**.",
         "To keep other regions, add them to **Mask Fuse**'s exclude_classes (e.g. `eyes, lips`).",
         "Queue. Identity Guard's report says 're-identified: no' when the kept candidate's cosine to the original "
         "is below the threshold; if every candidate is still recognised, it says so: raise the candidates or "
         "change the prompt."))


def face_aware_prompt() -> ShippedWorkflow:
    g = Graph()
    loaders = add_loaders(g)
    image = add_photo(g)
    spec = EditSpec("hair", "long wavy silver hair, natural hair texture, photo, detailed",
                    exclude_classes="eyes,brows,nose,lips")
    masks = add_masks(g, loaders, image, spec)
    positive, negative = add_prompts(g, loaders.clip, spec.prompt, spec.negative)
    face_aware = g.add("ReMaskable.FaceAwareConditioning", conditioning=positive, mask=masks.edit, strength=1.0,
                       adapter="none (identity)")
    sampler = add_sampler(g, loaders, image, masks.edit, face_aware[0], negative)
    add_guarded_output(g, loaders, image, sampler[1], masks, prefix="ReMaskable/face_aware")
    return ShippedWorkflow(
        "remaskable_face_aware_prompt", "ReMaskable: hair edit with face-aware conditioning",
        "The hair edit with Face-Aware Conditioning on the prompt: the text embedding is strengthened in proportion "
        "to the share of the image being edited (E + strength x beta x A(E)), so a large region gets a firmer "
        "push towards the prompt and a small one a gentle nudge.",
        g, PIPELINE_MODELS, DEFAULT_HOW_TO)


WORKFLOWS = [reference_transfer, anonymize_keep_eyes, face_aware_prompt]
