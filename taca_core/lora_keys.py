"""What a LoRA's keys say: which layers it adapts, and which model family they look like."""
import re

# A LoRA key is "<layer name><marker>...", e.g. "transformer.x.attn.to_q.lora_A.weight".
_MARKER = re.compile(r"(\.lora_|\.lora\.|\.alpha$|\.hada_|\.lokr_|\.dora_scale$|\.diff(_b)?$|\.w_norm$|\.b_norm$"
                     r"|\.set_weight$|\.reshape_weight$)")

# (family, substrings any of which identifies it), most specific first. FLUX and SD3 use the
# names of taca_core.families; diffusers names FLUX's double blocks and SD3's joint blocks alike.
_FAMILY_HINTS = (
    # The newer families first: some of their names contain a FLUX hint (JoyImage's double_blocks) or
    # the generic one (Lens's transformer_blocks). Each hint reads the same in ComfyUI/diffusers names
    # (dots) and kohya names (underscores).
    ("JoyImage", ("attn.img_attn", "attn_img_attn", "attn.txt_attn", "attn_txt_attn")),  # under double_blocks
    ("Lens", ("img_qkv", "txt_qkv")),  # under transformer_blocks
    ("HiDream", ("double_stream_blocks", "single_stream_blocks")),
    ("Boogu", ("double_stream_layers", "single_stream_layers", "img_instruct_attn")),
    ("OmniGen2", ("ref_image_refiner", "ref_image_patch_embedder", "time_caption_embed")),
    ("PixelDiT", ("patch_blocks", "pixel_blocks")),  # before Mochi: also qkv_x / qkv_y
    ("Mochi", ("qkv_x", "qkv_y", "mod_x", "mod_y", "t5_yproj")),
    ("Ideogram4", ("llm_cond_proj", "embed_image_indicator")),  # its blocks' names are Lumina/Cosmos-like
    ("HiDream-O1", ("language_model", "final_layer2", "t_embedder1")),
    ("ErnieImage", ("self_attention.to_k.", "self_attention_to_k.", "adaLN_sa_ln", "adaLN_mlp_ln")),  # Kandinsky5: to_key
    ("FLUX", ("single_transformer_blocks", "single_blocks", "double_blocks")),
    ("SD3", ("joint_blocks", "context_block", "x_block")),
    ("SD1.x/SDXL (UNet)", ("down_blocks", "input_blocks", "output_blocks", "lora_te")),
    ("MM-DiT (FLUX double blocks or SD3)", ("transformer_blocks",)),
)


def lora_layer_names(keys) -> set:
    """The layer names a LoRA adapts (one per adapted layer, whatever its format)."""
    names = set()
    for key in keys:
        m = _MARKER.search(key)
        if m:
            names.add(key[:m.start()])
    return names


def guess_lora_family(keys) -> str:
    keys = list(keys)
    for family, hints in _FAMILY_HINTS:
        if any(h in k for k in keys for h in hints):
            return family
    return "unknown"
