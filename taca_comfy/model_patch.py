"""TACA on a ComfyUI MODEL: a clone carrying TACA's wrappers and its schedule."""
import logging

from comfy.patcher_extension import WrappersMP

from ..taca_core.schedule import TacaSchedule
from .opaque_models import require_taca_can_act
from .wrappers import SCHEDULE_KEY, TacaApplyModelWrapper, taca_outer_sample_wrapper

WRAPPER_KEY = "taca"
log = logging.getLogger("ComfyUI-TACA")


def apply_taca(node: str, model, gamma: float, timestep_cutoff: float):
    """A clone of model with TACA; a TACA patch already on model is replaced (last one wins)."""
    family = require_taca_can_act(node, model)
    try:
        schedule = TacaSchedule(gamma, timestep_cutoff)
    except ValueError as e:
        raise ValueError(f"{node}: {e}") from None

    patched = model.clone()
    if patched.get_wrappers(WrappersMP.APPLY_MODEL, WRAPPER_KEY):
        log.info("%s: replacing the TACA patch already on this model with gamma=%s, timestep_cutoff=%s",
                 node, gamma, timestep_cutoff)
    for wrapper_type in (WrappersMP.APPLY_MODEL, WrappersMP.OUTER_SAMPLE):
        patched.remove_wrappers_with_key(wrapper_type, WRAPPER_KEY)
    patched.add_wrapper_with_key(WrappersMP.APPLY_MODEL, WRAPPER_KEY, TacaApplyModelWrapper(schedule, family))
    patched.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, taca_outer_sample_wrapper)
    patched.model_options["transformer_options"][SCHEDULE_KEY] = schedule  # the TACA LoRA follows it
    return patched
