"""TACA Model Patch as a node, on tiny FLUX / SD3 / SD3.5 models: its window, isolation, chaining, errors.

That it equals the dense reference on every family (CFG, batch 2, gamma 1, masks) is test_families'."""
import copy
import inspect
import logging

import pytest
import torch

from support.comfy_env import import_comfy

import_comfy()

from support.reference import ReferenceTaca, text_first, with_override  # noqa: E402
from support.taca import patch, taca_lora  # noqa: E402
from support.tiny_models import (cutoff_between_steps, make_conds, run_sample, tiny_flux, tiny_sd3,  # noqa: E402
                                 tiny_sdxl)

LATENT_HW = (16, 16)  # 8 x 8 = 64 image tokens at patch size 2
IMG_TOKENS = 64
TXT = 12

MODELS = {
    "flux": lambda: tiny_flux(seed=0),
    "sd3": lambda: tiny_sd3(seed=0),
    "sd35": lambda: tiny_sd3(seed=0, x_block_self_attn_layers=(0,), qk_norm="rms"),
}
KIND = {"flux": "flux", "sd3": "sd3", "sd35": "sd3"}


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


def test_only_steps_at_or_above_cutoff_act(base, family):
    cutoff = cutoff_between_steps(base, 4, 2)
    got = sample(patch(base, 1.5, cutoff), family)
    ref = sample(with_override(base, ReferenceTaca(text_first(IMG_TOKENS), 1.5, cutoff)), family)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    all_steps = sample(patch(base, 1.5, cutoff=0), family)
    assert (got - all_steps).abs().max() > 1e-4  # the later steps really were left alone


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
    run = {"TACAModelPatch": lambda: patch(model), "TACALoraLoader": lambda: taca_lora(model, "any.safetensors")}
    with pytest.raises(ValueError, match=rf"^{node}: this is a Nunchaku \(SVDQuant\) {what} model\. .*own attention "
                                         r"kernels.*silently do nothing"):
        run[node]()
