"""Command line: ``python -m remaskable_core <command> ...`` (run, models, and the tools of later stages)."""

from __future__ import annotations

import argparse
import importlib
import sys

# command -> (module, one-line help); each module defines add_arguments(parser) and main(args) -> exit code
COMMANDS = {
    "run": (".run", "run a workflow on an image in headless ComfyUI and save the result"),
    "models": (".models.cli", "list, check or download the model files the pack knows"),
    "train-head": (".train_head", "train DINOv2 Refine's linear head on CelebAMask-HQ-style image/mask pairs"),
    "workflows": (".shipped_workflows.cli", "list the shipped example workflows, or rebuild their files"),
    "provenance": (".provenance.cli", "show the edit manifest, watermark and C2PA status of saved images"),
    "eval": (".evaluation.cli", "score edits (PSNR/SSIM/MSE/LPIPS outside the mask, identity, re-ID) and parsing"),
    "bench": (".benchmark.cli", "per-stage latency and memory of an edit, sampler vs stock KSampler, memory over edits"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remaskable_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name, __package__)
        modules[name] = module
        module.add_arguments(commands.add_parser(name, help=help_text, description=module.__doc__))
    args = parser.parse_args(argv)
    return modules[args.command].main(args)


if __name__ == "__main__":
    sys.exit(main())
