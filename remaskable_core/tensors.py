"""Checking and normalising ComfyUI's IMAGE ([B,H,W,C] float 0..1) and MASK ([B,H,W] float 0..1) tensors.

Every node funnels its inputs through these, so odd inputs (RGBA, greyscale, 2-D masks, batch 1 against
batch N, the 64x64 empty mask LoadImage gives images without alpha) get one consistent treatment and
one clear message.
"""

from __future__ import annotations

import torch

from .errors import InvalidInputError


def as_rgb(image: torch.Tensor, input_name: str = "image") -> torch.Tensor:
    """IMAGE as float32 [B,H,W,3]; greyscale is repeated, an alpha channel dropped (masks come separately)."""
    if not isinstance(image, torch.Tensor):
        raise InvalidInputError(input_name, f"expected an IMAGE tensor, got {type(image).__name__}.")
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
        raise InvalidInputError(input_name, f"expected an IMAGE of shape [batch, height, width, 1|3|4 channels], "
                                            f"got {list(image.shape)}.")
    if image.shape[0] == 0 or image.shape[1] == 0 or image.shape[2] == 0:
        raise InvalidInputError(input_name, f"the image is empty ({list(image.shape)}).")
    image = image.float()
    if image.shape[-1] == 1:
        image = image.expand(-1, -1, -1, 3)
    return image[..., :3].clamp(0.0, 1.0).contiguous()


def as_mask(mask: torch.Tensor, input_name: str = "mask") -> torch.Tensor:
    """MASK as float32 [B,H,W] in 0..1; accepts [H,W], [B,1,H,W] and single-channel [B,H,W,1]."""
    if not isinstance(mask, torch.Tensor):
        raise InvalidInputError(input_name, f"expected a MASK tensor, got {type(mask).__name__}.")
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    elif mask.ndim == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    elif mask.ndim == 4 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 3:
        raise InvalidInputError(input_name, f"expected a MASK of shape [batch, height, width], got {list(mask.shape)}.")
    return mask.float().clamp(0.0, 1.0).contiguous()


def match_batch(n: int, tensor: torch.Tensor, input_name: str, reference_name: str) -> torch.Tensor:
    """Broadcast a batch of 1 to ``n``; any other mismatch is an error naming both inputs."""
    if tensor.shape[0] == n:
        return tensor
    if tensor.shape[0] == 1:
        return tensor.expand(n, *tensor.shape[1:])
    if n == 1:
        raise InvalidInputError(input_name, f"has a batch of {tensor.shape[0]} but '{reference_name}' has 1.",
                                f"Connect a single {input_name} or a batch of {tensor.shape[0]} to '{reference_name}'.")
    raise InvalidInputError(input_name, f"has a batch of {tensor.shape[0]} but '{reference_name}' has {n}.",
                            "Give both the same batch size, or a batch of 1 to use for every item.")


def mask_for_image(mask: torch.Tensor, image: torch.Tensor, input_name: str = "mask",
                   image_name: str = "image") -> torch.Tensor:
    """``mask`` checked against ``image`` ([B,H,W,C]): same height and width, batch broadcast."""
    mask = as_mask(mask, input_name)
    height, width = image.shape[1], image.shape[2]
    if mask.shape[1:] != (height, width):
        hint = ""
        if mask.shape[1:] == (64, 64) and float(mask.abs().sum()) == 0.0:
            hint = (" This looks like the empty 64x64 mask that Load Image outputs for images without an alpha "
                    "channel: draw a mask in the mask editor, or make one with FaceParse or SAMPrompt.")
        raise InvalidInputError(input_name, f"is {mask.shape[2]}x{mask.shape[1]} but '{image_name}' is "
                                            f"{width}x{height}; they must be the same size.{hint}")
    return match_batch(image.shape[0], mask, input_name, image_name)


def images_alike(a: torch.Tensor, b: torch.Tensor, a_name: str, b_name: str) -> torch.Tensor:
    """``b`` checked to have ``a``'s height and width, batch broadcast; returns ``b``."""
    if a.shape[1:3] != b.shape[1:3]:
        raise InvalidInputError(b_name, f"is {b.shape[2]}x{b.shape[1]} but '{a_name}' is {a.shape[2]}x{a.shape[1]}.")
    return match_batch(a.shape[0], b, b_name, a_name)
