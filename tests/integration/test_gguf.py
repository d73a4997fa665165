"""TACA Model Patch and TACA LoRA Loader on a model loaded by city96/ComfyUI-GGUF.

GGUF keeps quantized weights (here Q8_0) in its own tensor type and dequantizes them inside its own
layers, never through ComfyUI's weight functions. The test writes a tiny FLUX .gguf with the `gguf`
package and loads it the way the pack's Unet Loader (GGUF) does (its state-dict reader, its layers,
its model patcher; only the model config is given, as ComfyUI before 0.33 cannot infer a tiny FLUX's
from its weights), then compares with the same model in fp32 holding exactly the weights GGUF
dequantizes: any difference is TACA's or the LoRA's, not quantisation.
The pack comes from $TACA_PEERS_DIR (.ci/run extracts shared/peers/ComfyUI-GGUF.tar.gz there).
"""

import pytest
import torch

from support.comfy_env import import_comfy

env = import_comfy()

import comfy.model_patcher  # noqa: E402

from support.lora_files import write_lora  # noqa: E402
from support.pack import load_peer  # noqa: E402
from support.tiny_models import CPU, cutoff_between_steps, flux_config, make_conds, run_sample, tiny_flux  # noqa: E402

from support.taca import patch, taca_lora  # noqa: E402

STEPS = 4
LORA = "gguf_flux.safetensors"


def write_gguf(path, state_dict):
    """Q8_0 for every matrix whose rows split into 32-blocks, F32 for the rest."""
    import gguf
    writer = gguf.GGUFWriter(path=None, arch="flux")
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for key, tensor in state_dict.items():
        data = tensor.detach().float().numpy()
        qtype = gguf.GGMLQuantizationType.F32
        if data.ndim == 2 and data.shape[-1] % 32 == 0:
            qtype = gguf.GGMLQuantizationType.Q8_0
        writer.add_tensor(key, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    writer.write_header_to_file(path=str(path))
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def load_gguf(gguf_pack, path):
    """UnetLoaderGGUF.load_unet's steps, with the tiny model's config instead of ComfyUI's detection."""
    model_config = flux_config()
    model_config.set_inference_dtype(torch.float32, None)
    model_config.custom_operations = gguf_pack.ops.GGMLOps()
    model = model_config.get_model({}, device=CPU)
    model.load_model_weights(gguf_pack.loader.gguf_sd_loader(str(path)), "")
    return gguf_pack.nodes.GGUFModelPatcher.clone(
        comfy.model_patcher.ModelPatcher(model, load_device=CPU, offload_device=CPU))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(the GGUF-loaded model, an fp32 model holding exactly its dequantized weights)."""
    gguf_pack = load_peer("ComfyUI-GGUF")
    d = tmp_path_factory.mktemp("gguf")
    env.folder_paths.add_model_folder_path("loras", str(d))
    source = tiny_flux(seed=0)
    write_gguf(d / "tiny_flux_q8.gguf", source.model.diffusion_model.state_dict())
    write_lora(d / LORA, source, "flux", "diffusers")
    gguf_model = load_gguf(gguf_pack, d / "tiny_flux_q8.gguf")
    params = dict(gguf_model.model.diffusion_model.named_parameters())
    quantized = [n for n, p in params.items() if gguf_pack.dequant.is_quantized(p)]
    assert len(quantized) > 10, "the GGUF model keeps its matrices quantized"
    reference = tiny_flux(seed=0)  # the weights GGUF computes with, by its own dequantization
    reference.model.diffusion_model.load_state_dict(
        {n: gguf_pack.dequant.dequantize_tensor(p, torch.float32).reshape(p.shape) for n, p in params.items()})
    return gguf_model, reference


def sample(model):
    pos, neg = make_conds("flux", 9)
    return run_sample(model, pos, neg, steps=STEPS, cfg=1.0)


def test_gguf_loads_the_same_model(models):
    gguf_model, reference = models
    torch.testing.assert_close(sample(gguf_model), sample(reference), atol=1e-4, rtol=1e-4)


def test_taca_model_patch_on_gguf(models):
    gguf_model, reference = models
    got = sample(patch(gguf_model))
    torch.testing.assert_close(got, sample(patch(reference)), atol=1e-4, rtol=1e-4)
    assert (got - sample(gguf_model)).abs().max() > 1e-3, "TACA acts"


def test_taca_lora_on_gguf_acts_only_in_the_window(models):
    gguf_model, reference = models
    cutoff = cutoff_between_steps(reference, STEPS, 2)
    got = sample(patch(taca_lora(gguf_model, LORA), cutoff=cutoff))
    # the fp32 reference: its LoRA is ComfyUI's own within the window and off after it (test_taca_lora_loader)
    want = sample(patch(taca_lora(reference, LORA), cutoff=cutoff))
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (got - sample(patch(gguf_model, cutoff=cutoff))).abs().max() > 1e-3, "the LoRA acts on the quantized layers"
