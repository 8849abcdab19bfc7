"""Responsible use: the invisible watermark, its detector, and the save node that writes the edit manifest (and,
with a user's certificate, C2PA Content Credentials) into the PNG."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import folder_paths
from comfy.cli_args import args
from comfy_api.latest import io, ui

from ..remaskable_core.models import MODELS, find_model
from ..remaskable_core.provenance.content_credentials import CERT_ENV, KEY_ENV, signing_credentials
from ..remaskable_core.provenance.manifest import FileHasher, Locators, summary
from ..remaskable_core.provenance.save import save_with_provenance
from ..remaskable_core.provenance.watermark import detect_images, format_edit_id, watermark_images
from ..remaskable_core.tensors import as_rgb
from . import types
from .runtime import LOCATOR, output_device

CATEGORY = f"{types.CATEGORY}/provenance"
NOT_MODEL_FOLDERS = {"custom_nodes", "configs"}


class Watermark(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.Watermark", display_name="Invisible Watermark", category=CATEGORY,
            description="Embeds an invisible watermark naming the edit (a 32-bit edit id) into each image: the "
                        "DWT-DCT-SVD method of the invisible-watermark package on a resize-proof canonical grid, with "
                        "a checksum. It survives PNG, JPEG at quality 90 and resizing; Detect Watermark reads it. "
                        "Output pixels are exact 8-bit levels; an image that cannot carry the mark is an error.",
            inputs=[
                io.Image.Input("image", tooltip="The edited images (at least 128 px on each side; 256 px and more "
                                                "survive JPEG best). An alpha channel is dropped."),
                io.String.Input("payload", default="", optional=True,
                                tooltip="The edit id: 8 hex digits (e.g. 1a2b3c4d) are used as they are; any other "
                                        "text is hashed to an id; empty derives the id from each image's pixels."),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The watermarked images (RGB)."),
                io.String.Output(display_name="payload", tooltip="The embedded edit id of each image, 8 hex digits, "
                                                                 "comma-separated for a batch."),
            ],
        )

    @classmethod
    def execute(cls, image, payload: str = "") -> io.NodeOutput:
        marked, ids = watermark_images(image, payload)
        return io.NodeOutput(output_device(marked), ", ".join(format_edit_id(i) for i in ids))


class DetectWatermark(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.DetectWatermark", display_name="Detect Watermark", category=CATEGORY,
            description="Reads the ReMaskable watermark: whether it is present, the edit id it carries and how "
                        "certain that is (the share of 32 check bits that agree; 30 are needed, which an unmarked "
                        "image reaches with probability 1.2e-7).",
            inputs=[io.Image.Input("image", tooltip="Images to check (any size; resized or JPEG-compressed copies "
                                                    "work, crops and flips do not).")],
            outputs=[
                io.Boolean.Output(display_name="found", tooltip="True when every image carries the watermark."),
                io.String.Output(display_name="payload", tooltip="The edit id found in each image (8 hex digits, "
                                                                 "empty where none), comma-separated for a batch."),
                io.Float.Output(display_name="confidence", tooltip="The lowest confidence over the batch: the share "
                                                                   "of check bits that agree (about 0.5 when absent, "
                                                                   "at least 0.9375 when found)."),
                io.String.Output(display_name="report", tooltip="One line per image: the verdict, the check bits, "
                                                                "the signal strength and the false-positive bound."),
            ],
        )

    @classmethod
    def execute(cls, image) -> io.NodeOutput:
        readings = detect_images(image)
        report = "\n".join(f"image {i + 1}: {r.describe()}" for i, r in enumerate(readings))
        return io.NodeOutput(all(r.found for r in readings), ", ".join(r.payload for r in readings),
                             min(r.confidence for r in readings), report)


def _locate_model(name: str) -> tuple[str, Path] | None:
    """The folder and path of a model named in the prompt: the pack's manifest first (its folder has the published
    hash), then every ComfyUI model folder."""
    for entry in MODELS:
        if entry.name == name:
            path = find_model(LOCATOR, entry.folder, name)
            if path is not None:
                return entry.folder, path
    for folder in folder_paths.folder_names_and_paths:
        if folder not in NOT_MODEL_FOLDERS:
            path = folder_paths.get_full_path(folder, name)
            if path is not None:
                return folder, Path(path)
    return None


def _locate_input_image(name: str) -> Path | None:
    path = Path(folder_paths.get_annotated_filepath(name))
    return path if path.is_file() else None


@functools.cache
def _hasher() -> FileHasher:
    return FileHasher(Path(folder_paths.get_user_directory()) / "remaskable" / "sha256-cache.json")


class SaveImageWithProvenance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.SaveImageWithProvenance", display_name="Save Image (Provenance)", category=CATEGORY,
            description="Saves PNGs to the output folder like Save Image (with ComfyUI's prompt and workflow), plus "
                        "an edit manifest in the 'remaskable' text chunk: the prompts, edited regions and mask area, "
                        "the models with their sha256, identity scores, the watermark read back from the pixels and "
                        "the pack version. Images without the invisible watermark get one (unless turned off). With "
                        "a certificate chain and key it also embeds a signed C2PA manifest. Read it all back with: "
                        "python -m remaskable_core provenance IMAGE.",
            inputs=[
                io.Image.Input("images", tooltip="The images to save."),
                io.String.Input("filename_prefix", default="ReMaskable",
                                tooltip="The file name prefix, as in Save Image (may include a subfolder)."),
                io.Mask.Input("mask", optional=True,
                              tooltip="The edit mask, to record the edited area (share of pixels and bounding box)."),
                io.Float.Input("identity_cosine", optional=True, force_input=True,
                               tooltip="Identity Guard's identity_cosine output, recorded as is."),
                io.Float.Input("lpips_outside", optional=True, force_input=True,
                               tooltip="Identity Guard's lpips_outside output, recorded as is."),
                io.Boolean.Input("identity_passed", optional=True, force_input=True,
                                 tooltip="Identity Guard's passed output, recorded as is."),
                io.String.Input("identity_report", optional=True, force_input=True,
                                tooltip="Identity Guard's report output, recorded as is."),
                io.Boolean.Input("add_watermark", default=True, optional=True,
                                 tooltip="Embed the invisible watermark (id from the pixels) into images that carry "
                                         "none yet; images marked by Invisible Watermark keep their id. Images "
                                         "under 128 px or of one saturated colour are saved unmarked (the manifest "
                                         "says so)."),
                io.String.Input("c2pa_certificate", default="", optional=True,
                                tooltip=f"Path of a PEM certificate chain (CA-issued, not self-signed) to sign a "
                                        f"C2PA manifest with; empty uses ${CERT_ENV}; neither set means no C2PA. "
                                        f"Paths typed here are saved in the workflow metadata: prefer the variable."),
                io.String.Input("c2pa_private_key", default="", optional=True,
                                tooltip=f"Path of the certificate's PEM private key; empty uses ${KEY_ENV}."),
            ],
            outputs=[io.String.Output(display_name="report",
                                      tooltip="What was written: each file, its edit summary, watermark and C2PA.")],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo, io.Hidden.unique_id],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images, filename_prefix: str = "ReMaskable", mask=None, identity_cosine: float | None = None,
                lpips_outside: float | None = None, identity_passed: bool | None = None,
                identity_report: str | None = None, add_watermark: bool = True, c2pa_certificate: str = "",
                c2pa_private_key: str = "") -> io.NodeOutput:
        images = as_rgb(images, "images")
        credentials = signing_credentials(c2pa_certificate, c2pa_private_key)
        folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, folder_paths.get_output_directory(), images.shape[2], images.shape[1])
        names = [f"{filename.replace('%batch_num%', str(i))}_{counter + i:05}_.png" for i in range(len(images))]
        comfy_chunks = {}
        if not args.disable_metadata:
            if cls.hidden.prompt is not None:
                comfy_chunks["prompt"] = json.dumps(cls.hidden.prompt)
            for key, value in (cls.hidden.extra_pnginfo or {}).items():
                comfy_chunks[key] = json.dumps(value)
        identity = {k: v for k, v in (("identity_cosine", identity_cosine), ("lpips_outside", lpips_outside),
                                      ("passed", identity_passed), ("report", identity_report)) if v is not None}
        saved = save_with_provenance(
            images, [Path(folder) / n for n in names], prompt=cls.hidden.prompt, save_node_id=str(cls.hidden.unique_id),
            comfy_chunks=comfy_chunks, locators=Locators(_locate_model, _locate_input_image), hasher=_hasher(),
            mask=mask, identity=identity or None, credentials=credentials, add_watermark=add_watermark)
        c2pa = f"C2PA signed by {credentials.signer}" if credentials else "no C2PA (no signing certificate given)"
        report = "\n".join(f"{s.path.name}: {summary(s.manifest)}; {c2pa}" for s in saved)
        results = [ui.SavedResult(n, subfolder, io.FolderType.output) for n in names]
        return io.NodeOutput(report, ui=ui.SavedImages(results))


NODES = [Watermark, DetectWatermark, SaveImageWithProvenance]
