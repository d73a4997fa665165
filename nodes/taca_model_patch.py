"""TACA Model Patch node: ComfyUI glue around taca_core."""
import logging

from comfy.patcher_extension import WrappersMP
from comfy_api.latest import io

from ..taca_core.opaque_models import require_taca_can_act
from ..taca_core.schedule import GAMMA_RANGE, PAPER_GAMMA, PAPER_TIMESTEP_CUTOFF, TacaSchedule
from ..taca_core.wrappers import SCHEDULE_KEY, TacaApplyModelWrapper, taca_outer_sample_wrapper

WRAPPER_KEY = "taca"
log = logging.getLogger("ComfyUI-TACA")


def apply_taca(model, gamma: float, timestep_cutoff: float):
    """A clone of model with TACA; a TACA patch already on model is replaced (last one wins)."""
    node = TACAModelPatch.__name__
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


class TACAModelPatch(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TACAModelPatch",
            display_name="TACA Model Patch",
            category="model_patches/TACA",
            description=(
                "Temperature-Adjusted Cross-modal Attention (TACA, ICCV 2025) for models whose text and image "
                "tokens share one attention (FLUX.1/FLUX.2, SD3/SD3.5, Qwen-Image, Z-Image/Lumina 2, Krea 2, "
                "Chroma, HunyuanVideo/HunyuanImage 2.1, AuraFlow, ...; the README lists them all): multiplies "
                "the image-to-text attention logits by gamma during the early, high-noise steps, which improves "
                "text-image alignment (object counts, attributes, spatial relations). Paper defaults (gamma 1.2, "
                "timestep_cutoff 970), validated by the paper on FLUX.1-dev and SD3.5 medium only. Applying it "
                "twice keeps only the last patch's settings."),
            inputs=[
                io.Model.Input("model", tooltip="A model with joint text-image attention (FLUX, SD3/SD3.5, "
                                                "Qwen-Image, Z-Image, Krea 2, ...). The input model is not modified."),
                io.Float.Input(
                    "gamma", default=PAPER_GAMMA, min=GAMMA_RANGE[0], max=GAMMA_RANGE[1], step=0.01,
                    tooltip="Temperature on the image-query x text-key attention logits (paper: 1.2). "
                            "1.0 turns TACA off. Higher values strengthen the prompt but may add artifacts, "
                            "which the TACA LoRA repairs."),
                io.Int.Input(
                    "timestep_cutoff", default=PAPER_TIMESTEP_CUTOFF, min=0, max=1000, step=1,
                    tooltip="gamma acts while the model timestep (0-1000, 1000 = pure noise) is at or above "
                            "this value (paper: 970; every supported model is a flow model, where that is "
                            "sigma >= 0.97). Lower it to act on "
                            "more steps; 1000 acts only on the very first step."),
            ],
            outputs=[io.Model.Output(tooltip="The model with TACA (a patched clone).")],
        )

    @classmethod
    def execute(cls, model, gamma, timestep_cutoff) -> io.NodeOutput:
        return io.NodeOutput(apply_taca(model, gamma, timestep_cutoff))
