"""IdentityGuard's report in ComfyUI's real frontend (headless Chromium): run from the UI, shown on the node, not saved
into the prompt."""

from __future__ import annotations

import pytest

from tests.e2e.test_identity_nodes import faces, guard_prompt  # noqa: F401 (a fixture)

pytestmark = pytest.mark.e2e


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
