"""The attribute-edit workflows: parse → SAM → DINOv2 refine → fuse → masked inpaint → identity guard → blend.

``edit_chain`` is the paper's pipeline as a reusable piece of graph; each workflow is that chain with the region,
prompts and mask rules of one edit (and, for group photos, face crop and stitch around it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..latent_mask import MIN_COMPOSITE_GROW_PX
from . import Graph, NodeRef, ShippedWorkflow

EXAMPLE_IMAGE = "example.png"  # in every ComfyUI's input folder; users pick their own photo
INPAINT_CHECKPOINT = "sd-v1-5-inpainting.ckpt"
FACE_PARSER = "segformer_face_parsing.safetensors"
SAM_CHECKPOINT = "sam_vit_b_01ec64.pth"
DINOV2 = "dinov2_vits14.safetensors"
SFACE = "face_recognition_sface_2021dec.onnx"
LPIPS_BACKBONE = "alexnet-owt-7be5be79.pth"
CONTROLNET = "control_v11p_sd15_canny_fp16.safetensors"
NEGATIVE = "blurry, lowres, deformed, cartoon, painting, extra eyes, bad anatomy, watermark, text"

# The paper's sampling defaults (DDIM with eta 0, 50 steps, CFG 7.5) and three candidates for Identity Guard.
SAMPLING = {"steps": 50, "cfg": 7.5, "sampler_name": "ddim", "scheduler": "ddim_uniform"}
CANDIDATES = 3

PIPELINE_MODELS: tuple[tuple[str, str], ...] = (
    ("checkpoints", INPAINT_CHECKPOINT), ("face_parsing", FACE_PARSER), ("sams", SAM_CHECKPOINT),
    ("dinov2", DINOV2), ("face_recognition", SFACE), ("lpips", LPIPS_BACKBONE),
)


@dataclass(frozen=True)
class EditSpec:
    """What one attribute edit changes and how its mask is built."""

    preset: str  # FaceParse preset: the classes to edit
    prompt: str
    use_sam: bool = True  # SAM sharpens objects that exist (hair, lips); not for things being added
    exclude_classes: str = ""  # never edited, also kept out of the composite
    grow: int = 0  # px the edit mask grows (room for things being added, like glasses)
    feather: float = 0.0
    denoise: float = 1.0
    negative: str = NEGATIVE


@dataclass(frozen=True)
class Loaders:
    model: list
    clip: list
    vae: list
    face_parser: list
    sam: list | None
    dinov2: list | None
    identity: list


def add_loaders(g: Graph, use_sam: bool = True, use_dinov2: bool = True) -> Loaders:
    checkpoint = g.add("CheckpointLoaderSimple", ckpt_name=INPAINT_CHECKPOINT)
    parser = g.add("ReMaskable.LoadFaceParser", model_name=FACE_PARSER, download_if_missing=False)
    sam = g.add("ReMaskable.LoadSAM", model_name=SAM_CHECKPOINT, download_if_missing=False) if use_sam else None
    dinov2 = g.add("ReMaskable.LoadDINOv2", model_name=DINOV2, download_if_missing=False) if use_dinov2 else None
    identity = g.add("ReMaskable.LoadIdentityModel", recognizer=f"SFace: {SFACE}", detector="auto", lpips="alex",
                     download_if_missing=False)
    return Loaders(checkpoint[0], checkpoint[1], checkpoint[2], parser[0], sam[0] if sam else None,
                   dinov2[0] if dinov2 else None, identity[0])


def add_photo(g: Graph, title: str = "Photo") -> list:
    return g.add("LoadImage", title=title, image=EXAMPLE_IMAGE)[0]


def add_face_detector(g: Graph) -> list:
    return g.add("ReMaskable.LoadFaceDetector", detector="mediapipe full-range", min_score=0.5, min_face_size=32,
                 precise_landmarks=True, download_if_missing=False)[0]


@dataclass(frozen=True)
class EditMasks:
    face_parse: list
    edit: list
    composite: list


def add_masks(g: Graph, loaders: Loaders, image: list, spec: EditSpec) -> EditMasks:
    """FaceParse (the class authority) → SAM Prompt derived from it (the object's boundary) → DINOv2 Refine (the
    edges) → Mask Fuse (the vote, the rules, and the composite mask)."""
    parse = g.add("ReMaskable.FaceParse", image=image, face_parser=loaders.face_parser, preset=spec.preset,
                  classes="", mask_mode="soft", left_right="subject's left/right (by position)")
    coarse, sam_mask = parse[1], None
    if spec.use_sam and loaders.sam is not None:
        sam = g.add("ReMaskable.SAMPrompt", image=image, sam_model=loaders.sam, prompts="", selection="agreement",
                    face_parse=parse[0], classes=spec.preset, positive_points=3, negative_points=2, use_box=True,
                    box_margin=0.05)
        coarse = sam_mask = sam[0]
    refine = g.add("ReMaskable.DINOv2Refine", image=image, mask=coarse, dinov2_model=loaders.dinov2, band_width=16,
                   context=48, resolution=644, prototypes=0, margin=0.15, edge_sigma=0.1, head="none")
    fuse_inputs = {"sam_mask": sam_mask} if sam_mask else {}
    fuse = g.add("ReMaskable.MaskFuse", face_parse=parse[0], classes=spec.preset, parse_weight=1.0, **fuse_inputs,
                 sam_weight=1.0,
                 refined_mask=refine[0], refine_weight=1.0, threshold=0.5, exclude_classes=spec.exclude_classes,
                 exclude_grow=2 if spec.exclude_classes else 0, include_classes="", fill_holes=True, min_island=64,
                 grow=spec.grow, feather=spec.feather, composite_margin=MIN_COMPOSITE_GROW_PX, composite_feather=8.0)
    return EditMasks(parse[0], fuse[0], fuse[1])


def add_sampler(g: Graph, loaders: Loaders, image: list, edit_mask: list, positive: list, negative: list,
                denoise: float = 1.0, candidates: int = CANDIDATES) -> NodeRef:
    latent = g.add("ReMaskable.LatentDownsample", mask=edit_mask, mode="any-cover", threshold=0.5)
    return g.add("ReMaskable.MaskedInpaintSampler", model=loaders.model, positive=positive, negative=negative,
                 vae=loaders.vae, image=image, seed=0, **SAMPLING, denoise=denoise, candidates=candidates,
                 mode="auto", latent=latent[0])


def add_blend(g: Graph, original: list, edited: list, composite_mask: list) -> NodeRef:
    return g.add("ReMaskable.PixelBlend", original=original, edited=edited, composite_mask=composite_mask,
                 feather=8.0, size_policy="pad with original", color_match="off", match_region="ring", ring_px=16,
                 color_strength=1.0, parse_class="skin")


def add_guarded_output(g: Graph, loaders: Loaders, image: list, candidates: list, masks: EditMasks,
                       mode: str = "preserve", prefix: str = "ReMaskable/edit") -> NodeRef:
    """Identity Guard picks a candidate, Pixel Blend pastes it inside the composite mask only, and the save node
    writes the watermark and the edit manifest (regions, prompts, models, scores)."""
    guard = g.add("ReMaskable.IdentityGuard", original=image, candidates=candidates, identity_model=loaders.identity,
                  mode=mode, on_fail="warn", threshold=0.0, lpips_weight=0.5, mask=masks.composite)
    blend = add_blend(g, image, guard[0], masks.composite)
    g.add("ReMaskable.SaveImageWithProvenance", images=blend[0], filename_prefix=prefix, mask=masks.edit,
          identity_cosine=guard[1], lpips_outside=guard[2], identity_passed=guard[3], identity_report=guard[4],
          add_watermark=True, c2pa_certificate="", c2pa_private_key="")
    g.add("PreviewImage", title="Mask preview", images=g.add("MaskToImage", mask=masks.edit)[0])
    return guard


def add_prompts(g: Graph, clip: list, positive: str, negative: str) -> tuple[list, list]:
    """The *Prompt* and *Negative* text encodings."""
    return (g.add("CLIPTextEncode", title="Prompt", text=positive, clip=clip)[0],
            g.add("CLIPTextEncode", title="Negative", text=negative, clip=clip)[0])


def attribute_edit(name: str, title: str, summary: str, spec: EditSpec, how_to: tuple[str, ...] = ()) -> ShippedWorkflow:
    g = Graph()
    loaders = add_loaders(g, spec.use_sam)
    image = add_photo(g)
    masks = add_masks(g, loaders, image, spec)
    positive, negative = add_prompts(g, loaders.clip, spec.prompt, spec.negative)
    sampler = add_sampler(g, loaders, image, masks.edit, positive, negative, spec.denoise)
    add_guarded_output(g, loaders, image, sampler[1], masks, prefix=f"ReMaskable/{name}")
    models = tuple(m for m in PIPELINE_MODELS if spec.use_sam or m[0] != "sams")
    return ShippedWorkflow(name, title, summary, g, models, how_to or DEFAULT_HOW_TO)


DEFAULT_HOW_TO = (
    "Load a portrait in **Photo** (a face of 256–768 px works best; for a face inside a large photo use the group "
    "photo workflow).",
    "Write the new look in **Prompt**.",
    "Queue. **Mask preview** shows the region; Identity Guard's report on the node says which of the three "
    "candidates was kept and why. The saved PNG carries an invisible watermark and the edit manifest.",
)


def hair_colour() -> ShippedWorkflow:
    return attribute_edit(
        "remaskable_hair_colour", "ReMaskable: hair colour",
        "Recolours the hair and nothing else. FaceParse finds the hair, SAM sharpens its outline, DINOv2 Refine "
        "settles the strands at the edge, Mask Fuse keeps the eyes, brows, nose and lips out, and the inpainting "
        "model regenerates only the hair; every pixel outside the composite mask stays the original's.",
        EditSpec("hair", "copper red hair, natural hair texture, photo, detailed", exclude_classes="eyes,brows,nose,lips"))


def eye_colour() -> ShippedWorkflow:
    return attribute_edit(
        "remaskable_eye_colour", "ReMaskable: eye colour",
        "Changes the colour of the eyes. The eyes are small, so the mask comes from FaceParse and DINOv2 Refine "
        "(no SAM); the brows and the skin around stay untouched.",
        EditSpec("eyes", "bright green eyes, detailed iris, photo", use_sam=False, exclude_classes="brows",
                 grow=2))


def lips() -> ShippedWorkflow:
    return attribute_edit(
        "remaskable_lips", "ReMaskable: lips",
        "Restyles the lips (lipstick colour, gloss). The teeth and the inside of the mouth are kept out of the edit.",
        EditSpec("lips", "glossy deep red lipstick, detailed lips, photo", exclude_classes="mouth"))


def add_eyeglasses() -> ShippedWorkflow:
    return attribute_edit(
        "remaskable_add_eyeglasses", "ReMaskable: add eyeglasses",
        "Adds glasses. The region is the eyes, brows and any glasses, grown to leave room for the frame; SAM is "
        "not used because there is no object yet to outline. Identity Guard keeps the candidate that still looks "
        "most like the person.",
        EditSpec("eye_region", "wearing thin black round eyeglasses, photo, detailed", use_sam=False, grow=24,
                 feather=4.0))


def group_photo_hair() -> ShippedWorkflow:
    """Face Crop → the hair edit on every face crop → Face Stitch back into the photo (bit-exact elsewhere)."""
    g = Graph()
    loaders = add_loaders(g)
    photo = add_photo(g)
    detector = add_face_detector(g)
    crop = g.add("ReMaskable.FaceCrop", image=photo, face_detector=detector, order="largest first", select="all",
                 point_x=0.5, point_y=0.5,
                 context=2.0, resize="to size", size=512, align=True, paste_region="whole crop", feather=16,
                 if_no_face="pass through")
    spec = EditSpec("hair", "platinum blonde hair, natural hair texture, photo",
                    exclude_classes="eyes,brows,nose,lips")
    masks = add_masks(g, loaders, crop[0], spec)
    positive, negative = add_prompts(g, loaders.clip, spec.prompt, spec.negative)
    sampler = add_sampler(g, loaders, crop[0], masks.edit, positive, negative, candidates=1)
    blend = add_blend(g, crop[0], sampler[1], masks.composite)
    stitch = g.add("ReMaskable.FaceStitch", image=photo, edited_crops=blend[0], face_crop=crop[2],
                   edit_mask=masks.composite)
    g.add("ReMaskable.SaveImageWithProvenance", images=stitch[0], filename_prefix="ReMaskable/group_photo",
          add_watermark=True, c2pa_certificate="", c2pa_private_key="")
    g.add("PreviewImage", title="Crops", images=blend[0])
    models = tuple(m for m in PIPELINE_MODELS if m[0] not in ("face_recognition", "lpips"))
    return ShippedWorkflow(
        "remaskable_group_photo_hair", "ReMaskable: hair colour on every face of a group photo",
        "Finds every face in a large photo (mediapipe, bundled, no download), cuts an aligned 512 px crop around "
        "each, recolours the hair on all crops as one batch, and stitches them back with an inverse warp and a "
        "soft mask. Outside the pasted regions the photo stays bit-exact. Any edit of the other workflows can "
        "replace the hair edit between Face Crop and Face Stitch.",
        g, models,
        ("Load the photo in **Photo**.", "Choose faces in **Face Crop** (`select`: all, 0, 0,2, …; `order`).",
         "Write the new look in **Prompt** and queue; **Crops** shows each edited face."))


def structure_hint_hair() -> ShippedWorkflow:
    """The hair edit with the paper's structure hint: a canny ControlNet on the face's edges keeps pose and shape."""
    g = Graph()
    loaders = add_loaders(g)
    image = add_photo(g)
    spec = EditSpec("hair", "curly black hair, photo, detailed", exclude_classes="eyes,brows,nose,lips")
    masks = add_masks(g, loaders, image, spec)
    positive, negative = add_prompts(g, loaders.clip, spec.prompt, spec.negative)
    hint = g.add("ReMaskable.StructureHint", image=image, face_parse=masks.face_parse, mask=masks.edit,
                 edge_source="canny+parse", low_threshold=100, high_threshold=200, grow=8, outside_strength=0.3,
                 crop_to_vae_grid=True)
    controlnet = g.add("ControlNetLoader", control_net_name=CONTROLNET)
    control = g.add("ControlNetApplyAdvanced", positive=positive, negative=negative, control_net=controlnet[0],
                    image=hint[0], strength=0.6, start_percent=0.0, end_percent=0.8, vae=loaders.vae)
    sampler = add_sampler(g, loaders, image, masks.edit, control[0], control[1])
    add_guarded_output(g, loaders, image, sampler[1], masks, prefix="ReMaskable/structure_hint")
    g.add("PreviewImage", title="Structure hint", images=hint[0])
    return ShippedWorkflow(
        "remaskable_structure_hint", "ReMaskable: hair edit with a structure hint (ControlNet)",
        "The hair edit guided by a canny ControlNet on the face's own edges (the paper's structure conditioning): "
        "Structure Hint keeps full-strength edges inside the edit region and weaker ones outside, so the head's "
        "shape and pose survive a strong prompt.",
        g, (*PIPELINE_MODELS, ("controlnet", CONTROLNET)), DEFAULT_HOW_TO)


WORKFLOWS = [hair_colour, eye_colour, lips, add_eyeglasses, group_photo_hair, structure_hint_hair]
