"""A plain LoRA as a gated branch beside a Linear layer: no weight is read, copied or written.

LoRA adds s * up @ down to a layer's weight W. On a Linear layer that equals
adding s * (x @ down.T) @ up.T to the layer's output (the "bypass" form of
LyCORIS and of ComfyUI's bypass LoRA mode). Computed beside the layer, the LoRA
is safe with weights ComfyUI caches (dynamic VRAM), stores quantized (GGUF) or
shares between models, and costs one check per layer while its gate is closed.

ComfyUI fuses some layers (FLUX's qkv): a LoRA trained on separate q/k/v layers
adapts rows [start, start + size) of the fused output. All branches of a layer
are stacked into one (down, up) pair, up being zero outside each branch's rows:
one extra pair of thin matmuls per layer.
"""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LoraBranch:
    up: torch.Tensor    # [rows, rank]
    down: torch.Tensor  # [rank, in_features]
    scale: float        # strength * alpha / rank
    rows: Optional[tuple] = None  # (start, size) in the layer's outputs; None: all of them


def stack_branches(branches, out_features: int):
    """(down [R, in], up [out_features, R]), float32, with up @ down == sum of scale * up_i @ down_i."""
    rank = sum(b.down.shape[0] for b in branches)
    up = torch.zeros(out_features, rank, dtype=torch.float32)
    downs, col = [], 0
    for b in branches:
        r = b.down.shape[0]
        start, size = b.rows or (0, out_features)
        if tuple(b.up.shape) != (size, r) or start + size > out_features:
            raise ValueError(f"LoRA branch of shape {tuple(b.up.shape)} x {tuple(b.down.shape)} does not fit rows "
                             f"{start}..{start + size} of a layer with {out_features} outputs")
        up[start:start + size, col:col + r] = b.up.float()
        downs.append(b.down.float() * b.scale)
        col += r
    return torch.cat(downs), up


class GatedLoraForward:
    """Stands in for a layer's forward: its output, plus each branch whose gate is open."""

    def __init__(self, forward, had_own_forward: bool):
        self.forward = forward  # what module.forward was before
        self.had_own_forward = had_own_forward
        self.branches = {}  # gate -> (down, up) on the compute device

    def __call__(self, x, *args, **kwargs):
        out = self.forward(x, *args, **kwargs)
        for gate, (down, up) in self.branches.items():
            if gate.is_open():
                # out is this call's fresh output, but stay out of place: cheap, and safe for any layer
                out = out + F.linear(F.linear(x, down.to(x.dtype)), up.to(x.dtype)).to(out.dtype)
        return out


class LoraBypass:
    """One LoRA's branches on a model's layers: inject adds them, eject removes them.

    layers: {module path in the root module: (down, up)} from stack_branches.
    Several LoRAs on one layer share its GatedLoraForward; when another
    forward wrapper sits on top at eject time, ours stays below it as a
    pass-through (no branches), so no LoRA is ever applied twice.
    """

    ATTR = "_taca_lora_forward"  # on each adapted layer: its GatedLoraForward

    def __init__(self, gate, layers: dict):
        self.gate = gate
        self.layers = layers

    def inject(self, root: torch.nn.Module, device, dtype):
        for name, (down, up) in self.layers.items():
            module = root.get_submodule(name)
            hook = getattr(module, self.ATTR, None)
            if hook is None:
                own = module.__dict__.get("forward")
                hook = GatedLoraForward(module.forward, own is not None)
                module.forward = hook
                setattr(module, self.ATTR, hook)
            hook.branches[self.gate] = (down.to(device, dtype), up.to(device, dtype))

    def eject(self, root: torch.nn.Module):
        for name in self.layers:
            module = root.get_submodule(name)
            hook = getattr(module, self.ATTR, None)
            if hook is None:
                continue
            hook.branches.pop(self.gate, None)
            if not hook.branches and module.__dict__.get("forward") is hook:
                if hook.had_own_forward:
                    module.forward = hook.forward
                else:
                    del module.forward  # back to the class's forward
                delattr(module, self.ATTR)
