// What the frontend can read from the graph about the sampling a TACA node's model goes through: the
// sampler it feeds (downstream along MODEL links), that sampler's schedule inputs, the ModelSampling*
// node on its model chain, and the model family (loader file name, CLIP loader type). Returns a plain
// "spec" (JSON-able, so the preview redraws only when it changes); taca_schedule_math.js turns it into steps.
import { modelSamplingFluxShift } from "./taca_schedule_math.js";

const KSAMPLERS = new Set(["KSampler", "KSamplerAdvanced"]);
const BYPASS = 4, NEVER = 2;  // LiteGraph node modes
const PASS_THROUGH = new Set(["Reroute", "ComfySwitchNode"]);
const CLIP_LOADERS = new Set(["CLIPLoader", "DualCLIPLoader", "TripleCLIPLoader", "QuadrupleCLIPLoader",
                              "CLIPLoaderGGUF", "DualCLIPLoaderGGUF"]);

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

const SAMPLING_NODES = {
  ModelSamplingFlux: (g, n) => ({ kind: "flux", multiplier: 1, shift: modelSamplingFluxShift(
    Number(widgetValue(g, n, "max_shift")), Number(widgetValue(g, n, "base_shift")),
    Number(widgetValue(g, n, "width")), Number(widgetValue(g, n, "height"))) }),
  ModelSamplingSD3: (g, n) => ({ kind: "flow", multiplier: 1000, shift: Number(widgetValue(g, n, "shift")) }),
  ModelSamplingAuraFlow: (g, n) => ({ kind: "flow", multiplier: 1, shift: Number(widgetValue(g, n, "shift")) }),
};

// Family from a file name; most specific first (FLUX.1 Krea before Krea 2, schnell before FLUX.1).
const FILE_FAMILIES = [
  [/qwen[-_ ]?image/, "qwen_image"], [/z[-_ ]?image/, "z_image"], [/lumina/, "lumina2"],
  [/flux[-_ .]?1[-_ .]?krea/, "flux1"], [/krea[-_ ]?2/, "krea2"], [/flux[-_ .]?2/, "flux2"],
  [/schnell/, "flux1_schnell"], [/flux/, "flux1"], [/sd[-_ ]?3|stable[-_ ]?diffusion[-_ ]?3/, "sd3"],
  [/chroma/, "chroma"], [/hidream/, "hidream"], [/hunyuan[-_ ]?image/, "hunyuan_image"],
  [/omnigen[-_ ]?2/, "omnigen2"], [/aura[-_ ]?flow/, "aura"],
];
// CLIP loader "type" -> family (the names of nodes.py's CLIPLoader / DualCLIPLoader lists)
const CLIP_TYPES = { sd3: "sd3", flux: "flux1", flux2: "flux2", qwen_image: "qwen_image", krea2: "krea2",
                     lumina2: "lumina2", chroma: "chroma", hidream: "hidream", hunyuan_image: "hunyuan_image",
                     omnigen2: "omnigen2" };

function fileFamily(name) {
  const s = String(name ?? "").toLowerCase();
  return FILE_FAMILIES.find(([re]) => re.test(s))?.[1] ?? null;
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
        if (CLIP_LOADERS.has(m.type)) return m;
        seen.add(m.id);
        next.push(m);
      }
    }
    frontier = next;
  }
  return null;
}

// Walk up from the sampler's model: the nearest ModelSampling* node (the last one applied wins), the
// loader at the top; then the family, and how it was inferred.
function modelInfo(graph, modelHolder, sampler) {
  let sampling = null, samplingNode = null, loader = null;
  const seen = new Set();
  for (let n = modelParent(graph, modelHolder); n && !seen.has(n.id); n = modelParent(graph, n)) {
    seen.add(n.id);
    if (!sampling && n.mode !== BYPASS && SAMPLING_NODES[n.type]) {
      sampling = SAMPLING_NODES[n.type](graph, n);
      samplingNode = n.type;
    }
    if (!(n.inputs ?? []).some((i) => i.type === "MODEL" || PASS_THROUGH.has(n.type))) loader = n;
  }
  let family = null, how = null;
  const file = loader && loaderFile(loader);
  if (file && fileFamily(file)) {
    family = fileFamily(file); how = `file ${file}`;
  }
  const clip = clipLoaderNear(graph, sampler);
  const clipType = clip && (clip.type === "TripleCLIPLoader" ? "sd3" : clip.type === "QuadrupleCLIPLoader"
    ? "hidream" : widgetValue(graph, clip, "type"));
  if (!family && clipType && CLIP_TYPES[clipType]) {
    family = CLIP_TYPES[clipType];
    // Z-Image's templates load its Qwen3 encoder as type lumina2
    if (family === "lumina2" && /qwen/i.test(loaderFile(clip) ?? "")) family = "z_image";
    how = `${clip.type} type ${clipType}`;
  }
  return { family, how, sampling, samplingNode };
}

// --- the sampler's schedule --------------------------------------------------------------------------

function num(v) {
  const x = Number(v);
  return Number.isFinite(x) ? x : null;
}

// A SIGMAS input, resolved to a description the math can replay; null when not previewable.
function sigmasSpec(graph, node, name, depth = 0) {
  const src = depth < 6 ? inputSource(graph, node, name) : null;
  if (!src) return null;
  const n = src.node, g = (w) => widgetValue(graph, n, w);
  switch (n.type) {
    case "BasicScheduler":
      return { type: "basic", scheduler: g("scheduler"), steps: num(g("steps")), denoise: num(g("denoise")),
               model: modelInfo(graph, n, n) };
    case "BetaSamplingScheduler":
      return { type: "beta", steps: num(g("steps")), alpha: num(g("alpha")), beta: num(g("beta")),
               model: modelInfo(graph, n, n) };
    case "Flux2Scheduler":
      return { type: "flux2", steps: num(g("steps")), width: num(g("width")), height: num(g("height")) };
    case "KarrasScheduler": case "ExponentialScheduler": case "PolyexponentialScheduler":
      return { type: n.type, steps: num(g("steps")), sigma_max: num(g("sigma_max")),
               sigma_min: num(g("sigma_min")), rho: num(g("rho")) };
    case "SplitSigmas": case "SplitSigmasDenoise": {
      const inner = sigmasSpec(graph, n, "sigmas", depth + 1);
      return inner && { type: n.type, slot: src.slot, step: num(g("step")), denoise: num(g("denoise")), inner };
    }
    default:
      return { type: "unknown", node: n.type };
  }
}

function samplerSpec(graph, { sampler, modelHolder }) {
  const g = (w) => widgetValue(graph, sampler, w);
  if (KSAMPLERS.has(sampler.type)) {
    const adv = sampler.type === "KSamplerAdvanced";
    return { node: sampler.type, modelHolder, schedule: {
      type: "ksampler", steps: num(g("steps")), scheduler: g("scheduler"), sampler: g("sampler_name"),
      denoise: adv ? 1.0 : num(g("denoise")),
      start: adv ? num(g("start_at_step")) : null, end: adv ? num(g("end_at_step")) : null } };
  }
  // SamplerCustom, or SamplerCustomAdvanced whose model is its guider's
  return { node: sampler.type, modelHolder, schedule: sigmasSpec(graph, sampler, "sigmas") };
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

// The full spec for a TACA node: {sampler: null} when no sampler is reachable.
export function scheduleSpec(node) {
  const graph = node.graph;
  if (!graph) return { sampler: null };
  const samplers = samplersDownstream(graph, node);
  if (!samplers.length) return { sampler: null };
  const spec = samplerSpec(graph, samplers[0]);
  return { sampler: spec.node, others: samplers.length - 1, schedule: spec.schedule,
           model: modelInfo(graph, spec.modelHolder, samplers[0].sampler) };
}
