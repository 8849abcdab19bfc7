"""Every model file the pack knows: what it is, where it comes from, its licence and the folder it lives in.

Folder names are ComfyUI model-folder keys (``models/<folder>``), shared with the packs users already have
(``sams`` with Impact-Pack and segment_anything, ``face_parsing`` with comfyui_face_parsing, ``insightface``
with IPAdapter/InstantID/PuLID). A ``sha256`` of ``None`` means no public source states the hash: such a
file is downloaded only with its size (or published hash prefix) checked. docs/model-sources.md cites where
every size and hash comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PT_EXTENSIONS = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")

# folder key -> file extensions its loaders accept ("" = directories, e.g. insightface packs)
MODEL_FOLDERS: dict[str, tuple[str, ...]] = {
    "sams": (".pth", ".pt", ".safetensors"),
    "face_parsing": (".safetensors", ".pth", ".pt", ".bin", ".onnx"),
    "dinov2": (".safetensors", ".pth", ".pt", ".bin"),
    "insightface": ("",),
    "face_recognition": (".onnx",),
    "face_detection": (".onnx",),
    "lpips": (".pth", ".safetensors"),
    "remaskable_heads": (".safetensors",),
}


@dataclass(frozen=True)
class RemoteFile:
    """One file as published: where to get it and how to check it."""

    path: str  # path relative to the model's place in its folder ("" = the model is this one file)
    url: str
    sha256: str | None = None  # the full hash, or the prefix torchvision publishes in its file names
    size: int | None = None
    archive_member: str = ""  # set when ``url`` is a zip archive holding the file under this name


@dataclass(frozen=True)
class ModelEntry:
    name: str  # file name (or directory for multi-file models) inside the folder, as loaders list it
    folder: str
    kind: str  # which loader reads it: sam, face_parser, dinov2, insightface, sface, yunet, lpips, checkpoint, controlnet
    variant: str  # loader-specific architecture tag (vit_b, segformer, bisenet, dinov2_vits14, buffalo_l...)
    description: str
    source: str  # the public page or repository that publishes it
    license: str
    commercial_use: bool
    files: tuple[RemoteFile, ...] = field(default_factory=tuple)
    default: bool = False  # the loader's default choice and the name the shipped workflows use

    @property
    def is_directory(self) -> bool:
        return any(f.path for f in self.files)

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return sum(sizes) if sizes and all(s is not None for s in sizes) else None

    @property
    def verified(self) -> bool:
        return bool(self.files) and all(f.sha256 and len(f.sha256) == 64 for f in self.files)

    def licence_note(self) -> str:
        return self.license if self.commercial_use else f"{self.license} (non-commercial use only)"


_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_HF = "https://huggingface.co/"
_INSIGHTFACE_RELEASE = "https://github.com/deepinsight/insightface/releases/download/v0.7/"
_OPENCV_ZOO = "https://github.com/opencv/opencv_zoo/raw/main/models/"
_INSIGHTFACE_LICENCE = "insightface model zoo: non-commercial research only (code MIT)"
_CELEBAMASK_LICENCE = "trained on CelebAMask-HQ: non-commercial research and education only"

MODELS: tuple[ModelEntry, ...] = (
    # --- SAM (models/sams) -------------------------------------------------------------------------------
    ModelEntry(
        name="sam_vit_b_01ec64.pth", folder="sams", kind="sam", variant="vit_b", default=True,
        description="Segment Anything ViT-B (91 M params); fastest of the three, good for face parts",
        source="https://github.com/facebookresearch/segment-anything#model-checkpoints",
        license="Apache-2.0", commercial_use=True,
        files=(RemoteFile("", _SAM_URL + "sam_vit_b_01ec64.pth",
                          "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", 375042383),),
    ),
    ModelEntry(
        name="sam_vit_l_0b3195.pth", folder="sams", kind="sam", variant="vit_l",
        description="Segment Anything ViT-L (308 M params)",
        source="https://github.com/facebookresearch/segment-anything#model-checkpoints",
        license="Apache-2.0", commercial_use=True,
        files=(RemoteFile("", _SAM_URL + "sam_vit_l_0b3195.pth",
                          "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", 1249524607),),
    ),
    ModelEntry(
        name="sam_vit_h_4b8939.pth", folder="sams", kind="sam", variant="vit_h",
        description="Segment Anything ViT-H (636 M params); best masks, ~6x the encoder cost of ViT-B",
        source="https://github.com/facebookresearch/segment-anything#model-checkpoints",
        license="Apache-2.0", commercial_use=True,
        files=(RemoteFile("", _SAM_URL + "sam_vit_h_4b8939.pth",
                          "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", 2564550879),),
    ),
    # --- face parsing (models/face_parsing) ---------------------------------------------------------------
    ModelEntry(
        name="segformer_face_parsing.safetensors", folder="face_parsing", kind="face_parser", variant="segformer",
        default=True,
        description="SegFormer MiT-B5 face parser (jonathandinu/face-parsing model.safetensors, renamed); "
                    "19 CelebAMask-HQ classes",
        source="https://huggingface.co/jonathandinu/face-parsing",
        license=f"weights tagged CC0-1.0, base NVIDIA MiT-B5 licence; {_CELEBAMASK_LICENCE}", commercial_use=False,
        files=(RemoteFile("", _HF + "jonathandinu/face-parsing/resolve/758b82e15a0178c9db39c1ff666a8b56e3a550c8/"
                              "model.safetensors",
                          "c2bec795a8c243db71bd95be538fd62559003566466c71237e45c99b920f4b62", 338580732),),
    ),
    ModelEntry(
        name="79999_iter.pth", folder="face_parsing", kind="face_parser", variant="bisenet",
        description="BiSeNet (ResNet-18) face parser from zllrunning/face-parsing.PyTorch; 19 classes in its own order",
        source="https://github.com/zllrunning/face-parsing.PyTorch",
        license=f"code MIT (zllrunning); {_CELEBAMASK_LICENCE}", commercial_use=False,
        files=(RemoteFile("", _HF + "ManyOtherFunctions/face-parse-bisent/resolve/0073b233a5a3c4b1377d4dbf49245017938a72b5/"
                              "79999_iter.pth",
                          "468e13ca13a9b43cc0881a9f99083a430e9c0a38abd935431d1c28ee94b26567", 53289463),),
    ),
    ModelEntry(
        name="parsing_bisenet.pth", folder="face_parsing", kind="face_parser", variant="bisenet",
        description="facexlib's copy of the BiSeNet face parser (same classes and order as 79999_iter.pth)",
        source="https://github.com/xinntao/facexlib/releases/tag/v0.2.0",
        license=f"facexlib code MIT; {_CELEBAMASK_LICENCE}", commercial_use=False,
        files=(RemoteFile("", "https://github.com/xinntao/facexlib/releases/download/v0.2.0/parsing_bisenet.pth",
                          "468e13ca13a9b43cc0881a9f99083a430e9c0a38abd935431d1c28ee94b26567", 53289463),),
    ),
    ModelEntry(
        name="face-parsing-bisenet.onnx", folder="face_parsing", kind="face_parser", variant="bisenet_onnx",
        description="The same BiSeNet as 79999_iter.pth exported to ONNX (clibdev), run on onnxruntime",
        source="https://github.com/clibdev/face-parsing.PyTorch",
        license=f"code MIT; {_CELEBAMASK_LICENCE}", commercial_use=False,
        files=(RemoteFile("", "https://github.com/clibdev/face-parsing.PyTorch/releases/latest/download/"
                              "face-parsing-bisenet.onnx",
                          "37cc52ffdf0ccb45a555a4a1a52d59266959da5cee981c244177d9768447ff37", None),),
    ),
    # --- DINOv2 (models/dinov2) ---------------------------------------------------------------------------
    ModelEntry(
        name="dinov2_vits14.safetensors", folder="dinov2", kind="dinov2", variant="vits14", default=True,
        description="DINOv2 ViT-S/14 (facebook/dinov2-small model.safetensors, renamed); 384-d patch features",
        source="https://huggingface.co/facebook/dinov2-small",
        license="Apache-2.0", commercial_use=True,
        files=(RemoteFile("", _HF + "facebook/dinov2-small/resolve/main/model.safetensors",
                          "ae1e99fcefd534ed978cdeb8326f08030c96e28b7a81ffcbc98a857c84d14be1", 88249960),),
    ),
    ModelEntry(
        name="dinov2_vitb14.safetensors", folder="dinov2", kind="dinov2", variant="vitb14",
        description="DINOv2 ViT-B/14 (facebook/dinov2-base model.safetensors, renamed); 768-d patch features",
        source="https://huggingface.co/facebook/dinov2-base",
        license="Apache-2.0", commercial_use=True,
        files=(RemoteFile("", _HF + "facebook/dinov2-base/resolve/main/model.safetensors",
                          "d73036b56966966d07975d696bde331762f37297e2f095de8cea0040c3aa0841", 346345912),),
    ),
    ModelEntry(
        name="dinov2_vitl14.safetensors", folder="dinov2", kind="dinov2", variant="vitl14",
        description="DINOv2 ViT-L/14 (facebook/dinov2-large model.safetensors, renamed); 1024-d patch features",
        source="https://huggingface.co/facebook/dinov2-large",
        license="Apache-2.0", commercial_use=True,
        files=(RemoteFile("", _HF + "facebook/dinov2-large/resolve/main/model.safetensors",
                          "399fba97a95f22c36834418bc69373364a99af3a1153da1c0fb31db567c92e23", 1217522888),),
    ),
    ModelEntry(
        name="vit_base_patch14_reg4_dinov2.safetensors", folder="dinov2", kind="dinov2", variant="vitb14_reg4",
        description="DINOv2 ViT-B/14 with 4 registers, timm layout (cleaner patch maps for boundary refinement)",
        source="https://huggingface.co/timm/vit_base_patch14_reg4_dinov2.lvd142m",
        license="Apache-2.0", commercial_use=True,
        files=(RemoteFile("", _HF + "timm/vit_base_patch14_reg4_dinov2.lvd142m/resolve/main/model.safetensors",
                          "c24ecfb4a1d8ca79193f6b9efcffc461872a09ddac43a0931357e4802931a006", 346344168),),
    ),
    # --- identity and detection (models/insightface, models/face_recognition, models/face_detection) -------
    ModelEntry(
        name="models/buffalo_l", folder="insightface", kind="insightface", variant="buffalo_l", default=True,
        description="insightface buffalo_l: SCRFD-10GF detector (det_10g.onnx) + ArcFace R50 (w600k_r50.onnx)",
        source="https://github.com/deepinsight/insightface/tree/master/python-package",
        license=_INSIGHTFACE_LICENCE, commercial_use=False,
        files=(
            RemoteFile("det_10g.onnx", _INSIGHTFACE_RELEASE + "buffalo_l.zip",
                       "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91", 16923827,
                       archive_member="det_10g.onnx"),
            RemoteFile("w600k_r50.onnx", _INSIGHTFACE_RELEASE + "buffalo_l.zip",
                       "4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43", 174383860,
                       archive_member="w600k_r50.onnx"),
        ),
    ),
    ModelEntry(
        name="models/antelopev2", folder="insightface", kind="insightface", variant="antelopev2",
        description="insightface antelopev2: SCRFD-10GF detector + ArcFace R100 (glintr100.onnx)",
        source="https://github.com/deepinsight/insightface/tree/master/python-package",
        license=_INSIGHTFACE_LICENCE, commercial_use=False,
        files=(
            RemoteFile("scrfd_10g_bnkps.onnx", _INSIGHTFACE_RELEASE + "antelopev2.zip",
                       "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91", 16923827,
                       archive_member="antelopev2/scrfd_10g_bnkps.onnx"),
            RemoteFile("glintr100.onnx", _INSIGHTFACE_RELEASE + "antelopev2.zip",
                       "4ab1d6435d639628a6f3e5008dd4f929edf4c4124b1a7169e1048f9fef534cdf", 260665334,
                       archive_member="antelopev2/glintr100.onnx"),
        ),
    ),
    ModelEntry(
        name="face_recognition_sface_2021dec.onnx", folder="face_recognition", kind="sface", variant="sface",
        default=True,
        description="OpenCV Zoo SFace (128-d identity embedding), the commercial-friendly identity model",
        source="https://github.com/opencv/opencv_zoo/tree/main/models/face_recognition_sface",
        license="Apache-2.0", commercial_use=True,
        files=(RemoteFile("", _OPENCV_ZOO + "face_recognition_sface/face_recognition_sface_2021dec.onnx",
                          "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79", 38696353),),
    ),
    ModelEntry(
        name="face_detection_yunet_2023mar.onnx", folder="face_detection", kind="yunet", variant="yunet",
        default=True,
        description="OpenCV Zoo YuNet face detector (box + 5 landmarks), used to align faces for SFace",
        source="https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet",
        license="MIT", commercial_use=True,
        files=(RemoteFile("", _OPENCV_ZOO + "face_detection_yunet/face_detection_yunet_2023mar.onnx",
                          "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", 232589),),
    ),
    # --- LPIPS backbones (models/lpips); the linear heads ship inside the lpips package -----------------
    ModelEntry(
        name="alexnet-owt-7be5be79.pth", folder="lpips", kind="lpips", variant="alex", default=True,
        description="torchvision AlexNet ImageNet weights, the backbone of LPIPS(net='alex')",
        source="https://pytorch.org/vision/stable/models/generated/torchvision.models.alexnet.html",
        license="BSD-3-Clause", commercial_use=True,
        files=(RemoteFile("", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79"),),
    ),
    ModelEntry(
        name="vgg16-397923af.pth", folder="lpips", kind="lpips", variant="vgg",
        description="torchvision VGG16 ImageNet weights, the backbone of LPIPS(net='vgg')",
        source="https://pytorch.org/vision/stable/models/generated/torchvision.models.vgg16.html",
        license="BSD-3-Clause", commercial_use=True,
        files=(RemoteFile("", "https://download.pytorch.org/models/vgg16-397923af.pth", "397923af"),),
    ),
    ModelEntry(
        name="squeezenet1_1-b8a52dc0.pth", folder="lpips", kind="lpips", variant="squeeze",
        description="torchvision SqueezeNet 1.1 ImageNet weights, the backbone of LPIPS(net='squeeze') (BrushBench's)",
        source="https://pytorch.org/vision/stable/models/generated/torchvision.models.squeezenet1_1.html",
        license="BSD-3-Clause", commercial_use=True,
        files=(RemoteFile("", "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth", "b8a52dc0"),),
    ),
    # --- diffusion models the shipped workflows name (ComfyUI's own folders) --------------------------------
    ModelEntry(
        name="sd-v1-5-inpainting.ckpt", folder="checkpoints", kind="checkpoint", variant="sd15_inpaint", default=True,
        description="Stable Diffusion 1.5 inpainting (9-channel UNet), the paper's base model",
        source="https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-inpainting",
        license="CreativeML OpenRAIL-M", commercial_use=True,
        files=(RemoteFile("", _HF + "stable-diffusion-v1-5/stable-diffusion-inpainting/resolve/main/"
                              "sd-v1-5-inpainting.ckpt",
                          "c6bbc15e3224e6973459ba78de4998b80b50112b0ae5b5c67113d56b4e366b19", 4265437280),),
    ),
    ModelEntry(
        name="v1-5-pruned-emaonly.ckpt", folder="checkpoints", kind="checkpoint", variant="sd15",
        description="Stable Diffusion 1.5 (plain 4-channel UNet), for blended latent inpainting",
        source="https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5",
        license="CreativeML OpenRAIL-M", commercial_use=True,
        files=(RemoteFile("", _HF + "stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/"
                              "v1-5-pruned-emaonly.ckpt",
                          "cc6cb27103417325ff94f52b7a5d2dde45a7515b25c255d8e396c90014281516", None),),
    ),
    ModelEntry(
        name="control_v11p_sd15_canny_fp16.safetensors", folder="controlnet", kind="controlnet", variant="canny",
        default=True,
        description="ControlNet 1.1 canny (fp16) for the structure hint's edge map",
        source="https://huggingface.co/comfyanonymous/ControlNet-v1-1_fp16_safetensors",
        license="OpenRAIL", commercial_use=True,
        files=(RemoteFile("", _HF + "comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/"
                              "control_v11p_sd15_canny_fp16.safetensors", None, 722601100),),
    ),
)


def entries_for(kind: str) -> list[ModelEntry]:
    """The manifest entries a loader of ``kind`` can read, default first."""
    return sorted((e for e in MODELS if e.kind == kind), key=lambda e: (not e.default, e.name))


def entry_by_name(folder: str, name: str) -> ModelEntry | None:
    for entry in MODELS:
        if entry.folder == folder and entry.name == name:
            return entry
    return None
