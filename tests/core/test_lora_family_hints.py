"""Which family a LoRA's keys look like, for the families added with issue 8 (part B).

A LoRA for a supported family must be named after that family (the TACA LoRA Loader refuses a LoRA
that looks like another supported family), and other models' LoRAs must not be taken for one of them.
Layer names are ComfyUI's (diffusion_model.*), diffusers/SimpleTuner (transformer.* or bare) and kohya.
"""
import pytest

from comfyui_taca_under_test.taca_comfy.families import FAMILIES
from comfyui_taca_under_test.taca_comfy.families import guess_lora_family


@pytest.mark.parametrize("layer,family", [
    ("diffusion_model.double_blocks.0.attn.img_attn_qkv", "JoyImage"),
    ("lora_unet_double_blocks_3_attn_txt_attn_proj", "JoyImage"),
    ("diffusion_model.transformer_blocks.0.attn.img_qkv", "Lens"),
    ("lora_unet_transformer_blocks_7_attn_txt_qkv", "Lens"),
    ("transformer.double_stream_blocks.0.block.attn1.to_q", "HiDream"),
    ("lycoris_single_stream_blocks_4_block_attn1_to_k", "HiDream"),
    ("double_stream_layers.0.img_instruct_attn.processor.img_to_q", "Boogu"),
    ("single_stream_layers.2.attn.to_q", "Boogu"),
    ("ref_image_refiner.0.attn.to_q", "OmniGen2"),
    ("diffusion_model.patch_blocks.0.attn.qkv_x", "PixelDiT"),
    ("blocks.0.attn.qkv_x", "Mochi"),
    ("lora_unet_blocks_5_mod_y", "Mochi"),
    ("diffusion_model.llm_cond_proj", "Ideogram4"),
    ("diffusion_model.language_model.layers.0.self_attn.q_proj", "HiDream-O1"),
    ("transformer.layers.0.self_attention.to_k", "ErnieImage"),
    ("lora_unet_layers_3_self_attention_to_k", "ErnieImage"),
    # names Lumina 2 / Qwen-Image share the shape of
    ("diffusion_model.layers.0.attention.o", "Ideogram4"),
    ("layers.3.feed_forward.linear_2", "OmniGen2"),
    ("noise_refiner.0.attn.to_q", "OmniGen2"),  # Lumina's refiners use attention.qkv... but not attn.to_q
    ("transformer_blocks.0.img_mlp.w2", "Lens"),
])
def test_layer_names_name_their_family(layer, family):
    assert guess_lora_family([f"{layer}.lora_down.weight", f"{layer}.lora_up.weight"]) == (family, (family,))


OURS = ("JoyImage", "Lens", "HiDream", "Boogu", "OmniGen2", "PixelDiT", "Mochi", "Ideogram4", "HiDream-O1",
        "ErnieImage")


@pytest.mark.parametrize("layer", [
    "lora_unet_double_blocks_0_img_attn_qkv",  # FLUX (kohya)
    "diffusion_model.double_blocks.0.img_attn.qkv",  # FLUX
    "diffusion_model.double_blocks.0.img_attn_qkv",  # HunyuanVideo (img_attn_qkv right under the block)
    "transformer.transformer_blocks.0.attn.add_q_proj",  # FLUX / SD3 / Qwen-Image diffusers
    "diffusion_model.visual_transformer_blocks.0.self_attention.to_key",  # Kandinsky5
    "diffusion_model.blocks.0.adaln_modulation_self_attn.1",  # Cosmos
    "diffusion_model.transformer_blocks.0.caption_projection.linear_1",  # LTX-Video
    "diffusion_model.layers.0.attention.qkv",  # Lumina 2
    "lora_unet_layers_0_attention_out",  # Lumina 2 (kohya)
    "diffusion_model.noise_refiner.0.attention.qkv",  # Lumina 2 refiner
    "transformer.transformer_blocks.12.img_mlp.net.0.proj",  # Qwen-Image
])
def test_other_models_are_not_taken_for_ours(layer):
    assert guess_lora_family([f"{layer}.lora_down.weight"]).label not in OURS


def test_every_family_hint_names_a_row_of_the_table():
    from comfyui_taca_under_test.taca_core import lora_keys
    assert {label for label, _, _ in lora_keys._FAMILY_HINTS} >= set(OURS)
    assert set(OURS) <= {f.name for f in FAMILIES}
