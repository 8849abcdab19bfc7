"""Reference-based local attribute transfer: ReferenceTransfer."""

from __future__ import annotations

from comfy_api.latest import io, ui

from ..remaskable_core.errors import InvalidInputError
from ..remaskable_core.parsing import PRESETS, select_classes
from ..remaskable_core.transfer import TransferSettings, transfer_region
from ..remaskable_core.tensors import as_rgb
from . import types
from .faces import as_detector
from .runtime import output_device, progress_callback

TRANSFER = f"{types.CATEGORY}/transfer"
ATTRIBUTES = ("hair", "eyeglasses", "lips", "brows", "eyes", "mouth", "nose", "ears", "eye_region")


class ReferenceTransfer(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.ReferenceTransfer", display_name="Reference Attribute Transfer", category=TRANSFER,
            description="Copies one facial attribute (hair, eyeglasses, lips, brows...) from a reference photo onto "
                        "the identity photo: the reference face is aligned to the identity's by their five landmarks, "
                        "its region is pasted (coarse composite), the identity's old region that the new one leaves "
                        "uncovered is filled with the identity's mean skin colour, and a refine mask (old + new "
                        "region, grown and feathered) is output. Feed both to Masked Inpaint Sampler at denoise "
                        "below 1 (about 0.5) so the paste blends in, then Pixel Blend with the identity photo.",
            inputs=[
                io.Image.Input("identity", tooltip="The photo to edit (whose person is kept)."),
                io.Image.Input("reference", tooltip="The photo to take the attribute from: one image for the whole "
                                                    "identity batch, or one per identity image."),
                types.FaceDetectorModel.Input("face_detector", tooltip=(
                    "From Load Face Detector: finds each face and its five landmarks (eyes, nose, mouth corners), "
                    "by which the reference is aligned to the identity.")),
                types.FaceParse.Input("identity_parse", tooltip=(
                    "Face Parse of the identity photo: where its own attribute (to replace) and its skin are.")),
                types.FaceParse.Input("reference_parse", tooltip=(
                    "Face Parse of the reference photo: where the attribute to copy is. Hair, eyeglasses and ears "
                    "need a SegFormer or BiSeNet parser (the landmark parser covers only inner-face classes).")),
                io.Combo.Input("attribute", options=list(ATTRIBUTES), default="hair", tooltip=(
                    "What to transfer: " + "; ".join(f"{name} = {', '.join(PRESETS[name])}" for name in ATTRIBUTES)
                    + ".")),
                io.String.Input("classes", default="", optional=True, tooltip=(
                    "Classes added to the attribute, comma-separated; a leading '-' removes one (e.g. lips + "
                    "'mouth' to take the teeth too). Class names as in Face Parse.")),
                io.Int.Input("grow", default=8, min=0, max=256, optional=True, tooltip=(
                    "Pixels the refine mask reaches beyond the old and new region, so the sampler can blend the "
                    "pasted edges into the identity.")),
                io.Float.Input("feather", default=12.0, min=0.0, max=256.0, step=0.5, optional=True, tooltip=(
                    "Width in pixels of the refine mask's soft outward edge (beyond 'grow').")),
                io.Boolean.Input("fill_gaps", default=True, optional=True, tooltip=(
                    "Paint the identity's old region that the new one does not cover (long hair replaced by short "
                    "hair...) with the identity's mean skin colour, so the old attribute does not show through; "
                    "the refinement turns it into skin or background.")),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip=(
                    "The coarse composite at the identity's size: connect to Masked Inpaint Sampler's image.")),
                io.Mask.Output(display_name="refine_mask", tooltip=(
                    "Where the refinement may change pixels (old + new region, grown and feathered): connect to "
                    "Latent Downsample and to Pixel Blend's composite_mask.")),
                io.Mask.Output(display_name="region", tooltip=(
                    "The old and the new region before growing: the only pixels the composite changed.")),
                io.String.Output(display_name="report", tooltip=(
                    "Per image: the alignment (scale, rotation), the region sizes and the skin colour used.")),
            ],
        )

    @classmethod
    def validate_inputs(cls, attribute: str | None = None, classes: str | None = None) -> bool | str:
        if attribute is None or classes is None:
            return True
        try:
            select_classes(attribute, classes)
        except InvalidInputError as exc:
            return str(exc)
        return True

    @classmethod
    def execute(cls, identity, reference, face_detector, identity_parse, reference_parse, attribute: str,
                classes: str = "", grow: int = 8, feather: float = 12.0, fill_gaps: bool = True) -> io.NodeOutput:
        identity = as_rgb(identity, "identity")
        settings = TransferSettings(grow=grow, feather=feather, fill_gaps=fill_gaps)
        result = transfer_region(identity, reference, identity_parse, reference_parse, as_detector(face_detector),
                                 select_classes(attribute, classes), settings,
                                 progress=progress_callback(identity.shape[0]))
        image = output_device(result.image)
        return io.NodeOutput(image, output_device(result.refine_mask), output_device(result.region), result.report,
                             ui=ui.PreviewImage(image, cls=cls))


NODES = [ReferenceTransfer]
