"""The ComfyUI attention-override calling convention, with a stand-in for ComfyUI's attention function."""
import torch
import torch.nn.functional as F

from support.reference import dense_taca
from comfyui_taca_under_test.taca_core.layout import TokenLayout
from comfyui_taca_under_test.taca_comfy.override import TacaAttentionOverride, TacaCall


def comfy_like_attention(q, k, v, heads, mask=None, skip_reshape=False, skip_output_reshape=False, **kwargs):
    """Mimics comfy.ldm.modules.attention.attention_pytorch's layouts."""
    assert kwargs.get("_inside_attn_wrapper"), "the override must call func as ComfyUI's wrapper would"
    if not skip_reshape:
        b, _, hd = q.shape
        q, k, v = (t.view(b, -1, heads, hd // heads).transpose(1, 2) for t in (q, k, v))
    if mask is not None and mask.ndim == 3:
        mask = mask.unsqueeze(1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if skip_output_reshape:
        return out
    return out.transpose(1, 2).reshape(out.shape[0], -1, out.shape[1] * out.shape[3])


def flux_layout(txt, total):
    """[text | image]."""
    return TokenLayout(text=txt, after=total - txt)


def bhld(b=2, h=3, n=24, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, n, d, generator=g) for _ in range(3)]


def to_blhd(t):
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], -1)


def call_override(override, *args, **kwargs):
    return override(comfy_like_attention, *args, _inside_attn_wrapper=True, **kwargs)


def test_flux_layout_bhld_in_blhd_out():
    q, k, v = bhld()
    call = TacaCall(1.4, flux_layout(6, 24))
    out = call_override(TacaAttentionOverride(call), q, k, v, 3, skip_reshape=True)
    ref = to_blhd(dense_taca(q, k, v, text_keys=(0, 6), gamma=1.4))
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=2e-5)
    assert call.fired == 1


def test_sd3_layout_blhd_with_heads_keyword():
    q, k, v = bhld()
    call = TacaCall(1.2, flux_layout(5, 24))
    out = call_override(TacaAttentionOverride(call), *map(to_blhd, (q, k, v)), heads=3)
    torch.testing.assert_close(out, to_blhd(dense_taca(q, k, v, text_keys=(0, 5), gamma=1.2)),
                               atol=2e-5, rtol=2e-5)


def test_skip_output_reshape_keeps_bhld():
    q, k, v = bhld()
    out = call_override(TacaAttentionOverride(TacaCall(1.3, flux_layout(4, 24))), q, k, v, 3,
                        skip_reshape=True, skip_output_reshape=True)
    torch.testing.assert_close(out, dense_taca(q, k, v, text_keys=(0, 4), gamma=1.3), atol=2e-5, rtol=2e-5)


def test_masks_keyword_and_positional():
    q, k, v = bhld()
    mask = torch.randn(2, 24, 24)
    ref = to_blhd(dense_taca(q, k, v, text_keys=(0, 7), gamma=1.5, mask=mask.unsqueeze(1)))
    override = TacaAttentionOverride(TacaCall(1.5, flux_layout(7, 24)))
    blhd = list(map(to_blhd, (q, k, v)))
    torch.testing.assert_close(call_override(override, *blhd, 3, mask=mask), ref, atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(call_override(override, *blhd, 3, mask), ref, atol=2e-5, rtol=2e-5)


def test_shorter_calls_pass_through_untouched():
    """SD3.5's image-only x_block_self_attn: fewer tokens than a joint call."""
    q, k, v = (to_blhd(t) for t in bhld(n=18))
    call = TacaCall(1.5, flux_layout(6, 24))
    out = call_override(TacaAttentionOverride(call), q, k, v, heads=3)
    assert torch.equal(out, comfy_like_attention(q, k, v, 3, _inside_attn_wrapper=True))
    assert call.fired == 0


def test_longer_calls_are_unexpected_left_alone_and_counted():
    """Keys beyond the layout (tokens TACA did not count): no guessing, reported instead."""
    q, k, v = bhld(n=30)
    call = TacaCall(1.5, flux_layout(6, 24))
    out = call_override(TacaAttentionOverride(call), q, k, v, 3, skip_reshape=True)
    assert torch.equal(out, comfy_like_attention(q, k, v, 3, skip_reshape=True, _inside_attn_wrapper=True))
    assert (call.fired, call.unexpected, call.unexpected_shape) == (0, 1, (30, 30))


def test_reference_tokens_counted_in_the_layout_are_image_queries():
    q, k, v = bhld(n=30)  # 6 text + 16 image + 8 reference
    out = call_override(TacaAttentionOverride(TacaCall(1.5, flux_layout(6, 30))), q, k, v, 3, skip_reshape=True)
    torch.testing.assert_close(out, to_blhd(dense_taca(q, k, v, text_keys=(0, 6), gamma=1.5)),
                               atol=2e-5, rtol=2e-5)


def test_kv_cached_call_fewer_queries_than_keys():
    """FluxKVCache: queries [text | image], keys [text | image | cached reference]."""
    q, _, _ = bhld(n=22, seed=1)
    _, k, v = bhld(n=30, seed=2)
    call = TacaCall(1.5, flux_layout(6, 30))
    out = call_override(TacaAttentionOverride(call), q, k, v, 3, skip_reshape=True)
    ref = dense_taca(q, k, v, text_keys=(0, 6), text_queries=(0, 6), gamma=1.5)
    torch.testing.assert_close(out, to_blhd(ref), atol=2e-5, rtol=2e-5)
    assert call.fired == 1 and call.unexpected == 0


def test_text_last_layout():
    q, k, v = bhld()
    layout = TokenLayout(text=5, before=19)
    out = call_override(TacaAttentionOverride(TacaCall(1.6, layout)), q, k, v, 3, skip_reshape=True)
    torch.testing.assert_close(out, to_blhd(dense_taca(q, k, v, text_keys=(19, 24), gamma=1.6)),
                               atol=2e-5, rtol=2e-5)


def test_registers_layout_blhd():
    q, k, v = bhld()
    layout = TokenLayout(text=5, registers=3, after=16)
    out = call_override(TacaAttentionOverride(TacaCall(1.6, layout)), *map(to_blhd, (q, k, v)), 3)
    ref = dense_taca(q, k, v, text_keys=(3, 8), text_queries=(0, 8), gamma=1.6)
    torch.testing.assert_close(out, to_blhd(ref), atol=2e-5, rtol=2e-5)


def test_calls_through_previous_override():
    seen = []

    def previous(func, *args, **kwargs):
        seen.append(args[0].shape)
        return func(*args, **kwargs)

    q, k, v = bhld()
    out = call_override(TacaAttentionOverride(TacaCall(1.4, flux_layout(6, 24)), previous), q, k, v, 3, skip_reshape=True)
    torch.testing.assert_close(out, to_blhd(dense_taca(q, k, v, text_keys=(0, 6), gamma=1.4)),
                               atol=2e-5, rtol=2e-5)
    assert seen == [(2, 3, 6, 8), (2, 3, 18, 8)]  # text rows, then image rows, both through it
