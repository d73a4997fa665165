"""TACA LoRA Loader on every new family: ComfyUI's own key maps, switched with TACA, named when foreign.

Each LoRA adapts two layers, named as that family's LoRAs name them (diffusers/PEFT, ComfyUI or kohya).
"""
import importlib

import pytest
import torch
from safetensors.torch import save_file

from comfy_env import import_comfy

env = import_comfy()

import comfy.lora  # noqa: E402
import nodes as comfy_nodes  # noqa: E402  (ComfyUI's nodes.py: LoraLoaderModelOnly)

import tiny_families as tf  # noqa: E402
from lora_files import _shape  # noqa: E402
from pack import load_pack  # noqa: E402
from test_families import SPECS, patch, sample  # noqa: E402

lora_node = importlib.import_module(load_pack().__name__ + ".nodes.taca_lora_loader")

# family: two layer names in a format that family's LoRAs use
LORAS = {
    "qwen_image": ["transformer.transformer_blocks.0.attn.to_q", "transformer.transformer_blocks.1.img_mlp.net.0.proj"],
    "mage_flow": ["transformer_blocks.0.attn.add_k_proj", "transformer_blocks.1.txt_mlp.net.2"],
    "lumina2": ["lora_unet_layers_0_attention_qkv", "lora_unet_layers_1_feed_forward_w1"],
    "z_image": ["transformer.layers.0.attention.to_q", "transformer.layers.0.feed_forward.w2"],  # into the fused qkv
    "krea2": ["transformer.transformer_blocks.0.attn.to_q", "transformer.transformer_blocks.1.ff.up"],
    "chroma": ["lora_unet_double_blocks_0_img_attn_qkv", "lora_unet_single_blocks_0_linear1"],
    "hunyuan_video": ["diffusion_model.double_blocks.0.img_attn.qkv", "lora_unet_single_blocks_0_linear1"],
    "aura_flow": ["transformer.joint_transformer_blocks.0.attn.to_q", "diffusion_model.single_layers.0.attn.w1q"],
    "flux2": ["lora_unet_double_blocks_0_img_attn_qkv", "lora_unet_single_blocks_0_linear2"],
}


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("family_loras")
    env.folder_paths.add_model_folder_path("loras", str(d))
    return d


def write_peft_lora(path, model, names, rank=4, seed=0, scale=0.5):
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name in names:
        assert name in key_map, f"ComfyUI does not map {name}"
        out_f, in_f = _shape(model, key_map, name)
        sd[f"{name}.lora_A.weight"] = torch.randn(rank, in_f, generator=g) * scale / in_f ** 0.5
        sd[f"{name}.lora_B.weight"] = torch.randn(out_f, rank, generator=g) * scale
    save_file(sd, str(path))
    return path.name


def taca_lora(model, name, active=lora_node.WHILE_TACA_ACTS):
    return lora_node.TACALoraLoader.execute(model=model, lora_name=name, strength=1.0, active=active).result[0]


@pytest.mark.parametrize("family", list(LORAS))
def test_family_lora(lora_dir, family):
    spec = SPECS[family]
    base = spec.build()
    name = write_peft_lora(lora_dir / f"{family}.safetensors", base, LORAS[family])
    comfys = comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(base, name, 1.0)[0]
    # every step: ComfyUI's own LoRA loading
    every = sample(taca_lora(base, name, lora_node.EVERY_STEP), spec)
    assert torch.equal(every, sample(comfys, spec))
    assert (every - sample(base, spec)).abs().max() > 1e-3, "the LoRA had no effect"
    # while TACA acts: on for every step of a cutoff-0 patch, off when gamma is 1
    on = sample(patch(taca_lora(base, name)), spec)
    torch.testing.assert_close(on, sample(patch(comfys), spec), atol=1e-5, rtol=1e-5)
    assert torch.equal(sample(patch(taca_lora(base, name), gamma=1.0), spec), sample(base, spec))


def test_a_lora_for_another_family_is_named(lora_dir):
    """Krea 2's diffusers names share transformer_blocks.N.attn.to_q with Qwen-Image's: one layer maps."""
    qwen = SPECS["qwen_image"].build()
    name = write_peft_lora(lora_dir / "qwen_for_krea.safetensors", qwen, LORAS["qwen_image"])
    with pytest.raises(ValueError, match=r"TACALoraLoader: .* matches 1 of its 2 layers in this Krea2 model"
                                         r".*look like a Qwen-Image LoRA"):
        taca_lora(tf.tiny_krea2(), name)
