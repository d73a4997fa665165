"""TACA Model Patch node."""
from comfy_api.latest import io

from ..taca_comfy.families import family_names
from ..taca_comfy.model_patch import apply_taca
from ..taca_core.schedule import GAMMA_RANGE, PAPER_GAMMA, PAPER_TIMESTEP_CUTOFF


class TACAModelPatch(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="TACAModelPatch",
            display_name="TACA Model Patch",
            category="model_patches/TACA",
            description=(
                "Temperature-Adjusted Cross-modal Attention (TACA, ICCV 2025) for models whose text and image "
                f"tokens share one attention ({family_names()}; the README lists their checkpoints): multiplies "
                "the image-to-text attention logits by gamma during the early, high-noise steps, which improves "
                "text-image alignment (object counts, attributes, spatial relations). Paper defaults (gamma 1.2, "
                "timestep_cutoff 970), validated by the paper on FLUX.1-dev and SD3.5 medium only. Applying it "
                "twice keeps only the last patch's settings."),
            inputs=[
                io.Model.Input("model", tooltip="A model with joint text-image attention (the README lists the supported "
                                                "families). The input model is not modified."),
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
        return io.NodeOutput(apply_taca(cls.__name__, model, gamma, timestep_cutoff))
