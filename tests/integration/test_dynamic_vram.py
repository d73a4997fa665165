"""The TACA LoRA never writes a weight ComfyUI hands it (dynamic VRAM, ComfyUI 0.16+).

With dynamic VRAM (ModelPatcherDynamic, the default on NVIDIA GPUs) ComfyUI keeps each layer's
weight in a VRAM cache and hands that cached tensor itself, uncopied, to the layer's weight
functions (comfy/ops.py: resolve_cast_module_with_vbar -> post_cast); a weight function that
patches in place corrupts the model for every later call and run. On the CPU these tests take
that very code path: each layer is marked resident in a "VRAM" cache (a CPU tensor), its own weight
is moved to the meta device, and for the model calls ComfyUI is told that the CPU is not a CPU
(model_management.is_device_cpu -> False, the one check that sends CPU layers another way), so
cast_bias_weight resolves each weight from the cache exactly as it does on a GPU. Everything else
is ComfyUI's own code.
"""

import pytest
import torch

from support.comfy_env import import_comfy

env = import_comfy()

import comfy.model_management  # noqa: E402
import comfy.ops  # noqa: E402
import nodes as comfy_nodes  # noqa: E402

from support.lora_files import write_lora  # noqa: E402
from support.tiny_models import model_call, tiny_flux  # noqa: E402

from support.taca import patch, taca_lora  # noqa: E402

CUTOFF = 990  # sigma 1.0 is in the window, 0.5 is not
LORAS = {"plain": dict(fmt="diffusers"),  # FLUX's fused qkv: offset branches
         "dora": dict(fmt="comfy", dora=True)}  # not a bypass branch: ComfyUI's patch function on a copy


def lora_file(lora_dir, kind):
    name = f"vram_{kind}.safetensors"
    if not (lora_dir / name).exists():
        write_lora(lora_dir / name, tiny_flux(), "flux", **LORAS[kind])
    return name


def make_vram_resident(model):
    """Route every ComfyUI-cast layer of the loaded model through the dynamic-VRAM cast path.

    Returns {layer name: (cached weight, its pristine copy)}.
    """
    caches = {}
    for name, m in model.model.diffusion_model.named_modules():
        if not hasattr(m, "comfy_cast_weights") or getattr(m, "weight", None) is None:
            continue
        m._v = ("test vbar", name)  # cast_bias_weight checks its presence; resident layers never read it
        m._prefetch = {"signature": "resident", "resident": True}
        m._v_weight = m.weight.detach().clone()
        m._v_bias = None if m.bias is None else m.bias.detach().clone()
        caches[name] = (m._v_weight, m._v_weight.clone())
        m.weight = torch.nn.Parameter(torch.empty_like(m.weight, device="meta"), requires_grad=False)
        if m.bias is not None:
            m.bias = torch.nn.Parameter(torch.empty_like(m.bias, device="meta"), requires_grad=False)
        m.comfy_cast_weights = True
    return caches


@pytest.mark.parametrize("kind", list(LORAS))
def test_cached_weights_stay_bit_identical_and_the_lora_equals_comfys(lora_dir, kind, monkeypatch):
    if not hasattr(comfy.ops, "resolve_cast_module_with_vbar"):
        pytest.skip(f"ComfyUI {env.version} has no dynamic VRAM (added in 0.16)")
    base = tiny_flux()
    name = lora_file(lora_dir, kind)
    comfy_lora = patch(comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(base, name, 1.0)[0], cutoff=CUTOFF)
    taca = patch(base, cutoff=CUTOFF)
    expected = {1.0: model_call(comfy_lora, 1.0), 0.5: model_call(taca, 0.5)}  # the LoRA acts at 1.0 only
    assert (expected[1.0] - model_call(taca, 1.0)).abs().max() > 1e-3, "the LoRA has a visible effect"

    ours = patch(taca_lora(base, name), cutoff=CUTOFF)
    comfy.model_management.load_models_gpu([ours])
    caches = make_vram_resident(ours)
    assert caches
    monkeypatch.setattr(comfy.model_management, "is_device_cpu", lambda device: False)  # as on a GPU
    resolved = []  # proof that the layers took the dynamic-VRAM path (ComfyUI's function, called through)
    real_resolve = comfy.ops.resolve_cast_module_with_vbar
    monkeypatch.setattr(comfy.ops, "resolve_cast_module_with_vbar",
                        lambda s, *a, **k: resolved.append(s) or real_resolve(s, *a, **k))
    for run in range(2):
        for sigma in (1.0, 1.0, 0.5, 1.0):
            got = model_call(ours, sigma, load=False)
            torch.testing.assert_close(got, expected[sigma], atol=1e-5, rtol=1e-5,
                                       msg=lambda m: f"run {run}, sigma {sigma}: {m}")
        assert len(resolved) >= len(caches)
        drifted = [n for n, (cache, pristine) in caches.items() if not torch.equal(cache, pristine)]
        assert not drifted, f"run {run}: the TACA LoRA wrote into ComfyUI's cached weights of {drifted}"


@pytest.mark.parametrize("kind", list(LORAS))
def test_weight_functions_never_write_the_weight_they_get(lora_dir, kind):
    """Whatever ComfyUI's cast path (any release), a weight function gets a tensor it must not write."""
    base = tiny_flux()
    ours = taca_lora(base, lora_file(lora_dir, kind))
    functions = [(key, f) for key, fs in ours.weight_wrapper_patches.items() for f in fs]
    if kind == "plain":  # a bypass branch: nothing in ComfyUI's cast path, so no weight copy, ever
        assert not functions and ours.injections
        return
    assert functions
    gate = next(w for w in ours.get_all_wrappers("apply_model") if hasattr(w, "gate")).gate
    sd = base.model.state_dict()
    token = gate.opened(True)
    try:
        for key, f in functions:
            handed = sd[key].clone()
            patched = f(handed)
            assert torch.equal(handed, sd[key]), f"{key}: the weight function wrote the weight it was handed"
            assert not torch.equal(patched, sd[key]), f"{key}: the LoRA had no effect"
    finally:
        gate.close_to(token)
