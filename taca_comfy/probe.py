"""The TACA Attention Probe as a peer of TACA: its own wrappers and its own chained attention override.

Per model call, its apply_model wrapper reads the token layout from the family table and gamma from
the TACA Model Patch's schedule in transformer_options, and installs an override that records the
image->text attention share of each joint call (taca_core.probe) from the q and k ComfyUI hands
over, then passes the call on, unchanged, to whatever override was there (TACA's, another node's)
or to ComfyUI's attention. It must see those q and k before TACA splits the call, so its
outer_sample wrapper moves its apply_model wrapper innermost for the run (the last wrapper's
override is called first). TACA's own code does not know the probe exists.
"""
import contextvars

from comfy.patcher_extension import WrappersMP

from ..taca_core.layout import JOINT
from ..taca_core.probe import AttentionProbe
from ..taca_core.schedule import paper_timestep
from .families import Family
from .opaque_models import require_taca_can_act
from .override import OVERRIDE_KEY, AttentionArgs, call_next
from .wrappers import SCHEDULE_KEY

WRAPPER_KEY = "taca_probe"
_CALL = contextvars.ContextVar("taca_probe_call", default=None)  # (ProbeCall, TokenLayout) of this model call


class ProbeOverride:
    def __init__(self, previous=None):
        self.previous = previous

    def __call__(self, func, q, k, v, *rest, **kwargs):
        current = _CALL.get()
        if current is not None:
            call, layout = current
            a = AttentionArgs(q, k, rest, kwargs)
            kind, spans = layout.classify(a.n_queries, a.n_keys)
            if kind == JOINT:
                call.record(*a.bhld(q, k), *spans, a.mask_4d(), kwargs.get("scale"))
        return call_next(self.previous, func, q, k, v, *rest, **kwargs)


class ProbeApplyModelWrapper:
    def __init__(self, probe: AttentionProbe, family: Family):
        self.probe = probe
        self.family = family

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None,
                 transformer_options={}, **kwargs):
        base_model = executor.class_obj
        schedule = transformer_options[SCHEDULE_KEY]
        layout = self.family.call_layout(base_model.diffusion_model, x, c_crossattn, kwargs)
        current = None
        if layout is not None and layout.text > 0:
            gamma = schedule.gamma_at_sigma(base_model.model_sampling, t)
            timestep = paper_timestep(base_model.model_sampling, t).max().item()
            current = (self.probe.new_call(t.max().item(), timestep, gamma), layout)
        options = transformer_options.copy()
        options[OVERRIDE_KEY] = ProbeOverride(previous=options.get(OVERRIDE_KEY))
        token = _CALL.set(current)
        try:
            return executor(x, t, c_concat, c_crossattn, control, options, **kwargs)
        finally:
            _CALL.reset(token)


class ProbeOuterSampleWrapper:
    """Starts the probe's recording for a sampling run, with its apply_model wrapper innermost."""

    def __init__(self, probe: AttentionProbe):
        self.probe = probe

    def __call__(self, executor, *args, **kwargs):
        options = executor.class_obj.model_options["transformer_options"]  # the guider's per-run copy
        if SCHEDULE_KEY not in options:
            raise ValueError("TACAAttentionProbe: this model has no TACA Model Patch, which the probe needs to find "
                             "the text and image tokens. Add TACA Model Patch to the model path (before or after "
                             "the probe; gamma 1.0 measures plain attention only).")
        apply_model = options.get("wrappers", {}).get(WrappersMP.APPLY_MODEL, {})
        if WRAPPER_KEY in apply_model:
            apply_model[WRAPPER_KEY] = apply_model.pop(WRAPPER_KEY)  # last = innermost
        self.probe.start_run()
        return executor(*args, **kwargs)


def attach_probe(node: str, model):
    """A clone of model that records the image->text attention share on every sampling run."""
    family = require_taca_can_act(node, model)
    probed = model.clone()
    probe = AttentionProbe()
    for wrapper_type in (WrappersMP.APPLY_MODEL, WrappersMP.OUTER_SAMPLE):
        probed.remove_wrappers_with_key(wrapper_type, WRAPPER_KEY)
    probed.add_wrapper_with_key(WrappersMP.APPLY_MODEL, WRAPPER_KEY, ProbeApplyModelWrapper(probe, family))
    probed.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, ProbeOuterSampleWrapper(probe))
    return probed, probe
