"""Read a LoRA file with safetensors only (pickled files are refused, never loaded), and its layer names."""
import json
import re
import struct
from pathlib import Path

import torch
from safetensors.torch import load_file

PICKLE_MAGIC = (b"\x80",)       # a raw pickle stream (protocol 2+)
TORCH_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's zip container (holds a pickle)

# A LoRA key is "<layer name><marker>...", e.g. "transformer.x.attn.to_q.lora_A.weight".
_MARKER = re.compile(r"(\.lora_|\.lora\.|\.alpha$|\.hada_|\.lokr_|\.dora_scale$|\.diff(_b)?$|\.w_norm$|\.b_norm$"
                     r"|\.set_weight$|\.reshape_weight$)")


class LoraFileError(ValueError):
    pass


def _check_header(path: Path):
    with path.open("rb") as f:
        head = f.read(8)
        if head.startswith(TORCH_ZIP_MAGIC) or head.startswith(PICKLE_MAGIC):
            raise LoraFileError(
                f"'{path.name}' is a pickled PyTorch file (.pt/.ckpt/.bin style). It was not loaded: "
                "pickles can run code when opened. Use the .safetensors version of this LoRA.")
        if len(head) < 8:
            raise LoraFileError(f"'{path.name}' is not a safetensors file (only {len(head)} bytes).")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > path.stat().st_size - 8:
            raise LoraFileError(f"'{path.name}' is not a valid safetensors file (truncated or corrupt header); "
                                "download it again.")
        try:
            json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise LoraFileError(f"'{path.name}' is not a valid safetensors file (unreadable header); "
                                "download it again.") from None


def load_lora_state_dict(path) -> dict:
    """The file's tensors; a LoraFileError for a pickle, a corrupt file or a tensor holding NaN or inf."""
    path = Path(path)
    _check_header(path)
    try:
        sd = load_file(str(path), device="cpu")
    except Exception as e:  # safetensors' error type differs across its versions
        raise LoraFileError(f"'{path.name}' is a corrupt safetensors file ({e}); download it again.") from None
    bad = first_non_finite(sd)
    if bad is not None:
        raise LoraFileError(
            f"'{path.name}' holds non-finite values (NaN or inf) in '{bad}'; it would turn the image into NaN. "
            "A diverged training run or a broken conversion wrote it: use an earlier checkpoint of this LoRA "
            "or train it again.")
    return sd


def first_non_finite(sd: dict):
    """The first key (in sorted order) whose floating-point tensor holds NaN or inf, or None."""
    for key in sorted(sd):
        t = sd[key]
        if not t.is_floating_point():
            continue
        if t.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
            t = t.float()  # fp8: isfinite is not implemented for it everywhere
        if not bool(torch.isfinite(t).all()):
            return key
    return None


def lora_layer_names(keys) -> set:
    """The layer names a LoRA adapts (one per adapted layer, whatever its format)."""
    names = set()
    for key in keys:
        m = _MARKER.search(key)
        if m:
            names.add(key[:m.start()])
    return names
