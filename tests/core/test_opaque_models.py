"""Models whose attention TACA cannot reach are recognised by class path, wherever the pack is installed."""
import types

import pytest

from comfyui_taca_under_test.taca_comfy.opaque_models import OPAQUE_MODELS, opaque_model, require_taca_can_act


def stand_in(module, name):
    return type(name, (), {"__module__": module})()


@pytest.mark.parametrize("pack", ["ComfyUI-nunchaku", "comfyui-nunchaku", "custom_nodes.ComfyUI-nunchaku"])
@pytest.mark.parametrize("entry", OPAQUE_MODELS, ids=lambda e: e.class_name)
def test_nunchaku_classes_match_under_any_pack_folder_name(pack, entry):
    assert opaque_model(stand_in(f"{pack}.{entry.module_suffix}", entry.class_name)) is entry


@pytest.mark.parametrize("module,name", [
    ("comfy.ldm.flux.model", "Flux"),
    ("mypack.wrappers.flux_extra", "ComfyFluxWrapper"),  # another module
    ("ComfyUI-nunchaku.wrappers.flux", "ComfyFluxWrapperV2"),  # another class
    ("comfy.ldm.qwen_image.model", "QwenImageTransformer2DModel"),  # the base class Nunchaku's Qwen derives from
])
def test_other_classes_do_not_match(module, name):
    assert opaque_model(stand_in(module, name)) is None


def test_refusal_names_node_model_and_fix():
    model = types.SimpleNamespace(model=types.SimpleNamespace(
        diffusion_model=stand_in("ComfyUI-nunchaku.models.qwenimage", "NunchakuQwenImageTransformer2DModel")))
    with pytest.raises(ValueError, match=r"^TACAModelPatch: this is a Nunchaku \(SVDQuant\) Qwen-Image model\..*"
                                         r"own attention kernels.*silently do nothing.*regular checkpoint"):
        require_taca_can_act("TACAModelPatch", model)
