// Live preview of TACA's schedule on the TACA nodes: which part of the denoising gets gamma, in
// timesteps and in steps of typical schedules. TACA Model Patch shows its own timestep_cutoff; TACA LoRA
// Loader shows the window it follows: that of the TACA Model Patch on the same model chain.
import { app } from "../../scripts/app.js";
import { PAPER_CUTOFF, scheduleLines } from "./taca_schedule_math.js";

const PATCH = "TACAModelPatch";
const LORA = "TACALoraLoader";

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
                          margin: "2px 0", overflow: "hidden" });
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

// state: {cutoff, caption} or {cutoff: null, caption} when gamma never acts
function render(preview, state) {
  const cutoff = state.cutoff ?? 1001;
  preview.window_.style.width = `${(Math.max(0, 1000 - cutoff) / 1000) * 100}%`;
  preview.caption.textContent = state.caption;
  preview.table.replaceChildren(
    ...scheduleLines(cutoff).map(({ label, text }) => el("div", {}, `${label}: ${text}`)));
  preview.root.dataset.cutoff = String(state.cutoff);
}

function widgetValue(node, name) {
  return node.widgets?.find((w) => w.name === name)?.value;
}

function patchState(node) {
  const cutoff = Number(widgetValue(node, "timestep_cutoff") ?? PAPER_CUTOFF);
  return { cutoff, caption: `gamma acts while t ≥ ${cutoff} (σ ≥ ${(cutoff / 1000).toFixed(3)})` };
}

// The TACA Model Patch on this node's model chain, downstream first (LoRA -> patch), then upstream.
function findPatch(node) {
  const graph = node.graph;
  const linkOf = (id) => graph.getLink?.(id) ?? (graph.links instanceof Map ? graph.links.get(id) : graph.links[id]);
  const seen = new Set();
  const walk = (n, down) => {
    if (!n || seen.has(n.id)) return null;
    seen.add(n.id);
    if (n.type === PATCH) return n;
    const next = down
      ? (n.outputs ?? []).filter((o) => o.type === "MODEL").flatMap((o) => o.links ?? [])
          .map(linkOf).filter(Boolean).map((l) => graph.getNodeById(l.target_id))
      : (n.inputs ?? []).filter((i) => i.type === "MODEL" && i.link != null)
          .map((i) => linkOf(i.link)).filter(Boolean).map((l) => graph.getNodeById(l.origin_id));
    for (const m of next) {
      const found = walk(m, down);
      if (found) return found;
    }
    return null;
  };
  const found = walk(node, true);
  seen.clear();
  return found ?? walk(node, false);
}

function loraState(node) {
  if (widgetValue(node, "active") === "every step") return { cutoff: 0, caption: "LoRA active on every step" };
  const patch = findPatch(node);
  if (!patch) {
    return { cutoff: PAPER_CUTOFF, caption: `no TACA Model Patch on this chain: paper window t ≥ ${PAPER_CUTOFF}` };
  }
  if (Number(widgetValue(patch, "gamma")) === 1) return { cutoff: null, caption: "TACA gamma is 1: LoRA never active" };
  const { cutoff } = patchState(patch);
  return { cutoff, caption: `LoRA active with TACA: t ≥ ${cutoff}` };
}

function addPreview(node, stateOf) {
  const preview = buildPreview();
  preview.root.dataset.nodeType = node.type;
  const widget = node.addDOMWidget("taca_schedule", "taca_schedule_preview", preview.root, {
    serialize: false,
    getMinHeight: () => 96,
  });
  widget.serialize = false;  // display only: never written into the workflow's widgets_values
  let shown = null;
  const refresh = () => {
    const state = stateOf(node);
    const key = `${state.cutoff}|${state.caption}`;
    if (key !== shown) {
      shown = key;
      render(preview, state);
    }
  };
  // cheap when nothing changed; covers widget edits, loads, rewiring and edits on the linked patch
  const onDrawForeground = node.onDrawForeground;
  node.onDrawForeground = function () {
    refresh();
    return onDrawForeground?.apply(this, arguments);
  };
  for (const w of node.widgets ?? []) {
    const callback = w.callback;
    w.callback = function () {
      const r = callback?.apply(this, arguments);
      refresh();
      return r;
    };
  }
  refresh();
}

app.registerExtension({
  name: "ComfyUI-TACA.SchedulePreview",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    const stateOf = { [PATCH]: patchState, [LORA]: loraState }[nodeData.name];
    if (!stateOf) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      addPreview(this, stateOf);
      return result;
    };
  },
});
