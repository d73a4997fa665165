"""TACA LoRA Loader node."""
import folder_paths
from comfy_api.latest import io

from ..taca_comfy.lora import file_fingerprint, load_taca_lora

NODE = "TACALoraLoader"
WHILE_TACA_ACTS = "while TACA acts"
EVERY_STEP = "every step"


class TACALoraLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE,
            display_name="TACA LoRA Loader",
            category="model_patches/TACA",
            description=(
                "Loads a TACA LoRA (official: ldiex/TACA, for FLUX.1-dev and SD3.5) that repairs the artifacts "
                "of a high TACA gamma. As in the official pipeline it is active only on the steps where TACA "
                "acts, following the TACA Model Patch's timestep_cutoff (put the two nodes in either order). "
                "The LoRA alone does not improve alignment: use it with TACA Model Patch."),
            inputs=[
                io.Model.Input("model", tooltip="A model TACA Model Patch supports. The input model is not "
                                                "modified."),
                io.Combo.Input("lora_name", options=folder_paths.get_filename_list("loras"),
                               tooltip="A .safetensors LoRA in ComfyUI's models/loras folder. Pickled "
                                       ".pt/.ckpt files are refused."),
                io.Float.Input("strength", default=1.0, min=-10.0, max=10.0, step=0.01,
                               tooltip="LoRA strength (official: 1.0). 0 leaves the model unchanged."),
                io.Combo.Input("active", options=[WHILE_TACA_ACTS, EVERY_STEP], default=WHILE_TACA_ACTS,
                               tooltip="'while TACA acts': only on the model calls where the TACA Model Patch "
                                       "applies gamma (timestep >= its cutoff; none when its gamma is 1). "
                                       "Without a TACA Model Patch on the model, it follows the paper's "
                                       "window (timestep >= 970) and the log says so. 'every step': a "
                                       "plain LoRA, same as LoraLoaderModelOnly."),
            ],
            outputs=[io.Model.Output(tooltip="The model with the TACA LoRA (a patched clone).")],
        )

    @classmethod
    def fingerprint_inputs(cls, lora_name, **kwargs):
        return file_fingerprint(lora_name)  # a file rewritten under the same name is read again

    @classmethod
    def execute(cls, model, lora_name, strength, active) -> io.NodeOutput:
        return io.NodeOutput(load_taca_lora(NODE, model, lora_name, strength, active == EVERY_STEP))
