"""Real ComfyUI, headless on the CPU, with the pack installed and fake models: one server per test session."""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from remaskable_core.client import ComfyClient
from remaskable_core.server import ComfyServer, default_comfyui_dir
from tests.conftest import OFFLINE_ENV
from tests.netguard.netguard import MARKER

NETGUARD_DIR = Path(__file__).resolve().parent.parent / "netguard"
# the only import failures expected on this CPU build: ComfyUI's audio nodes need torchaudio
EXPECTED_IMPORT_FAILURES = ("nodes_audio", "nodes_audio_encoder")


def comfyui_or_skip() -> Path:
    comfy = default_comfyui_dir()
    if not (comfy / "main.py").is_file():
        pytest.skip(f"ComfyUI not found at {comfy} (set COMFYUI_DIR): end-to-end tests need real ComfyUI")
    return comfy


def server_env() -> dict[str, str]:
    pythonpath = os.pathsep.join(p for p in (str(NETGUARD_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return {**OFFLINE_ENV, "PYTHONPATH": pythonpath}


def import_failures(log: str) -> list[str]:
    """Log lines of custom-node or core-node imports that failed, apart from the expected audio nodes."""
    lines = [line for line in log.splitlines()
             if "IMPORT FAILED" in line or "Cannot import" in line or "Error while calling comfy_entrypoint" in line]
    return [line for line in lines if not any(name in line for name in EXPECTED_IMPORT_FAILURES)]


@dataclass
class RunningComfy:
    server: ComfyServer
    client: ComfyClient
    base_dir: Path

    @property
    def models_dir(self) -> Path:
        return self.base_dir / "models"

    def output_path(self, image: dict) -> Path:
        return self.base_dir / image["type"] / image.get("subfolder", "") / image["filename"]


@pytest.fixture(scope="session")
def fake_models_dir(tmp_path_factory) -> Path:
    from tests.fixtures.models import write_models

    comfyui_or_skip()
    models = tmp_path_factory.mktemp("comfy-base") / "models"
    write_models(models)
    return models


@pytest.fixture(scope="session")
def comfy(fake_models_dir: Path, artifacts_dir: Path) -> RunningComfy:
    comfy_dir = comfyui_or_skip()
    base_dir = fake_models_dir.parent
    server = ComfyServer(comfy_dir, base_dir=base_dir, python=sys.executable, env=server_env(),
                         log_path=artifacts_dir / "comfyui-e2e.log")
    server.start()
    try:
        yield RunningComfy(server, ComfyClient(server.url, timeout=300), base_dir)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _server_made_no_network_attempts(request):
    yield
    if "comfy" in request.fixturenames:
        server: ComfyServer = request.getfixturevalue("comfy").server
        blocked = [line for line in server.log_text().splitlines() if MARKER in line]
        assert not blocked, f"ComfyUI tried to reach the network: {blocked[:5]}"


def pack_node_ids() -> set[str]:
    """Node ids the pack's sources declare, read from the source so the test does not trust the pack's own list."""
    nodes_dir = Path(__file__).resolve().parents[2] / "nodes"
    ids = set()
    for path in nodes_dir.glob("*.py"):
        ids.update(re.findall(r'node_id="(ReMaskable\.[A-Za-z0-9]+)"', path.read_text()))
    return ids


CHROMIUM = shutil.which("chromium")  # Debian's chromium, never a downloaded browser


@pytest.fixture(scope="module")
def page(comfy):
    """ComfyUI's real frontend in headless Chromium, ready (``window.app`` set up), that may only reach the server.
    ``page.console_errors`` collects the console's errors."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium): browser tests need it")
    from remaskable_core.frontend import FRONTEND_SETTINGS, open_frontend

    comfy.client.post_json("/api/settings", FRONTEND_SETTINGS)
    console_errors: list[str] = []

    def keep_errors(message) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    with sync_api.sync_playwright() as playwright:
        browser, page = open_frontend(playwright, comfy.server.url, CHROMIUM, on_console=keep_errors)
        page.console_errors = console_errors
        yield page
        browser.close()
