"""Tiny, randomly initialised (seeded) models of every joint-attention family, built with ComfyUI's own classes.

Each builder goes the way ComfyUI's loader does (supported_models.<X>(unet_config) -> set_inference_dtype ->
get_model -> ModelPatcher, see tiny_models), fp32 on the CPU, 1-2 blocks per kind, hidden sizes of 32-64,
latents of 8 x 8 tokens or less. The layouts that matter for TACA are kept: which stream comes first,
refiner calls, padding, masks, reference images, GQA, the KV-cached text prefix of HiDream-O1.
A builder of a family this ComfyUI release lacks skips the calling test with a reason.
`<family>_conds(txt, batch, seed, neg_txt, ...)` -> (positive, negative) CONDITIONING lists where a family
needs more than `text_conds`. Call comfy_env.import_comfy() first.
"""
import dataclasses
import importlib
import inspect
from types import SimpleNamespace

import pytest
import torch

from .comfy_env import import_comfy
from .tiny_models import _patcher


def text_conds(ctx_dim, extra=lambda g, length: {}):
    """conds(txt, batch=1, seed=0, neg_txt=None) -> (positive, negative): random text features of
    ctx_dim per token, plus extra(generator, length) in each cond's dict."""
    def conds(txt, batch=1, seed=0, neg_txt=None):
        g = torch.Generator().manual_seed(seed)

        def one(length):
            return [[torch.randn(batch, length, ctx_dim, generator=g), extra(g, length)]]
        return one(txt), one(txt if neg_txt is None else neg_txt)
    return conds


def _require(module: str, attr: str, what: str):
    """ComfyUI's module.attr, or skip: this release has no such family."""
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        obj = None
    if obj is None:
        pytest.skip(f"{what}: this ComfyUI release has no {module}.{attr}")
    return obj


def _supported(name: str, what: str):
    return _require("comfy.supported_models", name, what)


def _accepted(cls, config):
    """config without the keys an older release's constructor or params dataclass does not know."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return config
    return {k: v for k, v in config.items() if k in params}


# text feature width of the tiny families' conds (context_in_dim / joint_attention_dim / ...): CTX for the
# first families below, FEAT from HiDream on
CTX, FEAT = 32, 24


def tiny_qwen_image(seed=0, default_ref_method=None):
    cls = _require("comfy.ldm.qwen_image.model", "QwenImageTransformer2DModel", "Qwen-Image")
    config = dict(image_model="qwen_image", patch_size=2, in_channels=64, out_channels=16, num_layers=2,
                  attention_head_dim=16, num_attention_heads=2, joint_attention_dim=CTX, axes_dims_rope=(4, 6, 6))
    if default_ref_method is not None:
        config["default_ref_method"] = default_ref_method
    return _patcher(_supported("QwenImage", "Qwen-Image")(_accepted(cls, config)), seed)


def tiny_mage_flow(seed=0):
    cls = _require("comfy.ldm.mage_flow.model", "MageFlowTransformer2DModel", "MageFlow")
    config = dict(image_model="mage_flow", in_channels=128, out_channels=128, num_layers=2, attention_head_dim=16,
                  num_attention_heads=2, joint_attention_dim=CTX, axes_dims_rope=(4, 6, 6))
    return _patcher(_supported("MageFlow", "MageFlow")(_accepted(cls, config)), seed)


def _lumina_config(**extra):
    config = dict(image_model="lumina2", patch_size=2, in_channels=16, dim=32, n_layers=2, n_refiner_layers=1,
                  n_heads=2, n_kv_heads=1, multiple_of=16, ffn_dim_multiplier=1.0, qk_norm=True, cap_feat_dim=CTX,
                  axes_dims=[4, 6, 6], axes_lens=[300, 64, 64])
    config.update(extra)
    return config


# Z-Image's modulation fixes a 256-wide timestep embedding, so its hidden size is at least 256
_Z_IMAGE = dict(z_image_modulation=True, time_scale=1000.0, pad_tokens_multiple=32, dim=256, n_heads=4, n_kv_heads=4,
                n_layers=1, axes_dims=[16, 24, 24], multiple_of=32)


def tiny_lumina2(seed=0):
    """Lumina Image 2.0 shape: grouped KV heads, no token padding."""
    cls = _require("comfy.ldm.lumina.model", "NextDiT", "Lumina 2")
    return _patcher(_supported("Lumina2", "Lumina 2")(_accepted(cls, _lumina_config())), seed)


def tiny_z_image(seed=0, omni=False):
    """Z-Image shape: captions and image padded to multiples of 32 tokens (omni: SigLIP features too)."""
    cls = _require("comfy.ldm.lumina.model", "NextDiT", "Z-Image")
    config = _lumina_config(**_Z_IMAGE)
    if omni:
        config["siglip_feat_dim"] = 24
    if "pad_tokens_multiple" not in inspect.signature(cls.__init__).parameters:
        pytest.skip("Z-Image: this ComfyUI release's NextDiT has no token padding (no Z-Image)")
    if omni and "siglip_feat_dim" not in inspect.signature(cls.__init__).parameters:
        pytest.skip("Z-Image omni: this ComfyUI release's NextDiT takes no reference images")
    return _patcher(_supported("ZImage", "Z-Image")(config), seed)


def tiny_z_image_pixel(seed=0):
    cls = _require("comfy.ldm.lumina.model", "NextDiTPixelSpace", "Z-Image pixel space")
    config = _lumina_config(**_Z_IMAGE)
    config.update(image_model="zimage_pixel", patch_size=4, in_channels=3, decoder_hidden_size=32,
                  decoder_num_res_blocks=1, decoder_max_freqs=4)
    return _patcher(_supported("ZImagePixelSpace", "Z-Image pixel space")(_accepted(cls, config)), seed)


def tiny_krea2(seed=0, default_ref_method=None):
    cls = _require("comfy.ldm.krea2.model", "SingleStreamDiT", "Krea 2")
    config = dict(image_model="krea2", features=64, tdim=32, txtdim=CTX, heads=4, kvheads=2, multiplier=2, layers=2,
                  patch=2, channels=16, txtlayers=2, txtheads=2, txtkvheads=2, default_ref_method=default_ref_method)
    return _patcher(_supported("Krea2", "Krea 2")(config), seed)


def _chroma_config(**extra):
    return dict(image_model="chroma", in_channels=64, out_channels=64, context_in_dim=CTX, hidden_size=32,
                mlp_ratio=2.0, num_heads=2, depth=1, depth_single_blocks=1, axes_dim=[4, 6, 6], theta=10000,
                patch_size=2, qkv_bias=True, in_dim=64, out_dim=32, hidden_dim=32, n_layers=1, txt_ids_dims=[],
                vec_in_dim=None, **extra)


def _drop_unknown_params(params_cls, config, keep=("image_model",)):
    known = {f.name for f in dataclasses.fields(params_cls)} | set(keep)
    return {k: v for k, v in config.items() if k in known}


def tiny_chroma(seed=0):
    params = _require("comfy.ldm.chroma.model", "ChromaParams", "Chroma")
    return _patcher(_supported("Chroma", "Chroma")(_drop_unknown_params(params, _chroma_config())), seed)


def tiny_chroma_radiance(seed=0):
    params = _require("comfy.ldm.chroma_radiance.model", "ChromaRadianceParams", "Chroma Radiance")
    config = _chroma_config(nerf_hidden_size=16, nerf_mlp_ratio=2, nerf_depth=1, nerf_max_freqs=4,
                            nerf_tile_size=512, nerf_final_head_type="linear", nerf_embedder_dtype=torch.float32,
                            use_x0=False, use_sequential_txt_ids=False)
    config.update(image_model="chroma_radiance", in_channels=3, out_channels=3, patch_size=4)
    return _patcher(_supported("ChromaRadiance", "Chroma Radiance")(_drop_unknown_params(params, config)), seed)


def _hunyuan_config(**extra):
    config = dict(image_model="hunyuan_video", in_channels=16, out_channels=16, vec_in_dim=16, context_in_dim=CTX,
                  hidden_size=32, mlp_ratio=2.0, num_heads=2, depth=1, depth_single_blocks=1, axes_dim=[4, 6, 6],
                  theta=256, patch_size=[1, 2, 2], qkv_bias=True, guidance_embed=True, byt5=False, meanflow=False,
                  use_cond_type_embedding=False, vision_in_dim=None, meanflow_sum=False)
    config.update(extra)
    return config


def tiny_hunyuan_video(seed=0):
    params = _require("comfy.ldm.hunyuan_video.model", "HunyuanVideoParams", "HunyuanVideo")
    return _patcher(_supported("HunyuanVideo", "HunyuanVideo")(_drop_unknown_params(params, _hunyuan_config())), seed)


def tiny_hunyuan_image21(seed=0):
    """HunyuanImage 2.1 shape: 2-D patches, byT5 glyph tokens after the LLM text."""
    params = _require("comfy.ldm.hunyuan_video.model", "HunyuanVideoParams", "HunyuanImage 2.1")
    if "byt5" not in {f.name for f in dataclasses.fields(params)}:
        pytest.skip("HunyuanImage 2.1: this ComfyUI release's HunyuanVideo has no byT5 input")
    config = _hunyuan_config(byt5=True)
    config.update(in_channels=64, out_channels=64, vec_in_dim=None, patch_size=[1, 1], axes_dim=[8, 8],
                  guidance_embed=False)
    return _patcher(_supported("HunyuanImage21", "HunyuanImage 2.1")(_drop_unknown_params(params, config)), seed)


def tiny_hunyuan_video15(seed=0, vision=False):
    """HunyuanVideo 1.5 shape: byT5 glyph tokens before the LLM text; vision: SigLIP tokens in front (i2v)."""
    params = _require("comfy.ldm.hunyuan_video.model", "HunyuanVideoParams", "HunyuanVideo 1.5")
    if "use_cond_type_embedding" not in {f.name for f in dataclasses.fields(params)}:
        pytest.skip("HunyuanVideo 1.5: this ComfyUI release's HunyuanVideo has no cond_type_embedding")
    config = _hunyuan_config(byt5=True, use_cond_type_embedding=True, vision_in_dim=24 if vision else None)
    config.update(in_channels=32 + 32 + 1, out_channels=32, vec_in_dim=None, guidance_embed=False)
    return _patcher(_supported("HunyuanVideo15", "HunyuanVideo 1.5")(_drop_unknown_params(params, config)), seed)


def tiny_aura_flow(seed=0):
    cls = _require("comfy.ldm.aura.mmdit", "MMDiT", "AuraFlow")
    config = dict(in_channels=4, out_channels=4, patch_size=2, dim=32, n_layers=2, n_double_layers=1, n_heads=2,
                  global_conddim=32, cond_seq_dim=CTX, max_seq=64)
    return _patcher(_supported("AuraFlow", "AuraFlow")(_accepted(cls, config)), seed)


def tiny_flux2(seed=0):
    """FLUX.2 shape: patch 1 on 128-channel latents, global modulation, text left-padded to 512."""
    import comfy.ldm.flux.model
    fields = {f.name for f in dataclasses.fields(comfy.ldm.flux.model.FluxParams)}
    if "global_modulation" not in fields:
        pytest.skip("FLUX.2: this ComfyUI release's Flux has no global modulation (no FLUX.2)")
    config = dict(image_model="flux2", in_channels=128, out_channels=128, patch_size=1, hidden_size=32, num_heads=2,
                  depth=1, depth_single_blocks=1, context_in_dim=CTX, vec_in_dim=None, axes_dim=[4, 4, 4, 4],
                  mlp_ratio=2.0, theta=2000, qkv_bias=False, guidance_embed=True, global_modulation=True,
                  mlp_silu_act=True, ops_bias=False, default_ref_method="index", ref_index_scale=10.0,
                  txt_ids_dims=[3], yak_mlp=False, txt_norm=False)
    config = {k: v for k, v in config.items() if k in fields | {"image_model"}}
    return _patcher(_supported("Flux2", "FLUX.2")(config), seed)


def _flux_class_config(**extra):
    import comfy.ldm.flux.model
    config = dict(image_model="flux", in_channels=16, out_channels=16, patch_size=2, hidden_size=32, num_heads=2,
                  depth=1, depth_single_blocks=1, context_in_dim=CTX, vec_in_dim=16, axes_dim=[4, 6, 6],
                  mlp_ratio=2.0, theta=10000, qkv_bias=True, guidance_embed=False, txt_ids_dims=[])
    config.update(extra)
    fields = {f.name for f in dataclasses.fields(comfy.ldm.flux.model.FluxParams)} | {"image_model"}
    missing = set(extra) - fields
    return config, missing


def tiny_ovis_image(seed=0):
    """Ovis-Image: the Flux class with a gated (yak) MLP, a text norm and positional text ids."""
    config, missing = _flux_class_config(yak_mlp=True, txt_norm=True, txt_ids_dims=[1, 2])
    if missing:
        pytest.skip(f"Ovis-Image: this ComfyUI release's Flux has no {sorted(missing)}")
    return _patcher(_supported("Flux", "Ovis-Image")(config), seed)


def tiny_longcat_image(seed=0):
    """LongCat-Image: the Flux class without pooled or guidance input; rope shifted by the text length."""
    config, missing = _flux_class_config(vec_in_dim=None, txt_ids_dims=[1, 2])
    if missing:
        pytest.skip(f"LongCat-Image: this ComfyUI release's Flux has no {sorted(missing)}")
    return _patcher(_supported("LongCatImage", "LongCat-Image")(config), seed)


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
        pytest.skip(f"{name}: this ComfyUI release ({import_comfy().version}) has no "
                    f"{NEEDS[name][0]} / supported_models.{NEEDS[name][1]}")


def _build(name, unet_config, seed):
    """supported_models.<X>(unet_config) -> ModelPatcher, as tiny_models._patcher does.

    The tiny dims are written into the config after construction, since some families'
    unet_extra_config (Ideogram4's full-size heads, JoyImage's rope) would otherwise replace them.
    """
    import comfy.supported_models
    skip_unless_available(name)
    model_config = getattr(comfy.supported_models, NEEDS[name][1])(unet_config)
    model_config.unet_config.update(unet_config)
    return _patcher(model_config, seed)


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
LENS = dict(enc_dim=FEAT, layers=2)  # text features: FEAT per encoder layer


def tiny_lens(seed=0):
    return _build("lens", dict(
        image_model="lens", patch_size=2, in_channels=128, out_channels=32, num_layers=2,
        attention_head_dim=16, num_attention_heads=2, enc_hidden_dim=LENS["enc_dim"], axes_dims_rope=(4, 6, 6),
        multi_layer_encoder_feature=True, selected_layer_index=tuple(range(LENS["layers"]))), seed)


# ---------------------------------------------------------------- JoyImage
# Image first: target video/image tokens, then each reference latent's tokens, then text.


def tiny_joyimage(seed=0):
    return _build("joyimage", dict(
        image_model="joyimage", patch_size=[1, 2, 2], in_channels=16, hidden_size=32, num_attention_heads=2,
        text_dim=FEAT, num_layers=2, rope_dim_list=[4, 6, 6], theta=10000), seed)


# ---------------------------------------------------------------- ErnieImage
# Image first; its attention is called without transformer_options (see families_B.md).


def tiny_ernie(seed=0):
    return _build("ernie", dict(
        image_model="ernie", hidden_size=32, num_attention_heads=2, num_layers=2, ffn_hidden_size=64,
        in_channels=128, out_channels=128, patch_size=1, text_in_dim=FEAT, rope_axes_dim=(4, 6, 6)),
        seed)


# ---------------------------------------------------------------- Mochi
# Image (video) first; text is cut to the attention mask's token count (num_tokens) in every block.


def tiny_mochi(seed=0):
    return _build("mochi", dict(
        image_model="mochi_preview", depth=2, patch_size=2, num_heads=2, hidden_size_x=32, hidden_size_y=24,
        mlp_ratio_x=1536 * 8 / 32,  # AsymmetricJointBlock asserts an MLP width of 1536 * 8
        mlp_ratio_y=4.0, learn_sigma=False, in_channels=12, qk_norm=True, qkv_bias=False, out_bias=True,
        attn_drop=0.0, patch_embed_bias=True, posenc_preserve_area=True, timestep_mlp_bias=True,
        attend_to_padding=False, timestep_scale=1000.0, use_t5=True, t5_feat_dim=FEAT,
        t5_token_length=256, rope_theta=10000.0), seed)


# ---------------------------------------------------------------- PixelDiT (T2I)
# Text first (cut at txt_max_length; ComfyUI's real model: 300, here 16), then the patch tokens.
# Pixel blocks run image-only attention over the patches.
PIXELDIT = dict(txt_max_length=16, patch_size=4)


def tiny_pixeldit(seed=0):
    return _build("pixeldit", dict(
        image_model="pixeldit_t2i", in_channels=3, num_groups=2, hidden_size=32, pixel_hidden_size=4,
        pixel_attn_hidden_size=16, pixel_num_groups=2, patch_depth=2, pixel_depth=1,
        patch_size=PIXELDIT["patch_size"], txt_embed_dim=FEAT,
        txt_max_length=PIXELDIT["txt_max_length"]), seed)


def tiny_pid(seed=0):
    """PiD, PixelDiT's super-resolution variant: the same patch blocks, plus a low-quality latent
    projected onto the patch tokens (added, not concatenated)."""
    return _build("pid", dict(
        image_model="pid", in_channels=3, num_groups=2, hidden_size=32, pixel_hidden_size=4,
        pixel_attn_hidden_size=16, pixel_num_groups=2, patch_depth=2, pixel_depth=1,
        patch_size=PIXELDIT["patch_size"], txt_embed_dim=FEAT,
        txt_max_length=PIXELDIT["txt_max_length"], lq_latent_channels=16, lq_hidden_dim=16, lq_num_res_blocks=1,
        lq_interval=2), seed)


# ---------------------------------------------------------------- Ideogram4
# Text first; with padded text a block-diagonal [B, 1, L, L] mask (padding attends only to padding).


def tiny_ideogram4(seed=0):
    return _build("ideogram4", dict(
        image_model="ideogram4", in_channels=128, num_layers=2, num_attention_heads=2, attention_head_dim=16,
        intermediate_size=64, adaln_dim=16, llm_features_dim=FEAT, rope_theta=10000,
        mrope_section=[4, 2, 2], norm_eps=1e-5), seed)


# ---------------------------------------------------------------- OmniGen2 / Boogu
# Text first, then reference-image tokens, then the noisy image. Caption / noise / reference refiners
# (and Boogu's image self-attention) are not joint. GQA (fewer key heads) since 0.8.x passes enable_gqa.


def tiny_omnigen2(seed=0):
    return _build("omnigen2", dict(
        image_model="omnigen2", patch_size=2, in_channels=16, hidden_size=32, num_layers=2, num_refiner_layers=1,
        num_attention_heads=2, num_kv_heads=1, multiple_of=16, ffn_dim_multiplier=None, norm_eps=1e-5,
        axes_dim_rope=[4, 6, 6], axes_lens=[64, 64, 64], text_feat_dim=FEAT, timestep_scale=1000.0,
        out_channels=None), seed)


def tiny_boogu(seed=0):
    return _build("boogu", dict(
        image_model="boogu", patch_size=2, in_channels=16, hidden_size=32, num_layers=1, num_double_stream_layers=1,
        num_refiner_layers=1, num_attention_heads=2, num_kv_heads=1, multiple_of=16, norm_eps=1e-5,
        axes_dim_rope=[4, 6, 6], axes_lens=[64, 64, 64], instruction_feat_dim=FEAT,
        timestep_scale=1000.0), seed)


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


# ---------------------------------------------------------------- what text_conds adds to each cond, per family
BYT5 = 5  # glyph tokens in the HunyuanImage 2.1 / HunyuanVideo 1.5 conds


def pooled(g, length):  # the FLUX model class of older releases reads pooled_output even where the model ignores it
    return {"pooled_output": torch.randn(1, 16, generator=g)}


def text_mask(g, length):  # what Lumina 2's text encoder hands over; older releases need it (num_tokens)
    return {"attention_mask": torch.ones(1, length, dtype=torch.long)}


def hunyuan_extra(byt5=False, vision=0):
    def extra(g, length):
        out = pooled(g, length)
        if byt5:
            out["conditioning_byt5small"] = torch.randn(1, BYT5, 1472, generator=g)
        if vision:  # what CLIPVisionEncode hands over (SigLIP)
            out["clip_vision_output"] = SimpleNamespace(last_hidden_state=torch.randn(1, vision, 24, generator=g))
        return out
    return extra


def fixed_randn(*shape, seed=5):
    """The same tensor for every cond (a reference latent both conds carry)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def padding_mask(pad=0):
    """An attention_mask whose last `pad` tokens are padding (0): Lens, Ideogram4, OmniGen2 and Boogu need
    one (their num_tokens), Mochi cuts its text at it."""
    def extra(g, length):
        mask = torch.ones(1, length, dtype=torch.long)
        if pad:
            mask[:, -pad:] = 0
        return {"attention_mask": mask}
    return extra


def pid_extra(g, length):
    """PiDConditioning's low-quality latent and degradation sigma."""
    return {"lq_latent": fixed_randn(1, 16, 2, 2, seed=1), "degrade_sigma": torch.tensor([0.2])}


def with_reference(shape, extra=lambda g, length: {}):
    """extra plus one reference latent of `shape` (Qwen-Image-Edit, FLUX.2, Krea 2, JoyImage, OmniGen2, ...)."""
    return lambda g, length: {**extra(g, length), "reference_latents": [fixed_randn(*shape)]}


def z_image_omni_extra(g, length):
    """Z-Image omni edit: a reference latent with its caption (5 tokens) and SigLIP features (4 tokens)."""
    return {"reference_latents": [fixed_randn(1, 16, 8, 8)],
            "reference_latents_text_embeds": [fixed_randn(1, 5, CTX, seed=6)],
            "clip_vision_outputs": [SimpleNamespace(image_sizes=[(3, 32, 32)],
                                                    last_hidden_state=fixed_randn(1, 4, 24, seed=7))]}
