"""A tiny, randomly initialised (seeded) Qwen-Image 2.1 with ComfyUI's own classes (the backport onto 0.33.0).

Built the way ComfyUI's loader does (supported_models.QwenImage21(unet_config) -> set_inference_dtype ->
get_model -> ModelPatcher), fp32 on the CPU: 2 blocks, 2 heads x 16, rope axes (4, 6, 6) (the detector has no
key for them; the default needs head_dim 128), context dim 24. Latents are [B, 64, h, w], one token per latent
pixel: the target (4, 6) is 24 tokens, a reference (2, 3) is 6. `conds` emits what TextEncodeQwenImage21 does
with a VAE: the prompt's embedding with `reference_latents` and the `image_slots` where each one is spliced in.
Call comfy_env.import_comfy() first; `skip_unless_available()` skips on releases without Qwen-Image 2.1.
"""
import importlib

import pytest
import torch

from tiny_models import CPU, init_weights_, run_sample

CONTEXT_DIM = 24
LATENT = (64, 4, 6)   # one sample: 24 target tokens
REF_HW = (2, 3)       # 6 tokens per reference
UNET = dict(image_model="qwen_image21", in_channels=64, out_channels=64, num_layers=2, attention_head_dim=16,
            num_attention_heads=2, context_in_dim=CONTEXT_DIM, mlp_ratio=3, fused_mlp=True, axes_dims_rope=[4, 6, 6])


def available() -> bool:
    """Whether this tree has Qwen-Image 2.1. A tree that has its model file must import it: an error then
    fails the tests instead of skipping them."""
    import comfy_env
    if not (comfy_env.import_comfy().path / "comfy" / "ldm" / "qwen_image21" / "model.py").is_file():
        return False
    importlib.import_module("comfy.ldm.qwen_image21.model")
    import comfy.supported_models
    return hasattr(comfy.supported_models, "QwenImage21")


def skip_unless_available():
    if not available():
        import comfy_env
        # "not in this ComfyUI tree": tools/run_tests.py --strict accepts a module skipped only for that
        pytest.skip(f"Qwen-Image 2.1 is not in this ComfyUI tree ({comfy_env.import_comfy().version}): it has "
                    "no comfy/ldm/qwen_image21/model.py (ComfyUI 0.37.0 and later, or the backport onto 0.33.0)")


def build(seed=0, fused_mlp=True):
    import comfy.model_patcher
    import comfy.supported_models
    unet = dict(UNET, fused_mlp=fused_mlp)
    model_config = comfy.supported_models.QwenImage21(unet)
    model_config.unet_config.update(unet)
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({}, device=CPU)
    init_weights_(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=CPU, offload_device=CPU)


def conds(txt, neg_txt, seed=0, refs=0, slots=None, neg_slots=None):
    """(positive, negative) of txt / neg_txt text tokens, each with `refs` reference latents of REF_HW
    (the same images on both, as TextEncodeQwenImage21 gives them) at image_slots `slots` / `neg_slots`
    (None: no image_slots, the model's default of after all text)."""
    g = torch.Generator().manual_seed(seed)
    ref_latents = [torch.randn(1, 64, *REF_HW, generator=g) for _ in range(refs)]

    def one(length, image_slots):
        extra = {}
        if ref_latents:
            extra["reference_latents"] = ref_latents
        if image_slots is not None:
            extra["image_slots"] = list(image_slots)
        return [[torch.randn(1, length, CONTEXT_DIM, generator=g), extra]]
    return one(txt, slots), one(neg_txt, neg_slots)


def without_prefix_cache(model):
    """A clone with the prefix cache off, as the QwenImage21Cache node (device=off) sets it."""
    m = model.clone()
    m.model_options["transformer_options"]["qwen_image21_cache"] = {"device": "off"}
    return m


def sample(model, txt, neg_txt, *, cfg=2.0, batch=2, steps=3, seed=0, denoise=1.0, **cond_kw):
    pos, neg = conds(txt, neg_txt, seed=seed, **cond_kw)
    return run_sample(model, pos, neg, steps=steps, cfg=cfg, seed=seed, latent=torch.zeros(batch, *LATENT),
                      denoise=denoise)
