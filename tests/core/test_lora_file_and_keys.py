import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from comfyui_taca_under_test.taca_comfy.lora_file import LoraFileError, load_lora_state_dict
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
