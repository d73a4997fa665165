"""TACA as a ComfyUI `optimized_attention_override`.

ComfyUI's attention functions (wrap_attn) hand every call to
transformer_options["optimized_attention_override"](func, q, k, v, heads, ...),
with `_inside_attn_wrapper` set in kwargs so that calling func again runs the
real attention. This module only follows that calling convention; it imports
nothing from ComfyUI.
"""
import contextvars
from dataclasses import dataclass

from .attention import taca_split_attention


@dataclass
class TacaCall:
    """One model call during which gamma acts."""
    gamma: float
    txt_len: int
    joint_len: int  # text + noisy-image tokens: shorter attention calls are not joint
    fired: int = 0  # joint attention calls TACA changed


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
        # ComfyUI layouts: skip_reshape -> [B, H, L, D], else [B, L, H*D];
        # the output is [B, H, L, D] only with skip_output_reshape.
        call = self.call if self.call is not None else CURRENT_CALL.get()
        token_dim = 2 if kwargs.get("skip_reshape", False) else 1
        n = q.shape[token_dim]
        if call is None or n < call.joint_len or k.shape[token_dim] != n:
            return self._next(func, q, k, v, *rest, **kwargs)
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
        return taca_split_attention(attend, q, k, v, txt_len=call.txt_len, gamma=call.gamma,
                                    token_dim=token_dim, out_token_dim=out_token_dim, mask=mask)
