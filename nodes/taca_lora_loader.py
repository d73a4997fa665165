"""TACA LoRA Loader node: ComfyUI glue; switching logic in taca_core.lora_switch and lora_bypass."""
import comfy.lora
import comfy.lora_convert
import comfy.sd
import folder_paths
import torch
from comfy.model_patcher import LowVramPatch
from comfy.patcher_extension import PatcherInjection, WrappersMP
from comfy.weight_adapter import LoRAAdapter
from comfy_api.latest import io

from ..taca_core.lora_bypass import LoraBranch, LoraBypass, stack_branches
from ..taca_core.lora_file import LoraFileError, load_lora_state_dict
from ..taca_core.lora_keys import guess_lora_family, lora_layer_names
from ..taca_core.lora_switch import LoraGate, SwitchedLoraWeight, TacaLoraApplyModelWrapper
from ..taca_core.opaque_models import require_taca_can_act

NODE = "TACALoraLoader"
WHILE_TACA_ACTS = "while TACA acts"
EVERY_STEP = "every step"
MIN_MATCHED_SHARE = 0.5  # below this, the LoRA is for another model


def _check_lora_matches(family, lora_sd, model, lora_name):
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    layers = lora_layer_names(comfy.lora_convert.convert_lora(lora_sd).keys())
    matched = layers & key_map.keys()
    looks_like = guess_lora_family(lora_sd.keys())
    # names of another family, and some layers unmatched: a LoRA for another model that shares a few names
    other_family = looks_like.families is not None and family.name not in looks_like.families
    if (other_family and matched != layers) or not layers or len(matched) < MIN_MATCHED_SHARE * len(layers):
        unmatched = sorted(layers - matched)
        raise ValueError(
            f"{NODE}: '{lora_name}' matches {len(matched)} of its {len(layers)} layers in this {family.name} "
            f"model ({len(unmatched)} unmatched, e.g. {unmatched[:3]}). Its keys look like a {looks_like.label} "
            f"LoRA. Choose a TACA LoRA made for {family.name} (ldiex/TACA has FLUX.1-dev and SD3.5 versions).")


def _new_patches(lora_model, model):
    """The patches ComfyUI's own LoRA loading added to lora_model on top of model's."""
    return {key: plist[len(model.patches.get(key, [])):] for key, plist in lora_model.patches.items()
            if len(plist) > len(model.patches.get(key, []))}


def _bypass_branch(patch, module):
    """The LoraBranch of one of ComfyUI's patch tuples: a plain LoRA on a Linear layer; else None."""
    strength, adapter, strength_model, offset, function = patch
    if not isinstance(adapter, LoRAAdapter) or strength_model != 1.0 or function is not None:
        return None
    up, down, alpha, mid, dora_scale, reshape = adapter.weights
    if mid is not None or dora_scale is not None or reshape is not None or up.ndim != 2 or down.ndim != 2:
        return None
    if not isinstance(module, torch.nn.Linear) or (offset is not None and offset[0] != 0):
        return None
    scale = strength * (alpha / down.shape[0] if alpha is not None else 1.0)
    return LoraBranch(up, down, float(scale), None if offset is None else (offset[1], offset[2]))


def _bypass_layer(base_model, key, plist):
    """(module path, LayerLora) when every patch of key is a plain LoRA on a Linear weight, else None."""
    if not key.endswith(".weight"):  # a bias
        return None
    try:
        module = base_model.get_submodule(key.removesuffix(".weight"))
    except AttributeError:  # a bare parameter, not a layer's weight
        return None
    branches = [_bypass_branch(p, module) for p in plist]
    if None in branches:
        return None
    return key.removesuffix(".weight"), stack_branches(branches, module.out_features)


def _compute_dtype(base_model):
    return getattr(base_model, "manual_cast_dtype", None) or base_model.get_dtype()


def _switched(model, patches):
    """A clone of model whose LoRA patches act only in the model calls where the gate is open."""
    switched = model.clone()
    gate = LoraGate()
    layers = {}
    for key, plist in patches.items():
        layer = _bypass_layer(switched.model, key, plist)
        if layer is not None:
            layers[layer[0]] = layer[1]
        else:  # DoRA, LoHa, LoKr, conv, ...: ComfyUI's own patch function (LowVramPatch), on a copy
            switched.add_weight_wrapper(key, SwitchedLoraWeight(gate, LowVramPatch(key, patches)))
    if layers:
        bypass = LoraBypass(gate, layers)
        switched.set_injections(f"taca_lora_{gate.id}", [PatcherInjection(
            inject=lambda mp: bypass.inject(mp.model, mp.load_device, _compute_dtype(mp.model)),
            eject=lambda mp: bypass.eject(mp.model))])
    switched.add_wrapper(WrappersMP.APPLY_MODEL, TacaLoraApplyModelWrapper(gate, NODE))
    return switched


def load_taca_lora(model, lora_name: str, strength: float, active: str):
    family = require_taca_can_act(NODE, model)
    if strength == 0:
        return model.clone()
    try:
        lora_sd = load_lora_state_dict(folder_paths.get_full_path_or_raise("loras", lora_name))
    except LoraFileError as e:
        raise ValueError(f"{NODE}: {e}") from None
    _check_lora_matches(family, lora_sd, model, lora_name)
    lora_model, _ = comfy.sd.load_lora_for_models(model, None, lora_sd, strength_model=strength, strength_clip=0)  # = LoraLoaderModelOnly
    if active == EVERY_STEP:
        return lora_model
    return _switched(model, _new_patches(lora_model, model))


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
                io.Model.Input("model", tooltip="A model TACA Model Patch supports (FLUX, SD3/SD3.5, Qwen-Image, "
                                                "Z-Image, Krea 2, ...). The input model is not modified."),
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
    def execute(cls, model, lora_name, strength, active) -> io.NodeOutput:
        return io.NodeOutput(load_taca_lora(model, lora_name, strength, active))
