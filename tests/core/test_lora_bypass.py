"""The gated LoRA branch against the merged weight it stands for, and the per-call gate."""
import threading

import torch

from comfyui_taca_under_test.taca_core.lora_branch import LoraBranch, LoraBypass, stack_branches
from comfyui_taca_under_test.taca_comfy.lora_switch import LoraGate


def linear(out_f=12, in_f=8, seed=0):
    torch.manual_seed(seed)
    layer = torch.nn.Linear(in_f, out_f)
    root = torch.nn.Sequential(torch.nn.Identity(), layer)
    return root, layer


def branches(seed=1):
    """q/k/v-style branches on rows 0..4, 4..8, 8..12 of a 12-output layer, ranks 2, 3, 2."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for start, r in ((0, 2), (4, 3), (8, 2)):
        out.append(LoraBranch(torch.randn(4, r, generator=g), torch.randn(r, 8, generator=g), 0.7, (start, 4)))
    return out


def merged_delta(bs, out_f=12, in_f=8):
    """What ComfyUI's LoRA adds to the weight: each branch on its rows."""
    delta = torch.zeros(out_f, in_f)
    for b in bs:
        start, size = b.rows or (0, out_f)
        delta[start:start + size] += b.scale * b.up @ b.down
    return delta


def test_stacked_branches_add_the_merged_lora():
    x, out = torch.randn(3, 8), torch.randn(3, 12)
    for bs in (branches(), [LoraBranch(torch.randn(12, 2), torch.randn(2, 8), 0.5)],  # no rows: all of them
               branches() + [LoraBranch(torch.randn(12, 2), torch.randn(2, 8), 0.5)]):  # overlapping rows
        kept = out.clone()
        torch.testing.assert_close(stack_branches(bs, 12).add_to(out, x), out + x @ merged_delta(bs).T)
        assert torch.equal(out, kept), "the layer's output is never written"


def test_branch_acts_only_while_its_gate_is_open_and_eject_restores():
    root, layer = linear()
    x = torch.randn(3, 5, 8)
    plain = layer(x)
    gate = LoraGate()
    bypass = LoraBypass(gate, {"1": stack_branches(branches(), 12)})
    bypass.inject(root, torch.device("cpu"), torch.float32)
    assert torch.equal(layer(x), plain), "closed gate: bit-identical"
    token = gate.opened(True)
    try:
        ref = torch.nn.functional.linear(x, layer.weight + merged_delta(branches()), layer.bias)
        torch.testing.assert_close(layer(x), ref, atol=1e-5, rtol=1e-5)
        other = LoraGate()
        assert not other.is_open()
    finally:
        gate.close_to(token)
    assert not gate.is_open()
    bypass.eject(root)
    assert "forward" not in layer.__dict__ and torch.equal(layer(x), plain)


def test_reinjected_under_another_wrapper_never_applies_twice():
    root, layer = linear()
    x = torch.randn(2, 8)
    gate = LoraGate()
    bypass = LoraBypass(gate, {"1": stack_branches(branches(), 12)})
    bypass.inject(root, torch.device("cpu"), torch.float32)
    inner = layer.forward
    layer.forward = lambda *a, **k: inner(*a, **k)  # another pack wraps on top of ours, then we eject
    bypass.eject(root)
    bypass.inject(root, torch.device("cpu"), torch.float32)
    token = gate.opened(True)
    try:
        ref = torch.nn.functional.linear(x, layer.weight + merged_delta(branches()), layer.bias)
        torch.testing.assert_close(layer(x), ref, atol=1e-5, rtol=1e-5)
    finally:
        gate.close_to(token)


def test_gate_state_belongs_to_the_thread_that_opened_it():
    gate = LoraGate()
    opened, seen_elsewhere = threading.Event(), []

    def holder():
        token = gate.opened(True)
        opened.set()
        done.wait()
        gate.close_to(token)

    done = threading.Event()
    t = threading.Thread(target=holder)
    t.start()
    opened.wait()
    seen_elsewhere.append(gate.is_open())
    done.set()
    t.join()
    assert seen_elsewhere == [False]
