"""TACA on the families of issue 8, part B (tiny models built with ComfyUI's own classes, sampled on CPU)."""
import collections

import pytest
import torch

from comfy_env import import_comfy

import_comfy()

from tiny_families_b import TINY, skip_unless_available  # noqa: E402


class CallRecorder:
    """An attention override that records (query tokens, key tokens) of every call and runs it unchanged."""

    def __init__(self):
        self.calls = collections.Counter()

    def __call__(self, func, q, k, v, *rest, **kwargs):
        token_dim = 2 if kwargs.get("skip_reshape", False) else 1
        self.calls[(q.shape[token_dim], k.shape[token_dim])] += 1
        return func(q, k, v, *rest, **kwargs)


def recorded(model):
    m = model.clone()
    recorder = CallRecorder()
    m.model_options["transformer_options"]["optimized_attention_override"] = recorder
    return m, recorder


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_family_samples(name):
    skip_unless_available(name)
    family = TINY[name]
    model, recorder = recorded(family.build(0))
    out = family.sample(model, 5, neg_txt=3, cfg=2.0, steps=2)
    assert out.shape == family.latent(1).shape
    assert torch.isfinite(out).all()
    if name == "ernie":
        # The basis of the refusal: ErnieImage never hands its attention to transformer_options.
        assert not recorder.calls
    else:
        assert recorder.calls, f"{name}: no attention call reached transformer_options"
