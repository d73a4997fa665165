"""Tiny, randomly initialised (seeded) models of the families of issue 8, part B, with ComfyUI's own classes.

HiDream, Lens, JoyImage, ErnieImage, Mochi, PixelDiT (and PiD), Ideogram4, OmniGen2, Boogu, HiDream-O1 (and
SeedVR2, built only), each the way ComfyUI's loader does (supported_models.<X>(unet_config) ->
set_inference_dtype -> get_model -> ModelPatcher, see tiny_models), fp32 on the CPU, 1-2 blocks per kind
and hidden sizes of 32. The layouts that matter for TACA are kept: which stream comes first, refiner
calls, padding, masks, reference images, GQA, the KV-cached text prefix of HiDream-O1.

Each family is a TinyFamily: `build(seed)` -> ModelPatcher, `conds(txt, ...)` -> (positive, negative)
CONDITIONING lists, `latent(batch)` -> an empty latent of the right shape. `TINY[name]` holds them all.
`skip_unless_available(name)` skips the calling test on a ComfyUI release without that family.
Call comfy_env.import_comfy() first.
"""
import importlib
from dataclasses import dataclass
from typing import Callable

import pytest
import torch

from tiny_models import CPU, init_weights_, run_sample

# The classes each family needs, by module path; a release without them skips the family's tests.
NEEDS = {
    "hidream": ("comfy.ldm.hidream.model", "HiDream"),
    "lens": ("comfy.ldm.lens.model", "Lens"),
    "joyimage": ("comfy.ldm.joyimage.model", "JoyImage"),
    "ernie": ("comfy.ldm.ernie.model", "ErnieImage"),
    "mochi": ("comfy.ldm.genmo.joint_model.asymm_models_joint", "GenmoMochi"),
    "pixeldit": ("comfy.ldm.pixeldit.model", "PixelDiTT2I"),
    "pid": ("comfy.ldm.pixeldit.pid", "PiD"),
    "ideogram4": ("comfy.ldm.ideogram4.model", "Ideogram4"),
    "omnigen2": ("comfy.ldm.omnigen.omnigen2", "Omnigen2"),
    "boogu": ("comfy.ldm.boogu.model", "Boogu"),
    "hidream_o1": ("comfy.ldm.hidream_o1.model", "HiDreamO1"),
    "seedvr2": ("comfy.ldm.seedvr.model", "SeedVR2"),
}


def available(name) -> bool:
    module, config_class = NEEDS[name]
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    import comfy.supported_models
    return hasattr(comfy.supported_models, config_class)


def skip_unless_available(name):
    if not available(name):
        import comfy_env
        pytest.skip(f"{name}: this ComfyUI release ({comfy_env.import_comfy().version}) has no "
                    f"{NEEDS[name][0]} / supported_models.{NEEDS[name][1]}")


def _build(name, unet_config, seed):
    """supported_models.<X>(unet_config) -> ModelPatcher, as tiny_models._patcher does.

    The tiny dims are written into the config after construction, since some families'
    unet_extra_config (Ideogram4's full-size heads, JoyImage's rope) would otherwise replace them.
    """
    import comfy.model_patcher
    import comfy.supported_models
    model_config = getattr(comfy.supported_models, NEEDS[name][1])(unet_config)
    model_config.unet_config.update(unet_config)
    model_config.set_inference_dtype(torch.float32, None)  # fp32 weights, no manual cast
    model = model_config.get_model({}, device=CPU)
    init_weights_(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=CPU, offload_device=CPU)


def _randn(g, *shape):
    return torch.randn(*shape, generator=g)


def _pair(one, txt, neg_txt):
    """(positive, negative), the negative with its own length (default: the positive's)."""
    return one(txt), one(txt if neg_txt is None else neg_txt)


# ---------------------------------------------------------------- HiDream (I1 / E1)
# Image first, then text = T5 + one llama layer (the last) + a fresh llama layer per block.
HIDREAM = dict(t5_dim=32, llama_dim=24, llama_layers=2, pooled=16)


def tiny_hidream(seed=0):
    return _build("hidream", dict(
        image_model="hidream", patch_size=2, in_channels=16, out_channels=16,
        num_layers=1, num_single_layers=1,  # one double-stream and one single-stream block
        attention_head_dim=16, num_attention_heads=2, axes_dims_rope=[8, 4, 4],
        caption_channels=[HIDREAM["t5_dim"], HIDREAM["llama_dim"]], text_emb_dim=HIDREAM["pooled"],
        num_routed_experts=2, num_activated_experts=1, max_resolution=[32, 32],
        llama_layers=list(range(HIDREAM["llama_layers"]))), seed)


def hidream_conds(txt, batch=1, seed=0, neg_txt=None, llama_txt=None, neg_llama_txt=None, edit_hw=None):
    """txt: T5 tokens; llama_txt: llama tokens (default txt - 3). Per-block text = txt + 2 * llama_txt.

    edit_hw: (h, w) of a HiDream-E1 reference latent (concat_latent_image) on both conds.
    """
    g = torch.Generator().manual_seed(seed)
    edit = None if edit_hw is None else _randn(g, 1, 16, *edit_hw)

    def one(lengths):
        t5, ll = lengths
        extra = {"pooled_output": _randn(g, batch, HIDREAM["pooled"]),
                 "conditioning_llama3": _randn(g, batch, HIDREAM["llama_layers"], ll, HIDREAM["llama_dim"])}
        if edit is not None:
            extra["concat_latent_image"] = edit
        return [[_randn(g, batch, t5, HIDREAM["t5_dim"]), extra]]
    llama_txt = max(1, txt - 3) if llama_txt is None else llama_txt
    neg = txt if neg_txt is None else neg_txt
    neg_llama = max(1, neg - 3) if neg_llama_txt is None else neg_llama_txt
    return one((txt, llama_txt)), one((neg, neg_llama))


# ---------------------------------------------------------------- Lens
# Image first; the text mask (always built, additive, [B, 1, 1, N]) masks padded text keys.
LENS = dict(enc_dim=24, layers=2)


def tiny_lens(seed=0):
    return _build("lens", dict(
        image_model="lens", patch_size=2, in_channels=128, out_channels=32, num_layers=2,
        attention_head_dim=16, num_attention_heads=2, enc_hidden_dim=LENS["enc_dim"], axes_dims_rope=(4, 6, 6),
        multi_layer_encoder_feature=True, selected_layer_index=tuple(range(LENS["layers"]))), seed)


def lens_conds(txt, batch=1, seed=0, neg_txt=None, pad=0):
    """pad: that many trailing text tokens are padding (attention_mask 0)."""
    g = torch.Generator().manual_seed(seed)

    def one(length):
        mask = torch.ones(batch, length, dtype=torch.long)
        if pad:
            mask[:, length - pad:] = 0
        return [[_randn(g, batch, length, LENS["enc_dim"] * LENS["layers"]), {"attention_mask": mask}]]
    return _pair(one, txt, neg_txt)


# ---------------------------------------------------------------- JoyImage
# Image first: target video/image tokens, then each reference latent's tokens, then text.
JOY = dict(text_dim=24)


def tiny_joyimage(seed=0):
    return _build("joyimage", dict(
        image_model="joyimage", patch_size=[1, 2, 2], in_channels=16, hidden_size=32, num_attention_heads=2,
        text_dim=JOY["text_dim"], num_layers=2, rope_dim_list=[4, 6, 6], theta=10000), seed)


def joyimage_conds(txt, batch=1, seed=0, neg_txt=None, ref_hw=None):
    """ref_hw: (h, w) of one reference latent [1, 16, 1, h, w] on both conds (JoyImage-Edit)."""
    g = torch.Generator().manual_seed(seed)
    ref = None if ref_hw is None else [_randn(g, 1, 16, 1, *ref_hw)]

    def one(length):
        extra = {} if ref is None else {"reference_latents": ref}
        return [[_randn(g, batch, length, JOY["text_dim"]), extra]]
    return _pair(one, txt, neg_txt)


# ---------------------------------------------------------------- ErnieImage
# Image first; its attention is called without transformer_options (see families_B.md).
ERNIE = dict(text_dim=24)


def tiny_ernie(seed=0):
    return _build("ernie", dict(
        image_model="ernie", hidden_size=32, num_attention_heads=2, num_layers=2, ffn_hidden_size=64,
        in_channels=128, out_channels=128, patch_size=1, text_in_dim=ERNIE["text_dim"], rope_axes_dim=(4, 6, 6)),
        seed)


def ernie_conds(txt, batch=1, seed=0, neg_txt=None):
    g = torch.Generator().manual_seed(seed)
    return _pair(lambda n: [[_randn(g, batch, n, ERNIE["text_dim"]), {}]], txt, neg_txt)


# ---------------------------------------------------------------- Mochi
# Image (video) first; text is cut to the attention mask's token count (num_tokens) in every block.
MOCHI = dict(t5_dim=24)


def tiny_mochi(seed=0):
    return _build("mochi", dict(
        image_model="mochi_preview", depth=2, patch_size=2, num_heads=2, hidden_size_x=32, hidden_size_y=24,
        mlp_ratio_x=1536 * 8 / 32,  # AsymmetricJointBlock asserts an MLP width of 1536 * 8
        mlp_ratio_y=4.0, learn_sigma=False, in_channels=12, qk_norm=True, qkv_bias=False, out_bias=True,
        attn_drop=0.0, patch_embed_bias=True, posenc_preserve_area=True, timestep_mlp_bias=True,
        attend_to_padding=False, timestep_scale=1000.0, use_t5=True, t5_feat_dim=MOCHI["t5_dim"],
        t5_token_length=256, rope_theta=10000.0), seed)


def mochi_conds(txt, batch=1, seed=0, neg_txt=None, pad=0):
    """pad: trailing padding tokens (mask 0) after txt real ones, as Mochi's T5 pads to 256."""
    g = torch.Generator().manual_seed(seed)

    def one(length):
        mask = torch.zeros(batch, length + pad, dtype=torch.long)
        mask[:, :length] = 1
        return [[_randn(g, batch, length + pad, MOCHI["t5_dim"]), {"attention_mask": mask}]]
    return _pair(one, txt, neg_txt)


# ---------------------------------------------------------------- PixelDiT (T2I)
# Text first (cut at txt_max_length; ComfyUI's real model: 300, here 16), then the patch tokens.
# Pixel blocks run image-only attention over the patches.
PIXELDIT = dict(text_dim=24, txt_max_length=16, patch_size=4)


def tiny_pixeldit(seed=0):
    return _build("pixeldit", dict(
        image_model="pixeldit_t2i", in_channels=3, num_groups=2, hidden_size=32, pixel_hidden_size=4,
        pixel_attn_hidden_size=16, pixel_num_groups=2, patch_depth=2, pixel_depth=1,
        patch_size=PIXELDIT["patch_size"], txt_embed_dim=PIXELDIT["text_dim"],
        txt_max_length=PIXELDIT["txt_max_length"]), seed)


def pixeldit_conds(txt, batch=1, seed=0, neg_txt=None):
    g = torch.Generator().manual_seed(seed)
    return _pair(lambda n: [[_randn(g, batch, n, PIXELDIT["text_dim"]), {}]], txt, neg_txt)


def tiny_pid(seed=0):
    """PiD, PixelDiT's super-resolution variant: the same patch blocks, plus a low-quality latent
    projected onto the patch tokens (added, not concatenated)."""
    return _build("pid", dict(
        image_model="pid", in_channels=3, num_groups=2, hidden_size=32, pixel_hidden_size=4,
        pixel_attn_hidden_size=16, pixel_num_groups=2, patch_depth=2, pixel_depth=1,
        patch_size=PIXELDIT["patch_size"], txt_embed_dim=PIXELDIT["text_dim"],
        txt_max_length=PIXELDIT["txt_max_length"], lq_latent_channels=16, lq_hidden_dim=16, lq_num_res_blocks=1,
        lq_interval=2), seed)


def pid_conds(txt, batch=1, seed=0, neg_txt=None):
    """PixelDiT conds plus PiDConditioning's low-quality latent and degradation sigma (both conds)."""
    pos, neg = pixeldit_conds(txt, batch=batch, seed=seed, neg_txt=neg_txt)
    lq = torch.randn(1, 16, 2, 2, generator=torch.Generator().manual_seed(seed + 1))
    for c in (pos, neg):
        c[0][1].update(lq_latent=lq, degrade_sigma=torch.tensor([0.2]))
    return pos, neg


# ---------------------------------------------------------------- Ideogram4
# Text first; with padded text a block-diagonal [B, 1, L, L] mask (padding attends only to padding).
IDEOGRAM4 = dict(text_dim=24)


def tiny_ideogram4(seed=0):
    return _build("ideogram4", dict(
        image_model="ideogram4", in_channels=128, num_layers=2, num_attention_heads=2, attention_head_dim=16,
        intermediate_size=64, adaln_dim=16, llm_features_dim=IDEOGRAM4["text_dim"], rope_theta=10000,
        mrope_section=[4, 2, 2], norm_eps=1e-5), seed)


def ideogram4_conds(txt, batch=1, seed=0, neg_txt=None, pad=0):
    g = torch.Generator().manual_seed(seed)

    def one(length):
        mask = torch.ones(batch, length, dtype=torch.long)
        if pad:
            mask[:, length - pad:] = 0
        return [[_randn(g, batch, length, IDEOGRAM4["text_dim"]), {"attention_mask": mask}]]
    return _pair(one, txt, neg_txt)


# ---------------------------------------------------------------- OmniGen2 / Boogu
# Text first, then reference-image tokens, then the noisy image. Caption / noise / reference refiners
# (and Boogu's image self-attention) are not joint. GQA (fewer key heads) since 0.8.x passes enable_gqa.
OMNIGEN2 = dict(text_dim=24)


def tiny_omnigen2(seed=0):
    return _build("omnigen2", dict(
        image_model="omnigen2", patch_size=2, in_channels=16, hidden_size=32, num_layers=2, num_refiner_layers=1,
        num_attention_heads=2, num_kv_heads=1, multiple_of=16, ffn_dim_multiplier=None, norm_eps=1e-5,
        axes_dim_rope=[4, 6, 6], axes_lens=[64, 64, 64], text_feat_dim=OMNIGEN2["text_dim"], timestep_scale=1000.0,
        out_channels=None), seed)


def tiny_boogu(seed=0):
    return _build("boogu", dict(
        image_model="boogu", patch_size=2, in_channels=16, hidden_size=32, num_layers=1, num_double_stream_layers=1,
        num_refiner_layers=1, num_attention_heads=2, num_kv_heads=1, multiple_of=16, norm_eps=1e-5,
        axes_dim_rope=[4, 6, 6], axes_lens=[64, 64, 64], instruction_feat_dim=OMNIGEN2["text_dim"],
        timestep_scale=1000.0), seed)


def omnigen2_conds(txt, batch=1, seed=0, neg_txt=None, pad=0, ref_hw=None):
    """OmniGen2/Boogu need attention_mask in the conditioning (it gives forward's num_tokens).

    pad: trailing padding tokens (mask 0); ref_hw: one reference latent [1, 16, h, w] on both conds.
    """
    g = torch.Generator().manual_seed(seed)
    ref = None if ref_hw is None else [_randn(g, 1, 16, *ref_hw)]

    def one(length):
        mask = torch.ones(batch, length, dtype=torch.long)
        if pad:
            mask[:, length - pad:] = 0
        extra = {"attention_mask": mask}
        if ref is not None:
            extra["reference_latents"] = ref
        return [[_randn(g, batch, length, OMNIGEN2["text_dim"]), extra]]
    return _pair(one, txt, neg_txt)


# ---------------------------------------------------------------- HiDream-O1 (pixel space, Qwen3-VL decoder)
# One sequence [text prefix (causal, plain SDPA) | tms token | target patches | reference patches];
# the generation rows attend to every key through optimized_attention, with the text prefix's K/V
# cached from the second model call on (fewer queries than keys).
O1_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
               num_key_value_heads=1, head_dim=16, rope_dims=[4, 2, 2], rope_theta=10000.0)
O1_VISION = dict(hidden_size=16, num_heads=2, intermediate_size=32, depth=1, num_position_embeddings=64)


def tiny_hidream_o1(seed=0):
    return _build("hidream_o1", dict(image_model="hidream_o1", text_config_overrides=dict(O1_TEXT),
                                      vision_config_overrides=dict(O1_VISION)), seed)


def hidream_o1_conds(txt, batch=1, seed=0, neg_txt=None, ref_images=0):
    """txt prompt tokens inside the chat template HiDream-O1's tokenizer builds (10 template tokens).

    The cond carries text_input_ids (the model embeds them itself) and a surrogate cross_attn, as
    comfy.text_encoders.hidream_o1 emits. batch must be 1 (ComfyUI's HiDream-O1 conds are per prompt).
    ref_images: that many 64x64 RGB reference images (edit mode: ViT tokens spliced into the prefix,
    32x32 patches after the target).
    """
    from comfy.text_encoders import hidream_o1 as te
    assert batch == 1, "HiDream-O1 text_input_ids are per prompt"
    g = torch.Generator().manual_seed(seed)
    refs = [torch.rand(1, 64, 64, 3, generator=g) for _ in range(ref_images)]

    def one(length):
        words = torch.randint(1000, 100000, (length,), generator=g).tolist()
        ids = ([te.IM_START_ID, te.USER_ID, te.NEWLINE_ID] + words +
               [te.IM_END_ID, te.NEWLINE_ID, te.IM_START_ID, te.ASSISTANT_ID, te.NEWLINE_ID,
                te.BOI_TOKEN_ID, te.TMS_TOKEN_ID])
        input_ids = torch.tensor([ids], dtype=torch.long)
        extra = {"text_input_ids": input_ids}
        if refs:
            extra["reference_latents"] = refs
        return [[input_ids.unsqueeze(-1).float(), extra]]
    return _pair(one, txt, neg_txt)


O1_TEMPLATE_TOKENS = 10  # 3 before the prompt, 7 after it (the last, tms, opens the generation rows)


# ---------------------------------------------------------------- SeedVR2 (refused; built, never sampled)
def tiny_seedvr2(seed=0):
    return _build("seedvr2", dict(
        image_model="seedvr2", norm_eps=1e-5, num_layers=2, mlp_type="swiglu", vid_dim=32, heads=2, head_dim=16,
        mm_layers=2, rope_dim=8), seed)


# ---------------------------------------------------------------- the table
@dataclass(frozen=True)
class TinyFamily:
    name: str
    build: Callable
    conds: Callable
    latent_shape: tuple  # one sample's empty latent (channels, ...spatial)
    image_tokens: int    # noisy-image tokens of that latent

    def latent(self, batch=1):
        return torch.zeros(batch, *self.latent_shape)

    def sample(self, model, txt, *, neg_txt=None, cfg=1.0, batch=1, cond_batch=1, steps=3, seed=0, denoise=1.0,
               **cond_kw):
        """comfy.sample.sample on a `batch` latent. Conds are one prompt (cond_batch 1) as text encoders
        emit them, repeated by ComfyUI to the batch; Mochi / OmniGen2 / Boogu count num_tokens over the
        whole cond batch, so only cond_batch 1 is valid for them."""
        pos, neg = self.conds(txt, batch=cond_batch, seed=seed, neg_txt=neg_txt, **cond_kw)
        return run_sample(model, pos, neg, steps=steps, cfg=cfg, seed=seed, latent=self.latent(batch),
                          denoise=denoise)


TINY = {f.name: f for f in (
    TinyFamily("hidream", tiny_hidream, hidream_conds, (16, 8, 8), 16),
    TinyFamily("lens", tiny_lens, lens_conds, (128, 4, 4), 16),
    TinyFamily("joyimage", tiny_joyimage, joyimage_conds, (16, 1, 8, 8), 16),
    TinyFamily("ernie", tiny_ernie, ernie_conds, (128, 4, 4), 16),
    TinyFamily("mochi", tiny_mochi, mochi_conds, (12, 2, 8, 8), 32),
    TinyFamily("pixeldit", tiny_pixeldit, pixeldit_conds, (3, 16, 16), 16),
    TinyFamily("pid", tiny_pid, pid_conds, (3, 16, 16), 16),
    TinyFamily("ideogram4", tiny_ideogram4, ideogram4_conds, (128, 4, 4), 16),
    TinyFamily("omnigen2", tiny_omnigen2, omnigen2_conds, (16, 8, 8), 16),
    TinyFamily("boogu", tiny_boogu, omnigen2_conds, (16, 8, 8), 16),
    TinyFamily("hidream_o1", tiny_hidream_o1, hidream_o1_conds, (3, 64, 96), 6),
)}
