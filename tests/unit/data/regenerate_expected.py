"""Regenerate the expected API prompts (``*.api.json``) of the UI workflows in this folder with the REAL frontend.

The unit test ``tests/unit/test_workflow.py`` checks ``remaskable_core.workflow.ui_to_api`` against these files, so
they must be what ComfyUI's own frontend produces, never what the converter produces. This script:

1. starts ComfyUI (``--cpu``, a throw-away ``--base-directory``, no custom nodes) unless ``--url`` names a running
   server, with a settings file that gives a deterministic start (no template dialog, no restored workflow);
2. opens the frontend it serves (comfyui-frontend-package, 1.27.x when these files were made) in headless Chromium
   through Playwright, using the system browser (``--chromium``; nothing is downloaded) and blocking every request
   that is not to the server;
3. for each UI workflow ``<name>.json`` here (all ``*.json`` but ``*.api.json`` and ``object_info_core.json``):
   ``await app.loadGraphData(wf)``, two animation frames, then writes
   ``JSON.stringify((await app.graphToPrompt()).output)`` (exactly what the Run button posts as ``prompt``) to
   ``<name>.api.json``;
4. with ``--update-object-info``, rewrites ``object_info_core.json`` with the server's ``/object_info`` entries of
   every node type the workflows use plus ``EXTRA_TYPES`` (types the unit test uses directly).

Usage, from the repository root (needs ComfyUI, its Python environment with ``playwright``, and Chromium, e.g.
Debian's ``apt-get install chromium``)::

    $HOME/.venvs/remaskable/bin/python tests/unit/data/regenerate_expected.py \
        --comfyui $HOME/ComfyUI [--update-object-info] [--only primitive_seed]

Then review ``git diff tests/unit/data`` and run the unit test. Files were last generated with ComfyUI v0.3.64
and comfyui-frontend-package 1.27.10 (the script prints the frontend version it ran against).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

DATA = Path(__file__).resolve().parent
OBJECT_INFO_FILE = DATA / "object_info_core.json"
#: Node types the unit test needs besides those in the workflows (error cases, layout checks).
EXTRA_TYPES = ["WebcamCapture", "Load3D", "PreviewAny", "LoadImageOutput", "SaveLoRANode", "RandomNoise",
               "ImageBlend"]
SETTINGS = {
    "Comfy.TutorialCompleted": True, "Comfy.Workflow.Persist": False, "Comfy.Canvas.NavigationMode": "custom",
    "LiteGraph.Canvas.MinFontSizeForLOD": 0, "Comfy.Minimap.Visible": False, "Comfy.Canvas.SelectionToolbox": False,
}
FRONTEND_ONLY = {"Reroute", "PrimitiveNode", "Note", "MarkdownNote"}


def workflow_files(only: list[str] | None) -> list[Path]:
    files = sorted(p for p in DATA.glob("*.json")
                   if not p.name.endswith(".api.json") and p != OBJECT_INFO_FILE)
    if only:
        files = [p for p in files if p.stem in only]
    return files


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float, proc: subprocess.Popen | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"ComfyUI exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"no answer from {url} after {timeout:.0f} s")


def start_comfyui(comfyui: Path, python: str, base: Path, port: int, log_path: Path) -> subprocess.Popen:
    for sub in ("custom_nodes", "input", "output", "models", "user/default"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "user/default/comfy.settings.json").write_text(json.dumps(SETTINGS))
    cmd = [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--base-directory", str(base),
           "--database-url", "sqlite:///:memory:", "--disable-api-nodes"]
    log = open(log_path, "w")
    return subprocess.Popen(cmd, cwd=comfyui, stdout=log, stderr=subprocess.STDOUT)


def update_object_info(url: str, files: list[Path]) -> None:
    with urllib.request.urlopen(f"{url}/object_info", timeout=60) as r:
        full = json.load(r)
    types = set(EXTRA_TYPES)
    for path in files:
        types.update(n["type"] for n in json.loads(path.read_text())["nodes"])
    types -= FRONTEND_ONLY
    missing = sorted(t for t in types if t not in full)
    if missing:  # bypass_edge_cases.json uses two on purpose (nodes of a pack that is not installed)
        print(f"not on the server, left out: {', '.join(missing)}")
    subset = {t: full[t] for t in sorted(types) if t in full}
    OBJECT_INFO_FILE.write_text(json.dumps(subset, indent=1) + "\n")
    print(f"wrote {OBJECT_INFO_FILE.name}: {len(subset)} node types")


def generate(url: str, files: list[Path], chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--disable-gpu", "--disable-quic"])
        try:
            ctx = browser.new_context(viewport={"width": 1280, "height": 800})
            ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith((url, "data:", "blob:"))
                      else r.abort())
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_function("() => window.app?.graph && window.app.extensionManager", timeout=120_000)
            version = page.evaluate("() => window.__COMFYUI_FRONTEND_VERSION__ ?? null")
            print(f"frontend {version}")
            if not str(version).startswith("1.27."):
                print("warning: the expected files were made with frontend 1.27.x", file=sys.stderr)
            for path in files:
                wf = json.loads(path.read_text())
                text = page.evaluate(
                    """async (wf) => {
                        await app.loadGraphData(wf, true, true, null,
                                                {showMissingNodesDialog: false, showMissingModelsDialog: false});
                        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
                        return JSON.stringify((await app.graphToPrompt()).output);
                    }""", wf)
                out = path.with_name(path.stem + ".api.json")
                out.write_text(json.dumps(json.loads(text), indent=1) + "\n")
                print(f"wrote {out.name}")
            if errors:
                print("page errors:\n  " + "\n  ".join(errors), file=sys.stderr)
        finally:
            browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--comfyui", type=Path, default=Path.home() / "ComfyUI", help="ComfyUI checkout to start")
    ap.add_argument("--python", default=sys.executable, help="Python that runs ComfyUI (default: this one)")
    ap.add_argument("--url", help="use this running server instead of starting one, e.g. http://127.0.0.1:8188")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--update-object-info", action="store_true", help="also rewrite object_info_core.json")
    ap.add_argument("--only", nargs="*", help="workflow names (without .json) to regenerate")
    args = ap.parse_args()

    files = workflow_files(args.only)
    proc = None
    base = None
    try:
        if args.url:
            url = args.url.rstrip("/")
        else:
            base = Path(tempfile.mkdtemp(prefix="remaskable-regen-"))
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            proc = start_comfyui(args.comfyui, args.python, base, port, base / "comfyui.log")
            print(f"started ComfyUI (pid {proc.pid}) on {url}, log {base / 'comfyui.log'}")
        wait_for(f"{url}/object_info", 180, proc)
        if args.update_object_info:
            update_object_info(url, workflow_files(None))
        generate(url, files, args.chromium)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if base is not None and os.environ.get("KEEP_BASE") != "1":
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
