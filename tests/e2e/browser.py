"""What browser tests do in ComfyUI's page (the ``page`` fixture of tests/e2e/conftest.py): load a workflow and
report missing node types and validation toasts, queue it the way the Run button does and wait, screenshot the
canvas. Everything returns plain data: graph objects are circular."""

from __future__ import annotations

from pathlib import Path

from remaskable_core.frontend import FIT_VIEW

LOAD_WORKFLOW = """async (workflow) => {
    if (!app.extensions.some((e) => e.name === "ReMaskable.test.missingTypes")) {
        app.registerExtension({name: "ReMaskable.test.missingTypes",
                               afterConfigureGraph(missing) { window.__missingNodeTypes = missing; }});
    }
    document.querySelectorAll(".p-toast-message").forEach((t) => t.remove());
    window.__missingNodeTypes = null;
    await app.loadGraphData(workflow);
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const missing = (window.__missingNodeTypes ?? []).map((m) => (typeof m === "string" ? m : m.type));
    return {
        missing,
        broken: app.graph.nodes.filter((n) => n.has_errors).map((n) => `${n.id} ${n.type}`),
        toasts: [...document.querySelectorAll(".p-toast-message")].map((t) => t.textContent.trim()),
        nodes: app.graph.nodes.length,
    };
}"""

QUEUE_AND_WAIT = """async (timeoutMs) => {
    const done = new Promise((resolve) => {
        app.api.addEventListener("execution_success", () => resolve({status: "success"}), {once: true});
        app.api.addEventListener("execution_error", (e) => resolve({status: "error", detail: e.detail}), {once: true});
        app.api.addEventListener("execution_interrupted", () => resolve({status: "interrupted"}), {once: true});
        setTimeout(() => resolve({status: "timeout"}), timeoutMs);
    });
    await app.queuePrompt(0, 1);  // the Run button; its return value is false even on success in 1.27
    const nodeErrors = app.lastNodeErrors ?? {};
    if (Object.keys(nodeErrors).length) return {status: "invalid", node_errors: nodeErrors};
    return await done;
}"""

def load_workflow(page, workflow: dict) -> dict:
    """Loads a UI (or API) workflow as a user would; returns {missing, broken, toasts, nodes}."""
    return page.evaluate(LOAD_WORKFLOW, workflow)


def queue_and_wait(page, timeout_s: float = 600) -> dict:
    """Queues the loaded graph from the page; {"status": "success"} when it ran, else what went wrong."""
    return page.evaluate(QUEUE_AND_WAIT, int(timeout_s * 1000))


def screenshot_canvas(page, path: Path, quality: int = 85) -> Path:
    """The whole graph fitted into the canvas, saved as ``path`` (.jpg or .png)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate(FIT_VIEW)
    options = {"quality": quality, "type": "jpeg"} if path.suffix.lower() in (".jpg", ".jpeg") else {}
    page.locator("#graph-canvas").screenshot(path=str(path), **options)
    return path
