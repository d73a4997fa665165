"""Tiny LoRA files in the key formats people have, written with safetensors for the tiny models.

Layer names are written out by hand per format (what ai-toolkit/diffusers, kohya and ComfyUI write);
only the tensor shapes are read from the model.
"""
import torch
from safetensors.torch import save_file

FLUX_DOUBLE = 2
FLUX_SINGLE = 2
SD3_DEPTH = 2


def layer_names(model_kind, fmt):
    if model_kind == "flux":
        if fmt == "diffusers":
            return ([f"transformer.transformer_blocks.{i}.attn.{p}" for i in range(FLUX_DOUBLE)
                     for p in ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj", "to_out.0",
                               "to_add_out")]
                    + [f"transformer.single_transformer_blocks.{i}.{p}" for i in range(FLUX_SINGLE)
                       for p in ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp", "proj_out")])
        if fmt == "kohya":
            return ([f"lora_unet_double_blocks_{i}_{p}" for i in range(FLUX_DOUBLE)
                     for p in ("img_attn_qkv", "txt_attn_qkv", "img_attn_proj", "txt_attn_proj", "img_mlp_0")]
                    + [f"lora_unet_single_blocks_{i}_{p}" for i in range(FLUX_SINGLE) for p in ("linear1", "linear2")])
        if fmt == "comfy":
            return ([f"diffusion_model.double_blocks.{i}.{p}" for i in range(FLUX_DOUBLE)
                     for p in ("img_attn.qkv", "txt_attn.qkv", "img_attn.proj")]
                    + [f"diffusion_model.single_blocks.{i}.linear1" for i in range(FLUX_SINGLE)])
    if model_kind == "sd3":
        last = SD3_DEPTH - 1  # the last joint block's context side is pre-only (no output projection)
        if fmt == "diffusers":
            return [f"transformer.transformer_blocks.{i}.{p}" for i in range(SD3_DEPTH)
                    for p in ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "attn.add_q_proj",
                              "attn.add_k_proj", "attn.add_v_proj", "ff.net.0.proj", "ff.net.2")
                    ] + [f"transformer.transformer_blocks.{i}.attn.to_add_out" for i in range(last)]
        if fmt == "kohya":
            return [f"lora_unet_joint_blocks_{i}_{p}" for i in range(SD3_DEPTH)
                    for p in ("x_block_attn_qkv", "context_block_attn_qkv", "x_block_attn_proj", "x_block_mlp_fc1")]
        if fmt == "comfy":
            return [f"diffusion_model.joint_blocks.{i}.{p}" for i in range(SD3_DEPTH)
                    for p in ("x_block.attn.qkv", "context_block.attn.qkv", "x_block.mlp.fc2")]
    raise ValueError((model_kind, fmt))


def _shape(model, key_map, name):
    target = key_map[name]
    weight_key, offset = (target, None) if isinstance(target, str) else target[:2]
    weight = model.model.state_dict()[weight_key]
    out_features = offset[2] if offset else weight.shape[0]
    return out_features, weight.shape[1]


def write_lora(path, model, model_kind, fmt, rank=4, seed=0, scale=0.5, dora=False):
    """A random LoRA for `model` in `fmt`; every layer name must be one ComfyUI maps for this model.

    dora: also write DoRA magnitudes (`.dora_scale`, one per output row), for the kohya/comfy formats.
    """
    import comfy.lora
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name in layer_names(model_kind, fmt):
        assert name in key_map, f"ComfyUI does not map {name}"
        out_f, in_f = _shape(model, key_map, name)
        down = torch.randn(rank, in_f, generator=g) * scale / in_f ** 0.5
        up = torch.randn(out_f, rank, generator=g) * scale
        if fmt == "diffusers":  # PEFT names, no alpha (what ai-toolkit / diffusers write)
            sd[f"{name}.lora_A.weight"], sd[f"{name}.lora_B.weight"] = down, up
        else:
            sd[f"{name}.lora_down.weight"], sd[f"{name}.lora_up.weight"] = down, up
            sd[f"{name}.alpha"] = torch.tensor(float(rank) / 2)
        if dora:
            sd[f"{name}.dora_scale"] = 1.0 + 0.1 * torch.randn(out_f, 1, generator=g)
    save_file(sd, str(path))
    return path


def resized_lora(sd, up=1, down=1, rank=0, only=None):
    """sd's LoRA pairs (or only layer `only`'s) redrawn for another model: `up` times its outputs, `down` times
    its inputs, `rank` more rows in each down matrix than its up matrix has columns."""
    for k in [k for k in sd if k.endswith(".lora_up.weight") and (only is None or k.startswith(only))]:
        layer = k.removesuffix(".lora_up.weight")
        u, d = sd[k], sd[layer + ".lora_down.weight"]
        sd[k] = torch.randn(u.shape[0] * up, u.shape[1])
        sd[layer + ".lora_down.weight"] = torch.randn(d.shape[0] + rank, d.shape[1] * down)
