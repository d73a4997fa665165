"""TACA as a ComfyUI `optimized_attention_override`, and that calling convention (AttentionArgs).

ComfyUI's attention functions (wrap_attn) hand every call to
transformer_options[OVERRIDE_KEY](func, q, k, v, heads, ...),
with `_inside_attn_wrapper` set in kwargs so that calling func again runs the
real attention. Overrides chain: each calls the one it found (call_next).
"""
import contextvars
from dataclasses import dataclass

from ..taca_core.attention import taca_split_attention
from ..taca_core.layout import JOINT, UNEXPECTED, TokenLayout

OVERRIDE_KEY = "optimized_attention_override"


@dataclass
class TacaCall:
    """One model call during which gamma acts, and what its attention calls looked like."""
    gamma: float
    layout: TokenLayout
    seen: int = 0        # attention calls that reached the override
    fired: int = 0       # joint attention calls TACA changed
    unexpected: int = 0  # attention calls skipped for their shape
    unexpected_shape: tuple = ()  # (queries, keys) of the first one


# The TacaCall of the model call this thread is running (None: gamma does not act in it; IDLE: no TACA
# model call is running in this thread). A context variable, not an attribute: per thread (multi-GPU
# work units), and guarded by torch.compile, which ComfyUI tells to ignore everything reached through
# transformer_options.
IDLE = "no TACA model call in flight"
CURRENT_CALL = contextvars.ContextVar("taca_current_call", default=IDLE)


class AttentionArgs:
    """One call in ComfyUI's wrap_attn convention: override(func, q, k, v, heads, mask=None, ..., **kwargs).

    Layouts: skip_reshape -> [B, H, L, D], else [B, L, H*D] (or [B, L, H, D]); the output is
    [B, H, L, D] only with skip_output_reshape. The mask comes positionally or as a keyword.
    """

    def __init__(self, q, k, rest, kwargs):
        self.rest, self.kwargs = rest, kwargs
        self.token_dim = 2 if kwargs.get("skip_reshape", False) else 1
        self.out_token_dim = 2 if kwargs.get("skip_output_reshape", False) else 1
        self.n_queries, self.n_keys = q.shape[self.token_dim], k.shape[self.token_dim]
        self.mask_is_positional = len(rest) >= 2  # (heads, mask, ...)
        self.mask = rest[1] if self.mask_is_positional else kwargs.get("mask")
        self.heads = rest[0] if rest else kwargs.get("heads")

    def call(self, fn, func, q, k, v, mask):
        """fn(func, q, k, v, ...) with this call's other arguments and `mask` in the mask's place."""
        rest, kwargs = self.rest, self.kwargs
        if self.mask_is_positional:
            return fn(func, q, k, v, rest[0], mask, *rest[2:], **kwargs)
        if mask is not None:
            return fn(func, q, k, v, *rest, **{**kwargs, "mask": mask})
        return fn(func, q, k, v, *rest, **kwargs)

    def bhld(self, q, k):
        """q, k as [B, H, L, D]."""
        if self.token_dim == 2:
            return q, k
        return tuple(t.reshape(t.shape[0], t.shape[1], self.heads, -1).transpose(1, 2) for t in (q, k))

    def mask_4d(self):
        """The mask ([L, L], [B, L, L] or [B, H, L, L]) as SDPA broadcasts it."""
        m = self.mask
        if m is None:
            return None
        return m.reshape((1,) * (4 - m.ndim) + tuple(m.shape)) if m.ndim < 4 else m


def call_next(previous, func, *args, **kwargs):
    """The override below in the chain, or ComfyUI's attention function."""
    if previous is not None:
        return previous(func, *args, **kwargs)
    return func(*args, **kwargs)


class TacaAttentionOverride:
    """TACA on the joint attention calls, through the override it found (or ComfyUI's function).

    call: the TacaCall to apply; None (what the wrapper installs) reads CURRENT_CALL on every
    attention call and passes the call through unchanged when there is none.
    layer_attention: (transformer_options) -> the attention function the calling layer prefers, or
    None. ComfyUI runs a layer's preferred attention (a checkpoint's per-layer backend, 0.37+) only
    when no override is set, and never shows it to one; with no override below TACA's, TACA runs that
    function where ComfyUI would have, so its pass-through stays what the unpatched model computes.
    replay: the TacaCall (or None) of the one model call whose transformer_options hold this override.
    Gradient checkpointing (Train LoRA's default) recomputes a block during backward, after the wrapper
    has reset CURRENT_CALL (and, on a GPU, in autograd's own thread): the recompute reaches this override
    through the same transformer_options and finds CURRENT_CALL idle, so it decides as the forward did.
    """

    def __init__(self, call: TacaCall = None, previous=None, layer_attention=None, replay: TacaCall = None):
        self.call = call
        self.previous = previous
        self.layer_attention = layer_attention if previous is None else None
        self.replay = replay

    def _next(self, func, *args, **kwargs):
        return call_next(self.previous, func, *args, **kwargs)

    def __call__(self, func, q, k, v, *rest, **kwargs):
        if self.layer_attention is not None:
            func = self.layer_attention(kwargs.get("transformer_options") or {}) or func
        call = self.call
        if call is None:
            call = CURRENT_CALL.get()
            if call is IDLE:  # a checkpointed block recomputed during backward
                call = self.replay
        if call is None:  # outside the window: this attention call passes through unchanged
            return self._next(func, q, k, v, *rest, **kwargs)
        a = AttentionArgs(q, k, rest, kwargs)
        call.seen += 1
        kind, spans = call.layout.classify(a.n_queries, a.n_keys)
        if kind != JOINT:
            if kind == UNEXPECTED:
                call.unexpected += 1
                call.unexpected_shape = call.unexpected_shape or (a.n_queries, a.n_keys)
            return self._next(func, q, k, v, *rest, **kwargs)
        text_keys, text_queries = spans
        call.fired += 1
        return taca_split_attention(lambda q_, k_, v_, m_: a.call(self._next, func, q_, k_, v_, m_), q, k, v,
                                    text_keys=text_keys, text_queries=text_queries, gamma=call.gamma,
                                    token_dim=a.token_dim, out_token_dim=a.out_token_dim, mask=a.mask)
