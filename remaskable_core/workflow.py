"""Convert a ComfyUI UI ("save") workflow to the API/prompt format, without a browser.

ComfyUI's backend has no converter: the frontend builds the prompt in ``app.graphToPrompt()``. This module
re-implements that function of comfyui-frontend-package 1.27.x in plain Python, from the workflow JSON and
the server's ``GET /object_info`` dict, so tests and scripts can queue example workflows with ``POST /prompt``::

    from remaskable_core.workflow import ui_to_api, is_api_format
    prompt = workflow if is_api_format(workflow) else ui_to_api(workflow, object_info)

What it reproduces (checked against the real frontend: see tests/unit/data/regenerate_expected.py; a probe
that loaded every core node type of ComfyUI v0.3.64 with and without widgets_values gave identical inputs):

* widget layout: a node's widgets are its widget inputs (types INT, FLOAT, BOOLEAN, STRING, COMBO or a list of
  options, ...) in ``input_order`` (required, then optional, then the rest), each followed by the frontend's extra
  widgets: ``control_after_generate`` after INT inputs that declare it or are named ``seed``/``noise_seed``
  (after COMBO inputs that declare it: the control and a filter list), the "Auto-refresh" toggle and refresh
  button after ``remote`` combos, and one ``upload`` button after all inputs when a required combo declares
  ``image_upload``/``video_upload``/``animated_image_upload`` (the frontend appends an ``upload`` input). The
  values of a list ``widgets_values`` fill the widgets in that order; extra widgets are not sent (except the
  frontend's own junk inputs it does send: ``refresh`` of remote combos, ``preview`` of PreviewAny, ``image`` of
  the 3D preview nodes). Old saves with a slot for a ``forceInput`` input are migrated as the frontend does.
* inputs converted to sockets keep their ``widgets_values`` slot; a link into them wins over the value.
* links: version 0.4 arrays and version 1 objects; resolution through ``Reroute`` (and any virtual node with an
  input), bypassed nodes (mode 4: the input matched by type as ``ExecutableNodeDTO#getBypassSlotIndex`` does),
  muted nodes (mode 2: the node is dropped, and every input linked from it is dropped).
* ``PrimitiveNode``: its value is written into the widget of every directly linked widget input
  (``applyToGraph``, whatever the primitive's mode; not through a Reroute), INT/FLOAT rounded as the widget does.
* serialisation of values: lists become ``{"__value__": [...]}``; ``dynamicPrompts`` strings get their
  comments stripped and ``{a|b}`` choices made (with ``rng``); ``filename_prefix`` of save nodes gets
  ``%Node.widget%`` and ``%date:...%`` replaced (with ``now``); ``image_folder`` upload combos get `` [output]``.
* ``_meta.title``: the node's title, else the node definition's ``display_name`` (else its name).

What it refuses (``WorkflowError``): unknown node types that would be sent (the message lists them all; muted or
bypassed ones are fine), subgraphs (``definitions.subgraphs``) and legacy group nodes, nodes whose inputs only a
browser can produce (webcam capture, Load3D), links to missing links or nodes and circular links (where the
frontend throws too), malformed workflows.

Known differences from the frontend, on purpose: a ``widgets_values`` dict (keyed by input name, as some packs
save it) is mapped by name, while the 1.27 core ignores it and uses defaults; unknown node types that have no
links at all (decorations of packs that are not installed, like Note) are dropped, unknown linked nodes raise
instead of being sent as ``class_type: null``; nodes without ``display_name`` get their name as title, where the
frontend's English locale may have a prettier one (e.g. "Image Blend" for ImageBlend).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import ReMaskableError

__all__ = ["WorkflowError", "ui_to_api", "api_to_ui", "is_api_format", "FRONTEND_ONLY_TYPES"]


class WorkflowError(ReMaskableError, ValueError):
    """A workflow that cannot be converted; the message names the node (id, type, title) and what is wrong."""


#: Node types that exist only in the frontend (virtual nodes): never sent to the server.
FRONTEND_ONLY_TYPES = frozenset({"Reroute", "PrimitiveNode", "Note", "MarkdownNote"})

MODE_ALWAYS, MODE_NEVER, MODE_BYPASS = 0, 2, 4

# Widget types of the frontend's ComfyWidgets whose value is the plain widget value.
_PLAIN_WIDGET_TYPES = frozenset({
    "INT", "FLOAT", "BOOLEAN", "STRING", "COMBO", "MARKDOWN", "FILEUPLOAD", "COLOR", "IMAGECOMPARE",
    "TREESELECT", "MULTISELECT", "CHART", "GALLERIA", "SELECTBUTTON", "TEXTAREA",
})
# Widget types registered by core frontend extensions whose value only a browser can produce.
_BROWSER_ONLY_WIDGET_TYPES = frozenset({"WEBCAM", "LOAD_3D", "LOAD_3D_ANIMATION"})
# Widget types added by frontend extensions (see _augment_inputs).
_EXTENSION_WIDGET_TYPES = frozenset({"IMAGEUPLOAD", "AUDIOUPLOAD", "AUDIO_UI", "PREVIEW_3D", "PREVIEW_3D_ANIMATION"})
_WIDGET_TYPES = _PLAIN_WIDGET_TYPES | _BROWSER_ONLY_WIDGET_TYPES | _EXTENSION_WIDGET_TYPES

# Extensions "Comfy.SaveImageExtraOutput" (filename_prefix text replacements) and "Comfy.AudioWidget".
_SAVE_NODE_TYPES = frozenset({
    "SaveImage", "SaveAnimatedWEBP", "SaveWEBM", "SaveAudio", "SaveGLB", "SaveAnimatedPNG", "CLIPSave",
    "VAESave", "ModelSave", "LoraSave", "SaveLatent",
})
_AUDIO_UI_TYPES = frozenset({"LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus"})
_SEED_NAMES = ("seed", "noise_seed")
_SR_PROPERTY = "Node name for S&R"
_PRIMITIVE_REPLACE_PROPERTY = "Run widget replace on values"


class _Undefined:
    """JavaScript ``undefined``: an input whose value is undefined is left out of the prompt."""

    def __repr__(self) -> str:
        return "undefined"


_UNDEFINED = _Undefined()


# --------------------------------------------------------------------------------------------------------------
# Node definitions -> widget layout


@dataclass
class _InputSpec:
    name: str
    type: str  # "COMBO" for a list of options
    options: dict
    combo_values: list | None
    optional: bool


@dataclass
class _Widget:
    name: str
    kind: str  # "value", "control", "filter", "upload", "audio_upload", "audio_ui", "auto_refresh",
    #            "refresh", "preview", "constant", "browser"
    spec: _InputSpec | None
    in_values: bool  # occupies a widgets_values slot (litegraph: widget.serialize !== false)
    in_prompt: bool  # sent to the server (widget.options.serialize !== false)
    default: Any


@dataclass
class _NodeLayout:
    sockets: list[tuple[str, str, bool]]  # frontend input slots in order: (name, type, has_widget)
    widgets: list[_Widget]
    outputs: list[str]  # output types
    v2_inputs: list[_InputSpec]  # inputs in definition order (for migrateWidgetsValues)
    upload_target: str | None = None  # the combo whose value the image/video upload widget transforms


def _spec_of(name: str, raw: Any, optional: bool) -> _InputSpec:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise TypeError(f"input {name!r}: malformed spec {raw!r}")
    head = raw[0]
    options = raw[1] if len(raw) > 1 and isinstance(raw[1], dict) else {}
    if isinstance(head, (list, tuple)):
        return _InputSpec(name, "COMBO", dict(options), list(head), optional)
    combo_values = options.get("options") if head == "COMBO" else None
    return _InputSpec(name, str(head), dict(options), list(combo_values or []) if head == "COMBO" else None,
                      optional)


def _augment_inputs(class_type: str, required: dict[str, _InputSpec]) -> None:
    """The inputs that core frontend extensions add in ``beforeRegisterNodeDef``."""
    if class_type in ("Preview3D", "SaveGLB"):  # Comfy.Preview3D, Comfy.SaveGLB
        required["image"] = _InputSpec("image", "PREVIEW_3D", {}, None, False)
    elif class_type == "Preview3DAnimation":
        required["image"] = _InputSpec("image", "PREVIEW_3D_ANIMATION", {}, None, False)
    if class_type in _AUDIO_UI_TYPES:  # Comfy.AudioWidget
        required["audioUI"] = _InputSpec("audioUI", "AUDIO_UI", {}, None, False)
    audio = required.get("audio")
    if audio is not None and audio.options.get("audio_upload") is True:  # Comfy.UploadAudio
        required["upload"] = _InputSpec("upload", "AUDIOUPLOAD", {}, None, False)
    for spec in list(required.values()):  # Comfy.UploadImage: the first media-upload combo
        if spec.type == "COMBO" and any(spec.options.get(k) is True
                                        for k in ("image_upload", "video_upload", "animated_image_upload")):
            required["upload"] = _InputSpec("upload", "IMAGEUPLOAD", dict(spec.options, imageInputName=spec.name),
                                            None, False)
            break


def _combo_default(spec: _InputSpec) -> Any:
    default = spec.options.get("default")
    if default:
        return default
    if spec.combo_values:
        return spec.combo_values[0]
    if spec.options.get("remote"):
        return "Loading..."
    return _UNDEFINED


def _default(options: dict, fallback: Any) -> Any:
    value = options.get("default")
    return fallback if value is None else value


def _control_name(options: dict, default_name: str) -> str:
    """``addValueControlWidgets``' getName: a string option of that name, else ``control_prefix`` + name."""
    if isinstance(options.get(default_name), str):
        return options[default_name]
    if options.get("control_prefix"):
        return f"{options['control_prefix']} {default_name}"
    return default_name


def _widgets_for(class_type: str, spec: _InputSpec) -> list[_Widget]:
    """The widgets the frontend's widget constructor creates for one input, in order."""
    t, o = spec.type, spec.options
    if t == "IMAGEUPLOAD":
        return [_Widget(spec.name, "upload", spec, True, False, "image")]
    if t == "AUDIOUPLOAD":
        return [_Widget(spec.name, "audio_upload", spec, True, False, "")]
    if t == "AUDIO_UI":  # a DOM widget with serialize = false (not verified: no audio nodes on this server)
        return [_Widget(spec.name, "audio_ui", spec, False, False, _UNDEFINED)]
    if t in ("PREVIEW_3D", "PREVIEW_3D_ANIMATION"):  # a component widget whose value is always ""
        return [_Widget(spec.name, "constant", spec, True, True, "")]
    if t in _BROWSER_ONLY_WIDGET_TYPES:
        return [_Widget(spec.name, "browser", spec, True, True, _UNDEFINED)]
    if t == "INT":
        widgets = [_Widget(spec.name, "value", spec, True, True, _default(o, 0))]
        control = o.get("control_after_generate")
        if control is None:
            control = spec.name in _SEED_NAMES
        if control:
            widgets.append(_Widget(_control_name(o, "control_after_generate"), "control", None, True, False,
                                   "randomize"))
        return widgets
    if t == "FLOAT":
        return [_Widget(spec.name, "value", spec, True, True, _default(o, 0))]
    if t == "BOOLEAN":
        return [_Widget(spec.name, "value", spec, True, True, _default(o, False))]
    if t == "STRING":
        return [_Widget(spec.name, "value", spec, True, True, _default(o, ""))]
    if t == "COMBO":
        if o.get("multi_select"):
            return [_Widget(spec.name, "value", spec, True, True, [])]
        widgets = [_Widget(spec.name, "value", spec, True, True, _combo_default(spec))]
        remote = o.get("remote")
        if remote:
            widgets.append(_Widget("Auto-refresh after generation", "auto_refresh", None, True, False, False))
            if isinstance(remote, dict) and remote.get("refresh_button"):
                widgets.append(_Widget("refresh", "refresh", None, True, True, "refresh"))
        if o.get("control_after_generate"):
            widgets.append(_Widget(_control_name(o, "control_after_generate"), "control", None, True, False,
                                   "randomize"))
            widgets.append(_Widget(_control_name(o, "control_filter_list"), "filter", None, True, False, ""))
        return widgets
    return [_Widget(spec.name, "value", spec, True, True, _default(o, _UNDEFINED))]


def _ordered(inputs: dict[str, _InputSpec], input_order: dict | None) -> list[_InputSpec]:
    """``getOrderedInputSpecs``: required per input_order, optional per input_order, then the rest."""
    if not input_order:
        return list(inputs.values())
    ordered: list[_InputSpec] = []
    for name in input_order.get("required") or []:
        spec = inputs.get(name)
        if spec is not None and not spec.optional:
            ordered.append(spec)
    for name in input_order.get("optional") or []:
        spec = inputs.get(name)
        if spec is not None and spec.optional:
            ordered.append(spec)
    seen = {s.name for s in ordered}
    ordered.extend(s for s in inputs.values() if s.name not in seen)
    return ordered


def _layout(class_type: str, node_def: dict) -> _NodeLayout:
    raw_inputs = node_def.get("input") or {}
    required = {n: _spec_of(n, s, False) for n, s in (raw_inputs.get("required") or {}).items()}
    optional = {n: _spec_of(n, s, True) for n, s in (raw_inputs.get("optional") or {}).items()}
    _augment_inputs(class_type, required)
    inputs = {**required, **{n: s for n, s in optional.items() if n not in required}}
    ordered = _ordered(inputs, node_def.get("input_order"))
    sockets: list[tuple[str, str, bool]] = []
    widget_sockets: list[tuple[str, str, bool]] = []
    widgets: list[_Widget] = []
    for spec in ordered:
        if spec.type not in _WIDGET_TYPES or spec.options.get("forceInput"):
            sockets.append((spec.name, spec.type, False))
            continue
        widgets.extend(_widgets_for(class_type, spec))
        widget_sockets.append((spec.name, spec.type, True))
    if class_type == "PreviewAny":  # Comfy.PreviewAny: a read-only STRING widget with serialize = false
        widgets.append(_Widget("preview", "preview", None, False, True, ""))
    outputs = ["COMBO" if isinstance(t, (list, tuple)) else str(t) for t in node_def.get("output") or []]
    upload = inputs.get("upload")
    upload_target = upload.options.get("imageInputName") if upload is not None and upload.type == "IMAGEUPLOAD" \
        else None
    return _NodeLayout(sockets + widget_sockets, widgets, outputs, list(inputs.values()), upload_target)


# --------------------------------------------------------------------------------------------------------------
# The graph


@dataclass
class _Slot:
    name: str
    type: Any
    link: Any = None
    widget: str | None = None  # name of the widget behind this input, if any


@dataclass
class _Link:
    id: Any
    origin_id: Any
    origin_slot: int
    target_id: Any
    target_slot: int
    type: Any


@dataclass
class _Node:
    raw: dict
    id: Any
    key: str
    type: str
    mode: int
    title: str
    virtual: bool
    layout: _NodeLayout | None
    inputs: list[_Slot]
    outputs: list[_Slot]
    output_links: list[list]
    widget_values: dict[str, Any] = field(default_factory=dict)  # widget name -> current value


def _describe(node: dict | _Node) -> str:
    raw = node.raw if isinstance(node, _Node) else node
    title = raw.get("title")
    text = f"node {raw.get('id')!r} ({raw.get('type')!r}"
    if title:
        text += f", title {title!r}"
    return text + ")"


def _parse_links(workflow: dict) -> dict[Any, _Link]:
    links: dict[Any, _Link] = {}
    raw_links = workflow.get("links") or []
    if isinstance(raw_links, dict):  # an old litegraph serialisation kept links keyed by id
        raw_links = list(raw_links.values())
    for raw in raw_links:
        if isinstance(raw, (list, tuple)):
            if len(raw) < 5:
                raise WorkflowError(f"link {raw!r}: expected [id, origin, origin_slot, target, target_slot, type]")
            link = _Link(raw[0], raw[1], raw[2], raw[3], raw[4], raw[5] if len(raw) > 5 else None)
        elif isinstance(raw, dict):
            try:
                link = _Link(raw["id"], raw["origin_id"], raw["origin_slot"], raw["target_id"],
                             raw["target_slot"], raw.get("type"))
            except KeyError as exc:
                raise WorkflowError(f"link {raw!r}: missing key {exc.args[0]!r}") from None
        elif raw is None:
            continue
        else:
            raise WorkflowError(f"link {raw!r}: expected a list or an object")
        links[link.id] = link
    return links


def _check_unsupported(workflow: dict, object_info: dict) -> None:
    nodes = workflow["nodes"]
    subgraphs = {}
    for sg in ((workflow.get("definitions") or {}).get("subgraphs") or []):
        if isinstance(sg, dict) and "id" in sg:
            subgraphs[sg["id"]] = sg.get("name") or sg["id"]
    group_nodes = (workflow.get("extra") or {}).get("groupNodes") or {}
    problems: list[str] = []
    missing: dict[str, list[str]] = {}
    for node in nodes:
        if not isinstance(node, dict) or "id" not in node:
            raise WorkflowError(f"malformed node entry {str(node)[:200]}")
        ntype = node.get("type")
        if not isinstance(ntype, str) or not ntype:
            raise WorkflowError(f"{_describe(node)}: the node has no type")
        if ntype in subgraphs:
            problems.append(
                f"{_describe(node)} is an instance of subgraph {subgraphs[ntype]!r}; subgraphs "
                "(definitions.subgraphs) are not supported: unpack it in the frontend (right-click > Unpack "
                "Subgraph) and save again, or export the workflow with File > Export (API)")
        elif ntype.startswith(("workflow>", "workflow/")) and ntype[9:] in group_nodes:
            problems.append(
                f"{_describe(node)} is a legacy group node; group nodes are not supported: convert it to "
                "nodes in the frontend and save again, or export the workflow with File > Export (API)")
        elif ntype in object_info or ntype in FRONTEND_ONLY_TYPES:
            continue
        elif node.get("mode") in (MODE_NEVER, MODE_BYPASS) or not _has_links(node):
            continue  # muted/bypassed: the frontend never sends it; unlinked: a decoration (Note-like)
        else:
            label = repr(node.get("id")) + (f" {node['title']!r}" if node.get("title") else "")
            missing.setdefault(ntype, []).append(label)
    if problems:
        raise WorkflowError("; ".join(problems))
    if missing:
        listing = ", ".join(f"{t} (node {', '.join(ids)})" for t, ids in sorted(missing.items()))
        raise WorkflowError(
            f"unknown node types, not in the server's object_info: {listing}; install the pack that provides "
            f"{'it' if len(missing) == 1 else 'them'} (e.g. with ComfyUI-Manager) and restart ComfyUI")


def _has_links(node: dict) -> bool:
    if any(isinstance(i, dict) and i.get("link") is not None for i in node.get("inputs") or []):
        return True
    return any(isinstance(o, dict) and o.get("links") for o in node.get("outputs") or [])


def _build_nodes(workflow: dict, object_info: dict) -> dict[str, _Node]:
    layouts: dict[str, _NodeLayout] = {}
    nodes: dict[str, _Node] = {}
    for raw in workflow["nodes"]:
        ntype = raw["type"]
        if ntype not in object_info and ntype not in FRONTEND_ONLY_TYPES and not _has_links(raw):
            continue  # unknown decoration
        key = str(raw["id"])
        if key in nodes:
            raise WorkflowError(f"{_describe(raw)}: duplicate node id")
        layout = None
        if ntype in object_info and ntype not in FRONTEND_ONLY_TYPES:
            layout = layouts.get(ntype)
            if layout is None:
                try:
                    layout = layouts[ntype] = _layout(ntype, object_info[ntype])
                except (TypeError, AttributeError) as exc:
                    raise WorkflowError(f"{_describe(raw)}: object_info entry is malformed: {exc}") from None
        raw_inputs = [i for i in raw.get("inputs") or [] if isinstance(i, dict)]
        raw_outputs = [o for o in raw.get("outputs") or [] if isinstance(o, dict)]
        if layout is not None:
            # ComfyNode.configure: the definition's inputs (types, widget flags) with the saved links,
            # then saved inputs the definition does not know.
            by_name = {i.get("name"): i for i in raw_inputs}
            inputs = [_Slot(n, t, by_name.get(n, {}).get("link"), n if w else None) for n, t, w in layout.sockets]
            known = {n for n, _, _ in layout.sockets}
            for i in raw_inputs:
                if i.get("name") not in known:
                    w = i.get("widget")
                    inputs.append(_Slot(i.get("name"), i.get("type"), i.get("link"),
                                        w.get("name") if isinstance(w, dict) else None))
            outputs = [_Slot(o.get("name"), o.get("type")) for o in raw_outputs]
            for idx, t in enumerate(layout.outputs):
                if idx < len(outputs):
                    outputs[idx].type = t
                else:
                    outputs.append(_Slot(t, t))
        else:
            inputs = [_Slot(i.get("name"), i.get("type"), i.get("link"),
                            i["widget"].get("name") if isinstance(i.get("widget"), dict) else None)
                      for i in raw_inputs]
            outputs = [_Slot(o.get("name"), o.get("type")) for o in raw_outputs]
        title = raw.get("title")
        if not title:
            if layout is not None:
                node_def = object_info[ntype]
                title = node_def.get("display_name") or node_def.get("name") or ntype
            else:
                title = {"PrimitiveNode": "Primitive", "MarkdownNote": "Markdown Note"}.get(ntype, ntype)
        mode = raw.get("mode") or MODE_ALWAYS
        nodes[key] = _Node(raw=raw, id=raw["id"], key=key, type=ntype, mode=mode, title=title,
                           virtual=layout is None and ntype in FRONTEND_ONLY_TYPES, layout=layout,
                           inputs=inputs, outputs=outputs,
                           output_links=[list(o.get("links") or []) for o in raw_outputs])
    return nodes


# --------------------------------------------------------------------------------------------------------------
# Widget values


def _migrate_widgets_values(layout: _NodeLayout, values: list) -> list:
    """``migrateWidgetsValues``: drop the slots old frontends kept for ``forceInput`` inputs."""
    widget_names = {w.name for w in layout.widgets}
    originals = [s for s in layout.v2_inputs if s.name in widget_names or s.options.get("forceInput")]
    if not any(s.options.get("forceInput") for s in originals):
        return values
    count = sum(2 if s.options.get("control_after_generate") or s.name in _SEED_NAMES else 1 for s in originals)
    if count != len(values):
        return values
    return [v for i, v in enumerate(values) if not (i < len(originals) and originals[i].options.get("forceInput"))]


def _load_widget_values(node: _Node) -> None:
    layout = node.layout
    assert layout is not None
    values = node.raw.get("widgets_values")
    node.widget_values = {w.name: w.default for w in layout.widgets}
    if isinstance(values, dict):
        for w in layout.widgets:
            if w.in_values and w.name in values:
                _set_widget(node, w, values[w.name])
    elif isinstance(values, list):
        values = _migrate_widgets_values(layout, values)
        slots = [w for w in layout.widgets if w.in_values]
        for w, v in zip(slots, values):
            _set_widget(node, w, v)
    elif values is not None:
        raise WorkflowError(f"{_describe(node)}: widgets_values must be a list or an object, "
                            f"not {type(values).__name__}")


def _set_widget(node: _Node, widget: _Widget, value: Any) -> None:
    """Assign a widget value as the widget's setter does (a multiline STRING is a textarea: text only)."""
    if widget.kind == "constant":
        return
    spec = widget.spec
    if widget.kind == "value" and spec is not None and spec.type == "STRING" and spec.options.get("multiline"):
        value = "" if value is None else value if isinstance(value, str) else _js_str(value)
    node.widget_values[widget.name] = value


def _find_widget(node: _Node, name: str) -> _Widget | None:
    if node.layout is None:
        return None
    return next((w for w in node.layout.widgets if w.name == name), None)


def _js_round(x: float) -> float:
    return math.floor(x + 0.5)


def _number_callback(widget: _Widget, value: Any) -> Any:
    """The widget callback a PrimitiveNode triggers: INT snaps to its step, FLOAT rounds (frontend defaults)."""
    spec = widget.spec
    if spec is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    o = spec.options
    if spec.type == "INT":
        step = o.get("step") or 1
        if step == 1:
            return int(_js_round(value))
        offset = math.fmod(o.get("min", 0), step)
        result = _js_round((value - offset) / step) * step + offset
        return int(result) if float(result).is_integer() else result
    if spec.type == "FLOAT":
        step = o.get("step") if o.get("step") is not None else 0.5
        precision = max(0, -math.floor(math.log10(step))) if step > 0 else 0
        rnd = 10 ** -precision if precision and not o.get("round") else o.get("round")
        if not rnd:
            return value
        rounded = float(f"{_js_round(value / rnd) * rnd:.{precision}f}")
        low = o.get("min") if o.get("min") is not None else 0
        high = o.get("max") if o.get("max") is not None else 2048
        return min(max(rounded, low), high)
    return value


def _apply_primitives(nodes: dict[str, _Node], links: dict[Any, _Link], sr: _TextReplacer) -> None:
    """``PrimitiveNode.applyToGraph``: write the primitive's value into each target widget."""
    for node in nodes.values():
        if node.type != "PrimitiveNode" or not node.output_links or not node.output_links[0]:
            continue
        values = node.raw.get("widgets_values")
        first_link = links.get(node.output_links[0][0])
        value = _UNDEFINED
        if isinstance(values, list) and values:
            value = values[0]
        elif first_link is not None:  # no saved value: the widget starts as a copy of the target's
            target = nodes.get(str(first_link.target_id))
            slot = _target_slot(target, first_link) if target else None
            if target is not None and slot is not None and slot.widget in target.widget_values:
                value = target.widget_values[slot.widget]
        if value is _UNDEFINED:
            continue
        if value and (node.raw.get("properties") or {}).get(_PRIMITIVE_REPLACE_PROPERTY) and isinstance(value, str):
            value = sr.replace(value)
        for link_id in node.output_links[0]:
            link = links.get(link_id)
            target = nodes.get(str(link.target_id)) if link is not None else None
            if target is None:
                continue
            slot = _target_slot(target, link)
            if slot is None or not slot.widget:
                continue
            widget = _find_widget(target, slot.widget)
            if widget is None:
                continue
            _set_widget(target, widget, value)
            target.widget_values[widget.name] = _number_callback(widget, target.widget_values[widget.name])


def _target_slot(node: _Node, link: _Link) -> _Slot | None:
    slot = next((s for s in node.inputs if s.link == link.id), None)
    if slot is None and isinstance(link.target_slot, int) and 0 <= link.target_slot < len(node.inputs):
        slot = node.inputs[link.target_slot]
    return slot


def _js_str(value: Any) -> str:
    """JavaScript ``String(value)`` for JSON values."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        text = repr(value)
        if "e" in text:
            mantissa, exp = text.split("e")
            text = f"{mantissa}e{'+' if not exp.startswith('-') else ''}{int(exp)}"
        return text
    if isinstance(value, list):
        return ",".join("" if v is None else _js_str(v) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


_DATE_PARTS = {"d": lambda d: d.day, "M": lambda d: d.month, "h": lambda d: d.hour, "m": lambda d: d.minute,
               "s": lambda d: d.second}
_DATE_RE = re.compile("|".join(k + k + "?" for k in _DATE_PARTS) + "|yyy?y?")
_UNSAFE_FILENAME_RE = re.compile(r'[/?<>\\:*|"\x00-\x1F\x7F]')


def _format_date(text: str, date: datetime) -> str:
    def sub(m: re.Match) -> str:
        token = m.group(0)
        if token == "yy":
            return str(date.year)[2:]
        if token == "yyyy":
            return str(date.year)
        if token[0] in _DATE_PARTS:
            return str(_DATE_PARTS[token[0]](date)).rjust(len(token), "0")
        return token
    return _DATE_RE.sub(sub, text)


class _TextReplacer:
    """``applyTextReplacements``: ``%Node name for S&R or title.widget%`` and ``%date:format%``."""

    def __init__(self, nodes: dict[str, _Node], now: datetime | None):
        self.nodes = nodes
        self.now = now

    def _sr_name(self, node: _Node) -> Any:
        props = node.raw.get("properties") or {}
        if _SR_PROPERTY in props:
            return props[_SR_PROPERTY]
        if node.layout is not None and node.type not in _SAVE_NODE_TYPES:
            return node.type
        return None

    def replace(self, value: str) -> str:
        def sub(m: re.Match) -> str:
            text = m.group(1)
            split = text.split(".")
            if len(split) != 2:
                if split[0].startswith("date:"):
                    return _format_date(split[0][5:], self.now or datetime.now())
                return m.group(0)
            candidates = [n for n in self.nodes.values() if self._sr_name(n) == split[0]]
            if not candidates:
                candidates = [n for n in self.nodes.values() if n.title == split[0]]
            if not candidates:
                return m.group(0)
            node = candidates[0]
            if node.layout is None and node.type == "PrimitiveNode":
                wv = node.raw.get("widgets_values")
                if split[1] != "value" or not isinstance(wv, list) or not wv:
                    return m.group(0)
                val = wv[0]
            elif _find_widget(node, split[1]) is None:
                return m.group(0)
            else:
                val = node.widget_values.get(split[1])
                if val is _UNDEFINED:
                    val = None
            return _UNSAFE_FILENAME_RE.sub("_", "" if val is None else _js_str(val))
        return re.sub(r"%([^%]+)%", sub, value)


def _strip_comments(text: str) -> str:
    return re.sub(r"/\*[\s\S]*?\*/|//.*", "", text)


def _process_dynamic_prompt(text: str, rng: random.Random) -> str:
    """``processDynamicPrompt``: strip comments, pick one option of each ``{a|b|c}`` (nested allowed)."""
    src = _strip_comments(text)
    pos = 0

    def escape() -> str:
        nonlocal pos
        nxt = src[pos] if pos < len(src) else "undefined"
        pos += 1
        return "\\" + nxt

    def choice_block() -> str:
        nonlocal pos
        options: list[str] = []
        choice = ""
        depth = 0
        while pos < len(src):
            char = src[pos]
            pos += 1
            if char == "\\":
                choice += escape()
                continue
            if char == "{":
                depth += 1
            elif char == "}":
                if not depth:
                    break
                depth -= 1
            elif char == "|" and not depth:
                options.append(choice)
                choice = ""
                continue
            choice += char
        options.append(choice)
        return _process_dynamic_prompt(options[math.floor(rng.random() * len(options))], rng)

    result = ""
    while pos < len(src):
        char = src[pos]
        pos += 1
        if char == "\\":
            result += escape()
        elif char == "{":
            result += choice_block()
        else:
            result += char
    return re.sub(r"\\([{}|])", r"\1", result)


def _upload_path(spec: _InputSpec, value: Any) -> Any:
    """The value transform of image/video upload combos (``useImageUploadWidget``)."""
    folder = spec.options.get("image_folder") or "input"

    def annotate(item: Any) -> str:
        if isinstance(item, str):
            has = re.search(r"\[(input|output|temp)\]", item, re.IGNORECASE)
            return item + (f" [{folder}]" if not has and folder != "input" else "")
        if isinstance(item, dict):
            path = item.get("filename") or ""
            if item.get("subfolder"):
                path = f"{item['subfolder']}/{path}"
            kind = item.get("type")
            if kind:
                has = re.search(r"\[(input|output|temp)\]", str(kind), re.IGNORECASE)
                path += f" [{folder}]" if not has and folder != "input" else ""
            return path
        return ""

    if not value or value is _UNDEFINED:
        initial = _combo_default(spec)
        return annotate("undefined" if initial is _UNDEFINED else _js_str(initial))
    if isinstance(value, list):
        return [annotate(v) for v in value] if spec.options.get("allow_batch") else annotate(value[0])
    return annotate(value)


def _serialize_widget(node: _Node, widget: _Widget, sr: _TextReplacer, rng: random.Random) -> Any:
    value = node.widget_values.get(widget.name, widget.default)
    spec = widget.spec
    if widget.kind == "browser":
        raise WorkflowError(f"{_describe(node)}: input {widget.name!r} ({spec.type if spec else '?'}) is "
                            "produced by the browser (camera or 3D view); convert this workflow in the frontend")
    if spec is None or widget.kind != "value":
        return value
    if node.layout is not None and node.layout.upload_target == spec.name and spec.type == "COMBO":
        value = _upload_path(spec, value)
    if spec.type == "STRING" and spec.options.get("dynamicPrompts") is True and isinstance(value, str):
        value = _process_dynamic_prompt(value, rng)
    if node.type in _SAVE_NODE_TYPES and widget.name == "filename_prefix" and isinstance(value, str):
        value = sr.replace(value)
    return value


# --------------------------------------------------------------------------------------------------------------
# Link resolution (ExecutableNodeDTO.resolveInput / resolveOutput)


def _is_valid_connection(type_a: Any, type_b: Any) -> bool:
    """``LiteGraph.isValidConnection``."""
    if type_a in ("", "*", None, 0):
        type_a = 0
    if type_b in ("", "*", None, 0):
        type_b = 0
    if not type_a or not type_b or type_a == type_b:
        return True
    a, b = _js_str(type_a).lower(), _js_str(type_b).lower()
    if "," not in a and "," not in b:
        return a == b
    return any(_is_valid_connection(x, y) for x in a.split(",") for y in b.split(","))


class _Resolver:
    def __init__(self, nodes: dict[str, _Node], links: dict[Any, _Link]):
        self.nodes = nodes
        self.links = links

    def resolve_input(self, node: _Node, slot: int, visited: set, type_: Any = None) -> tuple[str, int] | None:
        key = (node.key, "I", slot)
        if key in visited:
            raise WorkflowError(f"{_describe(node)}: circular link while resolving input {slot}")
        visited.add(key)
        if slot >= len(node.inputs):
            return None
        inp = node.inputs[slot]
        if inp.link is None:
            return None
        link = self.links.get(inp.link)
        if link is None:  # the frontend throws InvalidLinkError here too
            raise WorkflowError(f"{_describe(node)}: input {inp.name!r} refers to link {inp.link!r}, "
                                "which is not in the workflow's links")
        origin = self.nodes.get(str(link.origin_id))
        if origin is None:
            raise WorkflowError(f"{_describe(node)}: input {inp.name!r} is linked (link {link.id!r}) from node "
                                f"{link.origin_id!r}, which is not in the workflow")
        return self.resolve_output(origin, link.origin_slot, type_ if type_ is not None else inp.type, visited)

    def resolve_output(self, node: _Node, slot: int, type_: Any, visited: set) -> tuple[str, int] | None:
        key = (node.key, "O", slot)
        if key in visited:
            raise WorkflowError(f"{_describe(node)}: circular link while resolving output {slot}")
        visited.add(key)
        if node.mode == MODE_BYPASS:
            index = self._bypass_slot_index(node, slot, type_)
            if index == -1:
                return None
            return self.resolve_input(node, index, visited)
        if node.virtual:
            if slot < len(node.inputs):
                return self.resolve_input(node, slot, visited, type_)
            return None
        return node.key, int(slot)

    @staticmethod
    def _bypass_slot_index(node: _Node, slot: int, type_: Any) -> int:
        inputs = node.inputs
        if not 0 <= slot < len(node.outputs):
            return -1
        output_type = node.outputs[slot].type
        if type_ in ("*", ""):
            return slot if len(inputs) > slot else (0 if inputs else -1)
        opposite = inputs[slot] if slot < len(inputs) else None
        if opposite is not None and _is_valid_connection(opposite.type, output_type) \
                and _is_valid_connection(opposite.type, type_):
            return slot
        for i, inp in enumerate(inputs):
            if inp.type == type_:
                return i
        for i, inp in enumerate(inputs):
            if _is_valid_connection(inp.type, output_type) and _is_valid_connection(inp.type, type_):
                return i
        return -1


# --------------------------------------------------------------------------------------------------------------
# Public API


def is_api_format(data: Any) -> bool:
    """True for an API/prompt dict (``{"<id>": {"class_type", "inputs"}}``), False for a UI workflow or other."""
    if not isinstance(data, dict) or not data or "nodes" in data:
        return False
    return all(isinstance(v, dict) and "class_type" in v and isinstance(v.get("inputs", {}), dict)
               for v in data.values())


def ui_to_api(workflow: dict, object_info: dict, *, rng: random.Random | None = None,
              now: datetime | None = None) -> dict[str, dict]:
    """Convert a UI workflow to the API format, as ``app.graphToPrompt()`` of the 1.27 frontend does.

    ``object_info`` is the server's ``GET /object_info``. ``rng`` makes the ``{a|b}`` choices of dynamic prompts
    reproducible (default: a fresh ``random.Random()``); ``now`` is the time for ``%date:...%`` in save-node
    filename prefixes (default: now). Raises WorkflowError for what it cannot convert (see the module doc).
    """
    if is_api_format(workflow):
        raise WorkflowError("this is already an API-format prompt, not a UI workflow (check with is_api_format)")
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        raise WorkflowError("not a UI workflow: expected an object with a 'nodes' list")
    if not isinstance(object_info, dict):
        raise WorkflowError("object_info must be the dict of GET /object_info")
    rng = rng or random.Random()
    _check_unsupported(workflow, object_info)
    links = _parse_links(workflow)
    nodes = _build_nodes(workflow, object_info)
    for node in nodes.values():
        if node.layout is not None:
            _load_widget_values(node)
    sr = _TextReplacer(nodes, now)
    _apply_primitives(nodes, links, sr)
    resolver = _Resolver(nodes, links)

    output: dict[str, dict] = {}
    for node in nodes.values():
        if node.virtual or node.mode in (MODE_NEVER, MODE_BYPASS) or node.layout is None:
            continue
        inputs: dict[str, Any] = {}
        for widget in node.layout.widgets:
            if not widget.name or not widget.in_prompt:
                continue
            value = _serialize_widget(node, widget, sr, rng)
            if value is _UNDEFINED:
                continue
            inputs[widget.name] = {"__value__": value} if isinstance(value, list) else value
        for index, slot in enumerate(node.inputs):
            resolved = resolver.resolve_input(node, index, set())
            if resolved is None:
                continue
            inputs[slot.name] = [resolved[0], resolved[1]]
        output[node.key] = {"inputs": inputs, "class_type": node.type, "_meta": {"title": node.title}}

    for entry in output.values():  # inputs linked from muted (or otherwise absent) nodes are dropped
        for name, value in list(entry["inputs"].items()):
            if isinstance(value, list) and len(value) == 2 and value[0] not in output:
                del entry["inputs"][name]
    return output


# --------------------------------------------------------------------------------------------------------------
# API -> UI: the shipped example workflows are written as prompts and laid out for the canvas


@dataclass
class Note:
    """A Markdown note placed on the canvas of a generated workflow."""

    text: str
    pos: tuple[float, float]
    size: tuple[float, float] = (420.0, 260.0)
    title: str = "Read me"


def _column_positions(prompt: dict[str, dict]) -> dict[str, tuple[float, float]]:
    """Place nodes in columns by their depth in the graph (inputs to the left), stacked within a column."""
    depth: dict[str, int] = {}

    def node_depth(key: str, trail: tuple = ()) -> int:
        if key not in depth:
            if key in trail:
                raise WorkflowError(f"the prompt has a cycle through node {key}")
            sources = [v[0] for v in prompt[key]["inputs"].values() if _is_link(v) and v[0] in prompt]
            depth[key] = 1 + max((node_depth(s, trail + (key,)) for s in sources), default=-1)
        return depth[key]

    columns: dict[int, list[str]] = {}
    for key in prompt:
        columns.setdefault(node_depth(key), []).append(key)
    positions = {}
    for column, keys in columns.items():
        y = 60.0
        for key in keys:
            positions[key] = (60.0 + column * 380.0, y)
            y += 60.0 + 28.0 * (2 + len(prompt[key]["inputs"]))
    return positions


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def api_to_ui(prompt: dict[str, dict], object_info: dict, *, positions: dict[str, tuple[float, float]] | None = None,
              notes: tuple[Note, ...] = (), extra: dict | None = None) -> dict:
    """A UI (save-format, version 0.4) workflow that the frontend loads and ``ui_to_api`` turns back into ``prompt``.

    Node ids must be integers as strings. Seeds get ``control_after_generate = "fixed"`` so the workflow runs as
    saved. ``positions`` maps node ids to canvas positions (default: columns by graph depth).
    """
    if not is_api_format(prompt):
        raise WorkflowError("api_to_ui needs an API-format prompt")
    positions = {**_column_positions(prompt), **(positions or {})}
    nodes: list[dict] = []
    links: list[list] = []
    out_links: dict[tuple[str, int], list[int]] = {}
    layouts = {}
    for key, entry in prompt.items():
        if not key.isdigit():
            raise WorkflowError(f"node id {key!r} must be an integer for the UI format")
        node_def = object_info.get(entry["class_type"])
        if node_def is None:
            raise WorkflowError(f"node {key}: unknown node type {entry['class_type']!r}")
        layouts[key] = _layout(entry["class_type"], node_def)
    for key, entry in prompt.items():
        layout, given = layouts[key], entry["inputs"]
        unknown = set(given) - {spec.name for spec in layout.v2_inputs}
        if unknown:
            raise WorkflowError(f"node {key} ({entry['class_type']}): unknown inputs {sorted(unknown)}")
        inputs = []
        for name, kind, has_widget in layout.sockets:
            value = given.get(name)
            if not _is_link(value) and (has_widget or value is None):
                if has_widget:
                    continue
                inputs.append({"name": name, "type": kind, "link": None})
                continue
            link_id = len(links) + 1
            source, slot = value
            links.append([link_id, int(source), slot, int(key), len(inputs), layouts[source].outputs[slot]])
            out_links.setdefault((source, slot), []).append(link_id)
            socket = {"name": name, "type": kind, "link": link_id}
            if has_widget:
                socket["widget"] = {"name": name}
            inputs.append(socket)
        values = []
        for widget in layout.widgets:
            if not widget.in_values:
                continue
            if widget.kind == "control":
                values.append("fixed")
            elif widget.kind == "value" and widget.name in given and not _is_link(given[widget.name]):
                values.append(given[widget.name])
            else:
                values.append(None if widget.default is _UNDEFINED else widget.default)
        node_def = object_info[entry["class_type"]]
        names = node_def.get("output_name") or layout.outputs
        rows = max(len(inputs), len(layout.outputs)) * 22 + sum(w.in_values for w in layout.widgets) * 26
        nodes.append({
            "id": int(key), "type": entry["class_type"], "pos": list(positions[key]), "size": [340, 40 + rows],
            "flags": {},
            "order": 0, "mode": 0, "inputs": inputs,
            "outputs": [{"name": names[i], "type": t, "links": None, "slot_index": i}
                        for i, t in enumerate(layout.outputs)],
            "title": entry.get("_meta", {}).get("title") or node_def.get("display_name") or entry["class_type"],
            "properties": {"Node name for S&R": entry["class_type"]}, "widgets_values": values,
        })
    for node in nodes:
        for output in node["outputs"]:
            output["links"] = out_links.get((str(node["id"]), output["slot_index"]))
    next_id = max((n["id"] for n in nodes), default=0)
    for i, note in enumerate(notes, 1):
        nodes.append({"id": next_id + i, "type": "MarkdownNote", "pos": list(note.pos), "size": list(note.size),
                      "flags": {}, "order": 0, "mode": 0, "inputs": [], "outputs": [], "title": note.title,
                      "properties": {}, "widgets_values": [note.text]})
    for order, node in enumerate(sorted(nodes, key=lambda n: n["pos"][0])):
        node["order"] = order
    return {"last_node_id": max((n["id"] for n in nodes), default=0), "last_link_id": len(links), "nodes": nodes,
            "links": links, "groups": [], "config": {}, "extra": extra or {}, "version": 0.4}
