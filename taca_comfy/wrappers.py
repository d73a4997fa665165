"""The two ComfyUI wrappers that drive TACA (duck-typed; no ComfyUI import).

apply_model: per model call, decide from sigma whether gamma acts; if so, read
this call's token layout (from the family table) into a TacaCall, this thread's CURRENT_CALL for the
call. The attention override goes into a copy of transformer_options on every
call of a model whose gamma is not 1, inside the window or not: under
torch.compile (ComfyUI's compile guards ignore transformer_options) every call
then traces the same code, which guards on CURRENT_CALL, so a graph traced with
TACA is never reused without it. Outside the window the override passes each
attention call through unchanged: the output is bit-identical to the unpatched
model's.

outer_sample: per sampling run, warn when gamma was due but TACA did not act on
every model call, naming what it saw: no attention call at all (another node
replaced the forward code), attention calls but none joint, or joint-length
calls of an unexpected shape.
"""
import logging
import threading
from dataclasses import dataclass, field
from typing import Optional

from ..taca_core.schedule import TacaSchedule
from .families import Family
from .override import CURRENT_CALL, OVERRIDE_KEY, TacaAttentionOverride, TacaCall

RUN_KEY = "taca_run"  # transformer_options entry holding the current TacaRun
SCHEDULE_KEY = "taca_schedule"  # transformer_options entry: the model's TacaSchedule (read by the TACA LoRA)

log = logging.getLogger("ComfyUI-TACA")


@dataclass
class TacaRun:
    due: int = 0            # model calls in the TACA window
    no_attention: int = 0   # of those, calls where no attention call reached TACA at all
    no_joint: int = 0       # calls whose attention calls all were shorter than the joint sequence
    unexpected: int = 0     # attention calls skipped for an unexpected shape (any model call)
    example: Optional[TacaCall] = None  # a call that went wrong, for the message
    lock: threading.Lock = field(default_factory=threading.Lock)  # multi-GPU work units record from threads

    def record(self, call: TacaCall):
        with self.lock:
            self._record(call)

    def _record(self, call: TacaCall):
        self.due += 1
        if call.seen == 0:
            self.no_attention += 1
        elif call.fired == 0 and call.unexpected == 0:
            self.no_joint += 1
        self.unexpected += call.unexpected
        if (call.fired == 0 or call.unexpected) and self.example is None:
            self.example = call

    def problems(self) -> list:
        out = []
        if self.no_attention:
            out.append(
                f"on {self.no_attention} of {self.due} model call(s) in the TACA window no attention call reached "
                "TACA at all: another node has replaced the model's forward code (caching nodes such as TeaCache "
                "do this) or the model calls attention without transformer_options. Bypass that node, or TACA, "
                "for this model")
        if self.no_joint:
            out.append(
                f"on {self.no_joint} of {self.due} model call(s) attention calls reached TACA but none was a joint "
                f"text-image call of the expected length ({self.example.layout.describe()}), so TACA did not act "
                "there. A node that changes the token sequence (text, image size, reference images) may be the "
                "cause")
        if self.unexpected:
            q, k = self.example.unexpected_shape if self.example.unexpected else ("?", "?")
            out.append(
                f"{self.unexpected} attention call(s) had a shape TACA did not expect (e.g. {q} queries x {k} keys; "
                f"expected {self.example.layout.describe()}) and were left without TACA. A node that adds or "
                "caches tokens may be the cause")
        return out


class TacaApplyModelWrapper:
    def __init__(self, schedule: TacaSchedule, family: Family):
        self.schedule = schedule
        self.family = family

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None,
                 transformer_options={}, **kwargs):
        if self.schedule.gamma == 1.0:  # never acts: leave every call alone
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        base_model = executor.class_obj
        gamma = self.schedule.gamma_at_sigma(base_model.model_sampling, t)
        call = None
        if gamma != 1.0:
            layout = self.family.call_layout(base_model.diffusion_model, x, c_crossattn, kwargs)
            if layout is not None and layout.text > 0:
                call = TacaCall(gamma, layout)
        options = transformer_options.copy()
        options[OVERRIDE_KEY] = TacaAttentionOverride(previous=options.get(OVERRIDE_KEY),
                                                      layer_attention=self.family.bind_layer_attention(base_model.diffusion_model),
                                                      replay=call)
        token = CURRENT_CALL.set(call)
        try:
            out = executor(x, t, c_concat, c_crossattn, control, options, **kwargs)
        finally:
            CURRENT_CALL.reset(token)

        run = transformer_options.get(RUN_KEY)
        if run is not None and call is not None:
            run.record(call)
        return out


def taca_outer_sample_wrapper(executor, *args, **kwargs):
    options = executor.class_obj.model_options["transformer_options"]  # the guider's per-run copy
    run = options[RUN_KEY] = TacaRun()
    try:
        return executor(*args, **kwargs)
    finally:
        options.pop(RUN_KEY, None)
        for problem in run.problems():
            log.warning("TACA Model Patch: gamma was due, but %s.", problem)

