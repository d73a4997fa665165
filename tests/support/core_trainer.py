"""Core's Train LoRA node (comfy_extras/nodes_train.py), called as a graph would, in every release.

Its signature changes between releases (0.3.64: a classic node with train(); 0.8.0 / 0.33.0: an
io.ComfyNode whose inputs all arrive as lists, 0.33.0 with more of them). train_lora takes the
node's own defaults for every input it is not given, and returns the LoRA state dict and the losses.
"""
import torch


def _node():
    from comfy_extras.nodes_train import TrainLoraNode
    return TrainLoraNode


def _defaults(node) -> dict:
    if hasattr(node, "train"):  # classic node
        types = node.INPUT_TYPES()
        spec = {**types.get("required", {}), **types.get("optional", {})}
        return {name: (opts[1].get("default") if len(opts) > 1 else None) for name, opts in spec.items()}
    return {i.id: getattr(i, "default", None) for i in node.define_schema().inputs}


def train_lora(model, latents: torch.Tensor, positive: list, **inputs):
    """Runs Train LoRA on model; latents [B, C, H, W]; positive: a CONDITIONING list (one entry per
    caption, or one for all). Returns (lora state dict, losses)."""
    node = _node()
    kw = {**_defaults(node), "model": model, "latents": {"samples": latents}, "positive": positive,
          "training_dtype": "fp32", "lora_dtype": "fp32", "steps": 1, **inputs}
    if hasattr(node, "train"):
        out = node().train(**kw)
    else:
        out = node.execute(**{k: [v] for k, v in kw.items()}).result
    lora_sd = next(o for o in out if isinstance(o, dict) and "loss" not in o)
    losses = next(o for o in out if isinstance(o, dict) and "loss" in o)["loss"]
    return lora_sd, losses


def has_trainer() -> bool:
    try:
        _node()
    except ImportError:
        return False
    return True


def reloadable(build, *args, **kwargs):
    """build(*args, **kwargs) (a tiny model's ModelPatcher) that ComfyUI can load again, as its loaders
    register: 0.33.0's Train LoRA trains a fresh copy (clone(force_deepcopy=True)) made that way."""
    patcher = build(*args, **kwargs)
    if hasattr(patcher, "cached_patcher_init"):
        patcher.cached_patcher_init = (lambda *a, disable_dynamic=False: build(*a, **kwargs), args)
    return patcher
