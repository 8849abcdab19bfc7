"""The pack's ComfyUI nodes: thin typed adapters over ``remaskable_core``."""

from typing_extensions import override

from comfy_api.latest import ComfyExtension, io

from . import conditioning
from . import faces
from . import fuse
from . import generate
from . import identity
from . import parse
from . import provenance
from . import refine
from . import sam
from . import transfer
from .editor_route import register_routes
from .runtime import register_model_folders

NODES: list[type[io.ComfyNode]] = [
    *parse.NODES,
    *sam.NODES,
    *refine.NODES,
    *fuse.NODES,
    *generate.NODES,
    *identity.NODES,
    *conditioning.NODES,
    *faces.NODES,
    *provenance.NODES,
    *transfer.NODES,
]


class ReMaskableExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        register_model_folders()  # before any schema lists model files
        register_routes()
        return NODES
