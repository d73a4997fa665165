"""TACA and the other users of ComfyUI's attention-override slot, in both node orders.

ComfyUI's ModelAttentionBackend node (0.32+) and ModelPatcher.set_model_optimized_attention put
their attention function into transformer_options["optimized_attention_override"], the slot TACA
uses too. Either order, TACA must run both of its attention halves through that function, and the
result must be TACA's.
"""

import pytest
import torch

from support.comfy_env import import_comfy

env = import_comfy()

import comfy.ldm.modules.attention as attention  # noqa: E402
import comfy.model_patcher  # noqa: E402

from support.tiny_models import make_conds, run_sample, tiny_flux  # noqa: E402

from support.taca import patch  # noqa: E402

TXT, IMG = 9, 64  # text tokens; 8 x 8 image patches


def sample(model):
    pos, neg = make_conds("flux", TXT)
    return run_sample(model, pos, neg, steps=2)


def spy_on(func, seen):
    """func, recording the (query, key) token counts of every call (FLUX hands [B, H, L, D])."""
    def spy(q, k, v, *args, **kwargs):
        seen.add((q.shape[2], k.shape[2]))
        return func(q, k, v, *args, **kwargs)
    return spy


ORDERS = ("backend -> TACA", "TACA -> backend")


def check_chained(backend):
    """backend(model, order) -> a clone with a spying backend. Both orders: TACA's two halves
    reached the backend, and the result is TACA's."""
    base = tiny_flux()
    reference = sample(patch(base))
    seen = {order: set() for order in ORDERS}
    models = {ORDERS[0]: patch(backend(base, seen[ORDERS[0]])), ORDERS[1]: backend(patch(base), seen[ORDERS[1]])}
    for order, model in models.items():
        torch.testing.assert_close(sample(model), reference, atol=1e-4, rtol=1e-4, msg=lambda m: f"{order}: {m}")
        assert {(TXT, TXT + IMG), (IMG, TXT + IMG)} <= seen[order], \
            f"{order}: TACA's halves missed the backend: {seen[order]}"
    assert (reference - sample(base)).abs().max() > 1e-3, "TACA acts"


def test_model_attention_backend_node_in_both_orders(monkeypatch):
    try:
        from comfy_extras.nodes_model_advanced import ModelAttentionBackend
    except ImportError:
        pytest.skip(f"ComfyUI {env.version} has no ModelAttentionBackend node (added in 0.32)")

    def backend(model, seen):
        # the node looks its function up by name when it runs: a spy that calls ComfyUI's own function
        monkeypatch.setitem(attention.REGISTERED_ATTENTION_FUNCTIONS, "pytorch",
                            spy_on(attention.attention_pytorch, seen))
        return ModelAttentionBackend().patch(model, "pytorch attention")[0]

    check_chained(backend)


def test_set_model_optimized_attention_in_both_orders():
    if not hasattr(comfy.model_patcher.ModelPatcher, "set_model_optimized_attention"):
        pytest.skip(f"ComfyUI {env.version} has no ModelPatcher.set_model_optimized_attention")

    def backend(model, seen):
        m = model.clone()
        m.set_model_optimized_attention(spy_on(attention.attention_pytorch, seen))
        return m

    check_chained(backend)


def test_an_override_set_after_taca_is_chained_too():
    """Any release: a node after TACA that sets the override slot (Sage/Flash attention nodes do)."""

    def backend(model, seen):
        m = model.clone()
        spy = spy_on(attention.attention_pytorch, seen)
        m.model_options["transformer_options"]["optimized_attention_override"] = lambda func, *a, **k: spy(*a, **k)
        return m

    check_chained(backend)
