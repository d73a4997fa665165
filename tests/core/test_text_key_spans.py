"""Text keys in several spans (Qwen-Image 2.1 splices reference images into its text) and the target-rows
layout: fused TACA equals the dense reference and a per-element loop, also in its gradients."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from comfyui_taca_under_test.taca_comfy import layouts as fl
from comfyui_taca_under_test.taca_core import taca_attention as public_taca_attention
from comfyui_taca_under_test.taca_core.attention import dense_taca_attention, scale_keys, taca_attention
from comfyui_taca_under_test.taca_core.layout import JOINT, NOT_JOINT, UNEXPECTED, TargetRowsLayout
from comfyui_taca_under_test.taca_core.probe import image_text_share

TOL = {torch.float32: 2e-5, torch.float16: 3e-3, torch.bfloat16: 2e-2}


def qkv(nq, nk, dtype=torch.float32, b=2, h=2, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, n, d, generator=g).to(dtype) for n in (nq, nk, nk)]


def loop_reference(q, k, v, spans, text_queries, gamma):
    """Per query row and key, in float64: gamma on (image row, key in any span)."""
    text = [any(a <= j < b for a, b in spans) for j in range(k.shape[2])]
    out = torch.empty(*q.shape[:3], v.shape[-1], dtype=torch.float64)
    for i in range(q.shape[2]):
        image_row = not text_queries[0] <= i < text_queries[1]
        logits = torch.einsum("bhd,bhkd->bhk", q[:, :, i].double(), k.double()) / q.shape[-1] ** 0.5
        factor = torch.tensor([gamma if image_row and t else 1.0 for t in text], dtype=torch.float64)
        out[:, :, i] = torch.einsum("bhk,bhkd->bhd", (logits * factor).softmax(-1), v.double())
    return out


# (name, queries, keys, text spans, text query rows)
CASES = [
    ("target rows, two spans", 24, 37, ((0, 3), (9, 13)), (0, 0)),
    ("target rows, three spans", 24, 43, ((0, 2), (8, 11), (17, 19)), (0, 0)),
    ("target rows, after a reference", 24, 37, ((6, 13),), (0, 0)),
    ("joint, two spans, text rows first", 30, 30, ((0, 4), (10, 12)), (0, 12)),
    ("an empty span among them", 24, 37, ((0, 0), (9, 13)), (0, 0)),
]


@pytest.mark.parametrize("name,nq,nk,spans,text_queries", CASES, ids=[c[0] for c in CASES])
def test_dense_reference_agrees_with_a_loop(name, nq, nk, spans, text_queries):
    q, k, v = qkv(nq, nk)
    got = dense_taca_attention(q, k, v, text_keys=spans, text_queries=text_queries, gamma=1.7)
    torch.testing.assert_close(got.double(), loop_reference(q, k, v, spans, text_queries, 1.7), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name,nq,nk,spans,text_queries", CASES, ids=[c[0] for c in CASES])
def test_fused_equals_dense(dtype, name, nq, nk, spans, text_queries):
    q, k, v = qkv(nq, nk, dtype)
    got = taca_attention(q, k, v, text_keys=spans, text_queries=text_queries, gamma=1.3)
    want = dense_taca_attention(q, k, v, text_keys=spans, text_queries=text_queries, gamma=1.3)
    assert got.dtype == dtype
    torch.testing.assert_close(got.float(), want.float(), atol=TOL[dtype], rtol=TOL[dtype])


@pytest.mark.parametrize("name,nq,nk,spans,text_queries", CASES, ids=[c[0] for c in CASES])
def test_gradients_equal_the_dense_references(name, nq, nk, spans, text_queries):
    leaves = [t.requires_grad_() for t in qkv(nq, nk)]
    grads = []
    for fn in (taca_attention, dense_taca_attention):
        out = fn(*leaves, text_keys=spans, text_queries=text_queries, gamma=1.6)
        grads.append(torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum(), leaves))
    for fused, dense in zip(*grads):
        torch.testing.assert_close(fused, dense, atol=2e-5, rtol=2e-5)


def test_one_span_or_a_tuple_of_one_is_the_same_call():
    q, k, v = qkv(20, 20)
    assert torch.equal(public_taca_attention(q, k, v, text_keys=(0, 5), gamma=1.4),
                       public_taca_attention(q, k, v, text_keys=((0, 5),), gamma=1.4))


def test_gamma_one_and_no_text_are_plain_sdpa_bitwise():
    q, k, v = qkv(24, 37)
    plain = F.scaled_dot_product_attention(q, k, v)
    assert torch.equal(taca_attention(q, k, v, text_keys=((0, 3), (9, 13)), text_queries=(0, 0), gamma=1.0), plain)
    assert torch.equal(taca_attention(q, k, v, text_keys=((0, 0), (5, 5)), text_queries=(0, 0), gamma=2.0), plain)


def test_only_the_span_keys_are_scaled_and_inputs_stay():
    k = torch.randn(1, 2, 15, 4)
    before = k.clone()
    scaled = scale_keys(k, ((1, 3), (7, 10)), 2.0, token_dim=2)
    assert torch.equal(k, before)
    factor = torch.ones(15)
    factor[1:3] = factor[7:10] = 2.0
    assert torch.equal(scaled, k * factor[:, None])


@pytest.mark.parametrize("spans,message", [(((0, 5), (3, 8)), "after the span before it"),
                                           (((5, 8), (0, 3)), "after the span before it"),
                                           (((0, 3), (30, 40)), "does not fit")])
def test_overlapping_unordered_or_outside_spans_are_refused(spans, message):
    q, k, v = qkv(10, 20)
    with pytest.raises(ValueError, match=message):
        taca_attention(q, k, v, text_keys=spans, text_queries=(0, 0), gamma=1.5)


def test_several_spans_need_the_text_rows():
    q, k, v = qkv(20, 20)
    with pytest.raises(ValueError, match="text_queries must be given"):
        taca_attention(q, k, v, text_keys=((0, 3), (6, 8)), gamma=1.5)


def test_probe_share_counts_every_span():
    q, k, _ = qkv(24, 37, torch.float64)
    spans = ((0, 3), (9, 13))
    logits = (q @ k.transpose(-1, -2) / 4.0)
    text = torch.zeros(37, dtype=torch.bool)
    text[0:3] = text[9:13] = True
    for gamma in (1.0, 1.5):
        probs = torch.where(text, logits * gamma, logits).softmax(-1)
        want = probs[..., text].sum(-1).mean().item()
        assert image_text_share(q, k, spans, (0, 0), gamma=gamma) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("nq,nk,expected", [
    (24, 37, (JOINT, (((0, 3), (9, 13)), (0, 0)))),   # the target rows, prefix computed or cached
    (3, 3, (NOT_JOINT, None)),                         # the first text part (causal)
    (6, 9, (NOT_JOINT, None)),                         # the reference
    (4, 13, (NOT_JOINT, None)),                        # the second text part
    (37, 37, (UNEXPECTED, None)),                      # all rows at once: not how the model calls
    (24, 40, (UNEXPECTED, None)),
])
def test_target_rows_layout_classifies_the_segment_calls(nq, nk, expected):
    layout = TargetRowsLayout(text_spans=((0, 3), (9, 13)), prefix=13, target=24)
    assert layout.text == 7 and layout.total == 37
    assert layout.classify(nq, nk) == expected


def test_target_rows_layout_describe():
    layout = TargetRowsLayout(text_spans=((0, 3), (9, 13)), prefix=13, target=24)
    assert layout.describe() == "7 text + 6 reference + 24 target image = 37 tokens (text in 2 spans)"


def z(*shape):
    return torch.zeros(*shape)


@pytest.mark.parametrize("refs,slots,spans,prefix", [
    ([], None, ((0, 7),), 7),
    ([(2, 3)], None, ((0, 7),), 13),                          # default slot: after all text
    ([(2, 3)], [3], ((0, 3), (9, 13)), 13),
    ([(2, 3)], [0], ((6, 13),), 13),                           # no text before the reference
    ([(2, 3), (4, 4)], [2, 5], ((0, 2), (8, 11), (27, 29)), 29),
    ([(2, 3), (4, 4)], [2], ((0, 2), (8, 13)), 29),            # the second slot missing: after all text
])
def test_qwen21_layout_mirrors_build_sequence(refs, slots, spans, prefix):
    conds = {"ref_latents": [z(1, 64, *hw) for hw in refs]}
    if slots is not None:
        conds["image_slots"] = slots
    layout = fl.qwen21(SimpleNamespace(), z(2, 64, 4, 6), z(2, 7, 24), conds)
    assert layout == TargetRowsLayout(text_spans=spans, prefix=prefix, target=24)
