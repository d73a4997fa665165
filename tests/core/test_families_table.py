"""The family table: lookups by class, refusals that name the family and the reason."""
from types import SimpleNamespace

import pytest
import torch

from comfyui_taca_under_test.taca_comfy.families import FAMILIES, family_of, require_family
from comfyui_taca_under_test.taca_comfy.layouts import grid_tokens


def fake_model(class_path):
    module, name = class_path.rsplit(".", 1)
    dm = type(name, (), {"__module__": module})()
    return SimpleNamespace(model=SimpleNamespace(diffusion_model=dm))


def test_every_class_belongs_to_one_row():
    paths = [p for f in FAMILIES for p in f.classes]
    assert len(paths) == len(set(paths))
    for f in FAMILIES:
        for p in f.classes:
            assert family_of(fake_model(p).model.diffusion_model) is f
        assert bool(f.refused) != (f.layout is not None), f.name


def test_refused_family_names_itself_and_the_reason():
    with pytest.raises(ValueError, match=r"TACAModelPatch: TACA does not support ErnieImage .*transformer_options"):
        require_family("TACAModelPatch", fake_model("comfy.ldm.ernie.model.ErnieImageModel"))


def test_unknown_model_lists_the_supported_families():
    with pytest.raises(ValueError, match=r"no joint text-image attention.*Supported: FLUX .*Qwen-Image"):
        require_family("TACAModelPatch", fake_model("comfy.ldm.wan.model.WanModel"))


@pytest.mark.parametrize("shape,patch,tokens", [
    ((1, 16, 16, 16), (2, 2), 64),
    ((1, 16, 15, 17), (2, 2), 72),          # padded up, as pad_to_patch_size does
    ((1, 16, 1, 8, 8), (1, 2, 2), 16),      # Qwen-Image: one frame
    ((2, 16, 3, 8, 8), (1, 2, 2), 48),
    ((1, 16, 3, 8, 8), (2, 2), 16),         # a 2-D patch on video latents counts one frame (Krea 2)
    ((1, 16, 8, 8), (1, 2, 2), 16),         # a 3-D patch on image latents
])
def test_grid_tokens(shape, patch, tokens):
    assert grid_tokens(torch.empty(shape).shape, patch) == tokens
