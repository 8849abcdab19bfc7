"""Responsible use: an invisible, robust watermark naming each edit, the edit manifest written into saved PNGs,
and optional C2PA Content Credentials signed with the user's certificate."""

from .manifest import FileHasher, Locators, describe_workflow, read_manifest, summary
from .watermark import WatermarkReading, detect, detect_images, edit_id_from_text, embed, watermark_images

__all__ = ["FileHasher", "Locators", "describe_workflow", "read_manifest", "summary", "WatermarkReading", "detect",
           "detect_images", "edit_id_from_text", "embed", "watermark_images"]
