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
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Workflow.Persist": False, "Comfy.Canvas.NavigationMode": "custom",
            "LiteGraph.Canvas.MinFontSizeForLOD": 0, "Comfy.Minimap.Visible": False}


def write_thumbnails(url: str, chromium: str, folder: Path) -> list[Path]:
    """Each ``folder/<name>.json`` loaded in the real frontend, fitted to the view, its canvas saved as ``<name>.jpg``
    (what the template browser shows next to the name)."""
    import io

    from PIL import Image
    from playwright.sync_api import sync_playwright

    from ..client import ComfyClient

    ComfyClient(url).post_json("/api/settings", SETTINGS)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--disable-gpu"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            (url, "data:", "blob:")) else route.abort())
        page.goto(url)
        page.wait_for_function("() => window.app?.graph && window.app.extensionManager", timeout=60_000)
        for path in sorted(folder.glob("*.json")):
            box = page.evaluate("""async (workflow) => {
                await app.loadGraphData(workflow);
                const b = app.graph.nodes.reduce((b, n) => [Math.min(b[0], n.pos[0]), Math.min(b[1], n.pos[1] - 30),
                    Math.max(b[2], n.pos[0] + n.size[0]), Math.max(b[3], n.pos[1] + n.size[1])],
                    [Infinity, Infinity, -Infinity, -Infinity]);
                app.canvas.ds.fitToBounds([b[0], b[1], b[2] - b[0], b[3] - b[1]]);
                app.canvas.setDirty(true, true);
                await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
                return [...app.canvas.ds.convertOffsetToCanvas([b[0], b[1]]),
                        ...app.canvas.ds.convertOffsetToCanvas([b[2], b[3]])];
            }""", json.loads(path.read_text()))
            shot = Image.open(io.BytesIO(page.locator("#graph-canvas").screenshot())).convert("RGB")
            pad = 12
            shot = shot.crop((max(0, int(box[0]) - pad), max(0, int(box[1]) - pad),
                              min(shot.width, int(box[2]) + pad), min(shot.height, int(box[3]) + pad)))
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
