// Live preview of TACA's schedule on the TACA Model Patch node: which part of the denoising gets
// gamma for the current timestep_cutoff, in timesteps and in steps of typical schedules.
import { app } from "../../scripts/app.js";
import { scheduleLines } from "./taca_schedule_math.js";

const NODE_TYPE = "TACAModelPatch";

function el(tag, style, text) {
  const e = document.createElement(tag);
  Object.assign(e.style, style);
  if (text !== undefined) e.textContent = text;
  return e;
}

function buildPreview() {
  const root = el("div", { font: "11px sans-serif", color: "#ccc", padding: "2px 6px", boxSizing: "border-box" });
  root.className = "taca-schedule-preview";
  const bar = el("div", { position: "relative", height: "10px", background: "#333", borderRadius: "3px",
                          margin: "2px 0 2px 0", overflow: "hidden" });
  const window_ = el("div", { position: "absolute", left: "0", top: "0", bottom: "0", background: "#e0a030" });
  window_.className = "taca-schedule-window";
  bar.appendChild(window_);
  const axis = el("div", { display: "flex", justifyContent: "space-between", opacity: "0.7" });
  axis.append(el("span", {}, "t=1000 (noise)"), el("span", {}, "t=0"));
  const caption = el("div", { margin: "2px 0" });
  caption.className = "taca-schedule-caption";
  const table = el("div", {});
  table.className = "taca-schedule-steps";
  root.append(bar, axis, caption, table);
  return { root, window_, caption, table };
}

function render(preview, cutoff) {
  preview.window_.style.width = `${((1000 - cutoff) / 1000) * 100}%`;
  preview.caption.textContent = `gamma acts while t ≥ ${cutoff} (σ ≥ ${(cutoff / 1000).toFixed(3)})`;
  preview.table.replaceChildren(
    ...scheduleLines(cutoff).map(({ label, text }) => el("div", {}, `${label}: ${text}`)));
  preview.root.dataset.cutoff = String(cutoff);
}

app.registerExtension({
  name: "ComfyUI-TACA.SchedulePreview",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      const preview = buildPreview();
      const widget = this.addDOMWidget("taca_schedule", "taca_schedule_preview", preview.root, {
        serialize: false,
        getMinHeight: () => 96,
      });
      widget.serialize = false;  // display only: never written into the workflow's widgets_values
      const cutoffWidget = this.widgets.find((w) => w.name === "timestep_cutoff");
      let shown = null;
      const refresh = () => {
        const cutoff = Number(cutoffWidget?.value ?? 970);
        if (cutoff !== shown) {
          shown = cutoff;
          render(preview, cutoff);
        }
      };
      // the widget's callback covers edits; the draw hook covers loads and programmatic changes
      const callback = cutoffWidget?.callback;
      if (cutoffWidget) {
        cutoffWidget.callback = function () {
          const r = callback?.apply(this, arguments);
          refresh();
          return r;
        };
      }
      const onDrawForeground = this.onDrawForeground;
      this.onDrawForeground = function () {
        refresh();
        return onDrawForeground?.apply(this, arguments);
      };
      refresh();
      return result;
    };
  },
});
