"""The ComfyUI attention-override calling convention, with a stand-in for ComfyUI's attention function."""
import torch
import torch.nn.functional as F

from taca_core.attention import dense_taca_attention
from taca_core.override import TacaAttentionOverride, TacaCall


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


def bhld(b=2, h=3, n=24, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, n, d, generator=g) for _ in range(3)]


def to_blhd(t):
    return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], -1)


def call_override(override, *args, **kwargs):
    return override(comfy_like_attention, *args, _inside_attn_wrapper=True, **kwargs)


def test_flux_layout_bhld_in_blhd_out():
    q, k, v = bhld()
    call = TacaCall(gamma=1.4, txt_len=6, joint_len=24)
    out = call_override(TacaAttentionOverride(call), q, k, v, 3, skip_reshape=True)
    ref = to_blhd(dense_taca_attention(q, k, v, txt_len=6, gamma=1.4))
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=2e-5)
    assert call.fired == 1


def test_sd3_layout_blhd_with_heads_keyword():
    q, k, v = bhld()
    call = TacaCall(gamma=1.2, txt_len=5, joint_len=24)
    out = call_override(TacaAttentionOverride(call), *map(to_blhd, (q, k, v)), heads=3)
    torch.testing.assert_close(out, to_blhd(dense_taca_attention(q, k, v, txt_len=5, gamma=1.2)),
                               atol=2e-5, rtol=2e-5)


def test_skip_output_reshape_keeps_bhld():
    q, k, v = bhld()
    out = call_override(TacaAttentionOverride(TacaCall(1.3, 4, 24)), q, k, v, 3,
                        skip_reshape=True, skip_output_reshape=True)
    torch.testing.assert_close(out, dense_taca_attention(q, k, v, txt_len=4, gamma=1.3), atol=2e-5, rtol=2e-5)


def test_masks_keyword_and_positional():
    q, k, v = bhld()
    mask = torch.randn(2, 24, 24)
    ref = to_blhd(dense_taca_attention(q, k, v, txt_len=7, gamma=1.5, mask=mask.unsqueeze(1)))
    override = TacaAttentionOverride(TacaCall(1.5, 7, 24))
    blhd = list(map(to_blhd, (q, k, v)))
    torch.testing.assert_close(call_override(override, *blhd, 3, mask=mask), ref, atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(call_override(override, *blhd, 3, mask), ref, atol=2e-5, rtol=2e-5)


def test_shorter_calls_pass_through_untouched():
    """SD3.5's image-only x_block_self_attn: fewer tokens than a joint call."""
    q, k, v = (to_blhd(t) for t in bhld(n=18))
    call = TacaCall(1.5, 6, 24)
    out = call_override(TacaAttentionOverride(call), q, k, v, heads=3)
    assert torch.equal(out, comfy_like_attention(q, k, v, 3, _inside_attn_wrapper=True))
    assert call.fired == 0


def test_longer_calls_are_joint():
    """FLUX Kontext appends reference-image tokens after the noisy image: still joint."""
    q, k, v = bhld(n=30)
    out = call_override(TacaAttentionOverride(TacaCall(1.5, 6, 24)), q, k, v, 3, skip_reshape=True)
    torch.testing.assert_close(out, to_blhd(dense_taca_attention(q, k, v, txt_len=6, gamma=1.5)),
                               atol=2e-5, rtol=2e-5)


def test_calls_through_previous_override():
    seen = []

    def previous(func, *args, **kwargs):
        seen.append(args[0].shape)
        return func(*args, **kwargs)

    q, k, v = bhld()
    out = call_override(TacaAttentionOverride(TacaCall(1.4, 6, 24), previous), q, k, v, 3, skip_reshape=True)
    torch.testing.assert_close(out, to_blhd(dense_taca_attention(q, k, v, txt_len=6, gamma=1.4)),
                               atol=2e-5, rtol=2e-5)
    assert seen == [(2, 3, 6, 8), (2, 3, 18, 8)]  # text rows, then image rows, both through it
