"""ComfyUI nodes of the pack: thin glue, the logic lives in taca_core."""
from comfy_api.latest import ComfyExtension, io

from .taca_lora_loader import TACALoraLoader
from .taca_model_patch import TACAModelPatch
from .taca_probe import TACAAttentionProbe, TACAProbePlot
from .taca_training_window import TACATrainingWindow


class TACAExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [TACAModelPatch, TACALoraLoader, TACAAttentionProbe, TACAProbePlot, TACATrainingWindow]
