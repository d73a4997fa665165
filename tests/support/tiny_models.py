"""Tiny, randomly initialised (seeded) models built with ComfyUI's own classes, fp32 on the CPU.

Each builder goes the way ComfyUI's loader does (comfy.sd.load_diffusion_model_state_dict):
supported_models.<Family>(unet_config) -> set_inference_dtype -> get_model -> ModelPatcher, except that
the weights come from a seeded generator instead of a checkpoint. Call comfy_env.import_comfy() first.
"""
import dataclasses
import math

import torch

CPU = torch.device("cpu")

# The tiny dims. Conditioning tensors built by make_conds use the *_DIM entries.
FLUX = dict(hidden_size=64, num_heads=4, depth=2, depth_single_blocks=2, context_in_dim=32, vec_in_dim=16,
            axes_dim=[4, 6, 6])  # rope axes (index, h, w): sum == head_dim == 64 // 4
SD3 = dict(depth=2,  # MMDiT fixes head_dim = 64: hidden = 64 * depth = 128, heads = depth = 2
           context_dim=32, adm_in_channels=32, pos_embed_max_size=16)  # pos table 16x16 patches: latents <= 32x32
SDXL = dict(model_channels=64, context_dim=32, adm_in_channels=2816)  # adm: 1280 pooled + 6 * 256 size embeds
CONTEXT_DIM = {"flux": FLUX["context_in_dim"], "sd3": SD3["context_dim"], "sdxl": SDXL["context_dim"]}
POOLED_DIM = {"flux": FLUX["vec_in_dim"], "sd3": SD3["adm_in_channels"], "sdxl": 1280}


def init_weights_(module, seed):
    """Deterministically overwrite every float parameter and buffer of `module`.

    ComfyUI's default ops (comfy.ops.disable_weight_init) skip initialisation, so weights start as
    torch.empty garbage. Matrices get N(0, 1/fan_in) (variance preserving, so attention logits are
    O(1) and the text path visibly matters), norm scales 1 + N(0, 0.02^2), everything else
    (biases, modulation, MMDiT's pos_embed buffer) N(0, 0.02^2).
    """
    g = torch.Generator().manual_seed(seed)
    norm_weights = {id(m.weight) for m in module.modules()
                    if "norm" in type(m).__name__.lower() and getattr(m, "weight", None) is not None}
    named = list(module.named_parameters()) + list(module.named_buffers())
    with torch.no_grad():
        for name, t in sorted(named, key=lambda kv: kv[0]):  # sorted: order-independent of construction
            if not t.is_floating_point():
                continue
            noise = torch.randn(t.shape, generator=g, dtype=torch.float32)
            if id(t) in norm_weights or name.endswith(".scale"):  # .scale: Flux's RMSNorm/QKNorm
                t.copy_(1.0 + 0.02 * noise)
            elif t.ndim >= 2 and "pos_embed" not in name:
                t.copy_(noise / (t[0].numel() ** 0.5))  # fan_in = numel of one output row
            else:
                t.copy_(0.02 * noise)
    return module


def _patcher(model_config, seed, device=CPU, dtype=torch.float32):
    """device, dtype: where and in which dtype the model runs (the benchmarks' --device / --dtype)."""
    import comfy.model_patcher
    model_config.set_inference_dtype(dtype, None)  # weights in dtype, no manual cast
    model = model_config.get_model({}, device=CPU)
    init_weights_(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device(device), offload_device=CPU)


def flux_config(**dims):
    """ComfyUI's model config of a FLUX.1-dev-shaped model (guidance-distilled): double + single stream blocks.

    dims: overrides of FLUX (the benchmark builds a larger one).
    """
    import comfy.ldm.flux.model
    import comfy.supported_models
    unet_config = dict(
        image_model="flux", in_channels=16, out_channels=16, patch_size=2,  # in_channels = latent channels
        mlp_ratio=4.0, theta=10000, qkv_bias=True, guidance_embed=True,
        # keys that only newer ComfyUI (0.8.x) has; dropped below if its FluxParams lacks them
        txt_ids_dims=[], yak_mlp=False, txt_norm=False,
        **{**FLUX, **dims})
    known = {f.name for f in dataclasses.fields(comfy.ldm.flux.model.FluxParams)} | {"image_model"}
    unet_config = {k: v for k, v in unet_config.items() if k in known}
    return comfy.supported_models.Flux(unet_config)


def tiny_flux(seed=0, device=CPU, dtype=torch.float32, **dims):
    """A FLUX.1-dev-shaped model with seeded random weights; dims: see flux_config."""
    return _patcher(flux_config(**dims), seed, device, dtype)


def tiny_sd3(seed=0, x_block_self_attn_layers=(), qk_norm=None):
    """An SD3-shaped MMDiT (joint blocks; the last one is context pre-only).

    x_block_self_attn_layers: the joint blocks that get SD3.5-medium's extra image-only self
    attention (x_block.attn2); SD3.5 medium also uses qk_norm="rms".
    """
    import comfy.supported_models
    n = SD3["pos_embed_max_size"]
    unet_config = dict(
        in_channels=16, out_channels=16, patch_size=2, depth=SD3["depth"], input_size=None,
        adm_in_channels=SD3["adm_in_channels"],
        context_embedder_config={"target": "torch.nn.Linear",
                                 "params": {"in_features": SD3["context_dim"], "out_features": 64 * SD3["depth"]}},
        num_patches=n * n, pos_embed_max_size=n, pos_embed_scaling_factor=None,
        x_block_self_attn_layers=list(x_block_self_attn_layers))
    if qk_norm is not None:
        unet_config["qk_norm"] = qk_norm
    return _patcher(comfy.supported_models.SD3(unet_config), seed)


def tiny_sdxl(seed=0):
    """A small SDXL-style UNet (not an MM-DiT): 2 levels, one transformer block at level 2 and middle."""
    import comfy.supported_models
    unet_config = dict(
        image_size=32, in_channels=4, out_channels=4, model_channels=SDXL["model_channels"],
        num_res_blocks=[1, 1], channel_mult=[1, 2], transformer_depth=[0, 1], transformer_depth_output=[0, 0, 1, 1],
        transformer_depth_middle=1, context_dim=SDXL["context_dim"], adm_in_channels=SDXL["adm_in_channels"],
        num_classes="sequential", use_spatial_transformer=True, use_linear_in_transformer=True, legacy=False,
        use_checkpoint=False, use_temporal_attention=False, use_temporal_resblock=False)
    # (SDXL's unet_extra_config then adds num_heads=-1, num_head_channels=64.)
    return _patcher(comfy.supported_models.SDXL(unet_config), seed)


def make_conds(model_kind, txt_len, batch=1, seed=0, neg_txt_len=None, guidance=3.5):
    """(positive, negative) ComfyUI CONDITIONING lists for a tiny model of `model_kind`.

    model_kind: "flux", "sd3" or "sdxl". Each is [[cond [batch, len, ctx_dim], {"pooled_output":
    [batch, pooled_dim], ...}]]; FLUX conds also carry "guidance" (FLUX.1-dev's distilled guidance).
    The negative has neg_txt_len tokens (default txt_len) and its own random draw.
    """
    g = torch.Generator().manual_seed(seed)

    def one(length):
        extra = {"pooled_output": torch.randn(batch, POOLED_DIM[model_kind], generator=g)}
        if model_kind == "flux":
            extra["guidance"] = guidance
        return [[torch.randn(batch, length, CONTEXT_DIM[model_kind], generator=g), extra]]

    positive = one(txt_len)
    negative = one(txt_len if neg_txt_len is None else neg_txt_len)
    return positive, negative


def run_sample(model, positive, negative, *, steps=4, cfg=1.0, seed=0, sampler_name="euler", scheduler="simple",
               latent_hw=(16, 16), batch=1, denoise=1.0, latent=None, callback=None):
    """Run comfy.sample.sample like KSampler's common_ksampler; returns the denoised latent [B, C, H, W].

    latent_hw is in latent pixels (the image is 8x larger). `latent` (optional) replaces the empty latent,
    for denoise < 1. With cfg == 1.0 ComfyUI skips the negative entirely. callback(step, x0, x, total_steps)
    is called after every step.
    """
    import comfy.sample
    if latent is None:
        channels = model.get_model_object("latent_format").latent_channels
        latent = torch.zeros(batch, channels, *latent_hw)
    latent = comfy.sample.fix_empty_latent_channels(model, latent)
    noise = comfy.sample.prepare_noise(latent, seed)
    return comfy.sample.sample(model, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent,
                               denoise=denoise, disable_pbar=True, seed=seed, callback=callback)


def cutoff_between_steps(model, steps, n_active, scheduler="simple"):
    """A timestep cutoff with exactly the first n_active of `steps` steps at or above it."""
    import comfy.samplers
    t = (1000 * comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), scheduler, steps)
         .double()).tolist()
    return math.floor((t[n_active - 1] + t[n_active]) / 2)


def model_call(model, sigma, *, kind="flux", txt_len=9, seed=0, latent_hw=(16, 16), load=True):
    """One apply_model call of `model` at `sigma`, as a sampler makes it (its wrappers included).

    load: load the model first (comfy.model_management.load_models_gpu), as sampling does.
    """
    import comfy.model_management
    if load:
        comfy.model_management.load_models_gpu([model])
    (cond, extra), = make_conds(kind, txt_len, seed=seed)[0]
    channels = model.get_model_object("latent_format").latent_channels
    x = torch.randn(1, channels, *latent_hw, generator=torch.Generator().manual_seed(seed))
    kwargs = {"y": extra["pooled_output"]}
    if "guidance" in extra:
        kwargs["guidance"] = torch.tensor([extra["guidance"]])
    options = {**model.model_options["transformer_options"], "wrappers": model.wrappers}
    with torch.no_grad():
        return model.model.apply_model(x, torch.tensor([sigma]), c_crossattn=cond, transformer_options=options,
                                       **kwargs)
