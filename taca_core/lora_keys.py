"""What a LoRA's keys say: which layers it adapts, and which model family they look like."""
import re
from typing import NamedTuple

# A LoRA key is "<layer name><marker>...", e.g. "transformer.x.attn.to_q.lora_A.weight".
_MARKER = re.compile(r"(\.lora_|\.lora\.|\.alpha$|\.hada_|\.lokr_|\.dora_scale$|\.diff(_b)?$|\.w_norm$|\.b_norm$"
                     r"|\.set_weight$|\.reshape_weight$)")

_SEP = r"[._]"  # diffusers/ComfyUI names use dots, kohya names underscores


class LoraGuess(NamedTuple):
    label: str       # for messages: "... look like a <label> LoRA"
    families: tuple  # names of taca_core.families rows whose models use these layer names


# (label, families, pattern), most specific first: the first pattern any key matches decides.
# Layer names come from ComfyUI's own modules and key maps (comfy.lora.model_lora_keys_unet).
_FAMILY_HINTS = tuple((label, families, re.compile(pattern)) for label, families, pattern in (
    # before FLUX (JoyImage's double_blocks), Qwen-Image (Lens's transformer_blocks img_mlp) and Lumina
    # (Ideogram4's and OmniGen2's layers.N.attention / feed_forward, OmniGen2's refiners)
    ("JoyImage", ("JoyImage",), rf"attn{_SEP}(img|txt)_attn"),
    ("Lens", ("Lens",), rf"((img|txt)_qkv|(img|txt)_mlp{_SEP}w[123]({_SEP}|$))"),
    ("HiDream", ("HiDream",), r"(double|single)_stream_blocks"),
    ("Boogu", ("Boogu",), r"((double|single)_stream_layers|img_instruct_attn)"),
    ("OmniGen2", ("OmniGen2",), rf"(ref_image_refiner|ref_image_patch_embedder|time_caption_embed"
                                rf"|(^|{_SEP})(layers|noise_refiner|context_refiner){_SEP}\d+{_SEP}attn{_SEP}to_"
                                rf"|feed_forward{_SEP}linear_[123])"),  # Lumina: attention.qkv, w1-3
    ("PixelDiT", ("PixelDiT",), r"(patch_blocks|pixel_blocks)"),  # before Mochi: qkv_x / qkv_y too
    ("Mochi", ("Mochi",), r"(qkv_[xy]|mod_[xy]|mlp_[xy]|t5_yproj)"),
    ("Ideogram4", ("Ideogram4",), rf"(llm_cond_proj|embed_image_indicator|layers{_SEP}\d+{_SEP}adaln_modulation"
                                  rf"|attention{_SEP}o({_SEP}|$))"),  # Lumina: adaLN_modulation, attention.out
    ("HiDream-O1", ("HiDream-O1",), r"(language_model|final_layer2|t_embedder1)"),
    # Kandinsky5's self_attention has to_key etc.
    ("ErnieImage", ("ErnieImage",), rf"(self_attention{_SEP}to_[qkv]({_SEP}|$)|adaLN_(sa|mlp)_ln)"),
    ("Qwen-Image", ("Qwen-Image",), rf"transformer_blocks{_SEP}\d+{_SEP}(img|txt)_(mlp|mod)"),
    ("Lumina 2 / Z-Image", ("Lumina2",),
     rf"(noise_refiner|context_refiner|cap_embedder|(^|{_SEP})layers{_SEP}\d+{_SEP}(attention|feed_forward){_SEP})"),
    ("Krea 2", ("Krea2",), rf"(txtfusion|attn{_SEP}(wq|wk|wv|wo|to_gate)({_SEP}|$)|ff{_SEP}(gate|up|down)({_SEP}|$))"),
    ("AuraFlow", ("AuraFlow",), rf"(double_layers|single_layers|joint_transformer_blocks|{_SEP}w[12][qkvo]({_SEP}|$))"),
    ("HunyuanVideo", ("HunyuanVideo",), r"(individual_token_refiner|byt5_in|vision_in)"),
    ("SD3", ("SD3",), r"(joint_blocks|context_block|x_block)"),
    # the FLUX block layout, shared by Chroma and (in ComfyUI's and kohya's names) HunyuanVideo
    ("FLUX (or Chroma, HunyuanVideo)", ("FLUX", "Chroma", "HunyuanVideo"),
     r"(single_transformer_blocks|single_blocks|double_blocks)"),
    ("SD1.x/SDXL (UNet)", (), r"(down_blocks|input_blocks|output_blocks|lora_te)"),
    # diffusers' transformer_blocks: FLUX double blocks, SD3 joint blocks, Chroma, Qwen-Image, Krea 2, ...
    ("MM-DiT (transformer_blocks)", None, r"transformer_blocks"),
))
UNKNOWN = LoraGuess("unknown", None)


def lora_layer_names(keys) -> set:
    """The layer names a LoRA adapts (one per adapted layer, whatever its format)."""
    names = set()
    for key in keys:
        m = _MARKER.search(key)
        if m:
            names.add(key[:m.start()])
    return names


def guess_lora_family(keys) -> LoraGuess:
    """The family a LoRA's layer names look like; families None: names several families share."""
    keys = list(keys)
    for label, families, pattern in _FAMILY_HINTS:
        if any(pattern.search(k) for k in keys):
            return LoraGuess(label, families)
    return UNKNOWN
