"""The schedule preview's answer: for the sampling the frontend read from the graph, the sigmas ComfyUI itself
samples with and the steps on which TACA's gamma acts.

Nothing here re-implements ComfyUI: the model's sampling is the family's own (comfy.supported_models config ->
its get_model's model_sampling, with any ModelSampling* node of the graph run on it), the sigmas come from
comfy.samplers.KSampler (scheduler, denoise, the samplers that drop the penultimate sigma) or from the graph's
own sigmas nodes run as ComfyUI runs them, and gamma from taca_core.schedule. schedule_preview(request) is a
plain function of JSON (the route in preview_route.py only wraps it). The request:

    {"gamma": 1.2, "cutoff": 970,
     "sampler": null (typical schedules) | {
        "node": "KSampler" | "KSamplerAdvanced", "sampler_name", "scheduler", "steps", "denoise",
        "start", "end"}                                  (KSamplerAdvanced's start_at_step / end_at_step)
      | {"node": "SamplerCustom" | "SamplerCustomAdvanced", "sigmas": SIGMAS},
     "model": MODEL}
    SIGMAS = {"node": sigmas node id, "inputs": {widget: value}, "slot": output index,
              "sigmas": SIGMAS (its sigmas input), "model": MODEL (its model input, default the sampler's)}
    MODEL = {"file": loader file name, "clip": "<CLIP loader type or node id> <file>",
             "sampling": {"node": "ModelSamplingFlux" | ..., "inputs": {widget: value}} or null}

"Step i": the sampler's i-th step, whose first model call is at sigma_i (every ComfyUI sampler starts a step
there; a second-order sampler's further calls in the step, heun's at sigma_{i+1}, dpmpp_2s's midpoint, are at
lower sigmas). gamma acts on step i iff it acts on that call, so a step marked "taca" is one on which TACA
changes at least one model call, and no other step has one.
"""
from functools import lru_cache

import torch

from ..taca_core.schedule import TacaSchedule, paper_timestep
from .families import FAMILIES, preview_variant, typical_schedules

FALLBACK = "FLUX.1"  # the variant assumed when the graph names no known family
SIGMA_NODE_INPUTS = {"MODEL", "SIGMAS", "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}  # a pure computation


class PreviewError(ValueError):
    """The request names something this ComfyUI cannot preview; the message is shown on the node."""


# --- per-release differences, all here ----------------------------------------------------------------

def _node_class(name):
    """A node class as the server registered it (nodes.NODE_CLASS_MAPPINGS holds comfy_extras and packs once
    the server has loaded them)."""
    import nodes
    cls = nodes.NODE_CLASS_MAPPINGS.get(name)
    if cls is None:
        raise PreviewError(f"{name} is not a node of this ComfyUI")
    return cls


def _run_node(cls, **inputs):
    """A node's outputs. 0.3.64's custom-sampler nodes are V1 classes (FUNCTION on an instance); 0.8.0 and
    later define them as io.ComfyNode (classmethod execute returning a NodeOutput)."""
    if hasattr(cls, "define_schema"):
        out = cls.execute(**inputs)
        return tuple(out.result if hasattr(out, "result") else out.args)
    return tuple(getattr(cls(), cls.FUNCTION)(**inputs))


@lru_cache(maxsize=None)
def _base_model(supported_model):
    """ComfyUI's model object for a comfy.supported_models config, without its diffusion model (the
    config's disable_unet_model_creation): its model_sampling is what a checkpoint of it samples with.
    Some configs' __init__ read a size of the checkpoint (0.33.0's Flux2: hidden_size, for its memory
    estimate), which sampling never uses: any number does."""
    import comfy.supported_models
    cls = getattr(comfy.supported_models, supported_model, None)
    if cls is None:
        return None
    unet_config = {"disable_unet_model_creation": True}
    for _ in range(8):
        try:
            return cls(unet_config).get_model({})
        except KeyError as e:
            unet_config[e.args[0]] = 1
    raise PreviewError(f"cannot build comfy.supported_models.{supported_model}'s sampling here")


def _patcher(base_model):
    import comfy.model_patcher
    return comfy.model_patcher.ModelPatcher(base_model, load_device=torch.device("cpu"),
                                            offload_device=torch.device("cpu"))


# --- the model's sampling -------------------------------------------------------------------------------

def _variant(label):
    return next(v for f in FAMILIES for v in f.preview.variants if v.label == label)


def _describe_sampling(ms):
    """'ModelSamplingFlux shift 1.15': the comfy.model_sampling class a model's sampling is built on."""
    base = next((c.__name__ for c in type(ms).__mro__ if c.__module__ == "comfy.model_sampling"), type(ms).__name__)
    return " ".join([base] + [f"{k} {float(getattr(ms, k)):g}" for k in ("shift", "multiplier") if hasattr(ms, k)])


def resolve_model(model):
    """(ModelPatcher with the graph's sampling, sentence saying what was assumed) for a MODEL fact."""
    model = model or {}
    _, variant, how = preview_variant(model.get("file"), model.get("clip"))
    if variant is None:
        variant, text = _variant(FALLBACK), f"model family unknown: assuming {FALLBACK}"
    else:
        text = f"{variant.label} ({how})"
    base = _base_model(variant.supported_model)
    if base is None:
        text += f"; this ComfyUI has no {variant.supported_model} config: assuming {FALLBACK}"
        base = _base_model(_variant(FALLBACK).supported_model)
    patcher = _patcher(base)
    sampling = model.get("sampling")
    if sampling:
        name = sampling.get("node", "")
        if not name.startswith("ModelSampling"):
            raise PreviewError(f"{name} is not a ModelSampling node")
        cls = _node_class(name)
        try:
            patcher = _run_node(cls, model=patcher, **_typed_inputs(cls, sampling.get("inputs") or {}))[0]
        except (TypeError, ValueError) as e:
            raise PreviewError(f"{name}: {e}") from None
        text += f", {name}: {_describe_sampling(patcher.get_model_object('model_sampling'))}"
    else:
        text += f", default sampling: {_describe_sampling(base.model_sampling)}"
    return patcher, text


def _typed_inputs(cls, values):
    """The graph's widget values for a node's widget inputs, typed as the node declares them."""
    spec = cls.INPUT_TYPES()
    declared = {**spec.get("required", {}), **spec.get("optional", {})}
    out = {}
    for name, value in values.items():
        kind = declared.get(name, (None,))[0]
        if kind is None or kind in ("MODEL", "SIGMAS"):
            continue
        try:
            out[name] = int(value) if kind == "INT" else float(value) if kind == "FLOAT" else value
        except (TypeError, ValueError):
            raise PreviewError(f"{cls.__name__}.{name} = {value!r} is not a number") from None
    return out


# --- the sigmas -----------------------------------------------------------------------------------------

def ksampler_sigmas(patcher, steps, sampler_name, scheduler, denoise=1.0, start=None, end=None):
    """(sigmas, first, last) of KSampler / KSamplerAdvanced: comfy.samplers.KSampler's own sigmas, then the
    start/last step cut of its sample() (its lines: last_step cuts sigmas[:last_step + 1]; a start_step
    at or past the last sigma runs nothing). Steps first..last-1 (0-based) run."""
    import comfy.samplers
    if scheduler not in comfy.samplers.KSampler.SCHEDULERS:
        raise PreviewError(f"scheduler {scheduler} is not one of this ComfyUI's")
    sigmas = comfy.samplers.KSampler(patcher, steps=int(steps), device="cpu", sampler=sampler_name,
                                     scheduler=scheduler, denoise=denoise).sigmas.cpu()
    n = len(sigmas) - 1
    last = int(end) if end is not None and int(end) < n else n
    first = 0 if start is None else min(int(start), last)
    return sigmas, first, last


def node_sigmas(spec, patcher, depth=0):
    """The SIGMAS a graph's sigmas node outputs, by running that node (and the sigmas nodes feeding it)."""
    if not spec or depth > 8:
        raise PreviewError("no sigmas node")
    name = spec.get("node", "")
    cls = _node_class(name)
    spec_inputs = cls.INPUT_TYPES()
    declared = {**spec_inputs.get("required", {}), **spec_inputs.get("optional", {})}
    kinds = {k: (v[0] if not isinstance(v[0], list) else "COMBO") for k, v in declared.items()}
    if tuple(cls.RETURN_TYPES)[:1] != ("SIGMAS",) or not set(kinds.values()) <= SIGMA_NODE_INPUTS:
        raise PreviewError(f"sigmas from {name} are not previewed")
    inputs = _typed_inputs(cls, spec.get("inputs") or {})
    for input_name, kind in kinds.items():  # the graph reader names a node's MODEL / SIGMAS inputs by role
        if kind == "MODEL":
            inputs[input_name] = resolve_model(spec["model"])[0] if spec.get("model") else patcher
        elif kind == "SIGMAS":
            inputs[input_name] = node_sigmas(spec.get("sigmas"), patcher, depth + 1)
    try:
        out = _run_node(cls, **inputs)
    except (TypeError, ValueError, KeyError) as e:
        raise PreviewError(f"{name}: {e}") from None
    return out[int(spec.get("slot") or 0)].cpu()


# --- which steps gamma acts on ---------------------------------------------------------------------------

def step_window(model_sampling, sigmas, first, last, schedule):
    """One entry per step: its sigma, paper timestep, whether it runs and whether gamma acts on it."""
    out = []
    if len(sigmas) < 2:
        return out
    t = paper_timestep(model_sampling, sigmas[:-1])
    for i, (s, ti) in enumerate(zip(sigmas[:-1].tolist(), t.tolist())):
        run = first <= i < last
        taca = run and schedule.gamma_at(t[i:i + 1]) != 1.0
        out.append({"step": i + 1, "sigma": s, "t": ti, "run": run, "taca": taca})
    return out


def _span(on):
    a, b = on[0], on[-1]
    return f"step {a}" if a == b else f"steps {a}–{b}" if b - a + 1 == len(on) else f"{len(on)} steps from {a} to {b}"


def describe_steps(window):
    """'steps 1–3 of 20', 'step 1 of 8', '3 steps from 2 to 9 of 20', 'none of 20 steps'."""
    on = [w["step"] for w in window if w["taca"]]
    return f"{_span(on)} of {len(window)}" if on else f"none of {len(window)} steps"


def _schedule(request):
    try:
        return TacaSchedule(float(request.get("gamma", 1.2)), float(request.get("cutoff", 970)))
    except (TypeError, ValueError) as e:
        raise PreviewError(str(e)) from None


def _label(spec):
    name = spec.get("node", "?")
    shown = {k: v for k, v in (spec.get("inputs") or {}).items() if not isinstance(v, str) or len(v) < 24}
    label = f"{name} " + ", ".join(f"{k} {v}" for k, v in shown.items()) if shown else name
    if spec.get("sigmas"):
        label = f"{_label(spec['sigmas'])} → {label}" + (f" (output {spec.get('slot')})" if spec.get("slot") else "")
    return label


def _number(node, facts, key, default=...):
    value = facts.get(key)
    if value is None and default is not ...:
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PreviewError(f"{node}: {key} is not a number ({value!r})") from None


def schedule_preview(request):
    """The preview's JSON answer (see the module docstring); PreviewError for what cannot be previewed."""
    schedule = _schedule(request)
    sampler = request.get("sampler")
    if not sampler:
        return {"mode": "typical", "rows": typical_rows(schedule)}
    patcher, assumed = resolve_model(request.get("model"))
    name = sampler.get("node", "")
    if name in ("KSampler", "KSamplerAdvanced"):
        steps = _number(name, sampler, "steps")
        denoise = 1.0 if name == "KSamplerAdvanced" else _number(name, sampler, "denoise", 1.0)
        sigmas, first, last = ksampler_sigmas(patcher, int(steps), sampler.get("sampler_name", "euler"),
                                              sampler.get("scheduler"), denoise, _number(name, sampler, "start", None),
                                              _number(name, sampler, "end", None))
        label = f"{sampler.get('scheduler')}, denoise {denoise:.2f}"
    else:
        sigmas = node_sigmas(sampler.get("sigmas"), patcher)
        first, last = 0, len(sigmas) - 1
        label = _label(sampler["sigmas"])
    window = step_window(patcher.get_model_object("model_sampling"), sigmas, first, last, schedule)
    if first > 0 or last < len(window):
        label += f", runs steps {first + 1}–{last}"
    return {"mode": "sampler", "window": window, "text": describe_steps(window), "scheduler": label,
            "model": assumed, "taca_steps": [w["step"] for w in window if w["taca"]]}


def typical_rows(schedule):
    """The typical schedules of the family table, under each variant's default sampling; rows whose config
    or sigmas node this ComfyUI lacks are left out."""
    import nodes
    rows = []
    for variant, typical in typical_schedules():
        base = _base_model(variant.supported_model)
        if base is None or (typical.node and typical.node not in nodes.NODE_CLASS_MAPPINGS):
            continue
        patcher = _patcher(base)
        if typical.node:
            sigmas = node_sigmas({"node": typical.node, "inputs": dict(typical.inputs)}, patcher)
            first, last, scheduler = 0, len(sigmas) - 1, typical.node
        else:
            sigmas, first, last = ksampler_sigmas(patcher, typical.steps, "euler", typical.scheduler)
            scheduler = typical.scheduler
        window = step_window(base.model_sampling, sigmas, first, last, schedule)
        on = [w["step"] for w in window if w["taca"]]
        rows.append({"label": typical.label, "steps": len(window), "scheduler": scheduler, "window": window,
                     "span": _span(on) if on else "none", "taca_steps": [w["step"] for w in window if w["taca"]]})
    return rows

