"""TACA Model Patch and TACA LoRA Loader on every supported family, against the independent dense reference.

THE family table of the tests: one `Case` per family (or per layout a family has: references, padding,
edit mode). Each says how to build its tiny model with ComfyUI's own classes (support.tiny_models /
support.tiny_families), its conds, and where the text sits in its joint calls (written out by hand from
the model's code, never from taca_core). Every test below runs on every case. Adding a family = one
entry here (and its builder). A family this ComfyUI release lacks skips with the reason.
"""
import functools
import math
from dataclasses import dataclass
from typing import Callable

import pytest
import torch

from support.comfy_env import import_comfy

import_comfy()

import comfy.samplers  # noqa: E402
import nodes as comfy_nodes  # noqa: E402  (ComfyUI's nodes.py: LoraLoaderModelOnly)

from comfyui_taca_under_test.taca_core import schedule  # noqa: E402
from support import tiny_families as tf  # noqa: E402
from support import tiny_models as tm  # noqa: E402
from support import tiny_qwen21 as q21  # noqa: E402
from support.lora_files import attention_layers, write_layers  # noqa: E402
from support.reference import CallCounter, Layout, ReferenceTaca, image_first, text_first, with_override  # noqa: E402
from support.taca import EVERY_STEP, patch, taca_lora  # noqa: E402

GAMMA = 1.5


def pad32(n):
    return -(-n // 32) * 32


def flux_conds(kind):
    return lambda txt, batch=1, seed=0, neg_txt=None: tm.make_conds(kind, txt, batch, seed, neg_txt)


def kontext_conds(txt, batch=1, seed=0, neg_txt=None):
    pos, neg = tm.make_conds("flux", txt, batch, seed, neg_txt)
    for c in (pos, neg):
        c[0][1]["reference_latents"] = [tf.fixed_randn(1, 16, 8, 8)]
    return pos, neg


def text_of(visual, text=lambda t: t, registers=0):
    """layout(*prompt lengths) for [registers | text | visual], text(t) tokens for a prompt of t."""
    return lambda *ts: text_first(visual, [text(t) for t in ts], registers)


def image_then_text(visual, text=lambda t: t):
    return lambda *ts: image_first(visual, [text(t) for t in ts])


def o1_layout(edit):
    """HiDream-O1: every call through transformer_options is a generation-row call against [prefix | rows];
    the text is all of the prefix (text-to-image: prompt + template, tms excluded, then tms + 6 patches),
    or in edit mode all but the 3 template tokens and the vision block before the prompt."""
    def layout(*ts):
        start = 3 + o1_vision_block_tokens() if edit else 0
        keys = frozenset() if edit else frozenset(t + tf.O1_TEMPLATE_TOKENS - 1 + 1 + 6 for t in ts)
        return Layout(lambda nq, nk: (start, nk - nq), queries_at_end=True, joint_keys=keys)
    return layout


def qwen21_layout(*ts):
    """Qwen-Image 2.1 (text only): one call per segment; the joint one is the target's last call, its
    24 rows against [text | target] (the text from the prefix cache after step 1)."""
    keys = frozenset(t + q21.LATENT[1] * q21.LATENT[2] for t in ts)
    return Layout(lambda nq, nk: (0, nk - nq) if nk in keys and nk - nq in ts else None,
                  queries_at_end=True, joint_keys=keys)


def qwen21_build():
    q21.skip_unless_available()
    return q21.build()


@functools.lru_cache(maxsize=None)
def o1_vision_block_tokens():
    """Edit mode: the tokens ComfyUI splices into the prefix for one 64x64 reference on the tiny latent
    ([vision_start, image_pad x ViT tokens, vision_end]), by ComfyUI's own preprocessing."""
    from comfy.ldm.hidream_o1.conditioning import prepare_ref_images
    _, height, width = CASES["hidream_o1"].latent
    ref = prepare_ref_images([torch.rand(1, 64, 64, 3)], height, width, torch.device("cpu"), torch.float32)
    return sum(n + 2 for n in ref["per_ref_vit_tokens"])


@dataclass
class Case:
    build: Callable       # () -> ModelPatcher
    conds: Callable       # (txt, batch=1, seed=0, neg_txt=None) -> (positive, negative)
    latent: tuple         # (h, w) in latent pixels, or one sample's full latent shape (C, ...)
    layout: Callable      # (*prompt lengths in one run) -> support.reference.Layout of its joint calls
    untouched: Callable   # (prompt length) -> (queries, keys) of the calls that are not joint
    loras: tuple = ()     # LoRA layer names its trainers write (a PEFT file), or a prefix (every attention layer)
    txt: tuple = (7, 4)   # prompt lengths of the positive and the negative


CTX = tf.CTX
CASES = {
    # FLUX.1 / SD3 / SD3.5 medium (its joint blocks' extra image-only self attention is not joint)
    "flux": Case(tm.tiny_flux, flux_conds("flux"), (16, 16), text_of(64), lambda t: set()),
    "sd3": Case(tm.tiny_sd3, flux_conds("sd3"), (16, 16), text_of(64), lambda t: set()),
    "sd35": Case(lambda: tm.tiny_sd3(x_block_self_attn_layers=(0,), qk_norm="rms"), flux_conds("sd3"), (16, 16),
                 text_of(64), lambda t: {(64, 64)}),
    # FLUX.1 Kontext: reference-image tokens after the noisy image are image queries
    "flux_kontext": Case(tm.tiny_flux, kontext_conds, (8, 8), text_of(32), lambda t: set()),
    "qwen_image": Case(tf.tiny_qwen_image, tf.text_conds(CTX), (8, 8), text_of(16), lambda t: set(),
                       loras=(["transformer.transformer_blocks.0.attn.to_q",
                               "transformer.transformer_blocks.1.img_mlp.net.0.proj"],)),
    "qwen_image_edit": Case(tf.tiny_qwen_image, tf.text_conds(CTX, tf.with_reference((1, 16, 1, 8, 8))), (8, 8),
                            text_of(32), lambda t: set()),
    "mage_flow": Case(tf.tiny_mage_flow, tf.text_conds(CTX), (4, 4), text_of(16), lambda t: set(),
                      loras=(["transformer_blocks.0.attn.add_k_proj", "transformer_blocks.1.txt_mlp.net.2"],)),
    # Lumina 2 / Z-Image: the caption refiner (text only) and the noise refiner (image only) are not joint
    "lumina2": Case(tf.tiny_lumina2, tf.text_conds(CTX, tf.text_mask), (8, 8), text_of(16),
                    lambda t: {(t, t), (16, 16)},
                    loras=(["lora_unet_layers_0_attention_qkv", "lora_unet_layers_1_feed_forward_w1"],)),
    "z_image": Case(tf.tiny_z_image, tf.text_conds(CTX), (8, 8), text_of(32, pad32), lambda t: {(32, 32)},
                    loras=(["transformer.layers.0.attention.to_q",  # into the fused qkv
                            "transformer.layers.0.feed_forward.w2"],)),
    # Z-Image omni: [captions | SigLIP | reference latent | noisy latent], each part padded to 32 tokens.
    # Captions: the reference's 5 -> 32, the prompt's -> 32. Visual: 4 SigLIP -> 32, 16 latent -> 32,
    # 32 SigLIP pad tokens for the noisy image, its 16 -> 32.
    "z_image_omni": Case(lambda: tf.tiny_z_image(omni=True), tf.text_conds(CTX, tf.z_image_omni_extra), (8, 8),
                         lambda *ts: text_first(128, [64]), lambda t: {(64, 64)}),  # the refiners, on 64-token parts
    "z_image_pixel": Case(tf.tiny_z_image_pixel, tf.text_conds(CTX), (16, 16), text_of(32, pad32),
                          lambda t: {(32, 32)}),
    # Krea 2: the txtfusion adapter's attention is text only: across its 2 stacked LLM layers per token,
    # then across the prompt
    "krea2": Case(tf.tiny_krea2, tf.text_conds(2 * CTX), (8, 8), text_of(16), lambda t: {(2, 2), (t, t)},
                  loras=(["transformer.transformer_blocks.0.attn.to_q", "transformer.transformer_blocks.1.ff.up"],)),
    "krea2_ref_index": Case(lambda: tf.tiny_krea2(default_ref_method="index"),
                            tf.text_conds(2 * CTX, tf.with_reference((1, 16, 1, 8, 8))), (8, 8), text_of(32),
                            lambda t: {(2, 2), (t, t)}),
    # without a reference method Krea 2 ignores reference latents: they are no tokens at all
    "krea2_ref_no_method": Case(tf.tiny_krea2, tf.text_conds(2 * CTX, tf.with_reference((1, 16, 1, 8, 8))), (8, 8),
                                text_of(16), lambda t: {(2, 2), (t, t)}),
    "chroma": Case(tf.tiny_chroma, tf.text_conds(CTX, tf.pooled), (8, 8), text_of(16), lambda t: set(),
                   loras=(["lora_unet_double_blocks_0_img_attn_qkv", "lora_unet_single_blocks_0_linear1"],)),
    "chroma_radiance": Case(tf.tiny_chroma_radiance, tf.text_conds(CTX, tf.pooled), (16, 16), text_of(16),
                            lambda t: set()),
    # HunyuanVideo: the token refiner (text only) is not joint
    "hunyuan_video": Case(tf.tiny_hunyuan_video, tf.text_conds(CTX, tf.hunyuan_extra()), (8, 8), text_of(16),
                          lambda t: {(t, t)},
                          loras=(["diffusion_model.double_blocks.0.img_attn.qkv",
                                  "lora_unet_single_blocks_0_linear1"],)),
    "hunyuan_image21": Case(tf.tiny_hunyuan_image21, tf.text_conds(CTX, tf.hunyuan_extra(byt5=True)), (8, 8),
                            text_of(64, lambda t: t + tf.BYT5), lambda t: {(t, t)}),
    "hunyuan_video15": Case(tf.tiny_hunyuan_video15, tf.text_conds(CTX, tf.hunyuan_extra(byt5=True)), (8, 8),
                            text_of(16, lambda t: t + tf.BYT5), lambda t: {(t, t)}),
    # HunyuanVideo 1.5 image-to-video: 4 SigLIP tokens in front of the text stream, left alone like registers
    "hunyuan_video15_i2v": Case(lambda: tf.tiny_hunyuan_video15(vision=True),
                                tf.text_conds(CTX, tf.hunyuan_extra(byt5=True, vision=4)), (8, 8),
                                text_of(16, lambda t: t + tf.BYT5, registers=4), lambda t: {(t, t)}),
    "aura_flow": Case(tf.tiny_aura_flow, tf.text_conds(CTX), (8, 8), text_of(16, registers=8), lambda t: set(),
                      loras=(["transformer.joint_transformer_blocks.0.attn.to_q",
                              "diffusion_model.single_layers.0.attn.w1q"],)),
    "ovis_image": Case(tf.tiny_ovis_image, tf.text_conds(CTX, tf.pooled), (8, 8), text_of(16), lambda t: set()),
    "longcat_image": Case(tf.tiny_longcat_image, tf.text_conds(CTX, tf.pooled), (8, 8), text_of(16),
                          lambda t: set()),
    # FLUX.2 left-pads its text to 512
    "flux2": Case(tf.tiny_flux2, tf.text_conds(CTX, tf.pooled), (4, 4), text_of(16, lambda t: 512), lambda t: set(),
                  loras=(["lora_unet_double_blocks_0_img_attn_qkv", "lora_unet_single_blocks_0_linear2"],)),
    "flux2_ref": Case(tf.tiny_flux2, tf.text_conds(CTX, tf.with_reference((1, 128, 4, 4), tf.pooled)), (4, 4),
                      text_of(32, lambda t: 512), lambda t: set()),
    # HiDream: image first, then text = T5 + 2 x llama (llama = T5 - 3 here); E1: + 32 reference tokens
    "hidream": Case(tf.tiny_hidream, tf.hidream_conds, (16, 8, 8), image_then_text(16, lambda t: t + 2 * max(1, t - 3)),
                    lambda t: set(), loras=("diffusion_model.", "transformer."), txt=(6, 4)),
    "hidream_e1": Case(tf.tiny_hidream, functools.partial(tf.hidream_conds, edit_hw=(8, 8)), (16, 8, 8),
                       image_then_text(32, lambda t: t + 2 * max(1, t - 3)), lambda t: set(), txt=(6, 4)),
    "lens": Case(tf.tiny_lens, tf.text_conds(2 * tf.FEAT, tf.padding_mask()), (128, 4, 4), image_then_text(16), lambda t: set(),
                 loras=("diffusion_model.",),
                 txt=(6, 4)),
    "lens_padded": Case(tf.tiny_lens, tf.text_conds(2 * tf.FEAT, tf.padding_mask(2)), (128, 4, 4), image_then_text(16),
                        lambda t: set(), txt=(6, 4)),  # always-on key mask
    "joyimage_ref": Case(tf.tiny_joyimage, tf.text_conds(tf.FEAT, tf.with_reference((1, 16, 1, 4, 6))), (16, 1, 8, 8),
                         image_then_text(16 + 6), lambda t: set(), loras=("diffusion_model.",), txt=(6, 4)),
    "mochi_padded": Case(tf.tiny_mochi, tf.text_conds(tf.FEAT, tf.padding_mask(4)), (12, 2, 8, 8),
                         image_then_text(32, lambda t: t - 4),
                         lambda t: set(), loras=("diffusion_model.", ""), txt=(10, 8)),  # 4 padding tokens cut off
    # PixelDiT / PiD: text first, the prompts repeated to their lcm, cut at txt_max_length (16 here); the
    # pixel blocks attend within each patch (16 pixel tokens of 4 x 4) only
    "pixeldit": Case(tf.tiny_pixeldit, tf.text_conds(tf.FEAT), (3, 16, 16),
                     lambda *ts: text_first(16, [min(math.lcm(*ts), 16)]), lambda t: {(16, 16)},
                     loras=("diffusion_model.",), txt=(6, 4)),
    "pid": Case(tf.tiny_pid, tf.text_conds(tf.FEAT, tf.pid_extra), (3, 16, 16), lambda *ts: text_first(16, [min(math.lcm(*ts), 16)]),
                lambda t: {(16, 16)}, loras=("diffusion_model.",), txt=(6, 4)),
    "ideogram4_padded": Case(tf.tiny_ideogram4, tf.text_conds(tf.FEAT, tf.padding_mask(2)), (128, 4, 4),
                             text_of(16), lambda t: set(), loras=("diffusion_model.",), txt=(6, 4)),  # per-row mask
    # OmniGen2 / Boogu: caption, noise and reference refiners (Boogu: also image self-attention over
    # reference + noisy image) are not joint
    "omnigen2_ref": Case(tf.tiny_omnigen2, tf.text_conds(tf.FEAT, tf.with_reference((1, 16, 4, 6), tf.padding_mask())), (16, 8, 8),
                         text_of(16 + 6), lambda t: {(t, t), (16, 16), (6, 6)}, loras=("diffusion_model.", ""),
                         txt=(6, 4)),
    "boogu_ref": Case(tf.tiny_boogu, tf.text_conds(tf.FEAT, tf.with_reference((1, 16, 4, 4), tf.padding_mask())), (16, 8, 8),
                      text_of(16 + 4), lambda t: {(t, t), (16, 16), (4, 4), (20, 20)}, loras=("diffusion_model.", ""),
                      txt=(6, 4)),
    "qwen_image21": Case(qwen21_build, lambda txt, batch=1, seed=0, neg_txt=None: q21.conds(txt, neg_txt or txt, seed),
                        q21.LATENT, qwen21_layout, lambda t: {(t, t)}, loras=("diffusion_model.",)),
    "hidream_o1": Case(tf.tiny_hidream_o1, tf.hidream_o1_conds, (3, 64, 96), o1_layout(edit=False),
                       lambda t: set(), loras=("diffusion_model.",), txt=(6, 4)),
    "hidream_o1_edit": Case(tf.tiny_hidream_o1, functools.partial(tf.hidream_o1_conds, ref_images=1), (3, 64, 96),
                            o1_layout(edit=True), lambda t: set(), txt=(6, 4)),
}
LORAS = [(name, fmt) for name, case in CASES.items() for fmt in range(len(case.loras))]


@functools.lru_cache(maxsize=None)
def model(name):
    return CASES[name].build()


def run(name, model, *, cfg=1.0, batch=1, steps=3, denoise=1.0, seed=0, cond_seed=0, txt=None, positive=None):
    """comfy.sample.sample with the case's conds (one prompt, repeated by ComfyUI to the batch)."""
    case = CASES[name]
    if hasattr(model.model.diffusion_model, "clear_kv_cache"):  # HiDream-O1: each run starts cold
        model.model.diffusion_model.clear_kv_cache()
    pos_len, neg_len = txt or case.txt
    pos, neg = case.conds(pos_len, seed=cond_seed, neg_txt=neg_len if cfg != 1 else None)
    hw = dict(latent_hw=case.latent) if len(case.latent) == 2 else dict(latent=torch.zeros(batch, *case.latent))
    return tm.run_sample(model, positive or pos, neg, steps=steps, cfg=cfg, seed=seed, batch=batch, denoise=denoise,
                         **hw)


def compare_with_reference(name, **kw):
    case, base = CASES[name], model(name)
    lengths = case.txt if kw.get("cfg", 1.0) != 1.0 else case.txt[:1]
    reference = ReferenceTaca(case.layout(*lengths), GAMMA)
    want = run(name, with_override(base, reference), **kw)
    got = run(name, patch(base, GAMMA), **kw)
    assert reference.calls, f"{name}: the reference never saw a joint call"
    if reference.layout.joint_keys:
        assert {nk for _, nk in reference.calls} == reference.layout.joint_keys, sorted(reference.calls)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (got - run(name, base, **kw)).abs().max() > 1e-3, f"{name}: TACA had no visible effect"


@pytest.mark.parametrize("name", list(CASES))
def test_tiny_model_samples_deterministically_and_its_prompt_matters(name):
    """The harness itself: the same model samples the same; another prompt does not (so a test that
    compares samples sees what attention does with the text)."""
    out = run(name, model(name), cfg=2.0)
    assert torch.isfinite(out).all() and out.abs().mean() > 1e-3
    assert torch.equal(out, run(name, model(name), cfg=2.0))
    assert (out - run(name, model(name), cfg=2.0, cond_seed=1)).abs().max() > 1e-2 * out.abs().max()


@pytest.mark.parametrize("name,build", [("flux", tm.tiny_flux), ("sd3", tm.tiny_sd3)])
def test_tiny_model_is_rebuilt_from_its_seed(name, build):
    assert torch.equal(run(name, build(0)), run(name, model(name)))
    assert not torch.equal(run(name, build(1)), run(name, model(name)))


@pytest.mark.parametrize("name", list(CASES))
def test_equals_dense_reference(name):
    compare_with_reference(name)


@pytest.mark.parametrize("name", list(CASES))
def test_equals_dense_reference_with_cfg_unequal_lengths_and_batch_2(name):
    compare_with_reference(name, cfg=2.0, batch=2, steps=2)


@pytest.mark.parametrize("name", list(CASES))
def test_gamma_one_and_steps_below_the_cutoff_are_bit_identical(name):
    base = model(name)
    assert torch.equal(run(name, patch(base, gamma=1.0)), run(name, base))
    # denoise 0.6 of 5 steps starts below sigma 0.99 for every shift here: a cutoff of 990 never acts
    first = comfy.samplers.calculate_sigmas(base.get_model_object("model_sampling"), "simple", 5)[2]
    assert float(first) < 0.99
    plain = run(name, base, steps=5, denoise=0.6)
    assert not torch.equal(run(name, patch(base, 2.0, cutoff=0), steps=5, denoise=0.6), plain)
    assert torch.equal(run(name, patch(base, 2.0, cutoff=990), steps=5, denoise=0.6), plain)


@pytest.mark.parametrize("name", list(CASES))
def test_calls_that_are_not_joint_pass_through_and_joint_ones_are_split(name):
    """An override under TACA sees every non-joint call as without TACA, and each joint call as two:
    its text-stream rows and its image rows (a call without text rows whole)."""
    case, base = CASES[name], model(name)
    layout = case.layout(*case.txt[:1])
    plain, under_taca = CallCounter(), CallCounter()
    run(name, with_override(base, plain))
    run(name, patch(with_override(base, under_taca)))
    want = {}
    for (nq, nk), n in plain.calls.items():
        spans = layout.spans(nq, nk)
        rows = 0 if spans is None else spans[1][1] - spans[1][0]
        for piece in ([(nq, nk)] if spans is None or rows in (0, nq) else [(rows, nk), (nq - rows, nk)]):
            want[piece] = want.get(piece, 0) + n
    assert dict(under_taca.calls) == want
    assert {s for s in plain.calls if layout.spans(*s) is None} == case.untouched(case.txt[0])


@pytest.mark.parametrize("name", list(CASES))
def test_window_is_the_papers_timestep_for_this_model_sampling(name):
    """Flow models all (multiplier 1 or 1000, FLUX-style or discrete shift): the paper's timestep is 1000 * sigma."""
    ms = model(name).get_model_object("model_sampling")
    sigmas = comfy.samplers.calculate_sigmas(ms, "simple", 8)[:-1]
    torch.testing.assert_close(schedule.paper_timestep(ms, sigmas), 1000 * sigmas.double(), atol=1e-6, rtol=1e-6)
    assert float(schedule.paper_timestep(ms, ms.sigma_max)) == pytest.approx(1000.0)


@pytest.mark.parametrize("name,fmt", LORAS)
def test_lora(lora_dir, name, fmt):
    """Every step: ComfyUI's own LoRA loading. While TACA acts: on with a cutoff-0 patch (= ComfyUI's LoRA
    plus TACA), off when gamma is 1."""
    base, layers = model(name), CASES[name].loras[fmt]
    names = attention_layers(base, layers) if isinstance(layers, str) else layers
    peft = not isinstance(layers, str)
    lora = write_layers(lora_dir / f"{name}_{fmt}.safetensors", base, names, peft=peft, rank=4 if peft else 2).name
    comfys = comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(base, lora, 1.0)[0]
    every = run(name, taca_lora(base, lora, active=EVERY_STEP))
    assert torch.equal(every, run(name, comfys))
    assert (every - run(name, base)).abs().max() > 1e-3, "the LoRA had no effect"
    on = run(name, patch(taca_lora(base, lora)))
    torch.testing.assert_close(on, run(name, patch(comfys)), atol=1e-5, rtol=1e-5)
    assert torch.equal(run(name, patch(taca_lora(base, lora), gamma=1.0)), run(name, base))


# ------------------------------------------------------------------ what only some families have
def kv_cache(model):
    try:
        import comfy_extras.nodes_flux as nodes_flux
    except ImportError as e:
        pytest.skip(f"comfy_extras.nodes_flux does not import here: {e}")
    if not hasattr(nodes_flux, "FluxKVCache"):
        pytest.skip("this ComfyUI release has no FluxKVCache node")
    return nodes_flux.FluxKVCache.execute(model).result[0]


# (FLUX.1 Kontext is left out: ComfyUI 0.33.0's FluxKVCache fails on it without TACA too, in the
# per-block modulation of its index_timestep_zero reference method)
@pytest.mark.parametrize("name,text", [("flux2_ref", 512), ("qwen_image_edit", 7)])
def test_kv_cached_calls_get_taca_on_their_image_queries(name, text):
    """FluxKVCache drops the reference tokens from the queries after the first step and appends their
    cached keys: those calls have fewer queries than keys."""
    base, layout = model(name), CASES[name].layout(7)
    reference = ReferenceTaca(layout, GAMMA)
    got = run(name, patch(kv_cache(base)))
    want = run(name, with_override(kv_cache(base), reference))
    full = min(layout.joint_keys)
    noisy = (full - text) // 2  # one reference as large as the noisy latent
    assert {(full, full), (text + noisy, full)} <= set(reference.calls), f"no KV-cached call: {set(reference.calls)}"
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (got - run(name, kv_cache(base))).abs().max() > 1e-3


def test_hidream_o1_second_call_reuses_the_prefix_cache():
    """The cached (hot) path is really taken, so the reference comparison covers it."""
    base = model("hidream_o1")
    run("hidream_o1", patch(base), cfg=2.0)
    assert len(base.model.diffusion_model._kv_cache_entries) == 2  # cond and uncond prefixes


def test_text_padding_mask_reaches_every_piece():
    """Qwen-Image masks padded text keys ([B, 1, keys]: the same for every query row)."""
    base = model("qwen_image")
    pos, _ = CASES["qwen_image"].conds(7)
    pos[0][1]["attention_mask"] = torch.tensor([[1] * 4 + [0] * 3])
    if torch.equal(run("qwen_image", base, positive=pos), run("qwen_image", base)):
        pytest.skip("this ComfyUI release's Qwen-Image does not apply the text mask in attention")
    reference = ReferenceTaca(CASES["qwen_image"].layout(7), GAMMA)
    got = run("qwen_image", patch(base), positive=pos)
    torch.testing.assert_close(got, run("qwen_image", with_override(base, reference), positive=pos),
                               atol=1e-4, rtol=1e-4)
    assert (got - run("qwen_image", patch(base))).abs().max() > 1e-3, "the mask reached attention"


def test_pixeldit_truncates_long_prompts_to_its_text_window():
    """Prompts of 20 and 10 tokens batch as 20 (repeated), of which the model keeps 16 (its max)."""
    reference = ReferenceTaca(CASES["pixeldit"].layout(20, 10), GAMMA)
    want = run("pixeldit", with_override(model("pixeldit"), reference), cfg=2.0, txt=(20, 10))
    got = run("pixeldit", patch(model("pixeldit")), cfg=2.0, txt=(20, 10))
    assert {nk for _, nk in reference.calls} == {32}
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_flux_attention_mask():
    base = model("flux")
    n = 7 + 64
    g = torch.Generator().manual_seed(3)
    mask = torch.where(torch.rand(1, n, n, generator=g) > 0.2, 0.0, -1e4)
    mask = mask.masked_fill(torch.eye(n, dtype=torch.bool), 0.0)
    pos, _ = CASES["flux"].conds(7)
    pos[0][1].update(attention_mask=mask, attention_mask_img_shape=(8, 8))
    got = run("flux", patch(base), positive=pos)
    want = run("flux", with_override(base, ReferenceTaca(CASES["flux"].layout(7), GAMMA)), positive=pos)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (got - run("flux", patch(base))).abs().max() > 1e-3, "the mask reached attention"


@pytest.mark.parametrize("name,reason,family", [("ernie", "without transformer_options", "ErnieImage"),
                                                ("seedvr2", "fixed embedding", "SeedVR2")])
def test_refused_families_get_a_clear_error(name, reason, family):
    with pytest.raises(ValueError) as e:
        patch(getattr(tf, f"tiny_{name}")())
    assert "TACAModelPatch" in str(e.value) and reason in str(e.value) and family in str(e.value)


def test_ernie_attention_never_reaches_transformer_options():
    """The basis of ErnieImage's refusal: an attention override installed on the model sees no call."""
    counter = CallCounter()
    pos, neg = tf.text_conds(tf.FEAT)(6, neg_txt=4)
    out = tm.run_sample(with_override(tf.tiny_ernie(), counter), pos, neg, steps=2, cfg=2.0,
                        latent=torch.zeros(1, 128, 4, 4))
    assert torch.isfinite(out).all() and not counter.calls


def test_a_lora_for_another_family_is_named(lora_dir):
    """Krea 2's diffusers names share transformer_blocks.N.attn.to_q with Qwen-Image's: one layer maps."""
    qwen = model("qwen_image")
    name = write_layers(lora_dir / "qwen_for_krea.safetensors", qwen, CASES["qwen_image"].loras[0]).name
    with pytest.raises(ValueError, match=r"TACALoraLoader: .* matches 1 of its 2 layers in this Krea2 model"
                                         r".*look like a Qwen-Image LoRA"):
        taca_lora(model("krea2"), name)
