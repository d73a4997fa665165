"""The two ComfyUI wrappers that drive TACA (duck-typed; no ComfyUI import).

apply_model: per model call, decide from sigma whether gamma acts; if so, read
this call's text length into a TacaCall, this thread's CURRENT_CALL for the
call. The attention override goes into a copy of transformer_options on every
call of a model whose gamma is not 1, inside the window or not: under
torch.compile (ComfyUI's compile guards ignore transformer_options) every call
then traces the same code, which guards on CURRENT_CALL, so a graph traced with
TACA is never reused without it. Outside the window the override passes each
attention call through unchanged: the output is bit-identical to the unpatched
model's.

outer_sample: per sampling run, warn when gamma was due but no joint attention
call ever reached the override (another node replaced the forward code).
"""
import logging
from dataclasses import dataclass

from .families import MMDiTFamily
from .override import CURRENT_CALL, TacaAttentionOverride, TacaCall
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
        if self.schedule.gamma == 1.0:  # never acts: leave every call alone
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        base_model = executor.class_obj
        call = None
        if c_crossattn is not None and self.schedule.gamma_at_sigma(base_model.model_sampling, t) != 1.0:
            dm = base_model.diffusion_model
            txt_len = self.family.text_tokens(dm, c_crossattn)
            call = TacaCall(self.schedule.gamma, txt_len, txt_len + self.family.image_tokens(dm, x))
        options = transformer_options.copy()
        options[OVERRIDE_KEY] = TacaAttentionOverride(previous=options.get(OVERRIDE_KEY))
        token = CURRENT_CALL.set(call)
        try:
            out = executor(x, t, c_concat, c_crossattn, control, options, **kwargs)
        finally:
            CURRENT_CALL.reset(token)

        run = transformer_options.get(RUN_KEY)
        if run is not None and call is not None:
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
