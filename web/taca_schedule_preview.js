// Live preview of TACA's schedule on the TACA nodes: on which sampling steps gamma acts. With a sampler
// downstream (KSampler, KSamplerAdvanced, SamplerCustom, SamplerCustomAdvanced), its own steps, scheduler
// and denoise, under the model's sampling; without one, ComfyUI's typical schedules of the main families.
// TACA Model Patch shows its own timestep_cutoff; TACA LoRA Loader the window it follows: that of the TACA
// Model Patch on the same model chain. The steps come from the pack's server route, which asks ComfyUI
// itself (taca_comfy/preview.py); this file reads the graph, asks (debounced, newest answer wins) and draws.
import { api } from "../../scripts/api.js";
import { app } from "../../scripts/app.js";
import { scheduleSpec, widgetValue } from "./taca_schedule_graph.js";

const PATCH = "TACAModelPatch";
const LORA = "TACALoraLoader";
const ON = "#e0a030", OFF = "#4a4a4a", IDLE = "#262626";
const MAX_CELLS = 60;
const MIN_HEIGHT = 198, ROW_HEIGHT = 13;  // fits either view (typical: caption, axis, 8 rows, note)
const PAPER_CUTOFF = 970, PAPER_GAMMA = 1.2;
const ROUTE = "/taca/schedule_preview";
const DEBOUNCE_MS = 200, TIMEOUT_MS = 8000, RETRY_MS = 5000;

function el(tag, style, text, className) {
  const e = document.createElement(tag);
  Object.assign(e.style, style);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

// One cell per step: gamma on (orange), off (grey), not run by this sampler (dark)
function cells(window, height) {
  const row = el("div", { display: "flex", gap: "1px", height: `${height}px`, flex: "1", minWidth: "0" });
  for (const w of window.slice(0, MAX_CELLS)) {
    const c = el("div", { flex: "1", minWidth: "1px", borderRadius: "1px",
                          background: w.taca ? ON : w.run ? OFF : IDLE });
    c.title = `step ${w.step}: t = ${w.t.toFixed(1)}${w.taca ? " (in the window)" : ""}${w.run ? "" : " (not run)"}`;
    row.appendChild(c);
  }
  if (window.length > MAX_CELLS) row.appendChild(el("span", { fontSize: "9px", opacity: "0.7" }, `+${window.length - MAX_CELLS}`));
  return row;
}

// The timestep axis, zoomed on the window: t from 1000 (left) down to lo, the window shaded, one tick
// per step of the shown schedule that falls in range (numbered where there is room).
function axis(cutoff, window) {
  let lo = 1000 - Math.max(60, 2.5 * (1000 - (cutoff ?? 1000)));
  const next = window.find((w) => w.run && !w.taca && w.t < 1000);
  if (next) lo = Math.min(lo, next.t - 0.08 * (1000 - next.t) - 5);
  lo = Math.max(0, Math.floor(lo / 10) * 10);
  const x = (t) => ((1000 - t) / (1000 - lo)) * 100;
  const box = el("div", { position: "relative", height: "31px", margin: "1px 0" }, undefined, "taca-schedule-axis");
  box.dataset.lo = String(lo);
  const bar = el("div", { position: "absolute", left: "0", right: "0", top: "11px", height: "8px",
                          background: "#333", borderRadius: "2px", overflow: "hidden" });
  bar.appendChild(el("div", { position: "absolute", left: "0", top: "0", bottom: "0", background: ON,
                              opacity: "0.55", width: `${cutoff === null ? 0 : Math.min(100, x(cutoff))}%` },
                     undefined, "taca-schedule-window"));
  box.appendChild(bar);
  const small = { position: "absolute", fontSize: "9px", lineHeight: "10px", whiteSpace: "nowrap" };
  let lastLabel = -100;
  for (const w of window) {
    if (w.t < lo || w.t > 1000) continue;
    const p = x(w.t);
    box.appendChild(el("div", { position: "absolute", left: `calc(${p}% - 1px)`, top: "9px", width: "2px",
                                height: "12px", background: w.taca ? "#fff" : w.run ? "#999" : "#555" }));
    if (p - lastLabel >= 6 && p < 97) {
      box.appendChild(el("div", { ...small, left: `${p}%`, top: "0", transform: p < 2 ? "none" : "translateX(-50%)",
                                  color: w.taca ? ON : "#aaa" }, String(w.step)));
      lastLabel = p;
    }
  }
  const label = (text, style) => box.appendChild(el("div", { ...small, top: "21px", opacity: "0.8", ...style }, text));
  label("t = 1000", { left: "0" });
  label(`${lo}`, { right: "0" });
  if (cutoff !== null && cutoff > lo && cutoff < 1000) {
    const p = x(cutoff);
    if (p > 20 && p < 88) label(`${cutoff}`, { left: `${p}%`, transform: "translateX(-50%)", color: ON, opacity: "1" });
  }
  return box;
}

// "γ on 1 (t 1000.0), 2 (t 983.6) · next 3 (t 966.0)": where the steps fall against the cutoff
function detail(window, what) {
  const on = window.filter((w) => w.taca), run = window.filter((w) => w.run);
  const at = (w) => `${w.step} (t ${w.t.toFixed(1)})`;
  const last = on[on.length - 1];
  const next = last ? run.find((w) => w.step > last.step) : run[0];
  const head = on.length === 0 ? `${what} on no step` : on.length <= 3 ? `${what} on ${on.map(at).join(", ")}`
    : `${what} on ${at(on[0])} … ${at(last)}`;
  return el("div", { fontSize: "10px" }, `${head}${next ? ` · ${last ? "next" : "first"} ${at(next)}` : ""}`,
            "taca-schedule-detail");
}

function legend(hasIdle, what) {
  const key = (color, text) => {
    const k = el("span", { marginRight: "8px", whiteSpace: "nowrap" });
    k.append(el("span", { display: "inline-block", width: "9px", height: "9px", background: color,
                          marginRight: "3px", verticalAlign: "-1px", borderRadius: "1px" }), text);
    return k;
  };
  const row = el("div", { fontSize: "10px", opacity: "0.85" });
  row.append(key(ON, `${what} on`), key(OFF, `${what} off`));
  if (hasIdle) row.append(key(IDLE, "not run"));
  return row;
}

function note(text) {
  return el("div", { fontSize: "10px", lineHeight: "12px", opacity: "0.75", marginTop: "2px" }, text,
            "taca-schedule-note");
}

// state: the node's caption and window; answer: the route's JSON ({mode: "sampler" | "typical", ...}),
// or {error} when the server could not be asked or refused.
function render(root, state, answer) {
  const cutoff = state.cutoff;
  const parts = [el("div", { margin: "1px 0" }, state.caption, "taca-schedule-caption")];
  const data = { cutoff: String(cutoff), mode: answer.mode ?? "error", steps: "", tacaSteps: "", scheduler: "",
                 family: "" };
  const what = state.what ?? "γ";
  if (answer.error) {
    parts.push(el("div", { margin: "4px 0", color: "#e07070", whiteSpace: "normal" },
                  `schedule preview: ${answer.error}`, "taca-schedule-error"));
  } else if (answer.mode === "sampler") {
    const steps = el("div", { margin: "2px 0", fontWeight: "bold" },
                     `your sampler: ${answer.text} (${answer.scheduler})`, "taca-schedule-steps");
    const strip = el("div", { display: "flex", alignItems: "center", gap: "4px" });
    strip.append(el("span", { fontSize: "9px", opacity: "0.7" }, "1"), cells(answer.window, 16),
                 el("span", { fontSize: "9px", opacity: "0.7" }, String(answer.window.length)));
    const more = state.spec.others ? ` (+${state.spec.others} more)` : "";
    parts.push(steps, strip, axis(cutoff, answer.window), detail(answer.window, what),
               legend(answer.window.some((w) => !w.run), what),
               note(`${state.spec.sampler.node}${more} · ${answer.model}`));
    Object.assign(data, { steps: String(answer.window.length), scheduler: answer.scheduler, family: answer.model,
                          tacaSteps: answer.taca_steps.join(",") });
  } else {
    const table = el("div", { display: "grid", gridTemplateColumns: "auto auto 1fr auto", columnGap: "5px",
                              rowGap: "1px", alignItems: "center" }, undefined, "taca-schedule-steps");
    for (const r of answer.rows) {
      const row = el("div", { display: "contents" }, undefined, "taca-schedule-row");
      Object.assign(row.dataset, { label: r.label, steps: String(r.steps), scheduler: r.scheduler,
                                   tacaSteps: r.taca_steps.join(",") });
      row.append(el("span", { whiteSpace: "nowrap" }, r.label),
                 el("span", { whiteSpace: "nowrap", opacity: "0.7", fontSize: "10px" }, `${r.steps} steps`),
                 cells(r.window, 10),
                 el("span", { whiteSpace: "nowrap", textAlign: "right" }, r.span));
      table.appendChild(row);
    }
    parts.push(axis(cutoff, []), table, note("no sampler linked: typical schedules of ComfyUI's templates"));
  }
  root.replaceChildren(...parts);
  Object.assign(root.dataset, data);
}

// The route's answer for this state; {error} with a sentence the node shows when there is none.
async function ask(state) {
  const body = { gamma: state.gamma, cutoff: state.cutoff ?? PAPER_CUTOFF, sampler: state.spec.sampler,
                 model: state.spec.model };
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  try {
    const r = await api.fetchApi(ROUTE, { method: "POST", body: JSON.stringify(body), signal: abort.signal,
                                          headers: { "Content-Type": "application/json" } });
    const answer = await r.json().catch(() => null);
    if (r.ok && answer && !answer.error) return answer;
    return { error: answer?.error ?? `the ComfyUI server answered ${r.status} ${r.statusText}` };
  } catch (e) {
    return { error: `the ComfyUI server cannot be reached (${e?.name === "AbortError" ? "no answer" : e?.message ?? e})` };
  } finally {
    clearTimeout(timer);
  }
}

function patchState(node) {
  const cutoff = Number(widgetValue(node.graph, node, "timestep_cutoff") ?? PAPER_CUTOFF);
  const gamma = Number(widgetValue(node.graph, node, "gamma") ?? PAPER_GAMMA);
  return { cutoff, gamma, caption: `γ acts while t ≥ ${cutoff} (σ ≥ ${(cutoff / 1000).toFixed(3)})` +
                                   (gamma === 1 ? "; γ is 1: no effect" : "") };
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
  return { ...loraWindow(node), what: "LoRA" };
}

function loraWindow(node) {
  // the LoRA acts where TACA does; gamma only says whether TACA acts at all
  if (widgetValue(node.graph, node, "active") === "every step") {
    return { cutoff: 0, gamma: PAPER_GAMMA, caption: "LoRA active on every step" };
  }
  const patch = findPatch(node);
  if (!patch) {
    return { cutoff: PAPER_CUTOFF, gamma: PAPER_GAMMA,
             caption: `no TACA Model Patch on this chain: paper window t ≥ ${PAPER_CUTOFF}` };
  }
  const { cutoff, gamma } = patchState(patch);
  if (gamma === 1) return { cutoff: null, gamma, caption: "TACA gamma is 1: LoRA never active" };
  return { cutoff, gamma, caption: `LoRA active with TACA: t ≥ ${cutoff}` };
}

function addPreview(node, stateOf) {
  const root = el("div", { font: "11px/14px sans-serif", color: "#ccc", padding: "2px 6px",
                           boxSizing: "border-box", overflow: "hidden" }, undefined, "taca-schedule-preview");
  root.dataset.nodeType = node.type;
  const widget = node.addDOMWidget("taca_schedule", "taca_schedule_preview", root, {
    serialize: false,
    getMinHeight: () => MIN_HEIGHT + ROW_HEIGHT * Math.max(0, root.querySelectorAll(".taca-schedule-row").length - 8),
  });
  widget.serialize = false;  // display only: never written into the workflow's widgets_values
  // Ask when the graph's facts change, DEBOUNCE_MS after the last edit; draw only the newest answer.
  // After an error the same facts are asked again on a redraw RETRY_MS later (the server may be back).
  let asked = null, timer = null, latest = 0, failedAt = 0;
  const refresh = () => {
    let state;
    try {
      state = { ...stateOf(node), spec: scheduleSpec(node) };
    } catch (e) {  // a graph shape this reader does not expect must not break the node
      state = { cutoff: null, gamma: 1, caption: `schedule preview unavailable: ${e?.message ?? e}`,
                spec: { sampler: null } };
    }
    const key = JSON.stringify(state);
    if (key === asked && !(failedAt && Date.now() - failedAt > RETRY_MS)) return;
    asked = key;
    failedAt = 0;
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const id = ++latest;
      root.dataset.pending = "1";
      const answer = await ask(state);
      if (id !== latest) return;  // a newer request is out: this answer is stale
      delete root.dataset.pending;
      failedAt = answer.error ? Date.now() : 0;
      render(root, state, answer);
      const need = node.computeSize?.()[1];  // more typical rows than MIN_HEIGHT holds: grow the node
      if (need > node.size[1]) node.setSize([node.size[0], need]);
    }, DEBOUNCE_MS);
  };
  // cheap when nothing changed; covers widget edits, loads, rewiring and edits on linked nodes
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
