"""A TACA LoRA, read, converted and mapped once: the match check and both modes use that one result.

The file is read with safetensors only (pickled files are refused, never loaded), converted and
mapped to the model's weights with ComfyUI's own functions (comfy.lora_convert, comfy.lora: the
same as LoraLoaderModelOnly). 'every step' adds the mapped patches to a clone as ComfyUI's loader
does; 'while TACA acts' puts plain LoRAs on Linear layers beside the layer as gated branches
(taca_core.lora_branch) and every other adapter type into a gated weight function.
"""
import copy
import math
import os
from dataclasses import dataclass

import comfy.lora
import comfy.lora_convert
import folder_paths
import torch
from comfy.model_patcher import LowVramPatch
from comfy.patcher_extension import PatcherInjection, WrappersMP
from comfy.weight_adapter import LoRAAdapter

from ..taca_core.lora_branch import LoraBranch, LoraBypass, stack_branches
from .families import Family, guess_lora_family, lora_family_label
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
    """Converts and maps lora_sd to model's weights once; a ValueError when it is for another model
    or does not fit the layers it maps to (checked here, so both modes refuse it before sampling)."""
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    converted = comfy.lora_convert.convert_lora(lora_sd)
    _check_alphas(node, lora_name, converted)
    layers = lora_layer_names(converted.keys())
    matched = layers & key_map.keys()
    looks_like = guess_lora_family(lora_layer_names(lora_sd.keys()))
    # names of another family, and some layers unmatched: a LoRA for another model that shares a few names
    other_family = bool(looks_like) and family.name not in looks_like
    if (other_family and matched != layers) or not layers or len(matched) < MIN_MATCHED_SHARE * len(layers):
        unmatched = sorted(layers - matched)
        looks = (f"Its keys look like a {lora_family_label(looks_like)} LoRA." if looks_like
                 else "Its keys match no model family the pack knows.")
        raise ValueError(
            f"{node}: '{lora_name}' matches {len(matched)} of its {len(layers)} layers in this {family.name} "
            f"model ({len(unmatched)} unmatched, e.g. {unmatched[:3]}). {looks} "
            f"Choose a TACA LoRA made for {family.name} (ldiex/TACA has FLUX.1-dev and SD3.5 versions).")
    patches = comfy.lora.load_lora(converted, key_map, log_missing=False)
    _check_shapes(node, family, model, lora_name, converted, {x: key_map[x] for x in matched}, patches)
    return MappedLora(lora_name, patches)


def _check_alphas(node: str, lora_name: str, converted: dict):
    """ComfyUI reads alpha with .item(): one number, else an unnamed error deep in its loader."""
    for key in sorted(converted):
        if key.endswith(".alpha") and converted[key].numel() != 1:
            raise ValueError(
                f"{node}: '{lora_name}' does not fit this model: its '{key}' has shape "
                f"{tuple(converted[key].shape)}, but a LoRA's alpha is one number (shape ()). The file is "
                "broken or not a LoRA; choose another LoRA file.")


def _target_shape(weights: dict, patch_key):
    """(model key, shape the patch must have, rows note) of one patch key: key or (key, (dim, start, size)[, fn])."""
    key, offset = (patch_key, None) if isinstance(patch_key, str) else (patch_key[0], patch_key[1])
    if key not in weights:
        return key, None, ""
    shape = list(weights[key].shape)
    if offset is None:
        return key, tuple(shape), ""
    dim, start, size = offset
    note = f" rows {start}..{start + size}" if dim == 0 else f" (dim {dim}, {start}..{start + size})"
    if start + size > shape[dim]:
        return key, None, note
    shape[dim] = size
    return key, tuple(shape), note


def _patch_mismatch(patch, shape, source: dict, file_keys: set):
    """(file key, its shape, expected shape) of the first part of patch that does not fit shape, or None."""
    def name_of(t, fallback):
        return next((k for k in sorted(file_keys) if source.get(k) is t), fallback)

    if isinstance(patch, LoRAAdapter):
        up, down, alpha, mid, dora_scale, reshape = patch.weights
        shape = tuple(reshape.tolist()) if reshape is not None else shape
        out, inp = shape[0], math.prod(shape[1:])
        up_name, down_name = name_of(up, "lora up"), name_of(down, "lora down")
        if up.shape[0] != out:
            return up_name, tuple(up.shape), f"{out} rows (the layer's outputs)"
        if mid is None:
            if up[0].numel() != down.shape[0]:
                return down_name, tuple(down.shape), f"{up[0].numel()} rows (the rank of '{up_name}')"
            if down[0].numel() != inp:
                return down_name, tuple(down.shape), f"{inp} columns (the layer's inputs)"
        return None
    if isinstance(patch, tuple) and len(patch) == 2 and patch[0] in ("diff", "set"):
        t = patch[1][0]
        if tuple(t.shape) != tuple(shape):
            return name_of(t, patch[0]), tuple(t.shape), f"shape {tuple(shape)} (the layer's)"
    return None  # LoHa, LoKr, OFT, ...: ComfyUI's own adapters compute their shapes


def _check_shapes(node: str, family: Family, model, lora_name: str, converted: dict, key_map: dict, patches: dict):
    """Every mapped patch against the layer it adapts: up/down (rank, outputs, inputs), diff, diff_b, set."""
    weights = dict(model.model.named_parameters())
    weights.update(model.model.named_buffers())
    file_keys_of = {}  # patch key -> the file keys of the LoRA layer it comes from
    for x, target in key_map.items():
        keys = {k for k in converted if k.startswith(x + ".")}
        file_keys_of[target] = keys
        base = target if isinstance(target, str) else target[0]
        if base.endswith(".weight"):
            file_keys_of[base.removesuffix(".weight") + ".bias"] = keys
    bad = []
    for patch_key, patch in patches.items():
        key, shape, rows = _target_shape(weights, patch_key)
        file_keys = file_keys_of.get(patch_key, set())
        if shape is None:
            bad.append((sorted(file_keys)[:1] or [str(patch_key)], None, None, f"'{key}'{rows}"))
            continue
        mismatch = _patch_mismatch(patch, shape, converted, file_keys)
        if mismatch is not None:
            bad.append(([mismatch[0]], mismatch[1], mismatch[2], f"'{key}'{rows} of shape {shape}"))
    if bad:
        bad.sort(key=lambda b: b[0])
        (file_key,), got, wanted, layer = bad[0]
        what = (f"has shape {got}, but the layer it adapts, {layer}, needs {wanted}" if got is not None
                else f"adapts {layer}, which this model's layer is too small for")
        raise ValueError(
            f"{node}: '{lora_name}' does not fit this {family.name} model: its '{file_key}' {what}"
            f"{f' ({len(bad)} of its {len(patches)} patches do not fit)' if len(bad) > 1 else ''}. It is a LoRA "
            f"for another model, or for another size of {family.name} (other hidden width or depth); "
            f"choose a LoRA trained for this model.")


def every_step(model, lora: MappedLora, strength: float):
    """A clone with the LoRA on every step: what LoraLoaderModelOnly does."""
    patched = model.clone()
    patched.add_patches(lora.patches, strength)
    return patched


def patch_lists(lora: MappedLora, strength: float) -> dict:
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
    patches = patch_lists(lora, strength)
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


def file_fingerprint(lora_name: str):
    """What ComfyUI's cache compares to know the file under lora_name changed: its size and mtime."""
    path = folder_paths.get_full_path("loras", lora_name)
    if path is None:
        return ("missing", lora_name)
    try:
        st = os.stat(path)
    except OSError:
        return ("missing", lora_name)
    return (lora_name, st.st_size, st.st_mtime_ns)


def load_taca_lora(node: str, model, lora_name: str, strength: float, every_step_mode: bool):
    """model with the TACA LoRA `lora_name` (in models/loras): on every step, or only while TACA acts."""
    family = require_taca_can_act(node, model)
    if not math.isfinite(strength):
        raise ValueError(f"{node}: strength must be a finite number (official: 1.0; 0 leaves the model "
                         f"unchanged), got {strength}. Set strength to a number.")
    if strength == 0:
        return model.clone()
    path = folder_paths.get_full_path("loras", lora_name)
    if path is None:
        raise ValueError(f"{node}: LoRA file '{lora_name}' is not in ComfyUI's models/loras folder (deleted or "
                         "renamed since the prompt was queued?). Put it back, or pick another in lora_name.")
    try:
        lora_sd = load_lora_state_dict(path)
    except LoraFileError as e:
        raise ValueError(f"{node}: {e}") from None
    except OSError as e:  # deleted or unreadable between the check and the read
        raise ValueError(f"{node}: LoRA file '{lora_name}' could not be read ({e}). Put it back, or pick "
                         "another in lora_name.") from None
    lora = map_lora(node, family, model, lora_sd, lora_name)
    if every_step_mode:
        return every_step(model, lora, strength)
    return while_taca_acts(node, model, lora, strength, family)
