import itertools

import pytest
import torch
import torch.nn.functional as F

from comfyui_taca_under_test.taca_core.attention import dense_taca_attention, taca_attention, taca_split_attention
from support.reference import dense_taca

TOL = {torch.float32: 2e-5, torch.float16: 3e-3, torch.bfloat16: 2e-2}


def qkv(b, h, nq, d, dtype, seed=0, nk=None):
    g = torch.Generator().manual_seed(seed)
    nk = nq if nk is None else nk
    return [torch.randn(b, h, n, d, generator=g).to(dtype) for n in (nq, nk, nk)]


def make_mask(kind, b, h, nq, nk, seed=1):
    g = torch.Generator().manual_seed(seed)
    if kind is None:
        return None
    if kind == "bool":  # per query row, never fully masked (first key kept)
        m = torch.rand(b, 1, nq, nk, generator=g) > 0.3
        m[..., 0] = True
        return m
    if kind == "additive":  # per query row and head
        return torch.randn(b, h, nq, nk, generator=g)
    if kind == "key_padding":  # [B, 1, 1, N]: broadcasts over query rows
        m = torch.zeros(b, 1, 1, nk)
        m[..., -2:] = float("-inf")
        return m
    if kind == "2d":  # [queries, keys], as ComfyUI accepts
        return torch.randn(nq, nk, generator=g)


# (name, n_queries, n_keys, text_keys, text_queries): every layout the families use
LAYOUTS = [
    ("text first", 24, 24, (0, 7), (0, 7)),
    ("text last (image first)", 24, 24, (17, 24), (17, 24)),
    ("after registers", 24, 24, (3, 10), (0, 10)),
    ("in the middle", 24, 24, (5, 12), (5, 12)),
    ("kv cache: fewer queries", 18, 24, (0, 7), (0, 7)),
    ("kv cache after registers", 18, 24, (2, 7), (0, 7)),
    ("only image queries", 10, 24, (0, 7), (0, 0)),
]


@pytest.mark.parametrize("name,nq,nk,text_keys,text_queries", LAYOUTS, ids=[x[0] for x in LAYOUTS])
@pytest.mark.parametrize("mask_kind", [None, "bool", "additive", "key_padding", "2d"])
def test_dense_taca_attention_agrees_with_the_reference(name, nq, nk, text_keys, text_queries, mask_kind):
    q, k, v = qkv(2, 2, nq, 8, torch.float32, nk=nk)
    mask = make_mask(mask_kind, 2, 2, nq, nk)
    got = dense_taca_attention(q, k, v, text_keys=text_keys, text_queries=text_queries, gamma=1.7, mask=mask)
    torch.testing.assert_close(got, dense_taca(q, k, v, text_keys=text_keys, text_queries=text_queries, gamma=1.7,
                                          mask=mask),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mask_kind", [None, "bool", "additive", "key_padding", "2d"])
@pytest.mark.parametrize("name,nq,nk,text_keys,text_queries", LAYOUTS, ids=[x[0] for x in LAYOUTS])
def test_matches_dense_reference_for_every_layout(dtype, mask_kind, name, nq, nk, text_keys, text_queries):
    q, k, v = qkv(2, 3, nq, 16, dtype, nk=nk)
    mask = make_mask(mask_kind, 2, 3, nq, nk)
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(dtype)
    for gamma in (1.2, 2.5):
        got = taca_attention(q, k, v, text_keys=text_keys, text_queries=text_queries, gamma=gamma, mask=mask)
        ref = dense_taca(q, k, v, text_keys=text_keys, text_queries=text_queries, gamma=gamma, mask=mask)
        assert got.shape == q.shape and got.dtype == dtype
        torch.testing.assert_close(got.float(), ref.float(), atol=TOL[dtype], rtol=TOL[dtype])


@pytest.mark.parametrize("shape", [(1, 1, 7, 8), (3, 2, 64, 32)])
def test_text_first_any_length(shape):
    b, h, n, d = shape
    q, k, v = qkv(b, h, n, d, torch.float32)
    for txt in (0, 1, n // 3, n - 1, n):
        got = taca_attention(q, k, v, text_keys=(0, txt), gamma=1.5)
        ref = dense_taca(q, k, v, text_keys=(0, txt), gamma=1.5)
        torch.testing.assert_close(got, ref, atol=2e-5, rtol=2e-5)


def test_query_rows_split_into_at_most_three_fused_calls():
    q, k, v = qkv(1, 2, 24, 8, torch.float32)
    calls = []

    def attend(q_, k_, v_, mask_):
        calls.append(q_.shape[2])
        return F.scaled_dot_product_attention(q_, k_, v_, attn_mask=mask_)

    taca_split_attention(attend, q, k, v, text_keys=(5, 12), text_queries=(5, 12), gamma=1.5,
                         token_dim=2, out_token_dim=2)
    assert calls == [5, 7, 12]
    calls.clear()
    taca_split_attention(attend, q, k, v, text_keys=(0, 7), text_queries=(0, 7), gamma=1.5,
                         token_dim=2, out_token_dim=2)
    assert calls == [7, 17]


def test_text_and_register_rows_untouched_image_rows_changed():
    q, k, v = qkv(2, 4, 40, 16, torch.float32)
    plain = F.scaled_dot_product_attention(q, k, v)
    out = taca_attention(q, k, v, text_keys=(13, 20), text_queries=(10, 20), gamma=1.5)
    assert torch.equal(out[:, :, 10:20], plain[:, :, 10:20])  # registers 10..13 and text rows
    assert not torch.allclose(out[:, :, :10], plain[:, :, :10])
    assert not torch.allclose(out[:, :, 20:], plain[:, :, 20:])


def test_registers_are_not_scaled():
    q, k, v = qkv(1, 2, 20, 8, torch.float32)
    with_regs = taca_attention(q, k, v, text_keys=(3, 8), text_queries=(0, 8), gamma=1.8)
    regs_as_text = taca_attention(q, k, v, text_keys=(0, 8), text_queries=(0, 8), gamma=1.8)
    assert not torch.allclose(with_regs[:, :, 8:], regs_as_text[:, :, 8:])


def test_is_a_temperature_not_a_log_shift():
    q, k, v = qkv(1, 2, 20, 8, torch.float32)
    out = taca_attention(q, k, v, text_keys=(0, 5), gamma=1.3)
    bias = torch.zeros(20, 20)
    bias[5:, :5] = torch.log(torch.tensor(1.3))  # mass rescaling, a different method
    shifted = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    assert not torch.allclose(out, shifted, atol=1e-4)


@pytest.mark.parametrize("text_keys,text_queries,nk", [((0, 5), (0, 5), 20), ((15, 20), (15, 20), 20),
                                                       ((2, 6), (0, 6), 20), ((0, 5), (0, 5), 26)])
def test_gamma_one_is_plain_sdpa_bitwise(text_keys, text_queries, nk):
    q, k, v = qkv(2, 2, 20, 8, torch.float32, nk=nk)
    got = taca_attention(q, k, v, text_keys=text_keys, text_queries=text_queries, gamma=1.0)
    assert torch.equal(got, F.scaled_dot_product_attention(q, k, v))


def test_dense_reference_itself_matches_sdpa_at_gamma_one():
    q, k, v = qkv(2, 2, 20, 8, torch.float32)
    mask = make_mask("additive", 2, 2, 20, 20)
    torch.testing.assert_close(dense_taca(q, k, v, text_keys=(0, 7), gamma=1.0, mask=mask),
                               F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=2e-5, rtol=2e-5)


def test_does_not_modify_inputs():
    q, k, v = qkv(1, 2, 12, 8, torch.float32)
    mask = make_mask("additive", 1, 2, 12, 12)
    copies = [t.clone() for t in (q, k, v, mask)]
    taca_attention(q, k, v, text_keys=(2, 6), text_queries=(1, 6), gamma=2.0, mask=mask)
    assert all(torch.equal(a, b) for a, b in zip((q, k, v, mask), copies))


@pytest.mark.parametrize("text_keys,text_queries", [((0, 30), (0, 5)), ((0, 5), (3, 25)), ((6, 5), (0, 5))])
def test_spans_outside_the_tokens_are_refused(text_keys, text_queries):
    q, k, v = qkv(1, 1, 20, 8, torch.float32)
    with pytest.raises(ValueError, match="does not fit"):
        taca_attention(q, k, v, text_keys=text_keys, text_queries=text_queries, gamma=1.5)


def test_all_pairs_of_gamma_and_dtype_keep_dtype():
    for dtype, gamma in itertools.product((torch.float16, torch.bfloat16), (1.0, 1.2)):
        q, k, v = qkv(1, 2, 10, 8, dtype)
        assert taca_attention(q, k, v, text_keys=(0, 3), gamma=gamma).dtype == dtype
