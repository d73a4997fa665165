"""Attention probe: the image->text attention share, with and without gamma (the paper's Fig. 4).

The share of one image query is the softmax mass that falls on text keys. Attention with a value
vector that is 1 on text keys and 0 elsewhere returns exactly that per query, so one fused
attention call per variant measures it: no tokens x tokens matrix. Both variants use the same q
and k of the same call; the gamma variant scales the text keys as TACA does.
"""
import threading
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .attention import as_spans, scale_keys


def text_indicator(k: torch.Tensor, text_keys: tuple) -> torch.Tensor:
    """[..., keys, 1]: 1 on the text keys (one span or a tuple of spans), 0 elsewhere."""
    ind = torch.zeros(*k.shape[:-1], 1, dtype=k.dtype, device=k.device)
    for start, end in as_spans(text_keys):
        ind[..., start:end, :] = 1
    return ind


def image_text_share(q, k, text_keys: tuple, text_queries: tuple, gamma: float = 1.0, mask=None,
                     scale=None) -> float:
    """Mean over the image queries (batch and heads too) of the attention mass on the text keys.

    q: [B, H, queries, D]; k: [B, H, keys, D]; text_keys: (start, end) of the text in k, or a tuple of them;
    text_queries: (start, end) of the query rows that are not image queries (the text stream);
    mask: broadcastable to [B, H, queries, keys] (bool: True = attend, or additive).
    """
    return float(_share(q, k, text_keys, text_queries, gamma, mask, scale))


def _share(q, k, text_keys, text_queries, gamma, mask, scale) -> torch.Tensor:
    """image_text_share as a 0-d tensor on q's device: recording it needs no device sync."""
    if gamma != 1.0:
        k = scale_keys(k, text_keys, gamma, token_dim=-2)  # a copy: the caller's keys stay as they are
    share = F.scaled_dot_product_attention(q, k, text_indicator(k, text_keys), attn_mask=mask, scale=scale)
    t0, t1 = text_queries
    return torch.cat((share[..., :t0, 0], share[..., t1:, 0]), dim=-1).float().mean()


@dataclass
class ProbeBlock:
    index: int
    share_plain: torch.Tensor  # 0-d; read out (one device sync) only when the plot asks
    share_taca: torch.Tensor


@dataclass
class ProbeCall:
    """One model call: its sigma, the paper timestep, gamma, and one entry per joint attention call."""
    sigma: float
    timestep: float
    gamma: float
    blocks: list = field(default_factory=list)

    def record(self, q, k, text_keys, text_queries, mask=None, scale=None):
        """One joint attention call, on [B, H, tokens, D] tensors."""
        plain = _share(q, k, text_keys, text_queries, 1.0, mask, scale)
        taca = plain if self.gamma == 1.0 else _share(q, k, text_keys, text_queries, self.gamma, mask, scale)
        self.blocks.append(ProbeBlock(len(self.blocks), plain, taca))


class AttentionProbe:
    """Collects ProbeCalls over one sampling run. Model calls may run in threads (work units)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.calls = []

    def __deepcopy__(self, memo):
        # ComfyUI deep-copies model_options when it clones a model: every clone must record into
        # the one probe that the plot node reads.
        return self

    def start_run(self):
        with self._lock:
            self.calls = []

    def new_call(self, sigma: float, timestep: float, gamma: float) -> ProbeCall:
        call = ProbeCall(sigma, timestep, gamma)
        with self._lock:
            self.calls.append(call)
        return call

    def to_dict(self) -> dict:
        with self._lock:
            calls = [c for c in self.calls if c.blocks]
        return {"calls": [{"sigma": c.sigma, "timestep": c.timestep, "gamma": c.gamma,
                           "blocks": [{"index": b.index, "share_plain": float(b.share_plain),
                                       "share_taca": float(b.share_taca)}
                                      for b in c.blocks]} for c in calls]}
