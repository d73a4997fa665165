"""TACA Attention Probe + TACA Probe Plot on tiny FLUX / SD3.5 models, against a dense computation."""
import json

import pytest
import torch

from support.comfy_env import import_comfy

import_comfy()

from support.tiny_models import make_conds, run_sample, tiny_flux, tiny_sd3  # noqa: E402

from comfyui_taca_under_test.nodes import taca_probe as probe_node  # noqa: E402
from support.reference import ShareRecorder, text_first, with_override  # noqa: E402
from support.taca import patch  # noqa: E402

IMG_TOKENS, TXT = 64, 12
MODELS = {"flux": (lambda: tiny_flux(seed=0), "flux"),
          "sd35": (lambda: tiny_sd3(seed=0, x_block_self_attn_layers=(0,), qk_norm="rms"), "sd3")}


def probe(model):
    return probe_node.TACAAttentionProbe.execute(model=model).result


def plot(probe_obj, samples, title=""):
    return probe_node.TACAProbePlot.execute(probe=probe_obj, samples=samples, title=title).result


def sample(model, kind, steps=3, cfg=1.0, neg_txt=None):
    pos, neg = make_conds(kind, TXT, neg_txt_len=neg_txt)
    return run_sample(model, pos, neg, steps=steps, cfg=cfg, latent_hw=(16, 16))


@pytest.fixture(scope="module", params=list(MODELS))
def case(request):
    build, kind = MODELS[request.param]
    return build(), kind


def test_plain_shares_equal_a_dense_computation(case):
    base, kind = case
    model, recorder = probe(patch(base, gamma=1.0, cutoff=970))
    reference = ShareRecorder(text_first(IMG_TOKENS))
    sample(with_override(model, reference), kind)  # as another node's override, which TACA chains through
    got = [b["share_plain"] for c in recorder.to_dict()["calls"] for b in c["blocks"]]
    assert len(got) == len(reference.shares) > 0
    torch.testing.assert_close(torch.tensor(got), torch.tensor(reference.shares), atol=1e-5, rtol=1e-5)


def test_gamma_raises_the_share_in_the_window_and_one_equals_plain(case):
    base, kind = case
    model, recorder = probe(patch(base, gamma=1.5, cutoff=970))
    sample(model, kind, steps=4)
    calls = recorder.to_dict()["calls"]
    assert len(calls) == 4 and [c["gamma"] for c in calls] == [1.5, 1.0, 1.0, 1.0]
    n_joint = {"flux": 4, "sd3": 2}[kind]  # FLUX: 2 double + 2 single blocks; SD3: 2 joint blocks
    assert all(len(c["blocks"]) == n_joint for c in calls)
    first = calls[0]["blocks"]
    assert all(b["share_taca"] > b["share_plain"] for b in first), first
    assert all(b["share_taca"] == b["share_plain"] for c in calls[1:] for b in c["blocks"])


def test_probe_does_not_change_the_sampled_output(case):
    base, kind = case
    patched = patch(base, gamma=1.5, cutoff=970)
    probed, _ = probe(patched)
    assert torch.equal(sample(probed, kind, cfg=3.0, neg_txt=7), sample(patched, kind, cfg=3.0, neg_txt=7))


def test_plot_node_returns_image_and_json(case):
    base, kind = case
    model, recorder = probe(patch(base, gamma=1.5, cutoff=970))
    out = sample(model, kind, steps=3, cfg=3.0, neg_txt=7)
    image, text = plot(recorder, {"samples": out}, "tiny")
    data = json.loads(text)
    assert image.shape == (1, 720, 1200, 3) and 0 <= image.min() and image.max() <= 1
    assert set(data) == {"calls"} and len(data["calls"]) == 6  # 3 steps x (cond, uncond: unequal lengths)
    call = data["calls"][0]
    assert set(call) == {"sigma", "timestep", "gamma", "blocks"}
    assert set(call["blocks"][0]) == {"index", "share_plain", "share_taca"}
    model2 = model.clone()
    sample(model2, kind, steps=2)  # a new run starts a new recording, also through a clone
    assert len(recorder.to_dict()["calls"]) == 2


def test_probe_without_taca_patch_says_what_to_add():
    model, _ = probe(tiny_flux(seed=0))
    with pytest.raises(ValueError, match="TACAAttentionProbe: this model has no TACA Model Patch"):
        sample(model, "flux")
