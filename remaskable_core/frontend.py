"""ComfyUI's real frontend in headless Chromium (Playwright, Debian's chromium, never a downloaded browser): the one
way the pack drives it, for the workflow thumbnails and the browser tests."""

from __future__ import annotations

from typing import Callable

# A deterministic start: no tutorial dialog, no restored graph, no tab bar or minimap over the canvas, nodes drawn
# in full at any zoom, and the navigation mode that avoids the frontend's settings-order error on load.
FRONTEND_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Workflow.Persist": False,
                     "Comfy.Canvas.NavigationMode": "custom", "LiteGraph.Canvas.MinFontSizeForLOD": 0,
                     "Comfy.Minimap.Visible": False, "Comfy.Canvas.SelectionToolbox": False,
                     "Comfy.Workflow.WorkflowTabsPosition": "Sidebar"}

# Fits the whole graph into the canvas (dialogs closed, no render statistics) and returns its bounds in canvas px,
# [x0, y0, x1, y1], after two frames have been drawn.
FIT_VIEW = """async () => {
    document.dispatchEvent(new KeyboardEvent("keydown", {key: "Escape"}));
    const nodes = app.graph.nodes;
    const x0 = Math.min(...nodes.map((n) => n.pos[0])), y0 = Math.min(...nodes.map((n) => n.pos[1])) - 30;
    const x1 = Math.max(...nodes.map((n) => n.pos[0] + n.size[0])), y1 = Math.max(...nodes.map((n) => n.pos[1] + n.size[1]));
    app.canvas.ds.fitToBounds([x0, y0, x1 - x0, y1 - y0], {zoom: 0.9});
    app.canvas.show_info = false;
    app.canvas.setDirty(true, true);
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return [...app.canvas.ds.convertOffsetToCanvas([x0, y0]), ...app.canvas.ds.convertOffsetToCanvas([x1, y1])];
}"""


def open_frontend(playwright, url: str, chromium: str, viewport: tuple[int, int] = (1280, 800),
                  on_console: Callable | None = None):
    """(browser, page): the frontend at ``url`` ready (``window.app`` set up), the page allowed to reach only that
    server. Write FRONTEND_SETTINGS to the server first. ``on_console`` sees every console message from the start."""
    browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--disable-gpu"])
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        (url, "data:", "blob:")) else route.abort())
    page = context.new_page()
    if on_console is not None:
        page.on("console", on_console)
    page.goto(url)
    page.wait_for_function("() => window.app?.graph && window.app.extensionManager", timeout=60_000)
    return browser, page
