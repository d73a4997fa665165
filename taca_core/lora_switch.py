"""A LoRA that is on only while TACA acts, without touching the stored weights.

ComfyUI hands a module's weight through its `weight_function`s (ModelPatcher
weight wrappers) on every forward, on a copy. SwitchedLoraWeight adds the LoRA
there while the shared switch is on; an apply_model wrapper turns the switch on
for exactly the model calls in which TACA's gamma acts. Nothing is re-patched
per step and no copy of the weights is kept.
"""
import logging

import torch

from .schedule import TacaSchedule, paper_timestep
from .wrappers import SCHEDULE_KEY
MATH_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

log = logging.getLogger("ComfyUI-TACA")


class LoraSwitch:
    on = False


class SwitchedLoraWeight:
    """A weight_function: weight + LoRA (via ComfyUI's calculate_weight) while the switch is on."""

    def __init__(self, switch: LoraSwitch, key: str, patches: list, calculate_weight):
        self.switch = switch
        self.key = key
        self.patches = patches
        self.calculate_weight = calculate_weight

    def __call__(self, weight):
        if not self.switch.on:
            return weight
        dtype = weight.dtype if weight.dtype in MATH_DTYPES else torch.float32
        out = self.calculate_weight(self.patches, weight.to(dtype), self.key, intermediate_dtype=dtype)
        return out.to(weight.dtype)


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
        t_paper = paper_timestep(executor.class_obj.model_sampling, t)
        self.switch.on = schedule.gamma_at(t_paper) != 1.0
        try:
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        finally:
            self.switch.on = False
