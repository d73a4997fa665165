"""Reference images and KV-cached calls: their tokens are image queries, against the dense reference.

Qwen-Image-Edit, FLUX.2 and Krea 2 append reference-image tokens after the noisy image; ComfyUI's
FluxKVCache node (FLUX Kontext / FLUX.2, Qwen-Image-Edit) then drops them from the queries after the
first step and appends their cached keys instead, so those calls have fewer queries than keys.
FLUX.1 Kontext's reference tokens are covered in test_taca_model_patch.
"""
import importlib

import pytest
import torch

from comfy_env import import_comfy

import_comfy()

import tiny_families as tf  # noqa: E402
from family_reference import Joint, dense_reference_override, with_override  # noqa: E402
from pack import load_pack  # noqa: E402
from tiny_models import make_conds, run_sample, tiny_flux  # noqa: E402

TACAModelPatch = importlib.import_module(load_pack().__name__ + ".nodes.taca_model_patch").TACAModelPatch
TXT = 7


def patch(model, gamma=1.5, cutoff=0):
    return TACAModelPatch.execute(model=model, gamma=gamma, timestep_cutoff=cutoff).result[0]


def kv_cache(model):
    try:
        nodes_flux = importlib.import_module("comfy_extras.nodes_flux")
    except ImportError as e:
        pytest.skip(f"comfy_extras.nodes_flux does not import here: {e}")
    if not hasattr(nodes_flux, "FluxKVCache"):
        pytest.skip("this ComfyUI release has no FluxKVCache node")
    return nodes_flux.FluxKVCache.execute(model).result[0]


def ctx_conds(dim, ref=None, pooled=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    extra = {"pooled_output": torch.randn(1, 16, generator=g)} if pooled else {}
    if ref is not None:
        extra["reference_latents"] = [ref]
    return [[torch.randn(1, TXT, dim, generator=g), extra]]


def ref_latent(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(5))


# name: (build, latent_hw, positive conds, visual tokens with the reference, text tokens)
CASES = {
    "qwen_image_edit": lambda: (tf.tiny_qwen_image(), (8, 8), ctx_conds(tf.CTX, ref_latent(1, 16, 1, 8, 8)), 32, TXT),
    "flux2": lambda: (tf.tiny_flux2(), (4, 4), ctx_conds(tf.CTX, ref_latent(1, 128, 4, 4), pooled=True), 32, 512),
    "krea2_index": lambda: (tf.tiny_krea2(default_ref_method="index"), (8, 8),
                            ctx_conds(2 * tf.CTX, ref_latent(1, 16, 1, 8, 8)), 32, TXT),
    # without a reference method Krea 2 ignores reference latents: they are no tokens at all
    "krea2_no_method": lambda: (tf.tiny_krea2(), (8, 8), ctx_conds(2 * tf.CTX, ref_latent(1, 16, 1, 8, 8)), 16, TXT),
    "flux_kontext": lambda: (tiny_flux(), (8, 8), _flux_conds(ref_latent(1, 16, 8, 8)), 32, TXT),
}


def _flux_conds(ref):
    pos, _ = make_conds("flux", TXT)
    pos[0][1]["reference_latents"] = [ref]
    return pos


def _sample(model, hw, pos, steps=3):
    neg = [[pos[0][0] * 0, dict(pos[0][1])]]
    return run_sample(model, pos, neg, steps=steps, cfg=1.0, latent_hw=hw)


@pytest.mark.parametrize("case", list(CASES))
def test_reference_tokens_are_image_queries(case):
    model, hw, pos, visual, text = CASES[case]()
    calls = []
    got = _sample(patch(model), hw, pos)
    ref = _sample(with_override(model, dense_reference_override(1.5, 0, Joint(visual, [text]), calls)), hw, pos)
    assert calls and all(k == text + visual for _, k in calls)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    assert (got - _sample(model, hw, pos)).abs().max() > 1e-3


# (FLUX.1 Kontext is left out: ComfyUI 0.33.0's FluxKVCache fails on it without TACA too, in the
# per-block modulation of its index_timestep_zero reference method)
@pytest.mark.parametrize("case", ["flux2", "qwen_image_edit"])
def test_kv_cached_calls_get_taca_on_their_image_queries(case):
    model, hw, pos, visual, text = CASES[case]()
    noisy = visual // 2  # one reference as large as the noisy latent
    calls = []
    got = _sample(patch(kv_cache(model)), hw, pos)
    ref = _sample(with_override(kv_cache(model), dense_reference_override(1.5, 0, Joint(visual, [text]), calls)),
                  hw, pos)
    full, cached = (text + visual, text + visual), (text + noisy, text + visual)
    assert full in calls and cached in calls, f"no KV-cached call reached attention: {set(calls)}"
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    plain = _sample(kv_cache(model), hw, pos)
    assert (got - plain).abs().max() > 1e-3


def test_z_image_omni_references_siglip_and_captions():
    """Z-Image omni: [captions | SigLIP | reference latent | noisy latent], each part padded to 32 tokens.

    Captions: the reference's 5 tokens -> 32, the prompt's 7 -> 32. Visual: the reference's 4 SigLIP
    tokens -> 32, its 16 latent tokens -> 32, 32 SigLIP pad tokens for the noisy image, its 16 -> 32.
    """
    from types import SimpleNamespace
    model = tf.tiny_z_image(omni=True)
    g = torch.Generator().manual_seed(3)
    pos = ctx_conds(tf.CTX, ref_latent(1, 16, 8, 8))
    pos[0][1]["reference_latents_text_embeds"] = [torch.randn(1, 5, tf.CTX, generator=g)]
    pos[0][1]["clip_vision_outputs"] = [SimpleNamespace(image_sizes=[(3, 32, 32)],
                                                        last_hidden_state=torch.randn(1, 4, 24, generator=g))]
    calls = []
    got = _sample(patch(model), (8, 8), pos)
    ref = _sample(with_override(model, dense_reference_override(1.5, 0, Joint(128, [64]), calls)), (8, 8), pos)
    assert calls and all(k == 192 for _, k in calls)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
