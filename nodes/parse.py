"""Face parsing: the parser loader and FaceParse."""

from __future__ import annotations

import logging
from pathlib import Path

from comfy_api.latest import io, ui

from ..remaskable_core.errors import InvalidInputError
from ..remaskable_core.parsing import CLASSES, PRESETS, face_parse, load_face_parser, select_classes
from ..remaskable_core.parsing.labels import DISPLAY_NAMES
from ..remaskable_core.tensors import as_rgb
from . import types
from .runtime import PackModel, download_input, model_names, output_device, progress_callback, resolve_model_file

LOG = logging.getLogger("remaskable")
LANDMARKS = "landmarks (mediapipe, no download)"
SIDES = {"subject's left/right (by position)": "subject", "as the model labels them": "model"}
PARSING = f"{types.CATEGORY}/parsing"


class LoadFaceParser(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        files = model_names("face_parser", "face_parsing")
        options = files[:1] + [LANDMARKS] + files[1:]
        return io.Schema(
            node_id="ReMaskable.LoadFaceParser", display_name="Load Face Parser", category=types.LOADERS,
            description="Loads a face parser for FaceParse. The backend is recognised from the file: SegFormer "
                        "(jonathandinu/face-parsing model.safetensors, alone or with its config.json), BiSeNet "
                        "(79999_iter.pth / facexlib parsing_bisenet.pth) or an ONNX export of either, from "
                        "models/face_parsing. The landmark choice needs no file: it uses mediapipe's bundled face "
                        "mesh (skin, brows, eyes, nose, lips, mouth only; mediapipe must be installed).",
            inputs=[
                io.Combo.Input("model_name", options=options, default=options[0],
                               tooltip="A file in ComfyUI's models/face_parsing folder (or one added for "
                                       "'face_parsing' in extra_model_paths.yaml); known files that are missing are "
                                       "listed too and say where to get them. "
                                       f"'{LANDMARKS}' uses mediapipe's face mesh instead: no file, fewer classes."),
                download_input(),
            ],
            outputs=[types.FaceParser.Output(display_name="face_parser",
                                             tooltip="The face parser, for FaceParse.")],
        )

    @classmethod
    def execute(cls, model_name: str, download_if_missing: bool = False) -> io.NodeOutput:
        if model_name == LANDMARKS:
            from ..remaskable_core.parsing.landmarks import LandmarkParser

            parser = LandmarkParser()
            return io.NodeOutput(PackModel.wrap(parser, LANDMARKS, Path(parser.mp.__file__).parent,
                                                backend=parser.backend))
        path = resolve_model_file("face_parsing", model_name, download_if_missing)
        parser = load_face_parser(path)
        return io.NodeOutput(PackModel.wrap(parser, model_name, path, backend=parser.backend))


def _classes_tooltip() -> str:
    names = ", ".join(f"{name} ({DISPLAY_NAMES[name]})" if DISPLAY_NAMES[name] != name else name for name in CLASSES)
    return ("Classes added to the preset, comma-separated; a leading '-' removes one (e.g. with preset 'face': "
            f"'-l_eye, -r_eye, hair'). Presets work here too. Classes: {names}. "
            "l_/r_ mean the subject's own left/right: their left eye is on the right of a photo of them.")


class FaceParse(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        presets = list(PRESETS) + ["none"]
        return io.Schema(
            node_id="ReMaskable.FaceParse", display_name="Face Parse", category=PARSING,
            description="Parses faces into CelebAMask-HQ's 19 classes (by name, whatever the backend's own order) "
                        "and outputs the parse, a mask of the chosen classes and a colour-coded preview with a "
                        "legend. Left/right always means the subject's own left/right (their left eye appears on "
                        "the right of a non-mirrored photo). Images without a face give an empty mask and a "
                        "message on the preview.",
            inputs=[
                io.Image.Input("image", tooltip="Image(s) to parse; any size, RGB, RGBA (alpha ignored) or greyscale."),
                types.FaceParser.Input("face_parser", tooltip="From Load Face Parser."),
                io.Combo.Input("preset", options=presets, default="face",
                               tooltip="Named set of classes for the mask: " + "; ".join(
                                   f"{name} = {', '.join(members)}" for name, members in PRESETS.items())
                               + "; none = only the classes listed below."),
                io.String.Input("classes", default="", tooltip=_classes_tooltip()),
                io.Combo.Input("mask_mode", options=["soft", "hard"], default="soft",
                               tooltip="soft: the probability that a pixel belongs to a chosen class (smooth edges). "
                                       "hard: 1 where the most likely class is a chosen one, else 0."),
                io.Combo.Input("left_right", options=list(SIDES), default=next(iter(SIDES)),
                               tooltip="subject's left/right: l_/r_ classes are split by which side of each face's "
                                       "midline they lie on, so l_eye is always the subject's left eye (BiSeNet-79999 "
                                       "was trained with left/right mixed up by flips). 'as the model labels them' "
                                       "keeps the network's own labels. The landmark backend is always the "
                                       "subject's."),
            ],
            outputs=[
                types.FaceParse.Output(display_name="face_parse",
                                       tooltip="Per-class probabilities (19 canonical classes), face boxes, backend "
                                               "and messages, for SAMPrompt, MaskFuse and PixelBlend."),
                io.Mask.Output(display_name="mask", tooltip="The chosen classes (empty where no face was found)."),
                io.Image.Output(display_name="preview",
                                tooltip="The parse as a colour overlay with the mask outlined in white, and a legend "
                                        "naming each class, the faces found and any warning."),
            ],
        )

    @classmethod
    def validate_inputs(cls, preset: str | None = None, classes: str | None = None) -> bool | str:
        if preset is None or classes is None:  # linked inputs are checked when they arrive
            return True
        try:
            select_classes(preset, classes)
        except InvalidInputError as exc:
            return str(exc)
        return True

    @classmethod
    def execute(cls, image, face_parser: PackModel, preset: str, classes: str, mask_mode: str,
                left_right: str) -> io.NodeOutput:
        images = as_rgb(image)
        parser = face_parser.ready()
        out = face_parse(parser, images, preset, classes, hard=mask_mode == "hard",
                         sides=SIDES.get(left_right, "subject"), progress=progress_callback(images.shape[0]))
        for message in out.messages:
            LOG.warning("FaceParse: %s", message)
        preview = output_device(out.preview)
        shown = ui.PreviewImage(preview, cls=cls).as_dict()
        if out.messages:
            shown["text"] = ("\n".join(out.messages),)
        return io.NodeOutput(out.result, output_device(out.mask), preview, ui=shown)


NODES = [LoadFaceParser, FaceParse]
