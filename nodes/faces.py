"""Faces in large photos: the detector loader, FaceDetect (preview), FaceCrop and FaceStitch."""

from __future__ import annotations

import logging

import torch
from comfy_api.latest import io, ui

from ..remaskable_core.errors import InvalidInputError
from ..remaskable_core.faces.crop import PASTE_REGIONS, CropSettings, crop_faces, stitch_faces
from ..remaskable_core.faces.detectors import DETECTOR_BACKENDS, DetectorOptions, choice_label, parse_choice
from ..remaskable_core.faces.face import FaceDetector
from ..remaskable_core.faces.select import FACE_ORDERS, choose_faces, detect_batch, draw_faces, image_to_uint8
from ..remaskable_core.tensors import as_rgb
from . import types
from .runtime import PackModel, download_input, model_names, output_device, progress_callback, resolve_model_file

log = logging.getLogger(__name__)

RESIZE_MODES = ("to size", "keep scale")
NO_FACE_ACTIONS = ("pass through", "error")


def detector_choices() -> list[str]:
    choices = []
    for backend in DETECTOR_BACKENDS:
        if backend.model_kind is None:
            choices.append(choice_label(backend))
        else:
            choices += [choice_label(backend, name) for name in model_names(backend.model_kind, backend.model_folder)]
    return choices


def as_detector(value) -> FaceDetector:
    detector = value.ready() if isinstance(value, PackModel) else value
    if not callable(getattr(detector, "detect", None)):
        raise InvalidInputError("detector", f"expected a face detector, got {type(value).__name__}.",
                                "Connect Load Face Detector.")
    return detector


def selection_inputs() -> list[io.Input]:
    return [
        io.Combo.Input("order", options=list(FACE_ORDERS), default="largest first",
                       tooltip="How the faces of each image are numbered: by size, position, distance to a point "
                               "(point_x, point_y) or detector confidence. 'select' picks by these numbers."),
        io.String.Input("select", default="all",
                        tooltip='Which faces of each image, by their number in that order: "all", "0" (the '
                                'first), "0,2", "1-3", "-1" (the last). Numbers beyond the faces found are skipped.'),
        io.Float.Input("point_x", default=0.5, min=0.0, max=1.0, step=0.01, optional=True,
                       tooltip="For 'nearest to point': the point's x as a fraction of the image width "
                               "(0 = left edge, 1 = right edge)."),
        io.Float.Input("point_y", default=0.5, min=0.0, max=1.0, step=0.01, optional=True,
                       tooltip="For 'nearest to point': the point's y as a fraction of the image height "
                               "(0 = top, 1 = bottom)."),
    ]


def find_faces(image: torch.Tensor, detector, order: str, select: str, point: tuple[float, float]):
    photos = as_rgb(image)
    detector = as_detector(detector)
    found = detect_batch(detector, photos, progress_callback(photos.shape[0]))
    chosen = choose_faces(found, order, select, photos.shape[2], photos.shape[1], point)
    return photos, found, chosen


class LoadFaceDetector(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        choices = detector_choices()
        file_backends = any(b.model_kind is not None for b in DETECTOR_BACKENDS)
        return io.Schema(
            node_id="ReMaskable.LoadFaceDetector", display_name="Load Face Detector", category=types.LOADERS,
            description="A face detector for FaceDetect and FaceCrop. mediapipe full-range finds every face of a "
                        "group photo (it also searches overlapping tiles); short-range is for close-ups. mediapipe "
                        "is optional: if it is missing, the error says how to install it without touching numpy.",
            inputs=[
                io.Combo.Input("detector", options=choices, default=choices[0],
                               tooltip="The detection model. mediapipe's weights ship inside the mediapipe 0.10.21 "
                                       "package (nothing to download)."),
                io.Float.Input("min_score", default=0.5, min=0.05, max=1.0, step=0.05,
                               tooltip="Drop faces the detector is less sure of. Lower it if faces are missed, raise "
                                       "it if non-faces are found."),
                io.Int.Input("min_face_size", default=32, min=8, max=4096, step=1,
                             tooltip="Smallest face to find, in pixels (box side). Smaller values also search finer "
                                     "tiles, which takes longer."),
                io.Boolean.Input("precise_landmarks", default=True,
                                 tooltip="Eye, nose and mouth-corner points from mediapipe's face mesh (a few ms per "
                                         "face) instead of the detector's coarse keypoints. They set the crop's "
                                         "rotation."),
                *([download_input()] if file_backends else []),
            ],
            outputs=[types.FaceDetectorModel.Output(display_name="face_detector",
                                                    tooltip="The detector, for FaceDetect and FaceCrop.")],
        )

    @classmethod
    def execute(cls, detector: str, min_score: float = 0.5, min_face_size: int = 32, precise_landmarks: bool = True,
                download_if_missing: bool = False) -> io.NodeOutput:
        backend, model_name = parse_choice(detector)
        path = None
        if backend.model_kind is not None:
            path = resolve_model_file(backend.model_folder, model_name, download_if_missing)
        options = DetectorOptions(min_score=min_score, min_face_size=min_face_size,
                                  precise_landmarks=precise_landmarks)
        return io.NodeOutput(backend.build(path, options))


class FaceDetect(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.FaceDetect", display_name="Face Detect", category=types.FACES,
            description="Finds the faces in each image and shows them numbered in the chosen order, so you can see "
                        "which number to give FaceCrop's 'select'. Chosen faces are green, the others grey.",
            inputs=[
                io.Image.Input("image", tooltip="The photo(s) to search."),
                types.FaceDetectorModel.Input("face_detector", tooltip="From Load Face Detector."),
                *selection_inputs(),
            ],
            outputs=[
                io.Image.Output(display_name="preview", tooltip="The image with every face's box, the chosen ones "
                                                                  "numbered, and their five landmarks."),
                io.Mask.Output(display_name="face_boxes", tooltip="1 inside the boxes of the chosen faces."),
                io.Int.Output(display_name="count", tooltip="How many faces were chosen, over the whole batch."),
            ],
        )

    @classmethod
    def execute(cls, image: torch.Tensor, face_detector, order: str, select: str, point_x: float = 0.5,
                point_y: float = 0.5) -> io.NodeOutput:
        photos, found, chosen = find_faces(image, face_detector, order, select, (point_x, point_y))
        previews, boxes = [], torch.zeros(photos.shape[:3])
        for index, photo in enumerate(photos):
            pixels = image_to_uint8(photo)
            previews.append(torch.from_numpy(draw_faces(pixels, found[index], chosen[index])).float() / 255.0)
            for face in chosen[index]:
                x0, y0, x1, y1 = (int(round(v)) for v in face.box)
                boxes[index, max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = 1.0
        preview = torch.stack(previews)
        return io.NodeOutput(output_device(preview), output_device(boxes), sum(len(c) for c in chosen),
                             ui=ui.PreviewImage(preview, cls=cls))


class FaceCrop(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.FaceCrop", display_name="Face Crop", category=types.FACES,
            description="Cuts one square crop per chosen face out of each photo (context around the face, eyes "
                        "levelled, a size for the model), so any edit can run on faces inside a large photo. Edit "
                        "the crops as a batch, then FaceStitch pastes them back; nothing outside the crops changes.",
            inputs=[
                io.Image.Input("image", tooltip="The photo(s). RGBA and greyscale work; the crops are RGB."),
                types.FaceDetectorModel.Input("face_detector", tooltip="From Load Face Detector."),
                *selection_inputs()[:2],
                io.Float.Input("context", default=1.5, min=1.0, max=4.0, step=0.05,
                               tooltip="Crop side as a multiple of the face box: 1 = the face only, 1.5 = some hair "
                                       "and neck, 2.5 = head and shoulders."),
                io.Combo.Input("resize", options=list(RESIZE_MODES), default="to size",
                               tooltip="'to size': every crop is size x size (faces scaled up or down). 'keep "
                                       "scale': the photo's own resolution, every crop as big as the largest face "
                                       "needs (rounded up to a multiple of 8)."),
                io.Int.Input("size", default=512, min=64, max=4096, step=8,
                             tooltip="Crop side in pixels for 'to size' (a multiple of 8, as VAEs need)."),
                io.Boolean.Input("align", default=True,
                                 tooltip="Rotate each crop so the eyes are level (models edit upright faces best); "
                                         "FaceStitch rotates it back."),
                io.Combo.Input("paste_region", options=list(PASTE_REGIONS), default="whole crop",
                               tooltip="What FaceStitch pastes back: the whole crop, or an oval around the face. An "
                                       "edit_mask on FaceStitch limits it further."),
                io.Int.Input("feather", default=16, min=0, max=256, step=1,
                             tooltip="Width in crop pixels of the fade at the paste region's edge. It lies inside "
                                     "the region, so pixels outside stay exactly as they were."),
                io.Combo.Input("if_no_face", options=list(NO_FACE_ACTIONS), default="pass through",
                               tooltip="When a photo has no chosen face: 'pass through' gives a small stand-in crop "
                                       "that FaceStitch ignores (the photo comes back unchanged); 'error' stops."),
                *selection_inputs()[2:],
            ],
            outputs=[
                io.Image.Output(display_name="crops", tooltip="One crop per chosen face, photo by photo, in the "
                                                               "chosen order (a stand-in for a photo without face)."),
                io.Mask.Output(display_name="crop_masks", tooltip="Per crop, the region FaceStitch will paste back "
                                                                   "(feathered inward; 0 over padding)."),
                types.FaceCrop.Output(display_name="face_crop", tooltip="Where each crop came from, for FaceStitch."),
            ],
        )

    @classmethod
    def execute(cls, image: torch.Tensor, face_detector, order: str, select: str, context: float, resize: str,
                size: int, align: bool, paste_region: str, feather: int, if_no_face: str, point_x: float = 0.5,
                point_y: float = 0.5) -> io.NodeOutput:
        photos, found, chosen = find_faces(image, face_detector, order, select, (point_x, point_y))
        missing = [index for index, faces in enumerate(chosen) if not faces]
        if missing:
            detail = (f"no face {'was chosen' if any(found[i] for i in missing) else 'was found'} in image(s) "
                      f"{missing} of the batch (faces found per image: {[len(f) for f in found]})")
            if if_no_face == "error":
                raise InvalidInputError("image", f"{detail}.", "Lower min_score or min_face_size on Load Face "
                                        "Detector, check 'select', or set if_no_face to 'pass through'.")
            log.warning("FaceCrop: %s; those photos pass through unchanged.", detail)
        settings = CropSettings(context=context, size=size if resize == "to size" else None, align=align,
                                paste_region=paste_region, feather=float(feather))
        crops, masks, face_crops = crop_faces(photos, chosen, settings)
        return io.NodeOutput(output_device(crops), output_device(masks), face_crops)


class FaceStitch(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ReMaskable.FaceStitch", display_name="Face Stitch", category=types.FACES,
            description="Pastes edited face crops back into the photo(s) they came from (rotation and scale undone, "
                        "soft edge inside the crop). Every pixel outside the pasted region keeps its exact value.",
            inputs=[
                io.Image.Input("image", tooltip="The original photo(s): the same image that went into FaceCrop."),
                io.Image.Input("edited_crops", tooltip="The crops after editing, in FaceCrop's order. Any square "
                                                       "size works; a batch of several variants per crop (Repeat "
                                                       "Latent Batch) gives one photo per variant."),
                types.FaceCrop.Input("face_crop", tooltip="From FaceCrop."),
                io.Mask.Input("edit_mask", optional=True,
                              tooltip="Optional, in crop space (made from the crops): paste only where the edit is. "
                                      "One mask for all crops, one per crop, or one per edited crop."),
            ],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The photo(s) with the edited faces. An RGBA photo "
                                                               "keeps its alpha."),
                io.Mask.Output(display_name="pasted_mask", tooltip="How much of the edit each pixel took (0 = exactly "
                                                                    "the original pixel)."),
            ],
        )

    @classmethod
    def execute(cls, image: torch.Tensor, edited_crops: torch.Tensor, face_crop,
                edit_mask: torch.Tensor | None = None) -> io.NodeOutput:
        stitched, pasted = stitch_faces(image, edited_crops, face_crop, edit_mask)
        return io.NodeOutput(output_device(stitched), output_device(pasted))


NODES = [LoadFaceDetector, FaceDetect, FaceCrop, FaceStitch]
