"""The pack's nodes as the tests call them (import after comfy_env.import_comfy())."""
from comfyui_taca_under_test.nodes.taca_lora_loader import EVERY_STEP, WHILE_TACA_ACTS, TACALoraLoader
from comfyui_taca_under_test.nodes.taca_model_patch import TACAModelPatch

__all__ = ["EVERY_STEP", "WHILE_TACA_ACTS", "TACALoraLoader", "TACAModelPatch", "patch", "taca_lora"]


def patch(model, gamma=1.5, cutoff=0):
    """TACA Model Patch; the defaults act on every step, visibly."""
    return TACAModelPatch.execute(model=model, gamma=gamma, timestep_cutoff=cutoff).result[0]


def taca_lora(model, name, strength=1.0, active=WHILE_TACA_ACTS):
    """TACA LoRA Loader with a file of the loras folder."""
    return TACALoraLoader.execute(model=model, lora_name=name, strength=strength, active=active).result[0]
