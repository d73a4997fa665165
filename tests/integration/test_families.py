"""TACA Model Patch on every supported joint-attention family, against an independent dense reference.

Each family is a tiny model built with ComfyUI's own classes (tiny_families) and sampled with
comfy.sample.sample. What a joint call looks like (visual tokens, text as the model pads it,
registers) is written out by hand below from each model's code; a family this ComfyUI release
lacks skips with a reason.
"""
import importlib
from types import SimpleNamespace
from dataclasses import dataclass
from typing import Callable

import pytest
import torch

from comfy_env import import_comfy

import_comfy()

import comfy.samplers  # noqa: E402

import tiny_families as tf  # noqa: E402
from family_reference import Joint, dense_reference_override, shape_recorder, with_override  # noqa: E402
from pack import load_pack  # noqa: E402
from tiny_models import run_sample  # noqa: E402

_pack = load_pack().__name__
TACAModelPatch = importlib.import_module(_pack + ".nodes.taca_model_patch").TACAModelPatch
schedule = importlib.import_module(_pack + ".taca_core.schedule")
TXT, NEG_TXT = 7, 4
BYT5 = 5  # glyph tokens in the HunyuanImage 2.1 / HunyuanVideo 1.5 tests
STEPS = 3


def pad32(n):
    return -(-n // 32) * 32


@dataclass
class Spec:
    build: Callable
    latent_hw: tuple           # latent pixels
    visual: int                # visual tokens of a joint call (padding included)
    text: Callable = lambda t: t  # text tokens the model puts into attention for a prompt of t tokens
    registers: int = 0
    ctx_dim: int = tf.CTX
    extra: Callable = lambda g, length: {}  # cond extras for a prompt of `length` tokens
    untouched: Callable = lambda t: set()  # (queries, keys) of the family's non-joint calls for a prompt of t


def _hunyuan_extra(byt5=False, vision=0):
    def extra(g, length):
        out = {"pooled_output": torch.randn(1, 16, generator=g)}
        if byt5:
            out["conditioning_byt5small"] = torch.randn(1, BYT5, 1472, generator=g)
        if vision:  # what CLIPVisionEncode hands over (SigLIP)
            out["clip_vision_output"] = SimpleNamespace(last_hidden_state=torch.randn(1, vision, 24, generator=g))
        return out
    return extra


def _pooled(g, length):  # the FLUX model class of older releases reads pooled_output even where the model ignores it
    return {"pooled_output": torch.randn(1, 16, generator=g)}


def _text_mask(g, length):  # what Lumina 2's text encoder hands over; older releases need it (num_tokens)
    return {"attention_mask": torch.ones(1, length, dtype=torch.long)}


SPECS = {
    "qwen_image": Spec(tf.tiny_qwen_image, (8, 8), 16),
    "mage_flow": Spec(tf.tiny_mage_flow, (4, 4), 16),
    # Lumina 2 / Z-Image: the caption refiner (text only) and the noise refiner (image only) are not joint
    "lumina2": Spec(tf.tiny_lumina2, (8, 8), 16, untouched=lambda t: {(t, t), (16, 16)}, extra=_text_mask),
    "z_image": Spec(tf.tiny_z_image, (8, 8), 32, text=pad32, untouched=lambda t: {(32, 32)}),
    "z_image_pixel": Spec(tf.tiny_z_image_pixel, (16, 16), 32, text=pad32, untouched=lambda t: {(32, 32)}),
    # Krea 2: the txtfusion adapter's attention is text only: across its 2 stacked LLM layers per token,
    # then across the prompt
    "krea2": Spec(tf.tiny_krea2, (8, 8), 16, ctx_dim=2 * tf.CTX, untouched=lambda t: {(2, 2), (t, t)}),
    "chroma": Spec(tf.tiny_chroma, (8, 8), 16, extra=_pooled),
    "chroma_radiance": Spec(tf.tiny_chroma_radiance, (16, 16), 16, extra=_pooled),
    # HunyuanVideo: the token refiner (text only) is not joint
    "hunyuan_video": Spec(tf.tiny_hunyuan_video, (8, 8), 16, extra=_hunyuan_extra(),
                          untouched=lambda t: {(t, t)}),
    "hunyuan_image21": Spec(tf.tiny_hunyuan_image21, (8, 8), 64, text=lambda t: t + BYT5,
                            extra=_hunyuan_extra(byt5=True), untouched=lambda t: {(t, t)}),
    "hunyuan_video15": Spec(tf.tiny_hunyuan_video15, (8, 8), 16, text=lambda t: t + BYT5,
                            extra=_hunyuan_extra(byt5=True), untouched=lambda t: {(t, t)}),
    # HunyuanVideo 1.5 image-to-video: 4 SigLIP tokens in front of the text stream, left alone like registers
    "hunyuan_video15_i2v": Spec(lambda: tf.tiny_hunyuan_video15(vision=True), (8, 8), 16, text=lambda t: t + BYT5,
                                registers=4, extra=_hunyuan_extra(byt5=True, vision=4),
                                untouched=lambda t: {(t, t)}),
    "aura_flow": Spec(tf.tiny_aura_flow, (8, 8), 16, registers=8),
    "ovis_image": Spec(tf.tiny_ovis_image, (8, 8), 16, extra=_pooled),
    "longcat_image": Spec(tf.tiny_longcat_image, (8, 8), 16, extra=_pooled),
    "flux2": Spec(tf.tiny_flux2, (4, 4), 16, text=lambda t: 512, extra=_pooled),  # FLUX.2 left-pads its text to 512
}


def conds(spec, txt, seed=0, neg_txt=None):
    g = torch.Generator().manual_seed(seed)

    def one(length):
        extra = spec.extra(g, length)
        return [[torch.randn(1, length, spec.ctx_dim, generator=g), extra]]
    return one(txt), one(txt if neg_txt is None else neg_txt)


def sample(model, spec, *, txt=TXT, neg_txt=None, cfg=1.0, batch=1, seed=0, positive=None, denoise=1.0):
    pos, neg = conds(spec, txt, seed, neg_txt)
    return run_sample(model, positive or pos, neg, steps=STEPS, cfg=cfg, seed=seed, latent_hw=spec.latent_hw,
                      batch=batch, denoise=denoise)


def patch(model, gamma=1.5, cutoff=0):
    return TACAModelPatch.execute(model=model, gamma=gamma, timestep_cutoff=cutoff).result[0]


def joint(spec, *txts):
    return Joint(spec.visual, [spec.text(t) for t in txts], spec.registers)


@pytest.fixture(scope="module", params=list(SPECS))
def family(request):
    return request.param


@pytest.fixture(scope="module")
def spec(family):
    return SPECS[family]


@pytest.fixture(scope="module")
def base(spec):
    torch.manual_seed(0)
    return spec.build()


def test_equals_dense_reference(base, spec):
    calls = []
    got = sample(patch(base), spec)
    ref = sample(with_override(base, dense_reference_override(1.5, 0, joint(spec, TXT), calls)), spec)
    assert calls, "the reference never saw a joint call"
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    assert (got - sample(base, spec)).abs().max() > 1e-3, "TACA had no visible effect"


def test_non_joint_calls_reach_attention_untouched(base, spec):
    """Under TACA, an attention override sees every non-joint call whole, and each joint call split
    into its image rows and its text-stream rows."""
    seen = set()
    sample(patch(with_override(base, shape_recorder(seen))), spec)
    total = spec.registers + spec.text(TXT) + spec.visual
    stream = spec.registers + spec.text(TXT)
    assert seen == spec.untouched(TXT) | {(stream, total), (spec.visual, total)}


def test_cfg_with_unequal_text_lengths(base, spec):
    got = sample(patch(base, 1.4), spec, cfg=3.0, neg_txt=NEG_TXT)
    ref = sample(with_override(base, dense_reference_override(1.4, 0, joint(spec, TXT, NEG_TXT), [])), spec,
                 cfg=3.0, neg_txt=NEG_TXT)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


def test_batch_of_two(base, spec):
    got = sample(patch(base, 1.4), spec, batch=2)
    ref = sample(with_override(base, dense_reference_override(1.4, 0, joint(spec, TXT), [])), spec, batch=2)
    assert got.shape[0] == 2
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


def test_gamma_one_and_steps_below_cutoff_are_bit_identical(base, spec):
    assert torch.equal(sample(patch(base, gamma=1.0), spec), sample(base, spec))
    # denoise 0.6 starts at the third sigma of a 5-step schedule, below 0.99: a cutoff of 990 never acts
    first = comfy.samplers.calculate_sigmas(base.get_model_object("model_sampling"), "simple", 5)[2]
    assert float(first) < 0.99
    partial = sample(base, spec, denoise=0.6)
    assert not torch.equal(sample(patch(base, 2.0, cutoff=0), spec, denoise=0.6), partial)
    assert torch.equal(sample(patch(base, 2.0, cutoff=990), spec, denoise=0.6), partial)


def test_window_is_the_papers_timestep_for_this_model_sampling(base):
    """Every family here is a flow model: the paper's timestep is 1000 * sigma, whatever shift or
    multiplier its model_sampling uses; sigma_max (pure noise) is timestep 1000."""
    ms = base.get_model_object("model_sampling")
    sigmas = comfy.samplers.calculate_sigmas(ms, "simple", 8)[:-1]
    torch.testing.assert_close(schedule.paper_timestep(ms, sigmas), 1000 * sigmas.double(), atol=1e-6, rtol=1e-6)
    assert float(schedule.paper_timestep(ms, ms.sigma_max)) == pytest.approx(1000.0)


def test_text_padding_mask_reaches_every_piece():
    """Qwen-Image masks padded text keys ([B, 1, keys]: the same for every query row)."""
    spec = SPECS["qwen_image"]
    base = spec.build()
    pos, neg = conds(spec, TXT)
    pos[0][1]["attention_mask"] = torch.tensor([[1] * (TXT - 3) + [0] * 3])
    if torch.equal(sample(base, spec, positive=pos), sample(base, spec)):
        pytest.skip("this ComfyUI release's Qwen-Image does not apply the text mask in attention")
    calls = []
    got = sample(patch(base), spec, positive=pos)
    ref = sample(with_override(base, dense_reference_override(1.5, 0, joint(spec, TXT), calls)), spec, positive=pos)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    assert (got - sample(patch(base), spec)).abs().max() > 1e-3, "the mask reached attention"
