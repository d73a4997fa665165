"""A valid safetensors LoRA loads whatever its header length (its first 8 bytes, little-endian)."""
import struct

import torch
from safetensors.torch import save_file

from comfyui_taca_under_test.taca_comfy.lora_file import load_lora_state_dict


def test_header_length_with_low_byte_0x80(tmp_path):
    path = tmp_path / "lora.safetensors"
    for n in range(1, 300):
        save_file({"a" * n + ".lora_up.weight": torch.zeros(2, 2)}, str(path))
        if struct.unpack("<Q", path.read_bytes()[:8])[0] % 256 == 0x80:
            break
    assert struct.unpack("<Q", path.read_bytes()[:8])[0] % 256 == 0x80
    assert set(load_lora_state_dict(path)) == {"a" * n + ".lora_up.weight"}
