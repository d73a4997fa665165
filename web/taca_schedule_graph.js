// What the frontend can read from the graph about the sampling a TACA node's model goes through: the
// sampler it feeds (downstream along MODEL links), that sampler's schedule inputs (its widgets, or the
// sigmas nodes feeding it), the ModelSampling* node on its model chain, the loader's file name and the
// CLIP loader's type. Returns plain facts (JSON, so the preview asks again only when they change); the
// pack's server route (taca_comfy/preview.py) turns them into ComfyUI's own sigmas and TACA's steps.

const KSAMPLERS = new Set(["KSampler", "KSamplerAdvanced"]);
const BYPASS = 4, NEVER = 2;  // LiteGraph node modes
const PASS_THROUGH = new Set(["Reroute", "ComfySwitchNode"]);
// A CLIP loader: makes a CLIP without taking one (CLIPLoader, DualCLIPLoader, GGUF loaders, checkpoints)
const isClipLoader = (n) => (n.outputs ?? []).some((o) => o.type === "CLIP") &&
                            !(n.inputs ?? []).some((i) => i.type === "CLIP");

function linkOf(graph, id) {
  if (id == null) return null;
  return graph.getLink?.(id) ?? (graph.links instanceof Map ? graph.links.get(id) : graph.links?.[id]) ?? null;
}

function outputsOf(graph, node, type) {  // [{node, slot}] linked to node's outputs of this type ("*": all)
  const out = [];
  for (const o of node.outputs ?? []) {
    if (type !== "*" && o.type !== type && o.type !== "*") continue;
    for (const id of o.links ?? []) {
      const l = linkOf(graph, id);
      const n = l && graph.getNodeById(l.target_id);
      if (n) out.push({ node: n, input: n.inputs?.[l.target_slot] });
    }
  }
  return out;
}

function inputSource(graph, node, name) {  // {node, slot} feeding the named input, or null
  const input = (node.inputs ?? []).find((i) => i.name === name);
  const l = input && linkOf(graph, input.link);
  const n = l && graph.getNodeById(l.origin_id);
  return n ? { node: n, slot: l.origin_slot } : null;
}

// A widget's value, following a link into it from a primitive or a switch (ComfyUI's own templates wire
// steps and sizes that way). A link from anything else: the value the widget itself still holds.
export function widgetValue(graph, node, name, depth = 0) {
  const own = node.widgets?.find((w) => w.name === name)?.value;
  const src = graph && depth < 8 ? inputSource(graph, node, name) : null;
  return src ? valueOf(graph, src.node, depth + 1) ?? own : own;
}

function valueOf(graph, node, depth) {
  if (node.mode === BYPASS) return undefined;
  if (node.type === "ComfySwitchNode") {
    const on = widgetValue(graph, node, "switch", depth);
    const src = inputSource(graph, node, on ? "on_true" : "on_false");
    return src ? valueOf(graph, src.node, depth + 1) : undefined;
  }
  if (node.type === "Reroute") {
    const src = node.inputs?.[0] && linkOf(graph, node.inputs[0].link);
    return src ? valueOf(graph, graph.getNodeById(src.origin_id), depth + 1) : undefined;
  }
  if (/^Primitive/.test(node.type)) return widgetValue(graph, node, node.widgets?.[0]?.name, depth);
  return undefined;
}

// The node feeding a node's model input, going up: switches follow their current branch, bypassed nodes
// pass their first MODEL input on.
function modelParent(graph, node) {
  let name;
  if (node.type === "ComfySwitchNode") name = widgetValue(graph, node, "switch") ? "on_true" : "on_false";
  else if (node.type === "Reroute") name = node.inputs?.[0]?.name;
  else name = (node.inputs ?? []).find((i) => i.type === "MODEL" && i.link != null)?.name ?? "model";
  return inputSource(graph, node, name)?.node ?? null;
}

// A node's widget values by name (links from primitives and switches followed), for the server to run it
function widgetValues(graph, node) {
  const out = {};
  for (const w of node.widgets ?? []) {
    if (!w.name || /control_after_generate/.test(w.name)) continue;
    const v = widgetValue(graph, node, w.name);
    if (["number", "string", "boolean"].includes(typeof v)) out[w.name] = v;
  }
  return out;
}

function loaderFile(node) {
  const w = (node.widgets ?? []).find((x) => /_name$/.test(x.name) && typeof x.value === "string");
  return w?.value ?? null;
}

// The nearest CLIP loader upstream of the sampler (any link type), breadth first
function clipLoaderNear(graph, start) {
  const seen = new Set([start.id]);
  let frontier = [start];
  for (let depth = 0; depth < 12 && frontier.length; depth++) {
    const next = [];
    for (const n of frontier) {
      for (const i of n.inputs ?? []) {
        const l = linkOf(graph, i.link);
        const m = l && graph.getNodeById(l.origin_id);
        if (!m || seen.has(m.id)) continue;
        if (isClipLoader(m)) return m;
        seen.add(m.id);
        next.push(m);
      }
    }
    frontier = next;
  }
  return null;
}

// Walk up from the sampler's model: the nearest ModelSampling* node (the last one applied wins), the
// loader at the top, and the CLIP loader nearest the sampler.
function modelInfo(graph, modelHolder, sampler) {
  let sampling = null, loader = null;
  const seen = new Set();
  for (let n = modelParent(graph, modelHolder); n && !seen.has(n.id); n = modelParent(graph, n)) {
    seen.add(n.id);
    if (!sampling && n.mode !== BYPASS && /^ModelSampling/.test(n.type)) {
      sampling = { node: n.type, inputs: widgetValues(graph, n) };
    }
    if (!(n.inputs ?? []).some((i) => i.type === "MODEL" || PASS_THROUGH.has(n.type))) loader = n;
  }
  const clip = clipLoaderNear(graph, sampler);
  const clipType = clip && (widgetValue(graph, clip, "type") ?? clip.type);
  return { file: loader && loaderFile(loader), clip: clip ? `${clipType} ${loaderFile(clip) ?? ""}` : null, sampling };
}

// --- the sampler's schedule --------------------------------------------------------------------------

function num(v) {
  const x = Number(v);
  return Number.isFinite(x) ? x : null;
}

// A SIGMAS input: the node feeding it, its widgets, its own sigmas and model inputs; the server runs it.
function sigmasSpec(graph, node, name, depth = 0) {
  const src = depth < 6 ? inputSource(graph, node, name) : null;
  if (!src) return null;
  const n = src.node, typed = (type) => (n.inputs ?? []).find((i) => i.type === type);
  return { node: n.type, slot: src.slot, inputs: widgetValues(graph, n),
           sigmas: typed("SIGMAS") ? sigmasSpec(graph, n, typed("SIGMAS").name, depth + 1) : undefined,
           model: typed("MODEL") ? modelInfo(graph, n, n) : undefined };
}

function samplerSpec(graph, { sampler }) {
  const g = (w) => widgetValue(graph, sampler, w);
  if (!KSAMPLERS.has(sampler.type)) return { node: sampler.type, sigmas: sigmasSpec(graph, sampler, "sigmas") };
  const adv = sampler.type === "KSamplerAdvanced";
  return { node: sampler.type, steps: num(g("steps")), scheduler: g("scheduler"), sampler_name: g("sampler_name"),
           denoise: adv ? 1.0 : num(g("denoise")), start: adv ? num(g("start_at_step")) : null,
           end: adv ? num(g("end_at_step")) : null };
}

// The samplers a node's MODEL output reaches, breadth first, through model patches, LoRA loaders,
// switches, reroutes and guiders.
function samplersDownstream(graph, start) {
  const found = [], seen = new Set([start.id]);
  let frontier = [{ node: start, type: "MODEL" }];
  while (frontier.length && found.length < 4) {
    const next = [];
    for (const { node, type } of frontier) {
      for (const { node: n, input } of outputsOf(graph, node, type)) {
        if (seen.has(n.id) || n.mode === NEVER) continue;
        seen.add(n.id);
        if (n.mode === BYPASS) { next.push({ node: n, type: "*" }); continue; }
        if ((KSAMPLERS.has(n.type) || n.type === "SamplerCustom") && input?.name === "model") {
          found.push({ sampler: n, modelHolder: n });
        } else if (n.type === "SamplerCustomAdvanced" && input?.name === "guider") {
          found.push({ sampler: n, modelHolder: node });
        } else if ((n.outputs ?? []).some((o) => o.type === "GUIDER") && input?.name === "model") {
          next.push({ node: n, type: "GUIDER" });
        } else if (PASS_THROUGH.has(n.type)) {
          next.push({ node: n, type: "*" });
        } else if ((n.outputs ?? []).some((o) => o.type === "MODEL")) {
          next.push({ node: n, type: "MODEL" });
        }
      }
    }
    frontier = next;
  }
  return found;
}

// What the server needs for a TACA node: {sampler: null} when no sampler is reachable.
export function scheduleSpec(node) {
  const graph = node.graph;
  const samplers = graph ? samplersDownstream(graph, node) : [];
  if (!samplers.length) return { sampler: null };
  return { sampler: samplerSpec(graph, samplers[0]), others: samplers.length - 1,
           model: modelInfo(graph, samplers[0].modelHolder, samplers[0].sampler) };
}
