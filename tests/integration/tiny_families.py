"""Tiny, randomly initialised models of the newer joint-attention families, built with ComfyUI's own classes.

Same route as tiny_models (supported_models.<X>(unet_config) -> get_model -> ModelPatcher, seeded
weights). A family this ComfyUI release lacks skips the calling test with a reason. Every model is
as small as its class allows: hidden 32-64, 1-2 blocks of each kind, latents of 8 x 8 tokens or less.
"""
import dataclasses
import importlib

import pytest

from tiny_models import _patcher


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
    import inspect
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return config
    return {k: v for k, v in config.items() if k in params}


# text feature width every tiny family's conditioning uses (context_in_dim / joint_attention_dim / ...)
CTX = 32


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
    if "pad_tokens_multiple" not in __import__("inspect").signature(cls.__init__).parameters:
        pytest.skip("Z-Image: this ComfyUI release's NextDiT has no token padding (no Z-Image)")
    if omni and "siglip_feat_dim" not in __import__("inspect").signature(cls.__init__).parameters:
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
    import torch
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
