"""The one independent dense TACA the tests compare against; it knows nothing of taca_core.

It materialises the logits in float64, multiplies the image-query x text-key ones by gamma and takes
the softmax. As an attention override (`ReferenceTaca`) it needs to be told, per family, where the
text sits in a joint call (`Layout`, written by hand from each model's code); every other call runs
untouched.
"""
import collections
from dataclasses import dataclass, field
from typing import Callable

import torch


def _spans(spans):
    return [spans] if spans and isinstance(spans[0], int) else list(spans or [])


def _logits(q, k, text_keys, text_queries, gamma, mask):
    """float64 logits with gamma on image-query x text-key entries and the mask applied; the image rows;
    the text columns."""
    text_queries = text_keys if text_queries is None else text_queries
    if k.shape[1] != q.shape[1]:  # grouped KV heads
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
    logits = q.double() @ k.double().transpose(-1, -2) * q.shape[-1] ** -0.5
    image_rows = torch.ones(q.shape[2], dtype=torch.bool)
    for a, b in _spans(text_queries):
        image_rows[a:b] = False
    cols = torch.zeros(k.shape[2], dtype=torch.bool)
    for a, b in _spans(text_keys):
        cols[a:b] = True
    logits = torch.where(image_rows[:, None] & cols[None, :], logits * gamma, logits)
    if mask is not None:
        while mask.ndim < 4:  # as ComfyUI: [Lq, Lk] -> [1, Lq, Lk] -> [B, 1, Lq, Lk]
            mask = mask.unsqueeze(0) if mask.ndim == 2 else mask.unsqueeze(1)
        logits = logits.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else logits + mask.double()
    return logits, image_rows, cols


def dense_taca(q, k, v, *, text_keys, gamma, text_queries=None, mask=None):
    """q [B, H, Lq, D], k / v [B, H or fewer (GQA), Lk, D]; text_keys: (start, stop) key span(s);
    text_queries: (start, stop) query span(s) that keep their logits (text and register rows;
    default: text_keys, as in taca_core.taca_attention).
    mask: bool (True = keep) or additive, [Lq, Lk], [B, Lq, Lk] or broadcastable 4-D."""
    logits, _, _ = _logits(q, k, text_keys, text_queries, gamma, mask)
    if v.shape[1] != q.shape[1]:
        v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
    return (logits.softmax(-1) @ v.double()).to(q.dtype)


def text_share(q, k, *, text_keys, gamma=1.0, text_queries=None, mask=None):
    """What the probe measures: the attention mass image queries put on the text keys, averaged."""
    logits, image_rows, cols = _logits(q, k, text_keys, text_queries, gamma, mask)
    return float(logits.softmax(-1)[..., cols].sum(-1)[..., image_rows].mean())


@dataclass
class Layout:
    """Where the text sits in one family's joint calls.

    text(n_queries, n_keys) -> (start, stop) of the text keys (or a list of such spans), or None for a call
    that is not joint.
    The queries are the first n_queries keys, or the last (queries_at_end: a cached text prefix).
    Query rows inside the text span, and the `registers` rows just before it, keep their logits.
    joint_keys: the key counts of the joint calls a test expects (empty: not checked).
    """
    text: Callable
    registers: int = 0
    queries_at_end: bool = False
    joint_keys: frozenset = frozenset()

    def spans(self, nq, nk):
        cols = self.text(nq, nk)
        if cols is None:
            return None
        first = nk - nq if self.queries_at_end else 0
        rows = [(max(a - self.registers - first, 0), max(min(b, first + nq) - first, 0)) for a, b in _spans(cols)]
        return cols, rows[0] if len(rows) == 1 else rows


def text_first(visual, texts=None, registers=0):
    """[registers | text | visual]: joint calls have registers + t + visual keys for t in texts
    (texts None: any call with more keys than visual ones)."""
    keys = frozenset() if texts is None else frozenset(registers + t + visual for t in texts)
    return Layout(lambda nq, nk: (registers, nk - visual) if (nk in keys if keys else nk > visual) else None,
                  registers, joint_keys=keys)


def image_first(visual, texts):
    """[visual | text]: joint calls have visual + t keys for t in texts."""
    keys = frozenset(visual + t for t in texts)
    return Layout(lambda nq, nk: (visual, nk) if nk in keys else None, joint_keys=keys)


def _shape(q, k, kwargs):
    d = 2 if kwargs.get("skip_reshape", False) else 1
    return q.shape[d], k.shape[d]


@dataclass(eq=False)
class ReferenceTaca:
    """An optimized_attention_override running `dense_taca` on the joint calls of `layout`.

    gamma acts where 1000 * sigma >= cutoff (every family tested is a flow model, sigma_max = 1).
    calls counts the (queries, keys) of the joint calls it changed.
    """
    layout: Layout
    gamma: float
    cutoff: float = 0
    passthrough: object = None  # runs the calls it leaves alone (default: the function ComfyUI hands over)
    calls: collections.Counter = field(default_factory=collections.Counter)

    def __deepcopy__(self, memo):  # ComfyUI 0.8.x and older deep-copy model_options on clone: stay one object
        return self

    def __call__(self, func, q, k, v, *args, **kwargs):
        nq, nk = _shape(q, k, kwargs)
        spans = self.layout.spans(nq, nk)
        sigma = kwargs.get("transformer_options", {}).get("sigmas")
        active = self.cutoff <= 0 or (sigma is not None and bool((1000 * sigma.double() >= self.cutoff).all()))
        if spans is None or not active:
            return (self.passthrough or func)(q, k, v, *args, **kwargs)
        self.calls[(nq, nk)] += 1
        heads = args[0] if args else kwargs["heads"]
        mask = args[1] if len(args) >= 2 else kwargs.get("mask")
        if not kwargs.get("skip_reshape", False):  # [B, L, H*D] (SD3 hands v over as [B, L, H, D])
            q, k, v = (t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2) for t in (q, k, v))
        out = dense_taca(q, k, v, text_keys=spans[0], text_queries=spans[1], gamma=self.gamma, mask=mask)
        return out if kwargs.get("skip_output_reshape", False) else out.transpose(1, 2).flatten(2)


def _bhld(q, k, args, kwargs):
    if kwargs.get("skip_reshape", False):
        return q, k
    heads = args[0] if args else kwargs["heads"]
    return (t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2) for t in (q, k))


@dataclass(eq=False)
class ShareRecorder:
    """An override recording `text_share` of every joint call of `layout` (whole calls only), unchanged."""
    layout: Layout
    shares: list = field(default_factory=list)

    def __deepcopy__(self, memo):  # see ReferenceTaca
        return self

    def __call__(self, func, q, k, v, *args, **kwargs):
        spans = self.layout.spans(*_shape(q, k, kwargs))
        if spans is not None and _shape(q, k, kwargs)[0] == _shape(q, k, kwargs)[1]:
            self.shares.append(text_share(*_bhld(q, k, args, kwargs), text_keys=spans[0], text_queries=spans[1]))
        return func(q, k, v, *args, **kwargs)


@dataclass(eq=False)
class CallCounter:
    """A plain override that counts the (queries, keys) of the calls reaching it and runs them unchanged."""
    calls: collections.Counter = field(default_factory=collections.Counter)

    def __deepcopy__(self, memo):  # see ReferenceTaca
        return self

    def __call__(self, func, q, k, v, *args, **kwargs):
        self.calls[_shape(q, k, kwargs)] += 1
        return func(q, k, v, *args, **kwargs)


def with_override(model, override):
    """A clone of `model` with `override` as its optimized_attention_override."""
    m = model.clone()
    m.model_options["transformer_options"]["optimized_attention_override"] = override
    return m
