"""TACA Training Window node."""
from comfy_api.latest import io

from ..taca_comfy.training import apply_training_window
from ..taca_core.schedule import GAMMA_RANGE, PAPER_GAMMA, PAPER_TIMESTEP_CUTOFF

NODE = "TACATrainingWindow"


class TACATrainingWindow(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE,
            display_name="TACA Training Window",
            category="model_patches/TACA",
            description=(
                "Makes ComfyUI's Train LoRA train a TACA LoRA, as the paper did: TACA acts on every training "
                "step and every training sample's timestep is at or above timestep_cutoff (Train LoRA's own "
                "timestep distribution, restricted to TACA's window). Put it between the model loader and Train "
                "LoRA; no TACA Model Patch is needed (one after this node overrides its settings). Outside "
                "training the model samples exactly as with TACA Model Patch. Paper recipe and the settings "
                "that match it: see the help page (batch_size 1 with grad_accumulation_steps 4)."),
            inputs=[
                io.Model.Input("model", tooltip="A model TACA supports (the README lists the families). The input "
                                                "model is not modified."),
                io.Float.Input(
                    "gamma", default=PAPER_GAMMA, min=GAMMA_RANGE[0], max=GAMMA_RANGE[1], step=0.01,
                    tooltip="TACA's temperature while training (paper: 1.2), as on TACA Model Patch. Train with "
                            "the gamma you will sample with."),
                io.Int.Input(
                    "timestep_cutoff", default=PAPER_TIMESTEP_CUTOFF, min=0, max=1000, step=1,
                    tooltip="Training samples are drawn at timesteps >= this (paper: 970, i.e. sigma >= 0.97 "
                            "on flow models), where TACA acts. Sample later with the same cutoff."),
            ],
            outputs=[io.Model.Output(tooltip="The model with TACA and the training window (a patched clone): "
                                             "connect to Train LoRA's model input.")],
        )

    @classmethod
    def execute(cls, model, gamma, timestep_cutoff) -> io.NodeOutput:
        return io.NodeOutput(apply_training_window(NODE, model, gamma, timestep_cutoff))
