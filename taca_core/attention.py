"""Exact, fused TACA attention (paper Eq. 10) without a tokens x tokens matrix.

Attention logits are linear in the keys, so multiplying the image-query x
text-key logits by gamma equals letting the image queries attend to keys whose
text span is scaled by gamma. Text-stream queries attend to the original keys.

The text span may sit anywhere in the keys (first, last, after register tokens,
in the middle), the text keys may be several spans (Qwen-Image 2.1 splices
reference images into its text), and there may be fewer queries than keys
(KV-cached calls, or only the target rows of a block-causal model). The
query rows split into at most three contiguous pieces (image rows before the
text rows, the text rows, image rows after them); each piece is one fused
attention call, so the FLOPs are those of one call, plus one copy of K
(O(tokens) extra memory).
"""
from typing import Callable, Optional, Tuple, Union

import torch
import torch.nn.functional as F

Span = Tuple[int, int]  # [start, stop) token positions
# text_keys: one Span, or a tuple of Spans (in order, not overlapping)
Spans = Union[Span, Tuple[Span, ...]]

# attend(q, k, v, mask) -> out, for the query rows of q against all keys.
AttendFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Optional[torch.Tensor]], torch.Tensor]


def _sdpa(q, k, v, mask):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def as_spans(text_keys: Spans) -> Tuple[Span, ...]:
    """text_keys as a tuple of spans: a single (start, stop) becomes a 1-tuple."""
    if len(text_keys) == 2 and all(isinstance(i, int) for i in text_keys):
        return (tuple(text_keys),)
    return tuple(tuple(s) for s in text_keys)


def scale_keys(k: torch.Tensor, text_keys: Spans, gamma: float, token_dim: int) -> torch.Tensor:
    """A copy of k with the tokens in the text span(s) multiplied by gamma."""
    pieces, pos = [], 0
    for start, stop in as_spans(text_keys):
        pieces += [k.narrow(token_dim, pos, start - pos), k.narrow(token_dim, start, stop - start) * gamma]
        pos = stop
    pieces.append(k.narrow(token_dim, pos, k.shape[token_dim] - pos))
    return torch.cat(pieces, dim=token_dim)


def mask_rows(mask: Optional[torch.Tensor], rows: Span, n_queries: int):
    """The query rows `rows` of a mask whose second-to-last dim indexes queries.

    A mask that broadcasts over queries (that dim is 1, or it is 1-D) serves every piece as is.
    """
    if mask is None or mask.ndim < 2 or mask.shape[-2] != n_queries or n_queries == 1:
        return mask
    return mask[..., rows[0]:rows[1], :]


def _check_span(name: str, span: Span, n: int, start_at: int = 0):
    start, stop = span
    if not start_at <= start <= stop <= n:
        raise ValueError(f"TACA: {name} {span} does not fit in {n} tokens"
                         + (f" after the span before it (ending at {start_at})" if start_at else ""))


def _check_spans(text_keys: Spans, n: int) -> Tuple[Span, ...]:
    spans, end = as_spans(text_keys), 0
    for span in spans:
        _check_span("text_keys", span, n, end)
        end = span[1]
    return spans


def taca_split_attention(attend: AttendFn, q, k, v, *, text_keys: Spans, text_queries: Span, gamma: float,
                         token_dim: int, out_token_dim: int, mask=None) -> torch.Tensor:
    """TACA through any attention function, for any tensor layout.

    text_keys: the key positions whose logits image queries see multiplied by gamma (the text):
      one span, or a tuple of spans in order (text with reference images between its parts).
    text_queries: the query rows left untouched (the text stream: text, and any register
      tokens beside it); every other query row is an image query. With fewer queries than
      keys (KV cache), these are positions among the queries.
    token_dim: the token axis of q/k/v; out_token_dim: the token axis of attend's output.
    """
    nq, nk = q.shape[token_dim], k.shape[token_dim]
    spans = _check_spans(text_keys, nk)
    _check_span("text_queries", text_queries, nq)
    t0, t1 = text_queries
    if gamma == 1.0 or all(a == b for a, b in spans) or (t0 == 0 and t1 == nq):
        return attend(q, k, v, mask)
    k_scaled = scale_keys(k, spans, gamma, token_dim)
    outs = []
    for rows, keys in (((0, t0), k_scaled), ((t0, t1), k), ((t1, nq), k_scaled)):
        if rows[1] > rows[0]:
            q_rows = q.narrow(token_dim, rows[0], rows[1] - rows[0])
            outs.append(attend(q_rows, keys, v, mask_rows(mask, rows, nq)))
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=out_token_dim)


def _default_text_queries(text_keys: Spans, text_queries: Optional[Span]) -> Span:
    if text_queries is not None:
        return text_queries
    spans = as_spans(text_keys)
    if len(spans) != 1:
        raise ValueError("TACA: text_queries must be given when the text keys are several spans")
    return spans[0]


def taca_attention(q, k, v, *, text_keys: Spans, gamma: float, text_queries: Optional[Span] = None, mask=None,
                   attend: AttendFn = _sdpa) -> torch.Tensor:
    """TACA attention on [batch, heads, tokens, head_dim] tensors.

    text_keys: a span (start, stop) or a tuple of spans. text_queries defaults to text_keys when
    that is one span (queries and keys are the same tokens); (0, 0): every query row is an image row.
    mask: boolean (True = attend) or additive, broadcastable to [batch, heads, queries, keys],
    as for F.scaled_dot_product_attention.
    """
    return taca_split_attention(attend, q, k, v, text_keys=text_keys,
                                text_queries=_default_text_queries(text_keys, text_queries),
                                gamma=gamma, token_dim=2, out_token_dim=2, mask=mask)


def dense_taca_attention(q, k, v, *, text_keys: Spans, gamma: float, text_queries: Optional[Span] = None,
                         mask=None) -> torch.Tensor:
    """Reference: materialises the logits, as the official code does. For tests and benchmarks.

    Same arguments as taca_attention; every query row outside text_queries gets the logits of
    the keys in text_keys multiplied by gamma.
    """
    text_queries = _default_text_queries(text_keys, text_queries)
    logits = (q.float() @ k.float().transpose(-1, -2)) * q.shape[-1] ** -0.5
    image_rows = torch.ones(q.shape[-2], dtype=torch.bool, device=q.device)
    image_rows[text_queries[0]:text_queries[1]] = False
    text_cols = torch.zeros(k.shape[-2], dtype=torch.bool, device=q.device)
    for start, stop in as_spans(text_keys):
        text_cols[start:stop] = True
    factor = torch.where(image_rows[:, None] & text_cols[None, :], gamma, 1.0).to(logits.dtype)
    logits = logits * factor
    if mask is not None:
        if mask.dtype == torch.bool:
            logits = logits.masked_fill(~mask, float("-inf"))
        else:
            logits = logits + mask.float()
    return (logits.softmax(dim=-1) @ v.float()).to(q.dtype)
