"""Model calls in parallel threads (ComfyUI's multi-GPU work units) never see each other's TACA state.

ComfyUI 0.23+ splits cond/uncond over devices and runs each device's apply_model in its own thread,
on clones that share this pack's wrapper objects. Whether TACA and its LoRA act must be decided per
model call, so a call outside the window running beside one inside it changes nothing.
"""
import threading

import pytest
import torch

from support.comfy_env import import_comfy

env = import_comfy()

import comfy.model_management  # noqa: E402

from support.lora_files import write_lora  # noqa: E402
from support.tiny_models import make_conds, model_call, run_sample, tiny_flux  # noqa: E402

from support.taca import patch, taca_lora  # noqa: E402

LORA = "concurrency.safetensors"


@pytest.fixture(scope="module", autouse=True)
def lora_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("loras")
    env.folder_paths.add_model_folder_path("loras", str(d))
    write_lora(d / LORA, tiny_flux(), "flux", "diffusers")


def taca_chain(base, cutoff):
    return patch(taca_lora(base, LORA), cutoff=cutoff)


def test_parallel_calls_inside_and_outside_the_window_equal_each_call_alone():
    model = taca_chain(tiny_flux(), cutoff=990)  # sigma 1.0: TACA and its LoRA act; 0.5: neither
    sigmas = (1.0, 0.5)
    plain = model_call(tiny_flux(), 1.0, seed=0)
    alone = {s: model_call(model, s, seed=i) for i, s in enumerate(sigmas)}  # (loads model: no load below)
    assert (alone[1.0] - plain).abs().max() > 1e-3, "TACA and its LoRA act at sigma 1.0"
    results, errors = {s: [] for s in sigmas}, []
    start = threading.Barrier(len(sigmas))

    def worker(seed, sigma):
        try:
            for _ in range(6):
                start.wait()
                results[sigma].append(model_call(model, sigma, seed=seed, load=False))
        except Exception as e:  # surfaced below
            errors.append(e)
            start.abort()

    threads = [threading.Thread(target=worker, args=(i, s)) for i, s in enumerate(sigmas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for sigma in sigmas:
        for i, got in enumerate(results[sigma]):
            assert torch.equal(got, alone[sigma]), f"sigma {sigma}, round {i}: differs from the call alone by " \
                                                   f"{(got - alone[sigma]).abs().max():.3g}"


def test_multigpu_work_units_equal_one_device(monkeypatch):
    """ComfyUI's own MultiGPU_WorkUnits node, cond and uncond on two CPU 'devices' (threads)."""
    try:
        from comfy_extras.nodes_multigpu import MultiGPUCFGSplitNode
    except ImportError:
        pytest.skip(f"ComfyUI {env.version} has no multi-GPU work units (added in 0.23)")
    second = torch.device("cpu", 1)  # tensors moved there stay on the CPU; ComfyUI keys its clone by it
    monkeypatch.setattr(comfy.model_management, "get_all_torch_devices",
                        lambda exclude_current=False: [torch.device("cpu"), second])

    def base():
        m = tiny_flux()
        m.cached_patcher_init = (tiny_flux, ())  # what a core loader records, for the per-device deep clone
        return m

    pos, neg = make_conds("flux", 9)
    one_device = run_sample(taca_chain(base(), cutoff=500), pos, neg, steps=4, cfg=3.0)
    split = MultiGPUCFGSplitNode.execute(model=taca_chain(base(), cutoff=500), max_gpus=2).result[0]
    assert [m.load_device for m in split.get_additional_models_with_key("multigpu")] == [second]
    plain = run_sample(patch(base(), cutoff=500),
                       pos, neg, steps=4, cfg=3.0)
    assert (one_device - plain).abs().max() > 1e-2, "the LoRA has a visible effect"
    for run in range(2):
        got = run_sample(split, pos, neg, steps=4, cfg=3.0)
        # batch 2 on one device vs 1 + 1 on two: matmul rounding only
        torch.testing.assert_close(got, one_device, atol=1e-4, rtol=1e-4, msg=lambda m: f"run {run}: {m}")
