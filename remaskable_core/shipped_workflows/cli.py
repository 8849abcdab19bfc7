"""``python -m remaskable_core workflows``: list the shipped example workflows, or rebuild their JSON files."""

from __future__ import annotations

import argparse
import json
import shutil
from contextlib import nullcontext
from pathlib import Path

from . import all_workflows

WORKFLOWS_DIR = Path(__file__).resolve().parents[2] / "workflows"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "build", "thumbnails"),
                        help="list: the shipped workflows; build: rewrite workflows/*.json from their definitions; "
                             "thumbnails: render workflows/*.jpg, each file's canvas in ComfyUI's frontend (needs "
                             "playwright and a chromium, see --chromium)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--server", help="a running ComfyUI with the pack, whose node definitions lay out the files")
    where.add_argument("--comfyui", type=Path, help="ComfyUI directory to start headless for that")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium",
                        help="Chromium executable for thumbnails (default: chromium on PATH)")
    parser.add_argument("--out", type=Path, default=WORKFLOWS_DIR, help="folder to write (default: workflows/)")


def write_workflow_files(object_info: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for workflow in all_workflows():
        path = out / f"{workflow.name}.json"
        path.write_text(json.dumps(workflow.to_ui(object_info), indent=2) + "\n")
        written.append(path)
    return written


THUMBNAIL_WIDTH = 640
THUMBNAIL_PAD = 12  # px of canvas kept around the graph


def write_thumbnails(url: str, chromium: str, folder: Path) -> list[Path]:
    """Each ``folder/<name>.json`` loaded in the real frontend, fitted to the view, its canvas saved as ``<name>.jpg``
    (what the template browser shows next to the name)."""
    import io

    from PIL import Image
    from playwright.sync_api import sync_playwright

    from ..client import ComfyClient
    from ..frontend import FIT_VIEW, FRONTEND_SETTINGS, open_frontend

    ComfyClient(url).post_json("/api/settings", FRONTEND_SETTINGS)
    written = []
    with sync_playwright() as playwright:
        browser, page = open_frontend(playwright, url, chromium, viewport=(1600, 1000))
        for path in sorted(folder.glob("*.json")):
            page.evaluate("(workflow) => app.loadGraphData(workflow)", json.loads(path.read_text()))
            x0, y0, x1, y1 = page.evaluate(FIT_VIEW)
            shot = Image.open(io.BytesIO(page.locator("#graph-canvas").screenshot())).convert("RGB")
            shot = shot.crop((max(0, int(x0) - THUMBNAIL_PAD), max(0, int(y0) - THUMBNAIL_PAD),
                              min(shot.width, int(x1) + THUMBNAIL_PAD), min(shot.height, int(y1) + THUMBNAIL_PAD)))
            height = round(shot.height * THUMBNAIL_WIDTH / shot.width)
            target = path.with_suffix(".jpg")
            shot.resize((THUMBNAIL_WIDTH, height), Image.LANCZOS).save(target, quality=85)
            written.append(target)
        browser.close()
    return written


def main(args: argparse.Namespace) -> int:
    if args.action == "list":
        for workflow in all_workflows():
            print(f"{workflow.name:40} {workflow.title}")
        return 0
    from ..client import ComfyClient
    from ..server import ComfyServer

    with (nullcontext() if args.server else ComfyServer(args.comfyui)) as server:
        client = ComfyClient(args.server or server.url)
        if args.action == "build":
            written = write_workflow_files(client.object_info(), args.out)
        else:
            written = write_thumbnails(args.server or server.url, args.chromium, args.out)
        for path in written:
            print(path)
    return 0
