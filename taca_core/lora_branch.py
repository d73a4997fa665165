"""A plain LoRA as a gated branch beside a Linear layer: no weight is read, copied or written.

LoRA adds s * up @ down to a layer's weight W. On a Linear layer that equals
adding s * (x @ down.T) @ up.T to the layer's output (the "bypass" form of
LyCORIS). Computed beside the layer, the LoRA is safe with weights that are
cached, stored quantized or shared between models, and costs one check per
layer while its gate is closed (the gate: any object with is_open()).

Some models fuse layers (FLUX's qkv): a LoRA trained on separate q/k/v layers
adapts rows [start, start + size) of the fused output. A layer's branches share
one down projection (their down matrices stacked, scales folded in); each keeps
its own up projection, applied to its rows only.
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


@dataclass(frozen=True)
class LayerLora:
    """All LoRA branches of one layer: x -> its addition to the layer's output."""
    down: torch.Tensor  # [sum of ranks, in_features], each branch's scale folded in
    ups: tuple  # per branch: (first rank column, end column, first output row, end row, up [rows, rank])
    out_features: int

    def to(self, device, dtype) -> "LayerLora":
        return LayerLora(self.down.to(device, dtype), tuple((*u[:4], u[4].to(device, dtype)) for u in self.ups),
                         self.out_features)

    def add_to(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """out + the LoRA's term for input x; out itself is never written."""
        h = F.linear(x, self.down.to(x.dtype))
        if len(self.ups) == 1 and self.ups[0][2:4] == (0, self.out_features):
            return out + F.linear(h, self.ups[0][4].to(x.dtype)).to(out.dtype)
        out = out.clone()  # ours to write: the rows of each branch
        for c0, c1, r0, r1, up in self.ups:
            out[..., r0:r1] += F.linear(h[..., c0:c1], up.to(x.dtype)).to(out.dtype)
        return out


def stack_branches(branches, out_features: int) -> LayerLora:
    """One layer's branches, in float32: equal to the sum of scale * up_i @ down_i on their rows."""
    downs, ups, col = [], [], 0
    for b in branches:
        r = b.down.shape[0]
        start, size = b.rows or (0, out_features)
        if tuple(b.up.shape) != (size, r) or start + size > out_features:
            raise ValueError(f"LoRA branch of shape {tuple(b.up.shape)} x {tuple(b.down.shape)} does not fit rows "
                             f"{start}..{start + size} of a layer with {out_features} outputs")
        downs.append(b.down.float() * b.scale)
        ups.append((col, col + r, start, start + size, b.up.float()))
        col += r
    return LayerLora(torch.cat(downs), tuple(ups), out_features)


class GatedLoraForward:
    """Stands in for a layer's forward: its output, plus each LoRA whose gate is open."""

    def __init__(self, forward, had_own_forward: bool):
        self.forward = forward  # what module.forward was before
        self.had_own_forward = had_own_forward
        self.loras = {}  # gate -> LayerLora on the compute device

    def __call__(self, x, *args, **kwargs):
        out = self.forward(x, *args, **kwargs)
        for gate, lora in self.loras.items():
            if gate.is_open():
                out = lora.add_to(out, x)
        return out


class LoraBypass:
    """One LoRA's branches on a model's layers: inject adds them, eject removes them.

    layers: {module path in the root module: LayerLora}.
    Several LoRAs on one layer share its GatedLoraForward; when another
    forward wrapper sits on top at eject time, ours stays below it as a
    pass-through (no LoRAs), so no LoRA is ever applied twice.
    """

    ATTR = "_taca_lora_forward"  # on each adapted layer: its GatedLoraForward

    def __init__(self, gate, layers: dict):
        self.gate = gate
        self.layers = layers

    def inject(self, root: torch.nn.Module, device, dtype):
        for name, lora in self.layers.items():
            module = root.get_submodule(name)
            hook = getattr(module, self.ATTR, None)
            if hook is None:
                own = module.__dict__.get("forward")
                hook = GatedLoraForward(module.forward, own is not None)
                module.forward = hook
                setattr(module, self.ATTR, hook)
            hook.loras[self.gate] = lora.to(device, dtype)

    def eject(self, root: torch.nn.Module):
        for name in self.layers:
            module = root.get_submodule(name)
            hook = getattr(module, self.ATTR, None)
            if hook is None:
                continue
            hook.loras.pop(self.gate, None)
            if not hook.loras and module.__dict__.get("forward") is hook:
                if hook.had_own_forward:
                    module.forward = hook.forward
                else:
                    del module.forward  # back to the class's forward
                delattr(module, self.ATTR)
