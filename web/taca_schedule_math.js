// Which sampling steps get TACA's gamma, computed as ComfyUI does it: the model's sigma table
// (flow models, sigma(t) over t = 1..1000 / 1000) sampled by the "simple" scheduler; gamma acts
// on a step when 1000 * sigma >= timestep_cutoff (the paper's timestep scale).

export const PAPER_CUTOFF = 970;

export const SCHEDULES = [
  { label: "FLUX.1", shift: 1.15, kind: "flux", steps: [20, 30] },  // ModelSamplingFlux, 1024²
  { label: "SD3.5", shift: 3.0, kind: "sd3", steps: [20, 30] },     // ModelSamplingDiscreteFlow
];

function sigmaAt(kind, shift, t) {
  if (kind === "flux") return Math.exp(shift) / (Math.exp(shift) + (1 / t - 1));  // flux_time_shift
  return (shift * t) / (1 + (shift - 1) * t);                                    // time_snr_shift
}

export function stepSigmas(kind, shift, steps) {
  // ComfyUI keeps its sigma table in float32: round like it, so boundary cutoffs (900 = 0.9) agree
  const table = Array.from({ length: 1000 }, (_, i) => Math.fround(sigmaAt(kind, shift, (i + 1) / 1000)));
  const stride = table.length / steps;
  return Array.from({ length: steps }, (_, k) => table[table.length - 1 - Math.floor(k * stride)]);
}

// Steps (1-based) on which gamma acts.
export function tacaSteps(kind, shift, steps, cutoff) {
  return stepSigmas(kind, shift, steps)
    .map((s, i) => [i + 1, 1000 * s])
    .filter(([, t]) => t >= cutoff)
    .map(([k]) => k);
}

export function describeSteps(active, steps) {
  if (active.length === 0) return `none of ${steps} steps`;
  const first = active[0], last = active[active.length - 1];
  const span = first === last ? `step ${first}` : `steps ${first}–${last}`;
  return `${span} of ${steps}`;
}

export function scheduleLines(cutoff) {
  const lines = [];
  for (const s of SCHEDULES) {
    for (const n of s.steps) {
      lines.push({ label: `${s.label}, ${n} steps`, text: describeSteps(tacaSteps(s.kind, s.shift, n, cutoff), n) });
    }
  }
  return lines;
}
