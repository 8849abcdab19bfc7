"""The pack's own socket types (ComfyUI shows their names on the sockets)."""

from comfy_api.latest import io

SamModel = io.Custom("REMASKABLE_SAM")
FaceParser = io.Custom("REMASKABLE_FACE_PARSER")
FaceParse = io.Custom("FACE_PARSE")
Dinov2Model = io.Custom("REMASKABLE_DINOV2")
IdentityModel = io.Custom("REMASKABLE_IDENTITY")

CATEGORY = "ReMaskable"
LOADERS = f"{CATEGORY}/loaders"
GENERATE = f"{CATEGORY}/generate"
FaceDetectorModel = io.Custom("REMASKABLE_FACE_DETECTOR")
FaceCrop = io.Custom("FACE_CROP")
FACES = f"{CATEGORY}/faces"
