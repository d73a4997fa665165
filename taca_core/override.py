"""TACA as a ComfyUI `optimized_attention_override`.

ComfyUI's attention functions (wrap_attn) hand every call to
transformer_options["optimized_attention_override"](func, q, k, v, heads, ...),
with `_inside_attn_wrapper` set in kwargs so that calling func again runs the
real attention. This module only follows that calling convention; it imports
nothing from ComfyUI.
"""
import contextvars
from dataclasses import dataclass
from typing import Optional

from .attention import taca_split_attention
from .layout import JOINT, UNEXPECTED, TokenLayout
from .probe import ProbeCall


@dataclass
class TacaCall:
    """One model call during which gamma acts (or the probe records), and what its attention calls looked like."""
    gamma: float
    layout: TokenLayout
    probe: Optional[ProbeCall] = None  # set while a TACA Attention Probe is on the model
    seen: int = 0        # attention calls that reached the override
    fired: int = 0       # joint attention calls TACA changed
    unexpected: int = 0  # attention calls skipped for their shape
    unexpected_shape: tuple = ()  # (queries, keys) of the first one


# The TacaCall of the model call this thread is running (None: gamma does not act in it). A context
# variable, not an attribute: per thread (multi-GPU work units), and guarded by torch.compile, which
# ComfyUI tells to ignore everything reached through transformer_options.
CURRENT_CALL = contextvars.ContextVar("taca_current_call", default=None)


class TacaAttentionOverride:
    """TACA on the joint attention calls, through the override it found (or ComfyUI's function).

    call: the TacaCall to apply; None (what the wrapper installs) reads CURRENT_CALL on every
    attention call and passes the call through unchanged when there is none.
    """

    def __init__(self, call: TacaCall = None, previous=None):
        self.call = call
        self.previous = previous

    def _next(self, func, *args, **kwargs):
        if self.previous is not None:
            return self.previous(func, *args, **kwargs)
        return func(*args, **kwargs)

    def __call__(self, func, q, k, v, *rest, **kwargs):
        # ComfyUI layouts: skip_reshape -> [B, H, L, D], else [B, L, H*D] (or [B, L, H, D]);
        # the output is [B, H, L, D] only with skip_output_reshape.
        call = self.call if self.call is not None else CURRENT_CALL.get()
        if call is None:  # outside the window: this attention call passes through unchanged
            return self._next(func, q, k, v, *rest, **kwargs)
        token_dim = 2 if kwargs.get("skip_reshape", False) else 1
        call.seen += 1
        kind, spans = call.layout.classify(q.shape[token_dim], k.shape[token_dim])
        if kind != JOINT:
            if kind == UNEXPECTED:
                call.unexpected += 1
                call.unexpected_shape = call.unexpected_shape or (q.shape[token_dim], k.shape[token_dim])
            return self._next(func, q, k, v, *rest, **kwargs)
        text_keys, text_queries = spans
        out_token_dim = 2 if kwargs.get("skip_output_reshape", False) else 1

        mask_is_positional = len(rest) >= 2  # (heads, mask, ...)
        mask = rest[1] if mask_is_positional else kwargs.get("mask")

        def attend(q_, k_, v_, mask_):
            if mask_is_positional:
                return self._next(func, q_, k_, v_, rest[0], mask_, *rest[2:], **kwargs)
            if mask_ is not None:
                return self._next(func, q_, k_, v_, *rest, **{**kwargs, "mask": mask_})
            return self._next(func, q_, k_, v_, *rest, **kwargs)

        if call.probe is not None:
            call.probe.record(*_bhld(q, k, rest[0] if rest else kwargs.get("heads"), token_dim),
                              text_keys, text_queries, _mask_4d(mask), kwargs.get("scale"))
        call.fired += 1
        return taca_split_attention(attend, q, k, v, text_keys=text_keys, text_queries=text_queries,
                                    gamma=call.gamma, token_dim=token_dim, out_token_dim=out_token_dim, mask=mask)


def _bhld(q, k, heads, token_dim):
    """q, k as [B, H, L, D] from ComfyUI's [B, H, L, D], [B, L, H*D] or [B, L, H, D]."""
    if token_dim == 2:
        return q, k
    return tuple(t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2) for t in (q, k))


def _mask_4d(mask):
    """ComfyUI's attention masks ([L, L], [B, L, L] or [B, H, L, L]) as SDPA broadcasts them."""
    if mask is None:
        return None
    return mask.reshape((1,) * (4 - mask.ndim) + tuple(mask.shape)) if mask.ndim < 4 else mask
