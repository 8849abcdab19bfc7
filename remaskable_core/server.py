"""Starting real ComfyUI headless with this pack installed: for the ``run`` command and the end-to-end tests."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .models.manifest import MODEL_FOLDERS

PACK_DIR = Path(__file__).resolve().parent.parent
PACK_NAME = "remaskable"  # the directory name the Comfy Registry installs the pack under (pyproject's name)
COMFY_FOLDERS = ("checkpoints", "vae", "loras", "controlnet", "clip", "clip_vision", "embeddings", "upscale_models",
                 "diffusion_models", "text_encoders")


def default_comfyui_dir() -> Path:
    return Path(os.environ.get("COMFYUI_DIR") or Path.home() / "ComfyUI")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerError(RuntimeError):
    pass


class ComfyServer:
    """A ComfyUI process on 127.0.0.1 with the pack in its custom nodes.

    ``base_dir`` makes it hermetic (``--base-directory``: models, input, output, temp and user all under it);
    without it the ComfyUI installation's own models and custom nodes are used and only input/output/temp/user
    go to a scratch directory. ``models_dir`` adds a ComfyUI-style models directory through an
    extra_model_paths.yaml, so every model folder the pack and the shipped workflows use is searched there too.
    """

    def __init__(self, comfyui_dir: str | Path | None = None, *, base_dir: str | Path | None = None,
                 models_dir: str | Path | None = None, port: int | None = None, python: str | None = None,
                 extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 log_path: str | Path | None = None):
        self.comfyui_dir = Path(comfyui_dir) if comfyui_dir else default_comfyui_dir()
        if not (self.comfyui_dir / "main.py").is_file():
            raise ServerError(f"No ComfyUI at {self.comfyui_dir} (main.py not found). Pass --comfyui DIR or set "
                              f"COMFYUI_DIR.")
        self.scratch = Path(tempfile.mkdtemp(prefix="remaskable-comfy-"))
        self.base_dir = Path(base_dir) if base_dir else None
        self.models_dir = Path(models_dir) if models_dir else None
        self.port = port or free_port()
        self.python = python or sys.executable
        self.extra_args = tuple(extra_args)
        self.env = env or {}
        self.log_path = Path(log_path) if log_path else self.scratch / "comfyui.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _pack_installed_in(self, custom_nodes: Path) -> bool:
        if not custom_nodes.is_dir():
            return False
        return any(p.resolve() == PACK_DIR for p in custom_nodes.iterdir() if p.is_dir())

    def _link_pack(self, custom_nodes: Path) -> None:
        custom_nodes.mkdir(parents=True, exist_ok=True)
        link = custom_nodes / PACK_NAME
        if not link.exists():
            link.symlink_to(PACK_DIR, target_is_directory=True)

    def _extra_paths_yaml(self, custom_nodes: Path | None) -> Path | None:
        section: dict[str, str] = {}
        if self.models_dir is not None:
            section["base_path"] = str(self.models_dir)
            for folder in (*COMFY_FOLDERS, *MODEL_FOLDERS):
                section[folder] = folder
        if custom_nodes is not None:
            section["custom_nodes"] = str(custom_nodes)
        if not section:
            return None
        path = self.scratch / "extra_model_paths.yaml"
        # JSON is valid YAML, and needs no yaml package here
        path.write_text(json.dumps({"remaskable": section}, indent=2))
        return path

    def command(self) -> list[str]:
        args = [self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                "--database-url", "sqlite:///:memory:", "--disable-api-nodes"]
        extra_custom_nodes = None
        if self.base_dir is not None:
            self._link_pack(self.base_dir / "custom_nodes")
            args += ["--base-directory", str(self.base_dir)]
        else:
            for name in ("input", "output", "temp", "user"):
                (self.scratch / name).mkdir(exist_ok=True)
            args += ["--input-directory", str(self.scratch / "input"), "--output-directory",
                     str(self.scratch / "output"), "--temp-directory", str(self.scratch / "temp"),
                     "--user-directory", str(self.scratch / "user")]
            if not self._pack_installed_in(self.comfyui_dir / "custom_nodes"):
                extra_custom_nodes = self.scratch / "custom_nodes"
                self._link_pack(extra_custom_nodes)
        yaml_path = self._extra_paths_yaml(extra_custom_nodes)
        if yaml_path is not None:
            args += ["--extra-model-paths-config", str(yaml_path)]
        return args + list(self.extra_args)

    def start(self, timeout: float = 180.0) -> "ComfyServer":
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        log = open(self.log_path, "w")
        self.process = subprocess.Popen(self.command(), cwd=self.comfyui_dir, env=env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"ComfyUI exited with code {self.process.returncode} during start-up:\n"
                                  f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/system_stats", timeout=2):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        self.stop()
        raise ServerError(f"ComfyUI did not answer on {self.url} within {timeout:.0f} s:\n{self.log_tail()}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()
