"""What a LoRA's keys say: which layers it adapts, and which model family they look like."""
import re

# A LoRA key is "<layer name><marker>...", e.g. "transformer.x.attn.to_q.lora_A.weight".
_MARKER = re.compile(r"(\.lora_|\.lora\.|\.alpha$|\.hada_|\.lokr_|\.dora_scale$|\.diff(_b)?$|\.w_norm$|\.b_norm$"
                     r"|\.set_weight$|\.reshape_weight$)")

# (family, substrings any of which identifies it), most specific first. FLUX and SD3 use the
# names of taca_core.families; diffusers names FLUX's double blocks and SD3's joint blocks alike.
_FAMILY_HINTS = (
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
