"""TACA Model Patch on tiny FLUX / SD3 / SD3.5 models built with ComfyUI's own classes, sampled on CPU."""
import copy
import importlib
import inspect
import logging
import math

import pytest
import torch

from comfy_env import import_comfy

import_comfy()

import comfy.samplers  # noqa: E402

from pack import load_pack  # noqa: E402
from tiny_models import make_conds, run_sample, tiny_flux, tiny_sd3, tiny_sdxl  # noqa: E402

patch_module = importlib.import_module(load_pack().__name__ + ".nodes.taca_model_patch")
TACAModelPatch = patch_module.TACAModelPatch
LATENT_HW = (16, 16)  # 8 x 8 = 64 image tokens at patch size 2
IMG_TOKENS = 64
TXT = 12

MODELS = {
    "flux": lambda: tiny_flux(seed=0),
    "sd3": lambda: tiny_sd3(seed=0),
    "sd35": lambda: tiny_sd3(seed=0, x_block_self_attn_layers=(0,), qk_norm="rms"),
}
KIND = {"flux": "flux", "sd3": "sd3", "sd35": "sd3"}


def patch(model, gamma=1.2, cutoff=970):
    return TACAModelPatch.execute(model=model, gamma=gamma, timestep_cutoff=cutoff).result[0]


def dense_reference_override(gamma, cutoff, calls, visual_tokens=IMG_TOKENS):
    """An independent TACA: dense logits, text length derived from each call's own token count.

    A joint call has more tokens than the visual ones alone (noisy image, plus any FLUX Kontext
    reference); gamma acts when 1000 * sigma >= cutoff (both families are flow models, sigma_max = 1).
    """
    def override(func, q, k, v, *args, **kwargs):
        sigma = kwargs["transformer_options"]["sigmas"]
        bhld = kwargs.get("skip_reshape", False)
        heads = args[0] if args else kwargs["heads"]
        n = q.shape[2 if bhld else 1]
        if n <= visual_tokens or not bool((1000 * sigma.double() >= cutoff).all()):
            return func(q, k, v, *args, **kwargs)
        calls.append(n)
        if not bhld:
            # [B, L, H*D] (SD3 hands v over as [B, L, H, D])
            q, k, v = (t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2) for t in (q, k, v))
        logits = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
        txt = n - visual_tokens
        logits[..., txt:, :txt] *= gamma
        mask = kwargs.get("mask")
        if mask is not None:
            logits = logits + (mask.unsqueeze(1) if mask.ndim == 3 else mask)
        out = logits.softmax(-1) @ v
        return out.transpose(1, 2).flatten(2)
    return override


def with_override(model, override):
    m = model.clone()
    m.model_options["transformer_options"]["optimized_attention_override"] = override
    return m


def sigmas_of(model, steps, scheduler="simple"):
    return comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), scheduler, steps)


def cutoff_between_steps(model, steps, n_active):
    """A cutoff with exactly n_active of the steps at or above it."""
    t = (1000 * sigmas_of(model, steps)[:steps].double()).tolist()
    return math.floor((t[n_active - 1] + t[n_active]) / 2)


@pytest.fixture(scope="module", params=list(MODELS))
def family(request):
    return request.param


@pytest.fixture(scope="module")
def base(family):
    return MODELS[family]()


def sample(model, family, *, txt=TXT, neg_txt=None, cfg=1.0, batch=1, steps=4, seed=0, positive=None,
           denoise=1.0):
    pos, neg = make_conds(KIND[family], txt, batch=batch, seed=seed, neg_txt_len=neg_txt)
    return run_sample(model, positive or pos, neg, steps=steps, cfg=cfg, seed=seed, latent_hw=LATENT_HW,
                      batch=batch, denoise=denoise)


def test_equals_dense_reference_when_every_step_acts(base, family):
    calls = []
    got = sample(patch(base, 1.5, cutoff=0), family)
    ref = sample(with_override(base, dense_reference_override(1.5, 0, calls)), family)
    plain = sample(base, family)
    assert calls, "the reference never saw a joint call"
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    assert (got - plain).abs().max() > 1e-3, "TACA had no visible effect"


def test_only_steps_at_or_above_cutoff_act(base, family):
    cutoff = cutoff_between_steps(base, 4, n_active=2)
    calls = []
    got = sample(patch(base, 1.5, cutoff), family)
    ref = sample(with_override(base, dense_reference_override(1.5, cutoff, calls)), family)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    all_steps = sample(patch(base, 1.5, cutoff=0), family)
    assert (got - all_steps).abs().max() > 1e-4  # the later steps really were left alone


def test_gamma_one_and_steps_below_cutoff_are_bit_identical(base, family):
    plain = sample(base, family)
    assert torch.equal(sample(patch(base, gamma=1.0, cutoff=0), family), plain)
    # denoise 0.8: every step starts below sigma 0.99, so a cutoff of 990 never acts
    partial = sample(base, family, denoise=0.8)
    assert not torch.equal(sample(patch(base, gamma=2.0, cutoff=0), family, denoise=0.8), partial)
    assert torch.equal(sample(patch(base, gamma=2.0, cutoff=990), family, denoise=0.8), partial)


def test_source_model_untouched(base, family):
    before_sd = {k: v.clone() for k, v in base.model.state_dict().items()}
    before_options = copy.deepcopy(base.model_options)
    before_out = sample(base, family)
    sibling = base.clone()
    patched = patch(base, 2.0, cutoff=0)
    sample(patched, family)
    assert base.model_options == before_options and not base.get_all_wrappers("apply_model")
    assert sibling.model_options == before_options and not sibling.get_all_wrappers("apply_model")
    assert all(torch.equal(before_sd[k], v) for k, v in base.model.state_dict().items())
    assert torch.equal(sample(base, family), before_out)
    assert torch.equal(sample(sibling, family), before_out)


def test_cond_and_uncond_with_cfg_and_different_text_lengths(base, family):
    calls = []
    got = sample(patch(base, 1.4, cutoff=0), family, cfg=3.0, neg_txt=7)
    ref = sample(with_override(base, dense_reference_override(1.4, 0, calls)), family, cfg=3.0, neg_txt=7)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


def test_batch_of_two(base, family):
    got = sample(patch(base, 1.4, cutoff=0), family, batch=2)
    ref = sample(with_override(base, dense_reference_override(1.4, 0, [])), family, batch=2)
    assert got.shape[0] == 2
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


def test_chains_through_an_existing_attention_override(base, family):
    seen = []

    def other_override(func, *args, **kwargs):  # e.g. a Sage/Flash attention node
        seen.append(args[0].shape)
        return func(*args, **kwargs)

    got = sample(patch(with_override(base, other_override), 1.5, cutoff=0), family)
    torch.testing.assert_close(got, sample(patch(base, 1.5, cutoff=0), family), atol=1e-5, rtol=1e-5)
    token_dim = 2 if family == "flux" else 1
    lengths = {s[token_dim] for s in seen}
    assert TXT in lengths and IMG_TOKENS in lengths, "TACA's text and image halves went through the other override"


def test_two_patches_in_a_row_apply_gamma_once_last_wins(base, family):
    twice = patch(patch(base, 2.5, cutoff=0), 1.3, cutoff=0)
    torch.testing.assert_close(sample(twice, family), sample(patch(base, 1.3, cutoff=0), family), atol=0, rtol=0)


def test_flux_attention_mask():
    base = MODELS["flux"]()
    n = TXT + IMG_TOKENS
    g = torch.Generator().manual_seed(3)
    mask = torch.where(torch.rand(1, n, n, generator=g) > 0.2, 0.0, -1e4)
    mask = mask.masked_fill(torch.eye(n, dtype=torch.bool), 0.0)
    pos, neg = make_conds("flux", TXT)
    pos[0][1].update(attention_mask=mask, attention_mask_img_shape=(8, 8))
    calls = []
    got = sample(patch(base, 1.5, cutoff=0), "flux", positive=pos)
    ref = sample(with_override(base, dense_reference_override(1.5, 0, calls)), "flux", positive=pos)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    unmasked = sample(patch(base, 1.5, cutoff=0), "flux")
    assert (got - unmasked).abs().max() > 1e-3, "the mask reached attention"


def test_flux_kontext_reference_tokens_are_image_queries():
    """Kontext appends reference-image tokens after the noisy image; they query the text like image tokens."""
    base = MODELS["flux"]()
    pos, neg = make_conds("flux", TXT)
    pos[0][1]["reference_latents"] = [torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(5))]
    calls = []
    got = sample(patch(base, 1.5, cutoff=0), "flux", positive=pos)
    ref = sample(with_override(base, dense_reference_override(1.5, 0, calls, visual_tokens=2 * IMG_TOKENS)),
                 "flux", positive=pos)
    assert calls and all(n == TXT + 2 * IMG_TOKENS for n in calls), "the reference latent reached attention"
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family,image_only_calls", [("sd3", False), ("sd35", True)])
def test_sd35_image_only_self_attention_left_alone(family, image_only_calls):
    seen = set()

    def recorder(func, q, k, v, *args, **kwargs):  # sees what TACA hands on, as (query, key) lengths
        seen.add((q.shape[1], k.shape[1]))
        return func(q, k, v, *args, **kwargs)

    sample(patch(with_override(MODELS[family](), recorder), 1.5, cutoff=0), family)
    joint = TXT + IMG_TOKENS
    expected = {(TXT, joint), (IMG_TOKENS, joint)} | ({(IMG_TOKENS, IMG_TOKENS)} if image_only_calls else set())
    assert seen == expected


def test_non_mmdit_model_gets_a_clear_error():
    with pytest.raises(ValueError, match=r"TACAModelPatch: this model is SDXL .*Supported: FLUX"):
        patch(tiny_sdxl())


@pytest.mark.parametrize("gamma,cutoff", [(0.5, 970), (1.2, 2000)])
def test_out_of_range_values_name_the_node(gamma, cutoff):
    with pytest.raises(ValueError, match="TACAModelPatch: .* must be in"):
        patch(MODELS["sd3"](), gamma, cutoff)


def test_warns_when_the_override_never_fires(caplog):
    """A node that replaces the forward code (TeaCache-style) and drops transformer_options."""
    base = MODELS["flux"]()
    dm = base.model.diffusion_model
    original = dm.forward_orig

    def forward_without_options(*args, **kwargs):
        # bound by name: forward_orig's positional order changes across releases
        # (0.17 put timestep_zero_index where transformer_options was)
        bound = inspect.signature(original).bind(*args, **kwargs)
        bound.arguments["transformer_options"] = {}
        return original(*bound.args, **bound.kwargs)

    cached = base.clone()
    cached.add_object_patch("diffusion_model.forward_orig", forward_without_options)
    with caplog.at_level(logging.WARNING):
        sample(patch(cached, 1.5, cutoff=0), "flux")
    assert any("no attention call reached TACA at all" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        sample(patch(base, 1.5, cutoff=0), "flux")
    assert not any("TACA" in r.getMessage() for r in caplog.records)


def test_second_run_behaves_like_the_first(base, family):
    patched = patch(base, 1.5, cutoff=0)
    first = sample(patched, family, seed=1)
    sample(patched, family, seed=2, txt=5)
    assert torch.equal(sample(patched, family, seed=1), first)


@pytest.mark.parametrize("node", ["TACAModelPatch", "TACALoraLoader"])
@pytest.mark.parametrize("module,cls,what", [
    ("ComfyUI-nunchaku.wrappers.flux", "ComfyFluxWrapper", "FLUX.1"),
    ("comfyui-nunchaku.models.qwenimage", "NunchakuQwenImageTransformer2DModel", "Qwen-Image"),
])
def test_nunchaku_models_are_refused_at_both_nodes(node, module, cls, what):
    """Nunchaku's loaders put their own transformer (own attention kernels) in model.diffusion_model."""
    model = MODELS["flux"]()
    model.model.diffusion_model = type(cls, (torch.nn.Module,), {"__module__": module})()  # a stand-in
    lora_node = importlib.import_module(load_pack().__name__ + ".nodes.taca_lora_loader")
    run = {"TACAModelPatch": lambda: patch(model),
           "TACALoraLoader": lambda: lora_node.TACALoraLoader.execute(model=model, lora_name="any.safetensors",
                                                                      strength=1.0, active=lora_node.WHILE_TACA_ACTS)}
    with pytest.raises(ValueError, match=rf"^{node}: this is a Nunchaku \(SVDQuant\) {what} model\. .*own attention "
                                         r"kernels.*silently do nothing"):
        run[node]()
