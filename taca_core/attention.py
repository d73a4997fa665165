"""Exact, fused TACA attention (paper Eq. 10) without a tokens x tokens matrix.

Attention logits are linear in the keys, so multiplying the image-query x
text-key logits by gamma equals letting the image queries attend to keys whose
text slice is scaled by gamma. Text queries attend to the original keys. That is
two fused attention calls over disjoint query rows: the same FLOPs as one call,
plus one copy of K (O(tokens) extra memory).
"""
from typing import Callable, Optional

import torch
import torch.nn.functional as F

# attend(q, k, v, mask) -> out, for the query rows of q against all keys.
AttendFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Optional[torch.Tensor]], torch.Tensor]


def _sdpa(q, k, v, mask):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def scale_text_keys(k: torch.Tensor, txt_len: int, gamma: float, token_dim: int) -> torch.Tensor:
    """A copy of k with its first txt_len tokens multiplied by gamma."""
    k_txt, k_img = k.split([txt_len, k.shape[token_dim] - txt_len], dim=token_dim)
    return torch.cat((k_txt * gamma, k_img), dim=token_dim)


def split_mask_rows(mask: Optional[torch.Tensor], txt_len: int, n_queries: int):
    """(text rows, image rows) of a mask whose second-to-last dim indexes queries.

    A mask that broadcasts over queries (that dim is 1, or it is 1-D) serves both.
    """
    if mask is None or mask.ndim < 2 or mask.shape[-2] != n_queries:
        return mask, mask
    return mask[..., :txt_len, :], mask[..., txt_len:, :]


def taca_split_attention(attend: AttendFn, q, k, v, *, txt_len: int, gamma: float,
                         token_dim: int, out_token_dim: int, mask=None) -> torch.Tensor:
    """TACA through any attention function, for any tensor layout.

    token_dim: the token axis of q/k/v; out_token_dim: the token axis of
    attend's output. Text tokens come first.
    """
    n = q.shape[token_dim]
    if gamma == 1.0 or txt_len <= 0 or txt_len >= n:
        return attend(q, k, v, mask)
    q_txt, q_img = q.split([txt_len, n - txt_len], dim=token_dim)
    mask_txt, mask_img = split_mask_rows(mask, txt_len, n)
    out_txt = attend(q_txt, k, v, mask_txt)
    out_img = attend(q_img, scale_text_keys(k, txt_len, gamma, token_dim), v, mask_img)
    return torch.cat((out_txt, out_img), dim=out_token_dim)


def taca_attention(q, k, v, *, txt_len: int, gamma: float, mask=None,
                   attend: AttendFn = _sdpa) -> torch.Tensor:
    """TACA attention on [batch, heads, tokens, head_dim] tensors, text tokens first.

    mask: boolean (True = attend) or additive, broadcastable to
    [batch, heads, tokens, tokens], as for F.scaled_dot_product_attention.
    """
    return taca_split_attention(attend, q, k, v, txt_len=txt_len, gamma=gamma,
                                token_dim=2, out_token_dim=2, mask=mask)


def dense_taca_attention(q, k, v, *, txt_len: int, gamma: float, mask=None) -> torch.Tensor:
    """Reference: materialises the logits, as the official code does. For tests and benchmarks."""
    logits = (q.float() @ k.float().transpose(-1, -2)) * q.shape[-1] ** -0.5
    logits[..., txt_len:, :txt_len] *= gamma
    if mask is not None:
        if mask.dtype == torch.bool:
            logits = logits.masked_fill(~mask, float("-inf"))
        else:
            logits = logits + mask.float()
    return (logits.softmax(dim=-1) @ v.float()).to(q.dtype)
