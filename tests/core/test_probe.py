"""The attention probe against a dense computation of the same quantity."""
import json

import pytest
import torch

from comfyui_taca_under_test.taca_core.probe import AttentionProbe, image_text_share
from comfyui_taca_under_test.taca_core.probe_plot import render_probe_plot, steps_of
from support.reference import text_share


def qk(b=2, h=3, nq=28, nk=28, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, h, nq, d, generator=g), torch.randn(b, h, nk, d, generator=g)


# text first, last, after registers; and a KV-cached call (fewer queries than keys)
@pytest.mark.parametrize("text_keys,text_queries,nq", [((0, 8), (0, 8), 28), ((20, 28), (20, 28), 28),
                                                       ((3, 11), (0, 11), 28), ((0, 8), (0, 8), 20)])
@pytest.mark.parametrize("gamma", [1.0, 1.2, 2.0])
def test_share_equals_dense(text_keys, text_queries, nq, gamma):
    q, k = qk(nq=nq)
    assert image_text_share(q, k, text_keys, text_queries, gamma) == pytest.approx(
        text_share(q, k, text_keys=text_keys, text_queries=text_queries, gamma=gamma), abs=1e-5)


def test_share_respects_masks():
    q, k = qk(seed=1)
    mask = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2)) > 0.3
    mask[..., 10] = True  # every row attends somewhere
    got = image_text_share(q, k, (0, 8), (0, 8), 1.5, mask=mask)
    assert got == pytest.approx(text_share(q, k, text_keys=(0, 8), gamma=1.5, mask=mask), abs=1e-5)
    assert got != pytest.approx(image_text_share(q, k, (0, 8), (0, 8), 1.5), abs=1e-3)


def test_gamma_raises_the_share_and_keys_are_not_modified():
    q, k = qk(seed=3)
    k_before = k.clone()
    plain, taca = image_text_share(q, k, (0, 8), (0, 8)), image_text_share(q, k, (0, 8), (0, 8), 1.5)
    assert torch.equal(k, k_before)
    assert taca != plain  # gamma > 1 sharpens the image->text logits, moving mass


def test_probe_records_blocks_and_json_shape():
    probe = AttentionProbe()
    q, k = qk(nq=28)
    for sigma, gamma in ((1.0, 1.5), (0.5, 1.0)):
        call = probe.new_call(sigma, 1000 * sigma, gamma)
        for _ in range(3):
            call.record(q, k, (0, 8), (0, 8))
    probe.new_call(0.2, 200.0, 1.0)  # a call with no joint attention is not reported
    data = json.loads(json.dumps(probe.to_dict()))
    assert [c["sigma"] for c in data["calls"]] == [1.0, 0.5]
    first, second = data["calls"]
    assert [b["index"] for b in first["blocks"]] == [0, 1, 2]
    assert first["blocks"][0]["share_taca"] == pytest.approx(text_share(q, k, text_keys=(0, 8), gamma=1.5), abs=1e-5)
    assert all(b["share_taca"] == b["share_plain"] for b in second["blocks"])
    probe.start_run()
    assert probe.to_dict() == {"calls": []}


def test_plot_groups_cond_and_uncond_by_step_and_draws():
    call = lambda sigma, gamma, shares: {"sigma": sigma, "timestep": 1000 * sigma, "gamma": gamma,  # noqa: E731
                                         "blocks": [{"index": i, "share_plain": p, "share_taca": t}
                                                    for i, (p, t) in enumerate(shares)]}
    data = {"calls": [call(0.5, 1.0, [(0.1, 0.1)] * 4), call(1.0, 1.2, [(0.1, 0.3)] * 4),
                      call(1.0, 1.2, [(0.2, 0.5)] * 4)]}
    steps = steps_of(data)
    assert [s[0] for s in steps] == [1.0, 0.5]
    assert steps[0][2][0] == pytest.approx((0.15, 0.4))
    img = render_probe_plot(data, "tiny")
    assert img.size == (1200, 720) and len(img.getcolors(maxcolors=1 << 20)) > 20
    assert render_probe_plot({"calls": []}).size == (1200, 720)


def test_clones_share_one_probe():
    import copy
    probe = AttentionProbe()
    assert copy.deepcopy({"taca_probe": probe})["taca_probe"] is probe
