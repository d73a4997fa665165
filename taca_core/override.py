"""TACA as a ComfyUI `optimized_attention_override`.

ComfyUI's attention functions (wrap_attn) hand every call to
transformer_options["optimized_attention_override"](func, q, k, v, heads, ...),
with `_inside_attn_wrapper` set in kwargs so that calling func again runs the
real attention. This module only follows that calling convention; it imports
nothing from ComfyUI.
"""
from dataclasses import dataclass

from .attention import taca_split_attention
from .layout import JOINT, UNEXPECTED, TokenLayout


@dataclass
class TacaCall:
    """One model call during which gamma acts, and what its attention calls looked like."""
    gamma: float
    layout: TokenLayout
    seen: int = 0        # attention calls that reached the override
    fired: int = 0       # joint attention calls TACA changed
    unexpected: int = 0  # attention calls skipped for their shape
    unexpected_shape: tuple = ()  # (queries, keys) of the first one


class TacaAttentionOverride:
    """TACA on the joint attention calls, through the override it found (or ComfyUI's function)."""

    def __init__(self, call: TacaCall, previous=None):
        self.call = call
        self.previous = previous

    def _next(self, func, *args, **kwargs):
        if self.previous is not None:
            return self.previous(func, *args, **kwargs)
        return func(*args, **kwargs)

    def __call__(self, func, q, k, v, *rest, **kwargs):
        # ComfyUI layouts: skip_reshape -> [B, H, L, D], else [B, L, H*D] (or [B, L, H, D]);
        # the output is [B, H, L, D] only with skip_output_reshape.
        token_dim = 2 if kwargs.get("skip_reshape", False) else 1
        call = self.call
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

        call.fired += 1
        return taca_split_attention(attend, q, k, v, text_keys=text_keys, text_queries=text_queries,
                                    gamma=call.gamma, token_dim=token_dim, out_token_dim=out_token_dim, mask=mask)
