"""IdentityGuard's report in ComfyUI's real frontend (headless Chromium): run from the UI, shown on the node, not saved
into the prompt."""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.test_identity_nodes import faces, guard_prompt  # noqa: F401 (a fixture)

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium")
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Workflow.Persist": False, "Comfy.Canvas.NavigationMode": "custom",
            "LiteGraph.Canvas.MinFontSizeForLOD": 0, "Comfy.Minimap.Visible": False}


@pytest.fixture(scope="module")
def page(comfy):
    sync_api = pytest.importorskip("playwright.sync_api")
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    comfy.client.post_json("/api/settings", SETTINGS)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--disable-gpu"])
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            (comfy.server.url, "data:", "blob:")) else route.abort())
        page = context.new_page()
        page.console_errors = []
        page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
        page.goto(comfy.server.url)
        page.wait_for_function("() => window.app?.graph && window.app.extensionManager", timeout=60_000)
        yield page
        browser.close()


def test_the_report_appears_on_the_node_after_a_run_from_the_ui(page, faces):  # noqa: F811
    assert "ReMaskable.IdentityGuardReport" in page.evaluate("() => app.extensions.map(e => e.name)")
    assert not [e for e in page.console_errors if "identity_guard" in e]
    prompt = guard_prompt(faces["original"], [faces["original"], faces["other"]])
    status = page.evaluate("""async (prompt) => {
        await app.loadApiJson(prompt, "identity.json");
        const done = new Promise((resolve) => {
            app.api.addEventListener("execution_success", () => resolve("success"), {once: true});
            app.api.addEventListener("execution_error", (e) => resolve(JSON.stringify(e.detail)), {once: true});
        });
        await app.queuePrompt(0, 1);
        return await done;
    }""", prompt)
    assert status == "success"
    shown = page.evaluate("""() => {
        const node = app.graph.nodes.find((n) => n.type === "ReMaskable.IdentityGuard");
        return node.widgets.find((w) => w.name === "identity_report")?.value;
    }""")
    assert shown and "IdentityGuard, preserve mode" in shown and "CHOSEN" in shown
    saved = page.evaluate("""async () => {
        const {output} = await app.graphToPrompt();
        return Object.values(output).find((n) => n.class_type === "ReMaskable.IdentityGuard").inputs;
    }""")
    assert "identity_report" not in saved and saved["mode"] == "preserve"
