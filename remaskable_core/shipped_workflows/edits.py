"""The attribute-edit workflows: parse → SAM → DINOv2 refine → fuse → masked inpaint → identity guard → blend."""

from __future__ import annotations

WORKFLOWS: list = []
