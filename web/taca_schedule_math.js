// Which sampling steps get TACA's gamma, computed as ComfyUI 0.33.0 computes the steps: the model's
// sigma table (comfy/model_sampling.py), the scheduler (comfy/samplers.py, comfy/k_diffusion/sampling.py,
// comfy_extras/nodes_flux.py), KSampler's denoise / start / end handling; then, per step, the paper's
// timestep 1000 * timestep(sigma) / timestep(sigma_max) (taca_core/schedule.py) against the cutoff.
//
// ComfyUI builds its tables and most schedules in float32 torch ops; Math.fround after each operation
// replays them, so the sigmas agree to the bit (checked against ComfyUI by
// tests/integration/test_schedule_preview_math.py) and a step exactly on the cutoff (sigma 0.9 vs 900)
// lands on the same side. Exceptions, within one float32 ulp: tan/exp/pow (kl_optimal, exponential,
// karras) and the beta distribution's quantile (beta), which only picks a table index and is exact there.

export const PAPER_CUTOFF = 970;

const f = Math.fround;

// --- the model's sampling (comfy/model_sampling.py) ------------------------------------------------

// "flux": ModelSamplingFlux (10000-entry table, sigma = flux_time_shift(shift, 1, t), timestep = sigma).
// "flow": ModelSamplingDiscreteFlow (1000 entries, sigma = time_snr_shift(shift, t / multiplier),
//         timestep = sigma * multiplier); ModelSamplingSD3 sets multiplier 1000, ModelSamplingAuraFlow 1.
const samplingCache = new Map();

export function modelSampling(kind, shift, multiplier = 1000) {
  if (kind === "flux") multiplier = 1;
  const key = `${kind}|${shift}|${multiplier}`;
  if (samplingCache.has(key)) return samplingCache.get(key);
  let sigma, timestep, size;
  if (kind === "flux") {
    const e = f(Math.exp(shift));  // math.exp(mu), cast to float32 by the tensor op
    // exp(mu) / (exp(mu) + (1/t - 1) ** 1.0); a python scalar divided by a tensor is reciprocal() * scalar
    sigma = (t) => f(f(1 / f(e + f(f(1 / t) - 1))) * e);
    timestep = (s) => s;
    size = 10000;
  } else if (kind === "flow") {
    const a = f(shift), am1 = f(shift - 1), m = f(multiplier);
    sigma = (ts) => {
      const t = f(ts / m);
      return shift === 1.0 ? t : f(f(a * t) / f(1 + f(am1 * t)));  // time_snr_shift
    };
    timestep = (s) => f(s * m);
    size = 1000;
  } else {
    throw new Error(`unknown sampling kind ${kind}`);
  }
  const table = new Array(size);
  for (let i = 1; i <= size; i++) {
    const t = f(i / size);  // torch.arange(1, T + 1) / T
    table[i - 1] = kind === "flux" ? sigma(t) : sigma(f(t * f(multiplier)));
  }
  const ms = { kind, shift, multiplier, sigmas: table, sigma, timestep,
               sigmaMin: table[0], sigmaMax: table[size - 1] };
  samplingCache.set(key, ms);
  return ms;
}

// taca_core.schedule.paper_timestep, in float64 as there
export function paperTimestep(ms, sigma) {
  const m = ms.kind === "flux" ? 1 : ms.multiplier;
  return (1000.0 * (sigma * m)) / (ms.sigmaMax * m);
}

// --- schedulers (comfy/samplers.py SCHEDULER_HANDLERS) ----------------------------------------------

// torch.linspace on CPU, float32: start + step * i for the first half, end - step * (n - 1 - i) for the
// rest, each a fused multiply-add (one rounding) as PyTorch's x86 builds compile it
export function linspace32(start, end, n) {
  start = f(start); end = f(end);
  if (n === 1) return [start];
  const step = f(f(end - start) / (n - 1));
  const half = Math.floor(n / 2);
  return Array.from({ length: n }, (_, i) => (i < half ? f(start + step * i) : f(end - step * (n - 1 - i))));
}

function simple(ms, steps) {
  const s = ms.sigmas, ss = s.length / steps, out = [];
  for (let x = 0; x < steps; x++) out.push(s[s.length - 1 - Math.trunc(x * ss)]);
  out.push(0);
  return out;
}

function ddimUniform(ms, steps) {
  const s = ms.sigmas;
  let out = [0];
  if (Math.abs(s[1]) <= 1e-5) { steps += 1; out = []; }
  const ss = Math.max(Math.floor(s.length / steps), 1);
  for (let x = 1; x < s.length; x += ss) out.push(s[x]);
  return out.reverse();
}

function normal(ms, steps, sgm = false) {
  const start = ms.timestep(ms.sigmaMax), end = ms.timestep(ms.sigmaMin);
  let appendZero = true, ts;
  if (sgm) {
    ts = linspace32(start, end, steps + 1).slice(0, -1);
  } else {
    if (Math.abs(ms.sigma(end)) <= 1e-5) { steps += 1; appendZero = false; }
    ts = linspace32(start, end, steps);
  }
  const out = ts.map((t) => ms.sigma(t));
  if (appendZero) out.push(0);
  return out;
}

// scipy.stats.beta.ppf for the beta scheduler. Only the table index rint(ppf * (len - 1)) is used, so
// the quantile needs to be right to ~1e-9, not to the bit: the regularized incomplete beta function by
// its continued fraction (Numerical Recipes' betacf, ~1e-15), inverted by bisection to the last bit.
// The one systematic tie, alpha == beta at p = 0.5 (index n/2 - 0.5), is exactly 0.5, as scipy has it.
function logGamma(x) {  // Lanczos, g = 7, n = 9 (relative error ~1e-15)
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
             -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
             1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

function betaContinuedFraction(x, a, b) {
  const tiny = 1e-300;
  let c = 1, d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 1000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d; if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c; if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d; h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d; if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c; if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return h;
}

export function betaCdf(x, a, b) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

export function betaPpf(p, a, b) {
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  if (a === b && p === 0.5) return 0.5;
  let lo = 0, hi = 1;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (mid <= lo || mid >= hi) break;
    if (betaCdf(mid, a, b) < p) lo = mid; else hi = mid;
  }
  return (lo + hi) / 2;
}

function rintHalfEven(x) {  // numpy.rint
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function betaSigmas(ms, steps, alpha = 0.6, beta = 0.6) {
  const total = ms.sigmas.length - 1, out = [];
  let last = -1;
  for (let i = 0; i < steps; i++) {
    const p = 1 - i * (1 / steps);  // 1 - numpy.linspace(0, 1, steps, endpoint=False)
    const t = rintHalfEven(betaPpf(p, alpha, beta) * total);
    if (t !== last) out.push(ms.sigmas[t]);
    last = t;
  }
  out.push(0);
  return out;
}

function linearQuadratic(ms, steps, thresholdNoise = 0.025, linearSteps = null) {
  let sched;
  if (steps === 1) {
    sched = [1.0, 0.0];
  } else {
    if (linearSteps === null) linearSteps = Math.floor(steps / 2);
    const lin = Array.from({ length: linearSteps }, (_, i) => (i * thresholdNoise) / linearSteps);
    const diff = linearSteps - thresholdNoise * steps;
    const quadraticSteps = steps - linearSteps;
    const qc = diff / (linearSteps * quadraticSteps ** 2);
    const lc = thresholdNoise / linearSteps - (2 * diff) / quadraticSteps ** 2;
    const c = qc * linearSteps ** 2;
    const quad = [];
    for (let i = linearSteps; i < steps; i++) quad.push(qc * i ** 2 + lc * i + c);
    sched = [...lin, ...quad, 1.0].map((x) => 1.0 - x);
  }
  return sched.map((x) => f(f(x) * ms.sigmaMax));
}

// k_diffusion get_sigmas_karras / get_sigmas_exponential / get_sigmas_polyexponential and kl_optimal take
// float(sigma_min), float(sigma_max)
export function karrasSigmas(n, sigmaMin, sigmaMax, rho = 7.0) {
  const minInv = sigmaMin ** (1 / rho), maxInv = sigmaMax ** (1 / rho), d = f(minInv - maxInv);
  return [...linspace32(0, 1, n).map((r) => f(f(f(maxInv) + f(r * d)) ** f(rho))), 0];
}

export function exponentialSigmas(n, sigmaMin, sigmaMax) {
  return [...linspace32(Math.log(sigmaMax), Math.log(sigmaMin), n).map((x) => f(Math.exp(x))), 0];
}

export function polyexponentialSigmas(n, sigmaMin, sigmaMax, rho = 1.0) {
  const lmin = Math.log(sigmaMin), span = f(Math.log(sigmaMax) - lmin);
  return [...linspace32(1, 0, n).map((r) => f(Math.exp(f(f(f(r ** f(rho)) * span) + f(lmin))))), 0];
}

function klOptimal(n, sigmaMin, sigmaMax) {
  const amin = f(Math.atan(sigmaMin)), amax = f(Math.atan(sigmaMax));
  const out = [];
  for (let i = 0; i < n; i++) {
    const adj = f(f(i) / f(n - 1));
    out.push(f(Math.tan(f(f(adj * amin) + f(f(1 - adj) * amax)))));
  }
  out.push(0);
  return out;
}

export const SCHEDULERS = {
  simple: (ms, n) => simple(ms, n),
  sgm_uniform: (ms, n) => normal(ms, n, true),
  karras: (ms, n) => karrasSigmas(n, ms.sigmaMin, ms.sigmaMax),
  exponential: (ms, n) => exponentialSigmas(n, ms.sigmaMin, ms.sigmaMax),
  ddim_uniform: (ms, n) => ddimUniform(ms, n),
  beta: (ms, n) => betaSigmas(ms, n),
  normal: (ms, n) => normal(ms, n, false),
  linear_quadratic: (ms, n) => linearQuadratic(ms, n),
  kl_optimal: (ms, n) => klOptimal(n, ms.sigmaMin, ms.sigmaMax),
};

// comfy.samplers.calculate_sigmas; null for a scheduler this file does not know
export function calculateSigmas(ms, scheduler, steps) {
  const handler = SCHEDULERS[scheduler];
  return handler ? handler(ms, steps) : null;
}

// --- the sampler nodes ----------------------------------------------------------------------------

// comfy.samplers.KSampler.DISCARD_PENULTIMATE_SIGMA_SAMPLERS
const DISCARD_PENULTIMATE = new Set(["dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"]);

// KSampler / KSamplerAdvanced: KSampler.set_steps + calculate_sigmas, then sample()'s start/last step.
// Returns {sigmas, first, last}: the schedule and the range [first, last) of its steps that run.
export function ksamplerSchedule(ms, { steps, scheduler, denoise = 1.0, sampler = "euler",
                                       startStep = null, lastStep = null }) {
  const calc = (n) => {
    const discard = DISCARD_PENULTIMATE.has(sampler);
    const s = calculateSigmas(ms, scheduler, discard ? n + 1 : n);
    return s && discard ? [...s.slice(0, -2), s[s.length - 1]] : s;
  };
  let sigmas;
  if (denoise === null || denoise === undefined || denoise > 0.9999) {
    sigmas = calc(steps);
  } else if (denoise <= 0) {
    sigmas = [];
  } else {
    const all = calc(Math.trunc(steps / denoise));
    sigmas = all && all.slice(-(steps + 1));
  }
  if (!sigmas) return null;
  return runRange(sigmas, startStep, lastStep);
}

export function runRange(sigmas, startStep = null, lastStep = null) {
  let first = 0, last = Math.max(sigmas.length - 1, 0);
  if (lastStep !== null && lastStep < sigmas.length - 1) last = lastStep;
  if (startStep !== null) first = startStep < last ? startStep : last;
  return { sigmas, first, last };
}

// BasicScheduler (comfy_extras/nodes_custom_sampler.py)
export function basicSchedulerSigmas(ms, scheduler, steps, denoise = 1.0) {
  let total = steps;
  if (denoise < 1.0) {
    if (denoise <= 0.0) return [];
    total = Math.trunc(steps / denoise);
  }
  const s = calculateSigmas(ms, scheduler, total);
  return s && s.slice(-(steps + 1));
}

function roundHalfEven(x) {  // Python's round()
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// Flux2Scheduler (comfy_extras/nodes_flux.py): FLUX.2's shift mu from the image's token count and the
// step count (compute_empirical_mu), applied to linspace(1, 0, steps + 1).
export function flux2Mu(imageSeqLen, numSteps) {
  const a1 = 8.73809524e-05, b1 = 1.89833333, a2 = 0.00016927, b2 = 0.45666666;
  if (imageSeqLen > 4300) return a2 * imageSeqLen + b2;
  const m200 = a2 * imageSeqLen + b2, m10 = a1 * imageSeqLen + b1;
  const a = (m200 - m10) / 190.0, b = m200 - 200.0 * a;
  return a * numSteps + b;
}

export function flux2SchedulerSigmas(steps, width, height) {
  const mu = flux2Mu(roundHalfEven((width * height) / (16 * 16)), steps);
  const e = f(Math.exp(mu));
  return linspace32(1, 0, steps + 1).map((t) => f(f(1 / f(e + f(f(1 / t) - 1))) * e));
}

// SplitSigmas / SplitSigmasDenoise: output 0 is the high sigmas, 1 the low
export function splitSigmas(sigmas, step, slot) {
  return slot === 0 ? sigmas.slice(0, step + 1) : sigmas.slice(step);
}

export function splitSigmasDenoise(sigmas, denoise, slot) {
  const total = roundHalfEven(Math.max(sigmas.length - 1, 0) * denoise);
  if (slot !== 0) return sigmas.slice(-(total + 1));
  return total === 0 ? [] : sigmas.slice(0, -total);  // python's sigmas[:-0] is empty
}

// --- which steps get gamma ------------------------------------------------------------------------

// One entry per step of the schedule: its paper timestep, whether it runs, whether gamma acts on it
// (gamma acts while t >= cutoff; cutoff null = never).
export function stepWindow(ms, schedule, cutoff) {
  const { sigmas, first, last } = schedule;
  return sigmas.slice(0, -1).map((s, i) => {
    const t = paperTimestep(ms, s), run = i >= first && i < last;
    return { step: i + 1, t, run, taca: run && cutoff !== null && t >= cutoff };
  });
}

// "steps 1–3", "step 1", "none" (the span only, for the typical rows)
export function describeSpan(window) {
  const active = window.filter((w) => w.taca).map((w) => w.step);
  if (active.length === 0) return "none";
  const a = active[0], b = active[active.length - 1];
  return a === b ? `step ${a}` : b - a + 1 === active.length ? `steps ${a}–${b}` : `${active.length} steps`;
}

export function describeSteps(window) {
  const active = window.filter((w) => w.taca).map((w) => w.step);
  const n = window.length;
  if (active.length === 0) return `none of ${n} steps`;
  const a = active[0], b = active[active.length - 1];
  const contiguous = b - a + 1 === active.length;
  const span = a === b ? `step ${a}` : contiguous ? `steps ${a}–${b}` : `${active.length} steps from ${a} to ${b}`;
  return `${span} of ${n}`;
}

// --- the families (ComfyUI 0.33.0) ----------------------------------------------------------------

// Sampling per family, from comfy/supported_models.py (sampling_settings) and comfy/model_base.py (the
// model type picks the class in model_base.model_sampling: FLUX -> ModelSamplingFlux, FLOW ->
// ModelSamplingDiscreteFlow, whose multiplier defaults to 1000).
export const FAMILIES = {
  qwen_image: { label: "Qwen-Image", kind: "flux", shift: 1.15 },    // QwenImage; model_base.QwenImage: FLUX
  z_image: { label: "Z-Image", kind: "flow", shift: 3.0, multiplier: 1.0 },   // ZImage(Lumina2): FLOW
  lumina2: { label: "Lumina 2", kind: "flow", shift: 6.0, multiplier: 1.0 },  // Lumina2: FLOW
  krea2: { label: "Krea 2", kind: "flux", shift: 1.15 },             // Krea2; model_base.Krea2: FLUX
  flux2: { label: "FLUX.2", kind: "flux", shift: 2.02 },             // Flux2(Flux): FLUX
  flux1: { label: "FLUX.1", kind: "flux", shift: 1.15 },             // Flux: {} -> ModelSamplingFlux 1.15
  flux1_schnell: { label: "FLUX.1 schnell", kind: "flow", shift: 1.0, multiplier: 1.0 },  // FluxSchnell
  sd3: { label: "SD3.5", kind: "flow", shift: 3.0, multiplier: 1000 },  // SD3: FLOW
  chroma: { label: "Chroma", kind: "flux", shift: 1.15 },           // Chroma: no shift; model_base: FLUX
  hidream: { label: "HiDream", kind: "flow", shift: 1.0, multiplier: 1000 },  // HiDream: {} (the 2nd dict wins)
  hunyuan_image: { label: "HunyuanImage 2.1", kind: "flow", shift: 5.0, multiplier: 1000 },  // FLOW
  omnigen2: { label: "OmniGen2", kind: "flow", shift: 2.6, multiplier: 1.0 },  // Omnigen2: FLOW
  aura: { label: "AuraFlow", kind: "flow", shift: 1.73, multiplier: 1.0 },  // AuraFlow: FLOW
};

export function familySampling(key) {
  const fam = FAMILIES[key];
  return modelSampling(fam.kind, fam.shift, fam.multiplier ?? 1000);
}

// Typical schedules when no sampler is linked: the family's default sampling, with the steps and
// scheduler of ComfyUI's own template for it (comfyui-workflow-templates-json 0.1.123):
// image_qwen_image.json (KSampler 20 steps, simple, Lightning LoRA off), image_z_image.json (25, simple),
// image_z_image_turbo.json (8, simple), image_krea2_turbo_t2i.json (8, simple),
// image_flux2_text_to_image.json (Flux2Scheduler 20 steps, 1024x1024), image_flux2_klein_text_to_image.json
// (distilled: Flux2Scheduler 4 steps, 1024x1024), flux_dev_full_text_to_image.json (20, simple),
// sd3.5_simple_example.json (20, sgm_uniform). Flux2Scheduler's mu depends on the resolution: at 1024x1024
// and 50 steps it is 2.02, the model's default shift.
export const TYPICAL = [
  { family: "qwen_image", steps: 20, scheduler: "simple" },
  { family: "z_image", steps: 25, scheduler: "simple" },
  { family: "z_image", label: "Z-Image Turbo", steps: 8, scheduler: "simple" },
  { family: "krea2", label: "Krea 2 Turbo", steps: 8, scheduler: "simple" },
  { family: "flux2", steps: 20, scheduler: "flux2", width: 1024, height: 1024 },
  { family: "flux2", label: "FLUX.2 klein", steps: 4, scheduler: "flux2", width: 1024, height: 1024 },
  { family: "flux1", steps: 20, scheduler: "simple" },
  { family: "sd3", steps: 20, scheduler: "sgm_uniform" },
];

export function typicalRows(cutoff) {
  return TYPICAL.map((row) => {
    const ms = familySampling(row.family);
    const sigmas = row.scheduler === "flux2"
      ? flux2SchedulerSigmas(row.steps, row.width, row.height)
      : calculateSigmas(ms, row.scheduler, row.steps);
    const window = stepWindow(ms, runRange(sigmas), cutoff);
    return { label: row.label ?? FAMILIES[row.family].label, steps: row.steps,
             scheduler: row.scheduler === "flux2" ? "Flux2Scheduler" : row.scheduler,
             window, text: describeSteps(window), span: describeSpan(window) };
  });
}

// --- a sampler found in the graph (taca_schedule_graph.js's spec) -> its steps ------------------------

// ModelSamplingFlux node (comfy_extras/nodes_model_advanced.py): shift from the latent's token count
export function modelSamplingFluxShift(maxShift, baseShift, width, height) {
  if (!Number.isFinite(maxShift)) maxShift = 1.15;
  if (!Number.isFinite(baseShift)) baseShift = 0.5;
  const x1 = 256, x2 = 4096;
  const mm = (maxShift - baseShift) / (x2 - x1);
  const b = baseShift - mm * x1;
  return ((width * height) / (8 * 8 * 2 * 2)) * mm + b;
}

// The model's sampling and a sentence saying where it came from. model: {family, how, sampling,
// samplingNode} as taca_schedule_graph.js reads it.
export function resolveSampling(model) {
  const fam = model?.family && FAMILIES[model.family];
  const famText = fam ? `${fam.label} (${model.how})` : "model family unknown: assuming FLUX.1";
  if (model?.sampling && Number.isFinite(model.sampling.shift)) {
    const s = model.sampling;
    return { ms: modelSampling(s.kind, s.shift, s.multiplier),
             text: `${famText}, ${model.samplingNode} shift ${+s.shift.toFixed(3)}` };
  }
  const key = fam ? model.family : "flux1";
  const d = FAMILIES[key];
  return { ms: familySampling(key), text: `${famText}, default shift ${d.shift}` };
}

function resolveSigmas(spec, modelMs) {
  if (!spec) return null;
  const ok = (...xs) => xs.every((x) => Number.isFinite(x));
  switch (spec.type) {
    case "ksampler":
      if (!ok(spec.steps)) return null;
      return ksamplerSchedule(modelMs, { steps: spec.steps, scheduler: spec.scheduler, denoise: spec.denoise,
                                         sampler: spec.sampler, startStep: spec.start, lastStep: spec.end });
    case "basic": {
      if (!ok(spec.steps, spec.denoise)) return null;
      const s = basicSchedulerSigmas(resolveSampling(spec.model).ms, spec.scheduler, spec.steps, spec.denoise);
      return s && runRange(s);
    }
    case "beta":
      if (!ok(spec.steps, spec.alpha, spec.beta)) return null;
      return runRange(betaSigmas(resolveSampling(spec.model).ms, spec.steps, spec.alpha, spec.beta));
    case "flux2":
      if (!ok(spec.steps, spec.width, spec.height)) return null;
      return runRange(flux2SchedulerSigmas(spec.steps, spec.width, spec.height));
    case "KarrasScheduler":
      if (!ok(spec.steps, spec.sigma_min, spec.sigma_max, spec.rho)) return null;
      return runRange(karrasSigmas(spec.steps, spec.sigma_min, spec.sigma_max, spec.rho));
    case "ExponentialScheduler":
      if (!ok(spec.steps, spec.sigma_min, spec.sigma_max)) return null;
      return runRange(exponentialSigmas(spec.steps, spec.sigma_min, spec.sigma_max));
    case "PolyexponentialScheduler":
      if (!ok(spec.steps, spec.sigma_min, spec.sigma_max, spec.rho)) return null;
      return runRange(polyexponentialSigmas(spec.steps, spec.sigma_min, spec.sigma_max, spec.rho));
    case "SplitSigmas": case "SplitSigmasDenoise": {
      const inner = resolveSigmas(spec.inner, modelMs);
      if (!inner) return null;
      const s = inner.sigmas;
      return runRange(spec.type === "SplitSigmas" ? splitSigmas(s, spec.step, spec.slot)
                                                   : splitSigmasDenoise(s, spec.denoise, spec.slot));
    }
    default:
      return null;
  }
}

function schedulerLabel(spec) {
  switch (spec.type) {
    case "ksampler": return `${spec.scheduler}, denoise ${(spec.denoise ?? 1).toFixed(2)}`;
    case "basic": return `BasicScheduler ${spec.scheduler}, denoise ${(spec.denoise ?? 1).toFixed(2)}`;
    case "beta": return `BetaSamplingScheduler α ${spec.alpha}, β ${spec.beta}`;
    case "flux2": return `Flux2Scheduler ${spec.width}×${spec.height}`;
    case "SplitSigmas": return `${schedulerLabel(spec.inner)}, ${spec.slot ? "low" : "high"} sigmas from step ${spec.step}`;
    case "SplitSigmasDenoise": return `${schedulerLabel(spec.inner)}, ${spec.slot ? "low" : "high"} sigmas of denoise ${spec.denoise}`;
    default: return spec.type;
  }
}

// The sampler's steps under a cutoff: {window, text, scheduler, model} or {error} when the graph shows a
// sampler whose schedule the preview cannot replay.
export function samplerRows(spec, cutoff) {
  const model = resolveSampling(spec.model);
  const schedule = resolveSigmas(spec.schedule, model.ms);
  if (!schedule) {
    const t = spec.schedule?.type;
    const what = t === "unknown" ? `sigmas from ${spec.schedule.node}`
      : t === "ksampler" || t === "basic" ? `scheduler ${spec.schedule.scheduler}` : "its schedule";
    return { error: `${spec.sampler}: ${what} not previewed` };
  }
  const window = stepWindow(model.ms, schedule, cutoff);
  let scheduler = schedulerLabel(spec.schedule);
  if (schedule.first > 0 || schedule.last < window.length) {
    scheduler += `, runs steps ${schedule.first + 1}–${schedule.last}`;
  }
  return { window, text: describeSteps(window), scheduler, model: model.text, ms: model.ms };
}
