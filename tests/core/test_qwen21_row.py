"""The Qwen-Image 2.1 row: which LoRAs look like its own, and the layer's preferred attention it finds."""
from types import SimpleNamespace

import pytest

from comfyui_taca_under_test.taca_comfy.families import guess_lora_family
from comfyui_taca_under_test.taca_comfy.layouts import qwen21_layer_attention


def names(prefix, layers, sep="."):
    out = []
    for i in range(3):
        for layer in layers:
            name = f"{prefix}transformer_blocks.{i}.{layer}"
            out.append((name if sep == "." else name.replace(".", "_")) + ".lora_down.weight")
    return out


QWEN21 = ["attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "img_mlp.gate_up", "img_mlp.out"]
QWEN = ["attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "attn.add_q_proj", "attn.add_k_proj",
        "attn.add_v_proj", "attn.to_add_out", "img_mlp.net.0.proj", "img_mlp.net.2", "txt_mlp.net.0.proj",
        "txt_mlp.net.2", "img_mod.1", "txt_mod.1"]


@pytest.mark.parametrize("prefix,sep", [("diffusion_model.", "."), ("transformer.", "."), ("", "."),
                                        ("lora_unet_", "_")])
def test_lora_names_tell_qwen_image_21_from_qwen_image(prefix, sep):
    assert guess_lora_family(names(prefix, QWEN21, sep)) == ("Qwen-Image 2.1",)
    assert guess_lora_family(names(prefix, QWEN, sep)) == ("Qwen-Image",)
    # attention layers alone are named as in Qwen-Image, Krea 2 and FLUX (diffusers): no family's own names
    assert "Qwen-Image 2.1" not in guess_lora_family(names(prefix, QWEN21[:4], sep))


def test_flux_single_blocks_are_not_qwen_image_21():
    flux = [f"transformer.single_transformer_blocks.{i}.attn.to_q.lora_A.weight" for i in range(4)]
    assert guess_lora_family(flux) == ("FLUX", "Chroma", "HunyuanVideo")  # diffusers names of the FLUX blocks


def test_layer_attention_is_the_blocks_comfy_attention_function():
    def fn():
        pass
    blocks = [SimpleNamespace(attn=SimpleNamespace(comfy_attention=SimpleNamespace(function=f))) for f in (None, fn)]
    dm = SimpleNamespace(transformer_blocks=blocks)
    assert qwen21_layer_attention(dm, {"block_index": 1}) is fn
    assert qwen21_layer_attention(dm, {"block_index": 0}) is None
    assert qwen21_layer_attention(dm, {}) is None and qwen21_layer_attention(dm, {"block_index": 5}) is None
    assert qwen21_layer_attention(SimpleNamespace(transformer_blocks=[SimpleNamespace(attn=object())]),
                                  {"block_index": 0}) is None  # a release without ComfyAttention
