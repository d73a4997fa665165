"""Which family a LoRA's layer names look like (the lora_hint of each row of the family table).

A LoRA is guessed to be for the rows whose hint matches the most of its layer names. A family's own
names guess that family (rows that share a block layout tie: FLUX, Chroma and HunyuanVideo), and other
models' LoRAs are not taken for ours. Layer names are ComfyUI's (diffusion_model.*), diffusers' or
SimpleTuner's (transformer.* or bare) and kohya's (lora_unet_*), as lora_file.lora_layer_names gives them.
"""
import pytest

from comfyui_taca_under_test.taca_comfy.families import FAMILIES, guess_lora_family, lora_family_label

FLUX_LIKE = ("FLUX", "Chroma", "HunyuanVideo")


def _blocks(prefix, *layers):
    return [f"{prefix}{layer}" for layer in layers]


# a typical LoRA per family and name style: its layer names, and the guess they must give
LORAS = {
    "FLUX": (_blocks("diffusion_model.double_blocks.0.", "img_attn.qkv", "img_attn.proj", "img_mlp.0", "img_mlp.2",
                     "img_mod.lin", "txt_attn.qkv", "txt_mlp.0")
             + _blocks("diffusion_model.single_blocks.0.", "linear1", "linear2", "modulation.lin"), FLUX_LIKE),
    "FLUX diffusers": (_blocks("transformer.transformer_blocks.0.attn.", "to_q", "to_k", "add_q_proj", "to_add_out")
                       + _blocks("transformer.single_transformer_blocks.0.", "attn.to_q", "proj_mlp", "proj_out"),
                       FLUX_LIKE),
    "FLUX.2": (["diffusion_model.double_stream_modulation_img.lin", "diffusion_model.single_stream_modulation.lin"]
               + _blocks("diffusion_model.double_blocks.0.", "img_attn.qkv", "img_mlp.0"), ("FLUX",)),
    "Chroma": (["diffusion_model.distilled_guidance_layer.in_proj", "diffusion_model.nerf_blocks.0.param_generator"]
               + _blocks("diffusion_model.double_blocks.0.", "img_attn.qkv", "txt_attn.proj", "img_mlp.0"), ("Chroma",)),
    "HunyuanVideo": (_blocks("diffusion_model.double_blocks.0.", "img_attn_qkv", "img_mlp.fc1", "img_mod.linear")
                     + ["diffusion_model.txt_in.individual_token_refiner.blocks.0.self_attn_qkv",
                        "diffusion_model.byt5_in.fc1"], ("HunyuanVideo",)),
    "HunyuanVideo kohya": (_blocks("lora_unet_double_blocks_0_", "img_attn_qkv", "txt_attn_proj", "img_mlp_0"),
                           FLUX_LIKE),  # kohya's FLUX names equal ComfyUI's HunyuanVideo names
    "SD3": (_blocks("lora_unet_joint_blocks_0_", "x_block_attn_qkv", "context_block_attn_proj", "x_block_mlp_fc1"),
            ("SD3",)),
    "SD3 diffusers": (_blocks("transformer.transformer_blocks.0.", "attn.to_q", "attn.add_k_proj", "attn.to_add_out",
                              "ff_context.net.0.proj", "norm1_context.linear"),
                      ("FLUX", "SD3", "Qwen-Image", "Chroma", "HunyuanVideo")),  # FLUX's double blocks look the same
    "Qwen-Image": (_blocks("transformer.transformer_blocks.12.", "attn.to_q", "attn.add_q_proj", "img_mlp.net.0.proj",
                           "txt_mlp.net.2", "img_mod.1"), ("Qwen-Image",)),
    "Qwen-Image kohya": (_blocks("lora_unet_transformer_blocks_3_", "img_mlp_net_2", "txt_mod_1"), ("Qwen-Image",)),
    "Lumina2": (_blocks("diffusion_model.layers.4.", "attention.qkv", "attention.out", "feed_forward.w1",
                        "adaLN_modulation.0") + ["diffusion_model.noise_refiner.0.attention.qkv",
                                                 "diffusion_model.cap_embedder.1"], ("Lumina2",)),
    "Lumina2 kohya": (["lora_unet_layers_0_attention_out", "lora_unet_layers_0_feed_forward_w2"], ("Lumina2",)),
    "Krea2": (_blocks("diffusion_model.blocks.3.", "attn.wq", "attn.wo", "mlp.gate", "mlp.down")
              + ["diffusion_model.txtfusion.refiner_blocks.0.attn.wk"], ("Krea2",)),
    "Krea2 diffusers": (_blocks("transformer.transformer_blocks.0.", "attn.to_gate", "ff.down", "attn.to_q"),
                        ("Krea2",)),
    "AuraFlow": (_blocks("diffusion_model.double_layers.0.", "attn.w1q", "attn.w2k", "mlpX.c_fc1")
                 + ["diffusion_model.single_layers.0.attn.w1o"], ("AuraFlow",)),
    "AuraFlow diffusers": (_blocks("transformer.joint_transformer_blocks.0.attn.", "to_q", "add_q_proj"),
                           ("AuraFlow",)),
    "HiDream": (["transformer.double_stream_blocks.0.block.attn1.to_q", "lycoris_single_stream_blocks_4_block_attn1_to_k"],
                ("HiDream",)),
    "Lens": (_blocks("diffusion_model.transformer_blocks.0.", "attn.img_qkv", "attn.txt_qkv", "img_mlp.w2",
                     "txt_mlp.w1", "img_mod.1"), ("Lens",)),
    "JoyImage": (_blocks("diffusion_model.double_blocks.0.", "attn.img_attn_qkv", "attn.txt_attn_proj",
                         "img_mlp.net.0.proj") + ["lora_unet_double_blocks_3_attn_txt_attn_proj"], ("JoyImage",)),
    "Mochi": (_blocks("blocks.0.", "attn.qkv_x", "attn.proj_y", "mlp_x.w1", "mod_y") + ["lora_unet_blocks_5_mod_y"],
              ("Mochi",)),
    "PixelDiT": (_blocks("diffusion_model.patch_blocks.0.", "attn.qkv_x", "mlp_y.w1")
                 + ["diffusion_model.pixel_blocks.0.attn.qkv"], ("PixelDiT",)),
    "Ideogram4": (_blocks("diffusion_model.layers.0.", "attention.qkv", "attention.o", "feed_forward.w1",
                          "adaln_modulation") + ["diffusion_model.llm_cond_proj"], ("Ideogram4",)),
    "OmniGen2": (_blocks("layers.3.", "attn.to_q", "feed_forward.linear_2")
                 + ["noise_refiner.0.attn.to_q", "ref_image_refiner.0.attn.to_q"], ("OmniGen2",)),
    "Boogu": (["double_stream_layers.0.img_instruct_attn.processor.img_to_q", "single_stream_layers.2.attn.to_q",
               "noise_refiner.0.attn.to_k"], ("Boogu",)),
    "HiDream-O1": (_blocks("diffusion_model.language_model.layers.0.", "self_attn.q_proj", "mlp.down_proj")
                   + ["diffusion_model.final_layer2.linear"], ("HiDream-O1",)),
    "ErnieImage": (["transformer.layers.0.self_attention.to_k", "lora_unet_layers_3_self_attention_to_k",
                    "transformer.layers.0.adaLN_sa_ln"], ("ErnieImage",)),
    "SDXL": (["lora_unet_down_blocks_0_attentions_0_proj_in", "lora_unet_input_blocks_4_1_proj_in",
              "lora_te1_text_model_encoder_layers_0_mlp_fc1"], ("SD1.x/SDXL (UNet)",)),
}


@pytest.mark.parametrize("lora", list(LORAS))
def test_a_familys_own_layer_names_guess_it(lora):
    layers, guess = LORAS[lora]
    assert guess_lora_family(layers) == guess


def test_the_guess_follows_the_most_matched_layers_not_the_table_order():
    qwen_attention_only = _blocks("transformer.transformer_blocks.0.attn.", "add_q_proj", "to_add_out")
    assert "Qwen-Image" in guess_lora_family(qwen_attention_only)  # a tie, shared with FLUX's double blocks
    assert guess_lora_family(qwen_attention_only + ["transformer.transformer_blocks.0.img_mlp.net.2"]) == ("Qwen-Image",)
    assert guess_lora_family(LORAS["Lens"][0] + LORAS["Qwen-Image"][0][:1]) == ("Lens",)


def test_the_table_order_does_not_decide(monkeypatch):
    from comfyui_taca_under_test.taca_comfy import families
    before = {lora: set(guess_lora_family(layers)) for lora, (layers, _) in LORAS.items()}
    monkeypatch.setattr(families, "FAMILIES", tuple(reversed(FAMILIES)))
    assert {lora: set(guess_lora_family(layers)) for lora, (layers, _) in LORAS.items()} == before


@pytest.mark.parametrize("layer", [
    "transformer.transformer_blocks.0.attn.to_q",  # FLUX / SD3 / Qwen-Image / Krea 2 diffusers: shared by many
    "diffusion_model.visual_transformer_blocks.0.self_attention.to_key",  # Kandinsky5
    "diffusion_model.blocks.0.adaln_modulation_self_attn.1",  # Cosmos
    "diffusion_model.transformer_blocks.0.caption_projection.linear_1",  # LTX-Video
    "diffusion_model.transformer_blocks.0.attn1.to_q",  # LTX-Video
    "diffusion_model.blocks.0.self_attn.q",  # Wan
    "diffusion_model.blocks.0.cross_attn.k",  # Wan
    "diffusion_model.blocks.0.ffn.0",  # Wan
    "diffusion_model.final_layer.linear",  # every DiT
    "diffusion_model.img_in",
    "something.else",
])
def test_other_models_are_not_taken_for_ours(layer):
    assert guess_lora_family([layer]) == ()


def test_label():
    assert lora_family_label(("FLUX", "Chroma", "HunyuanVideo")) == "FLUX (or Chroma, HunyuanVideo)"
    assert lora_family_label(("SD3",)) == "SD3"
    assert lora_family_label(()) == "unknown"


def test_every_hint_is_a_valid_regex_and_the_guess_names_rows():
    import re
    names = {f.name for f in FAMILIES}
    for f in FAMILIES:
        if f.lora_hint:
            re.compile(f.lora_hint)
    for layers, guess in LORAS.values():
        assert set(guess) <= names | {"SD1.x/SDXL (UNet)"}
