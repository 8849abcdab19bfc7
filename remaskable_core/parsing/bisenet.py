"""BiSeNet face parsing: zllrunning's 79999_iter.pth (= facexlib's parsing_bisenet.pth), and ONNX exports of it.

The network is written here with the module names of zllrunning's model.py/resnet.py, so the published state
dict loads with ``load_state_dict`` as it is: a ResNet-18 context path with two attention refinement modules
(ARM) and a global-context branch, a feature fusion module (FFM) that takes the ResNet 1/8 feature in place of
the deleted spatial path, and three output heads (only ``conv_out`` is used for inference; the two auxiliary
heads exist so the file loads strictly). Its 19 outputs are in zllrunning's class order (``BISENET_ORDER``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelFileError
from ..models import load_state_dict
from .base import NetworkParser, check_class_order
from .labels import BISENET_ORDER, CLASSES


class ConvBNReLU(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if in_channels != out_channels or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


class ResNet18(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class AttentionRefinement(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = ConvBNReLU(in_channels, out_channels)
        self.conv_atten = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean((2, 3), keepdim=True))))


class ContextPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnet = ResNet18()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, kernel=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        global_context = self.conv_avg(feat32.mean((2, 3), keepdim=True))
        up32 = F.interpolate(self.arm32(feat32) + global_context, size=feat16.shape[2:], mode="nearest")
        up32 = self.conv_head32(up32)
        up16 = F.interpolate(self.arm16(feat16) + up32, size=feat8.shape[2:], mode="nearest")
        return feat8, self.conv_head16(up16), up32


class FeatureFusion(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.convblk = ConvBNReLU(in_channels, out_channels, kernel=1)
        self.conv1 = nn.Conv2d(out_channels, out_channels // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_channels // 4, out_channels, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        attention = torch.sigmoid(self.conv2(F.relu(self.conv1(feat.mean((2, 3), keepdim=True)))))
        return feat * attention + feat


class OutputHead(nn.Module):
    def __init__(self, in_channels: int, mid_channels: int, classes: int):
        super().__init__()
        self.conv = ConvBNReLU(in_channels, mid_channels)
        self.conv_out = nn.Conv2d(mid_channels, classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """zllrunning's BiSeNet face parser. ``forward`` gives the main head's logits at the input resolution."""

    def __init__(self, classes: int = 19):
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = OutputHead(256, 256, classes)
        self.conv_out16 = OutputHead(128, 64, classes)  # auxiliary training heads: loaded, never run
        self.conv_out32 = OutputHead(128, 64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat8, context8, _ = self.cp(x)
        logits = self.conv_out(self.ffm(feat8, context8))
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=True)


def is_bisenet_state(state: dict[str, torch.Tensor]) -> bool:
    return "cp.resnet.conv1.weight" in state and "conv_out.conv_out.weight" in state


def build_bisenet(state: dict[str, torch.Tensor]) -> BiSeNet:
    classes = state["conv_out.conv_out.weight"].shape[0]
    model = BiSeNet(classes)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ModelFileError(f"the weights do not fit zllrunning's BiSeNet (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}).")
    return model.eval()


class BiSeNetParser(NetworkParser, nn.Module):
    backend = "bisenet"
    order = BISENET_ORDER

    def __init__(self, net: BiSeNet):
        nn.Module.__init__(self)
        self.net = net

    @property
    def weights_device(self) -> torch.device:
        return next(self.net.parameters()).device

    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net(pixels)


def load_bisenet(path: str | Path, state: dict[str, torch.Tensor] | None = None) -> BiSeNetParser:
    path = Path(path)
    state = state if state is not None else load_state_dict(path)
    if not is_bisenet_state(state):
        raise ModelFileError(f"{path.name} is not a BiSeNet face parser (no cp.resnet.* / conv_out.* weights).")
    classes = state["conv_out.conv_out.weight"].shape[0]
    if classes != len(BISENET_ORDER):
        raise ModelFileError(f"{path.name} predicts {classes} classes; ReMaskable knows BiSeNet face parsers with the "
                             f"19 CelebAMask-HQ classes of 79999_iter.pth.")
    try:
        return BiSeNetParser(build_bisenet(state))
    except ModelFileError as exc:
        raise ModelFileError(f"{path.name}: {exc}") from None


class OnnxParser(NetworkParser):
    """An ONNX face parser run by onnxruntime: clibdev's face-parsing-bisenet.onnx (19 logits at the input
    resolution, BiSeNet order) or jonathandinu's onnx/model.onnx (input ``pixel_values``, logits at 1/4
    resolution, CelebAMask-HQ order). Both take 512x512 ImageNet-normalised RGB."""

    def __init__(self, path: str | Path):
        import onnxruntime as ort

        self.path = Path(path)
        preferred = ("CUDAExecutionProvider", "CoreMLExecutionProvider", "CPUExecutionProvider")
        providers = [p for p in preferred if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(str(self.path), providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
            raise ModelFileError(f"{self.path.name} could not be opened by onnxruntime ({exc}).") from exc
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = inputs[0].shape
        if len(shape) != 4 or shape[1] not in (3, "3") or not outputs or len(outputs[0].shape) != 4:
            raise ModelFileError(f"{self.path.name} is not an image segmentation model (input {shape}).")
        self.input_name = inputs[0].name
        self.input_size = shape[2] if isinstance(shape[2], int) else 512
        classes = outputs[0].shape[1]
        if isinstance(classes, int) and classes != len(CLASSES):
            raise ModelFileError(f"{self.path.name} predicts {classes} classes, not the 19 of CelebAMask-HQ.")
        segformer = self.input_name == "pixel_values"
        self.backend = "segformer (onnx)" if segformer else "bisenet (onnx)"
        self.order = check_class_order(CLASSES if segformer else BISENET_ORDER, self.path.name)

    def logits(self, pixels: torch.Tensor) -> torch.Tensor:
        (out, *_) = self.session.run(None, {self.input_name: pixels.cpu().numpy()})
        return torch.from_numpy(out)
