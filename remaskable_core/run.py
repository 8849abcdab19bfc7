"""``python -m remaskable_core run``: run a workflow (UI or API format) on an image in headless ComfyUI."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import nullcontext
from pathlib import Path

from .client import ComfyClient, ComfyRequestError, format_execution_error
from .server import ComfyServer, ServerError
from .workflow import WorkflowError, is_api_format, ui_to_api

IMAGE_LOADERS = ("LoadImage",)


class RunError(RuntimeError):
    pass


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def find_node(prompt: dict, ref: str) -> str:
    """A node id from ``ref``: an id, an exact title, or a class type that only one node has."""
    if ref in prompt:
        return ref
    by_title = [i for i, n in prompt.items() if n.get("_meta", {}).get("title") == ref]
    by_type = [i for i, n in prompt.items() if n["class_type"] == ref]
    for matches in (by_title, by_type):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise RunError(f"'{ref}' matches nodes {', '.join(matches)}; use a node id.")
    known = ", ".join(f"{i} ({n.get('_meta', {}).get('title') or n['class_type']})" for i, n in prompt.items())
    raise RunError(f"No node '{ref}' in the workflow. Nodes: {known}.")


def apply_override(prompt: dict, object_info: dict, assignment: str) -> None:
    target, sep, value = assignment.partition("=")
    ref, dot, input_name = target.rpartition(".")
    if not sep or not dot:
        raise RunError(f"--set '{assignment}': expected <node>.<input>=<value>, e.g. KSampler.seed=7.")
    node_id = find_node(prompt, ref)
    class_type = prompt[node_id]["class_type"]
    schema = object_info.get(class_type, {}).get("input", {})
    known = {**schema.get("required", {}), **schema.get("optional", {})}
    if input_name not in known:
        raise RunError(f"--set '{assignment}': node {node_id} ({class_type}) has no input '{input_name}'. "
                       f"Inputs: {', '.join(known)}.")
    prompt[node_id]["inputs"][input_name] = parse_value(value)


def image_targets(prompt: dict, specs: list[str]) -> list[tuple[str, Path]]:
    """Pairs (LoadImage node id, file) from ``--image`` values: ``PATH`` (the first image loader) or ``NODE=PATH``."""
    loaders = sorted((i for i, n in prompt.items() if n["class_type"] in IMAGE_LOADERS), key=_node_order)
    targets = []
    for position, spec in enumerate(specs):
        ref, sep, path = spec.partition("=")
        if sep and not Path(spec).exists():
            node_id = find_node(prompt, ref)
        else:
            path = spec
            if position >= len(loaders):
                raise RunError(f"--image {spec}: the workflow has {len(loaders)} image loader(s) "
                               f"({', '.join(loaders) or 'none'}); name one with NODE=PATH.")
            node_id = loaders[position]
        if not Path(path).is_file():
            raise RunError(f"--image: no such file {path}")
        targets.append((node_id, Path(path)))
    return targets


def _node_order(node_id: str):
    return (0, int(node_id)) if node_id.isdigit() else (1, node_id)


def prepare_prompt(workflow: dict, object_info: dict, overrides: list[str]) -> dict:
    prompt = json.loads(json.dumps(workflow)) if is_api_format(workflow) else ui_to_api(workflow, object_info)
    for assignment in overrides:
        apply_override(prompt, object_info, assignment)
    return prompt


def print_event(kind: str, data: dict) -> None:
    if kind == "execution_start":
        print(f"started prompt {data.get('prompt_id')}", file=sys.stderr, flush=True)
    elif kind == "executing" and data.get("node") is not None:
        print(f"  running node {data['node']}", file=sys.stderr, flush=True)
    elif kind == "progress":
        print(f"  node {data.get('node')}: {data.get('value')}/{data.get('max')}", file=sys.stderr, flush=True)
    elif kind == "execution_cached" and data.get("nodes"):
        print(f"  cached: {', '.join(map(str, data['nodes']))}", file=sys.stderr, flush=True)


def save_outputs(client: ComfyClient, images: list[tuple[str, dict]], out: Path) -> list[Path]:
    if not images:
        raise RunError("The workflow finished but saved no image: it needs a Save Image node.")
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for index, (node_id, image) in enumerate(images):
        path = out if len(images) == 1 else out.with_name(f"{out.stem}_{index + 1}{out.suffix}")
        path.write_bytes(client.view(image))
        written.append(path)
    return written


def run_workflow(client: ComfyClient, workflow: dict, images: list[str], out: Path, overrides: list[str],
                 timeout: float, verbose: bool = True) -> list[Path]:
    object_info = client.object_info()
    prompt = prepare_prompt(workflow, object_info, overrides)
    for node_id, path in image_targets(prompt, images):
        prompt[node_id]["inputs"]["image"] = client.upload_image(path)
    result = client.run(prompt, timeout, on_event=print_event if verbose else None)
    if result.status == "interrupted":
        raise RunError("The prompt was interrupted.")
    if result.status != "success":
        raise RunError(format_execution_error(result.error or {}))
    return save_outputs(client, result.images(), out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workflow", type=Path, help="workflow JSON, as saved by ComfyUI (UI format) or exported (API)")
    parser.add_argument("--image", action="append", default=[], metavar="[NODE=]PATH",
                        help="image for the first Load Image node, or for the node NODE (id or title); repeatable")
    parser.add_argument("--out", type=Path, required=True, help="where to write the saved image (out_N.png if several)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                        help="override an input: NODE is a node id, title or unique class type; VALUE is JSON or text")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--comfyui", type=Path, help="ComfyUI directory to start headless (default: $COMFYUI_DIR or "
                                                    "~/ComfyUI)")
    where.add_argument("--server", help="URL of a running ComfyUI with ReMaskable installed, e.g. http://127.0.0.1:8188")
    parser.add_argument("--models", type=Path, help="an extra ComfyUI-style models directory (<dir>/<folder>/<file>)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the workflow")
    parser.add_argument("--quiet", action="store_true", help="do not print progress")


def main(args: argparse.Namespace) -> int:
    try:
        workflow = json.loads(args.workflow.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: cannot read workflow {args.workflow}: {exc}", file=sys.stderr)
        return 2
    try:
        server = nullcontext() if args.server else ComfyServer(args.comfyui, models_dir=args.models)
        with server as started:
            url = args.server or started.url
            written = run_workflow(ComfyClient(url), workflow, args.image, args.out, args.overrides, args.timeout,
                                   verbose=not args.quiet)
    except (RunError, WorkflowError, ComfyRequestError, ServerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0
