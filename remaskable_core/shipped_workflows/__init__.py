"""The example workflows shipped in ``workflows/``, defined as API prompts and laid out for the canvas.

Each definition is the single source of its ``workflows/<name>.json``: ``python -m remaskable_core workflows build``
writes the files from a running ComfyUI's node definitions, and a test checks the shipped files still turn back
into these prompts, so a workflow cannot silently drift from the nodes it uses. Model names are the manifest's
defaults, so ``python -m tests.fixtures.models DIR`` provides every file the workflows need (as small fakes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..models.manifest import MODELS, entry_by_name


class NodeRef:
    def __init__(self, node_id: str):
        self.id = node_id

    def __getitem__(self, output: int) -> list:
        return [self.id, output]


class Graph:
    """A tiny prompt builder: ``g.add("CLIPTextEncode", text="...", clip=ckpt[1])`` returns a reference whose
    ``[i]`` is a link to output i."""

    def __init__(self) -> None:
        self.prompt: dict[str, dict] = {}
        self.positions: dict[str, tuple[float, float]] = {}

    def add(self, class_type: str, title: str | None = None, pos: tuple[float, float] | None = None,
            **inputs: Any) -> NodeRef:
        node_id = str(len(self.prompt) + 1)
        entry: dict[str, Any] = {"class_type": class_type, "inputs": inputs}
        if title:
            entry["_meta"] = {"title": title}
        self.prompt[node_id] = entry
        if pos is not None:
            self.positions[node_id] = pos
        return NodeRef(node_id)


@dataclass
class ShippedWorkflow:
    name: str  # file stem in workflows/
    title: str
    summary: str  # what it does, one paragraph of Markdown
    graph: Graph
    models: tuple[tuple[str, str], ...]  # (folder, file) the workflow loads
    how_to: tuple[str, ...] = ()  # steps for the user
    extra_notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def prompt(self) -> dict[str, dict]:
        return self.graph.prompt

    def note_markdown(self) -> str:
        lines = [f"# {self.title}", "", self.summary, ""]
        if self.how_to:
            lines += ["## How to use", *[f"{i}. {step}" for i, step in enumerate(self.how_to, 1)], ""]
        lines += ["## Model files", ""]
        for folder, name in self.models:
            entry = entry_by_name(folder, name)
            where = f"`ComfyUI/models/{folder}/{name}`"
            if entry is None:
                lines.append(f"- {where}")
                continue
            licence = entry.license if entry.commercial_use else f"**non-commercial only** ({entry.license})"
            lines.append(f"- {where}: {entry.description}. From {entry.source}; licence {licence}.")
        lines += ["", "Missing files stop the workflow with a message saying where to get them; switch on a "
                      "loader's *download_if_missing* to fetch them (size and sha256 checked)."]
        lines += ["", *self.extra_notes] if self.extra_notes else []
        return "\n".join(lines).rstrip() + "\n"

    def to_ui(self, object_info: dict) -> dict:
        from ..workflow import Note, api_to_ui

        return api_to_ui(self.prompt, object_info, positions=self.graph.positions,
                         notes=(Note(self.note_markdown(), (60.0, -420.0), (560.0, 380.0), "Read me"),),
                         extra={"remaskable": {"workflow": self.name, "title": self.title}})


def _definitions() -> list[Callable[[], ShippedWorkflow]]:
    from . import edits, neighbours

    return [*edits.WORKFLOWS, *neighbours.WORKFLOWS]


def all_workflows() -> list[ShippedWorkflow]:
    workflows = [make() for make in _definitions()]
    names = [w.name for w in workflows]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate workflow names: {names}")
    for workflow in workflows:
        for folder, name in workflow.models:
            if entry_by_name(folder, name) is None and not any(e.name == name for e in MODELS):
                raise ValueError(f"{workflow.name}: model {folder}/{name} is not in the manifest")
    return workflows
