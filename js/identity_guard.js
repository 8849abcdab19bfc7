// IdentityGuard sends its report as UI text; show it on the node in a read-only box that is neither saved with the
// workflow nor sent with the prompt.
import { app } from "../../scripts/app.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

const REPORT_WIDGET = "identity_report";

app.registerExtension({
  name: "ReMaskable.IdentityGuardReport",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== "ReMaskable.IdentityGuard") return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const report = message?.text?.[0];
      if (typeof report !== "string") return;
      let widget = this.widgets?.find((w) => w.name === REPORT_WIDGET);
      if (!widget) {
        widget = ComfyWidgets.STRING(this, REPORT_WIDGET, ["STRING", { multiline: true }], app).widget;
        widget.element.readOnly = true;
        widget.serialize = false; // not in the saved workflow's widgets_values
        widget.options.serialize = false; // not in the queued prompt (it would change the node's cache key)
      }
      widget.value = report;
      this.setDirtyCanvas?.(true, true);
    };
  },
});
