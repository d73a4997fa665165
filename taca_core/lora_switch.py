"""A LoRA that is on only while TACA acts, without touching the stored weights.

ComfyUI hands a module's weight through its `weight_function`s (ModelPatcher
weight wrappers) on every forward, on a copy. SwitchedLoraWeight applies the
LoRA there (through ComfyUI's own patch function) while the shared switch is on; an apply_model wrapper turns the switch on
for exactly the model calls in which TACA's gamma acts. Nothing is re-patched
per step and no copy of the weights is kept.
"""
import logging

from .schedule import TacaSchedule
from .wrappers import SCHEDULE_KEY

log = logging.getLogger("ComfyUI-TACA")


class LoraSwitch:
    on = False


class SwitchedLoraWeight:
    """A weight_function that applies `patch` (weight -> patched weight) while the switch is on."""

    def __init__(self, switch: LoraSwitch, patch):
        self.switch = switch
        self.patch = patch

    def __call__(self, weight):
        return self.patch(weight) if self.switch.on else weight


class TacaLoraApplyModelWrapper:
    """Switches the LoRA on for the model calls where the model's TACA patch applies gamma."""

    def __init__(self, switch: LoraSwitch, node_name: str):
        self.switch = switch
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
        self.switch.on = schedule.gamma_at_sigma(executor.class_obj.model_sampling, t) != 1.0
        try:
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        finally:
            self.switch.on = False
