"""``python -m remaskable_core models``: the model files the pack knows, which are present, and getting them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ReMaskableError
from .download import sha256_of
from .locate import DirectoryLocator, find_model, require_model
from .manifest import MODELS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "verify", "download", "markdown"),
                        help="list: every known model and whether it is present; verify: sha256 of present files; "
                             "download: fetch the named models (or the defaults); markdown: README's model table")
    parser.add_argument("names", nargs="*", help="model names for download (default: every default model)")
    parser.add_argument("--models", type=Path, help="the ComfyUI models directory (e.g. ComfyUI/models)")


def _human(size: int | None) -> str:
    return "?" if size is None else f"{size / 1e6:,.0f} MB"


def markdown_table() -> str:
    """The model table of README.md, generated from the manifest so the two never disagree."""
    rows = ["| file | put it in | what it is | size | licence | source |", "|---|---|---|---|---|---|"]
    for entry in MODELS:
        licence = entry.license if entry.commercial_use else f"**non-commercial**: {entry.license}"
        rows.append(f"| `{entry.name}` | `models/{entry.folder}/` | {entry.description} | {_human(entry.size)} | "
                    f"{licence} | {entry.source} |")
    return "\n".join(rows)


def main(args: argparse.Namespace) -> int:
    if args.action == "markdown":
        print(markdown_table())
        return 0
    if args.models is None:
        print("error: --models DIR is required for this action", file=sys.stderr)
        return 2
    locator = DirectoryLocator(args.models)
    if args.action == "list":
        print(f"{'folder':17} {'name':44} {'size':>9}  {'present':7}  licence")
        for entry in MODELS:
            present = "yes" if find_model(locator, entry.folder, entry.name) else "-"
            print(f"{entry.folder:17} {entry.name:44} {_human(entry.size):>9}  {present:7}  {entry.licence_note()}")
        return 0
    if args.action == "verify":
        failures = 0
        for entry in MODELS:
            path = find_model(locator, entry.folder, entry.name)
            if path is None:
                continue
            for remote in entry.files:
                file = path / remote.path if remote.path else path
                if not remote.sha256 or not file.is_file():
                    print(f"?    {file} (no published sha256)")
                    continue
                ok = sha256_of(file).startswith(remote.sha256)
                failures += not ok
                print(f"{'ok ' if ok else 'BAD'}  {file}")
        return 1 if failures else 0
    wanted = [e for e in MODELS if (e.name in args.names if args.names else e.default)]
    unknown = set(args.names) - {e.name for e in MODELS}
    if unknown:
        print(f"error: unknown model(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    for entry in wanted:
        def progress(done: int, total: int | None) -> None:
            print(f"\r{entry.name}: {done / 1e6:,.0f}/{_human(total)}", end="", file=sys.stderr, flush=True)
        try:
            path = require_model(locator, entry.folder, entry.name, allow_download=True, progress=progress)
        except ReMaskableError as exc:
            print(f"\nerror: {exc}", file=sys.stderr)
            return 1
        print(f"\n{path}")
    return 0
