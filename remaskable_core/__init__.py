"""ReMaskable's library: segmentation-guided, identity-checked face editing in pure torch/numpy.

Nothing in this package imports ComfyUI; the pack's ``nodes`` adapt it to ComfyUI's node API.
"""

__version__ = "0.1.0"
