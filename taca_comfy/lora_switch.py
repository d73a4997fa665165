"""A LoRA that is on only while TACA acts, switched per model call, never writing a weight.

The on/off state lives in a context variable that an apply_model wrapper sets
for exactly one model call. A context variable belongs to the thread that set
it, so ComfyUI's multi-GPU work units (model calls of clones, in parallel
threads, sharing these objects) never see each other's state; torch.compile
guards on its value, so a graph traced with the LoRA on is never reused with it
off. No object shared between calls holds a flag, with one exception: gradient
checkpointing (Train LoRA's default) recomputes each block during backward,
after the wrapper has closed the gate and, on a GPU, in autograd's own thread,
where no model call is in flight; a Linear layer cannot reach the call it is
recomputed for, so the gate then replays the decision of its last model call
made with autograd on. That is the decision of every model call of the batch
being back-propagated: Train LoRA runs one backward per batch, all of whose
calls share the batch's sigmas (under TACA Training Window every training call
is in the window). Only core's multi-resolution mode, which back-propagates
several images' calls at once, could mix decisions (README: Training).

The LoRA itself is added by taca_core.lora_branch (plain LoRAs: a branch on the
layer's output) or, for the other adapter types, by SwitchedLoraWeight below.
"""
import contextvars
import itertools
import logging

import torch

from ..taca_core.schedule import TacaSchedule
from .wrappers import SCHEDULE_KEY

log = logging.getLogger("ComfyUI-TACA")

_OPEN = contextvars.ContextVar("taca_open_lora_gates", default=None)  # None: no model call in flight
_ids = itertools.count()


class LoraGate:
    """Names one TACA LoRA; open during the model calls where TACA acts."""

    def __init__(self):
        self.id = next(_ids)
        self.replay = False  # the decision of the last model call made with autograd on (see above)

    def is_open(self) -> bool:
        open_ids = _OPEN.get()
        if open_ids is None:  # no model call in flight: a block recomputed during backward
            return self.replay
        return self.id in open_ids

    def opened(self, is_open: bool) -> contextvars.Token:
        """Open (or close) the gate for the current thread; undo with close_to(token)."""
        others = (_OPEN.get() or frozenset()) - {self.id}
        return _OPEN.set(others | {self.id} if is_open else others)

    @staticmethod
    def close_to(token: contextvars.Token):
        _OPEN.reset(token)


class SwitchedLoraWeight:
    """A ComfyUI weight function: `patch` (weight -> patched weight) while the gate is open.

    For the adapter types a bypass branch cannot express (DoRA, LoHa, LoKr, ...).
    ComfyUI may hand over the weight it keeps (dynamic VRAM's cached weight, with
    no copy), and its patch functions add in place, so the patch gets a copy.
    """

    def __init__(self, gate: LoraGate, patch):
        self.gate = gate
        self.patch = patch

    def __call__(self, weight):
        return self.patch(weight.clone()) if self.gate.is_open() else weight


class TacaLoraApplyModelWrapper:
    """Opens the gate for the model calls where the model's TACA patch applies gamma."""

    def __init__(self, gate: LoraGate, node_name: str):
        self.gate = gate
        self.node_name = node_name
        self.warned = False

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None,
                 transformer_options={}, **kwargs):
        schedule = transformer_options.get(SCHEDULE_KEY)
        if schedule is None:
            schedule = TacaSchedule()
            if not self.warned:
                self.warned = True
                log.warning("%s: this model has no TACA Model Patch, so the LoRA follows the paper's window "
                            "(timestep >= %s). Add TACA Model Patch (the LoRA alone does not improve alignment), "
                            "or set 'active' to 'every step'.", self.node_name, schedule.timestep_cutoff)
        on = schedule.gamma_at_sigma(executor.class_obj.model_sampling, t) != 1.0
        if torch.is_grad_enabled():  # training: what a recompute during backward replays
            self.gate.replay = on
        token = self.gate.opened(on)
        try:
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        finally:
            self.gate.close_to(token)
