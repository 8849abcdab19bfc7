"""ReMaskable: segmentation-guided, identity-checked face editing for ComfyUI."""

WEB_DIRECTORY = "./js"


async def comfy_entrypoint():
    # Imported here so that importing the pack outside ComfyUI (tests, tools) needs no ComfyUI.
    from .nodes import ReMaskableExtension

    return ReMaskableExtension()
