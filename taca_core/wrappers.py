"""The two ComfyUI wrappers that drive TACA (duck-typed; no ComfyUI import).

apply_model: per model call, decide from sigma whether gamma acts; if so, read
this call's text length and install the TACA attention override for this call
only, on a copy of transformer_options. Outside the window nothing is touched,
so the output is bit-identical to the unpatched model.

outer_sample: per sampling run, warn when gamma was due but no joint attention
call ever reached the override (another node replaced the forward code).
"""
import logging
from dataclasses import dataclass

from .families import MMDiTFamily
from .override import TacaAttentionOverride, TacaCall
from .schedule import TacaSchedule

OVERRIDE_KEY = "optimized_attention_override"
RUN_KEY = "taca_run"  # transformer_options entry holding the current TacaRun
SCHEDULE_KEY = "taca_schedule"  # transformer_options entry: the model's TacaSchedule (read by the TACA LoRA)

log = logging.getLogger("ComfyUI-TACA")


@dataclass
class TacaRun:
    due: int = 0    # model calls in the TACA window
    missed: int = 0  # of those, calls where no joint attention reached TACA


class TacaApplyModelWrapper:
    def __init__(self, schedule: TacaSchedule, family: MMDiTFamily):
        self.schedule = schedule
        self.family = family

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None,
                 transformer_options={}, **kwargs):
        base_model = executor.class_obj
        gamma = self.schedule.gamma_at_sigma(base_model.model_sampling, t)
        if gamma == 1.0 or c_crossattn is None:
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)

        dm = base_model.diffusion_model
        txt_len = self.family.text_tokens(dm, c_crossattn)
        call = TacaCall(gamma, txt_len, txt_len + self.family.image_tokens(dm, x))
        options = transformer_options.copy()
        options[OVERRIDE_KEY] = TacaAttentionOverride(call, options.get(OVERRIDE_KEY))
        out = executor(x, t, c_concat, c_crossattn, control, options, **kwargs)

        run = transformer_options.get(RUN_KEY)
        if run is not None:
            run.due += 1
            run.missed += call.fired == 0
        return out


def taca_outer_sample_wrapper(executor, *args, **kwargs):
    options = executor.class_obj.model_options["transformer_options"]  # the guider's per-run copy
    run = options[RUN_KEY] = TacaRun()
    try:
        return executor(*args, **kwargs)
    finally:
        options.pop(RUN_KEY, None)
        if run.missed:
            log.warning(
                "TACA Model Patch: gamma was due on %d model call(s) of this sampling run, but on %d of them "
                "no joint attention call reached TACA, so TACA did not act there. Another node has probably "
                "replaced the model's forward code (caching nodes such as TeaCache do this) or calls attention "
                "without transformer_options. Bypass that node, or TACA, for this model.",
                run.due, run.missed)
