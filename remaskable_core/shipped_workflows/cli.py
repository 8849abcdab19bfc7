"""``python -m remaskable_core workflows``: list the shipped example workflows, or rebuild their JSON files."""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext
from pathlib import Path

from . import all_workflows

WORKFLOWS_DIR = Path(__file__).resolve().parents[2] / "workflows"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "build"),
                        help="list: the shipped workflows; build: rewrite workflows/*.json from their definitions")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--server", help="a running ComfyUI with the pack, whose node definitions lay out the files")
    where.add_argument("--comfyui", type=Path, help="ComfyUI directory to start headless for that")
    parser.add_argument("--out", type=Path, default=WORKFLOWS_DIR, help="folder to write (default: workflows/)")


def write_workflow_files(object_info: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for workflow in all_workflows():
        path = out / f"{workflow.name}.json"
        path.write_text(json.dumps(workflow.to_ui(object_info), indent=2) + "\n")
        written.append(path)
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
        for path in write_workflow_files(client.object_info(), args.out):
            print(path)
    return 0
