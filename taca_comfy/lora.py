"""A TACA LoRA, read, converted and mapped once: the match check and both modes use that one result.

The file is read with safetensors only (pickled files are refused, never loaded), converted and
mapped to the model's weights with ComfyUI's own functions (comfy.lora_convert, comfy.lora: the
same as LoraLoaderModelOnly). 'every step' adds the mapped patches to a clone as ComfyUI's loader
does; 'while TACA acts' puts plain LoRAs on Linear layers beside the layer as gated branches
(taca_core.lora_branch) and every other adapter type into a gated weight function.
"""
import copy
from dataclasses import dataclass

import comfy.lora
import comfy.lora_convert
import folder_paths
import torch
from comfy.model_patcher import LowVramPatch
from comfy.patcher_extension import PatcherInjection, WrappersMP
from comfy.weight_adapter import LoRAAdapter

from ..taca_core.lora_branch import LoraBranch, LoraBypass, stack_branches
from .families import Family, guess_lora_family
from .lora_file import LoraFileError, load_lora_state_dict, lora_layer_names
from .opaque_models import require_taca_can_act
from .lora_switch import LoraGate, SwitchedLoraWeight, TacaLoraApplyModelWrapper

MIN_MATCHED_SHARE = 0.5  # below this, the LoRA is for another model


@dataclass
class MappedLora:
    """A LoRA file mapped onto one model: ComfyUI's patch dict ({model key or (key, offset): adapter})."""
    name: str
    patches: dict


def map_lora(node: str, family: Family, model, lora_sd: dict, lora_name: str) -> MappedLora:
    """Converts and maps lora_sd to model's weights once; a ValueError when it is for another model."""
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    converted = comfy.lora_convert.convert_lora(lora_sd)
    layers = lora_layer_names(converted.keys())
    matched = layers & key_map.keys()
    looks_like = guess_lora_family(lora_layer_names(lora_sd.keys()))
    # names of another family, and some layers unmatched: a LoRA for another model that shares a few names
    other_family = bool(looks_like) and family.name not in looks_like
    if (other_family and matched != layers) or not layers or len(matched) < MIN_MATCHED_SHARE * len(layers):
        unmatched = sorted(layers - matched)
        label = " or ".join(looks_like) if looks_like else "unknown"
        raise ValueError(
            f"{node}: '{lora_name}' matches {len(matched)} of its {len(layers)} layers in this {family.name} "
            f"model ({len(unmatched)} unmatched, e.g. {unmatched[:3]}). Its keys look like a {label} "
            f"LoRA. Choose a TACA LoRA made for {family.name} (ldiex/TACA has FLUX.1-dev and SD3.5 versions).")
    return MappedLora(lora_name, comfy.lora.load_lora(converted, key_map, log_missing=False))


def every_step(model, lora: MappedLora, strength: float):
    """A clone with the LoRA on every step: what LoraLoaderModelOnly does."""
    patched = model.clone()
    patched.add_patches(lora.patches, strength)
    return patched


def _patch_lists(lora: MappedLora, strength: float) -> dict:
    """{weight key: [ComfyUI patch tuple]} as ModelPatcher.add_patches builds them."""
    out = {}
    for k, adapter in lora.patches.items():
        key, offset, function = (k, None, None) if isinstance(k, str) else (k[0], k[1], k[2] if len(k) > 2 else None)
        out.setdefault(key, []).append((strength, adapter, 1.0, offset, function))
    return out


def _branch(patch, module):
    """The LoraBranch of one patch tuple: a plain LoRA on a Linear layer; else None."""
    strength, adapter, _, offset, function = patch
    if not isinstance(adapter, LoRAAdapter) or function is not None:
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
    branches = [_branch(p, module) for p in plist]
    if None in branches:
        return None
    return key.removesuffix(".weight"), stack_branches(branches, module.out_features)


def _compute_dtype(base_model):
    return getattr(base_model, "manual_cast_dtype", None) or base_model.get_dtype()


def while_taca_acts(node: str, model, lora: MappedLora, strength: float, family: Family = None):
    """A clone of model whose LoRA acts only in the model calls where TACA applies gamma.

    A family's cross-step activation cache (family.no_step_cache) is turned off: it would keep what
    the LoRA computed inside the window for the steps after it.
    """
    switched = model.clone()
    if family is not None and family.no_step_cache:
        switched.model_options["transformer_options"].update(copy.deepcopy(family.no_step_cache))
    gate = LoraGate()
    patches = _patch_lists(lora, strength)
    model_keys = switched.model.state_dict().keys()
    layers = {}
    for key, plist in patches.items():
        if key not in model_keys:
            continue
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
    switched.add_wrapper(WrappersMP.APPLY_MODEL, TacaLoraApplyModelWrapper(gate, node))
    return switched


def load_taca_lora(node: str, model, lora_name: str, strength: float, every_step_mode: bool):
    """model with the TACA LoRA `lora_name` (in models/loras): on every step, or only while TACA acts."""
    family = require_taca_can_act(node, model)
    if strength == 0:
        return model.clone()
    try:
        lora_sd = load_lora_state_dict(folder_paths.get_full_path_or_raise("loras", lora_name))
    except LoraFileError as e:
        raise ValueError(f"{node}: {e}") from None
    lora = map_lora(node, family, model, lora_sd, lora_name)
    if every_step_mode:
        return every_step(model, lora, strength)
    return while_taca_acts(node, model, lora, strength, family)
