"""``POST /remaskable/preview``: the mask editor's preview, without queueing the graph (see remaskable_core/editor.py
for the contract). The handler only reads the request, runs the core preview off the event loop and answers; user
errors are HTTP 400 with the message. Previews run on the CPU and keep their own copy of the last model of each
kind, so they never take GPU memory from (or move the models of) a prompt that is running."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections import OrderedDict
from pathlib import Path

import folder_paths

from ..remaskable_core.editor import (PreviewChoices, PreviewRequest, load_image, parse_preview, read_preview_request,
                                      resolve_image, sam_preview)
from ..remaskable_core.errors import ReMaskableError
from ..remaskable_core.models import require_model
from .parse import LANDMARKS, SIDES
from .runtime import LOCATOR, model_names

LOG = logging.getLogger("remaskable")
ROUTE = "/remaskable/preview"
PARSES_KEPT = 4  # parse results kept, so toggling classes on the same image does not parse again

_lock = threading.Lock()  # one preview at a time: the cached models are not shared between threads
_models: dict[str, tuple[tuple, object]] = {}  # kind -> (file key, model)
_parses: OrderedDict[tuple, object] = OrderedDict()


def _file_key(path: Path) -> tuple:
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


def _cached_model(kind: str, key: tuple, load):
    cached = _models.get(kind)
    if cached is None or cached[0] != key:
        _models.pop(kind, None)  # free the old one before loading the new one
        _models[kind] = (key, load())
    return _models[kind][1]


def _parser(name: str):
    if name == LANDMARKS:
        from ..remaskable_core.parsing.landmarks import LandmarkParser

        return (LANDMARKS,), _cached_model("face_parser", (LANDMARKS,), LandmarkParser)
    from ..remaskable_core.parsing import load_face_parser

    path = require_model(LOCATOR, "face_parsing", name)
    key = _file_key(path)
    return key, _cached_model("face_parser", key, lambda: load_face_parser(path))


def _sam(name: str):
    from ..remaskable_core.sam import load_sam

    path = require_model(LOCATOR, "sams", name)
    return _cached_model("sam", _file_key(path), lambda: load_sam(path).eval())


def run_preview(request: PreviewRequest, image_path: Path) -> dict:
    from ..remaskable_core.parsing.pipeline import parse_images

    with _lock:
        if request.mode == "sam":
            return sam_preview(_sam(request.sam_model), load_image(image_path), request)
        parser_key, parser = _parser(request.parser)
        key = (parser_key, _file_key(image_path), request.sides)
        result = _parses.get(key)
        if result is None:
            result = parse_images(parser, load_image(image_path), request.sides)
            _parses[key] = result
            while len(_parses) > PARSES_KEPT:
                _parses.popitem(last=False)
        _parses.move_to_end(key)
        return parse_preview(parser, result, request)


def _choices() -> PreviewChoices:
    return PreviewChoices(parsers=[LANDMARKS, *model_names("face_parser", "face_parsing")],
                          sam_models=model_names("sam", "sams"), sides=SIDES)


async def preview(request):
    from aiohttp import web

    try:
        body = await request.json()
    except ValueError as exc:
        return web.json_response({"error": f"The request body is not JSON ({exc})."}, status=400)
    try:
        wanted = read_preview_request(body, _choices())
        path = resolve_image(wanted.image, {"input": folder_paths.get_input_directory(),
                                            "temp": folder_paths.get_temp_directory()})
        return web.json_response(await asyncio.to_thread(run_preview, wanted, path))
    except ReMaskableError as exc:
        return web.json_response({"error": str(exc), "field": getattr(exc, "input_name", None)}, status=400)
    except Exception as exc:  # a broken model file or the like: tell the editor, keep the server up
        LOG.exception("ReMaskable preview failed")
        return web.json_response({"error": f"The preview failed: {type(exc).__name__}: {exc}"}, status=500)


def register_routes() -> None:
    """Adds the route to ComfyUI's server once (the pack may be set up more than once); does nothing outside a
    running server (tests that import the nodes in-process)."""
    prompt_server = getattr(sys.modules.get("server"), "PromptServer", None)  # ComfyUI's server.py, once loaded
    server = getattr(prompt_server, "instance", None)
    if server is None:
        return
    if any(getattr(route, "path", None) == ROUTE for route in server.routes):
        return
    server.routes.post(ROUTE)(preview)
