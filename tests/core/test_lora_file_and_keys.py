import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from comfyui_taca_under_test.taca_comfy.lora_file import LoraFileError, load_lora_state_dict
from comfyui_taca_under_test.taca_comfy.families import guess_lora_family
from comfyui_taca_under_test.taca_comfy.lora_file import lora_layer_names


def test_loads_safetensors(tmp_path):
    save_file({"a.lora_A.weight": torch.ones(2, 3)}, str(tmp_path / "ok.safetensors"))
    assert torch.equal(load_lora_state_dict(tmp_path / "ok.safetensors")["a.lora_A.weight"], torch.ones(2, 3))


class Tripwire:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")  # unpickling would create the file


@pytest.mark.parametrize("how", ["pickle", "torch_zip"])
def test_refuses_pickles_without_unpickling(tmp_path, how):
    marker = tmp_path / "unpickled"
    path = tmp_path / "lora.safetensors"
    if how == "pickle":
        path.write_bytes(pickle.dumps(Tripwire(str(marker)), protocol=2))
    else:
        torch.save({"x": Tripwire(str(marker))}, path)
    with pytest.raises(LoraFileError, match="pickled PyTorch file"):
        load_lora_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"\x05\x00", struct.pack("<Q", 10**9) + b"{}",
                                     struct.pack("<Q", 4) + b"\xff\xfe{}", struct.pack("<Q", 2) + b"{}junk"])
def test_corrupt_files(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(LoraFileError, match="safetensors file"):
        load_lora_state_dict(path)


def test_layer_names_across_formats():
    keys = ["transformer.transformer_blocks.0.attn.to_q.lora_A.weight",
            "transformer.transformer_blocks.0.attn.to_q.lora_B.weight",
            "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight",
            "lora_unet_double_blocks_0_img_attn_qkv.alpha",
            "diffusion_model.single_blocks.0.linear1.lora.up.weight",
            "diffusion_model.img_in.diff_b"]
    assert lora_layer_names(keys) == {"transformer.transformer_blocks.0.attn.to_q",
                                      "lora_unet_double_blocks_0_img_attn_qkv",
                                      "diffusion_model.single_blocks.0.linear1", "diffusion_model.img_in"}


@pytest.mark.parametrize("key,label,families", [
    ("transformer.single_transformer_blocks.3.proj_out.lora_A.weight", "FLUX (or Chroma, HunyuanVideo)",
     ("FLUX", "Chroma", "HunyuanVideo")),
    ("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", "FLUX (or Chroma, HunyuanVideo)",
     ("FLUX", "Chroma", "HunyuanVideo")),
    ("lora_unet_joint_blocks_0_x_block_attn_qkv.lora_down.weight", "SD3", ("SD3",)),
    ("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", "SD1.x/SDXL (UNet)", ()),
    ("transformer.transformer_blocks.0.attn.to_q.lora_A.weight", "MM-DiT (transformer_blocks)", None),
    # Qwen-Image (and MageFlow): diffusers and ComfyUI names, kohya
    ("transformer.transformer_blocks.12.img_mlp.net.0.proj.lora_A.weight", "Qwen-Image", ("Qwen-Image",)),
    ("diffusion_model.transformer_blocks.0.txt_mod.1.lora_down.weight", "Qwen-Image", ("Qwen-Image",)),
    ("lora_unet_transformer_blocks_3_img_mlp_net_2.lora_down.weight", "Qwen-Image", ("Qwen-Image",)),
    # Lumina 2 / Z-Image
    ("diffusion_model.layers.4.attention.qkv.lora_A.weight", "Lumina 2 / Z-Image", ("Lumina2",)),
    ("transformer.layers.0.feed_forward.w1.lora_B.weight", "Lumina 2 / Z-Image", ("Lumina2",)),
    ("lora_unet_layers_0_attention_out.lora_up.weight", "Lumina 2 / Z-Image", ("Lumina2",)),
    ("diffusion_model.noise_refiner.0.attention.qkv.lora_A.weight", "Lumina 2 / Z-Image", ("Lumina2",)),
    # Krea 2
    ("diffusion_model.blocks.3.attn.wq.lora_A.weight", "Krea 2", ("Krea2",)),
    ("transformer.transformer_blocks.0.attn.to_gate.lora_A.weight", "Krea 2", ("Krea2",)),
    ("transformer.transformer_blocks.0.ff.down.lora_A.weight", "Krea 2", ("Krea2",)),
    # AuraFlow
    ("diffusion_model.double_layers.0.attn.w1q.lora_A.weight", "AuraFlow", ("AuraFlow",)),
    ("transformer.joint_transformer_blocks.0.attn.to_q.lora_A.weight", "AuraFlow", ("AuraFlow",)),
    # HunyuanVideo's own parts
    ("transformer.txt_in.individual_token_refiner.blocks.0.self_attn_qkv.lora_A.weight", "HunyuanVideo",
     ("HunyuanVideo",)),
    ("something.else", "unknown", None),
])
def test_family_guess(key, label, families):
    assert guess_lora_family([key]) == (label, families)


def test_family_guess_names_real_families():
    from comfyui_taca_under_test.taca_comfy.families import FAMILIES
    from comfyui_taca_under_test.taca_core.lora_keys import _FAMILY_HINTS
    names = {f.name for f in FAMILIES}
    for _, families, _ in _FAMILY_HINTS:
        assert families is None or set(families) <= names
