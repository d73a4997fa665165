"""TACA LoRA cost, side by side in one run (needs ComfyUI):

    COMFYUI_PATH=/path/to/ComfyUI python bench/bench_lora_switch.py

Samples one FLUX-shaped model (random weights, ComfyUI's own classes) with a LoRA on every
linear layer of its blocks, and prints the time per sampling step of:
  plain          no LoRA
  merged         LoRA merged into the weights (LoraLoaderModelOnly; what 'every step' does)
  switched-on    TACA LoRA 'while TACA acts', TACA window covering every step (LoRA added on the fly)
  switched-off   the same, window covering no step (the LoRA's cost when it is off)
plus the cost of one switch (the flag flip done per model call).
"""
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
if not os.environ.get("COMFYUI_PATH"):
    sys.exit("set COMFYUI_PATH to a ComfyUI checkout (see README, Development)")

from comfy_env import import_comfy  # noqa: E402

env = import_comfy()
import importlib  # noqa: E402

import nodes as comfy_nodes  # noqa: E402
from lora_files import write_lora  # noqa: E402
from pack import load_pack  # noqa: E402
from tiny_models import make_conds, run_sample, tiny_flux  # noqa: E402

pack = load_pack().__name__
lora_node = importlib.import_module(pack + ".nodes.taca_lora_loader")
patch_node = importlib.import_module(pack + ".nodes.taca_model_patch")
switch_mod = importlib.import_module(pack + ".taca_core.lora_switch")

DIMS = dict(hidden_size=512, num_heads=8, depth=2, depth_single_blocks=2, axes_dim=[16, 24, 24])
LATENT_HW = (64, 64)  # 32 x 32 = 1024 image tokens
STEPS, REPS = 3, 5


def per_step_times(models, pos, neg):
    """Median seconds per step of each model, the models interleaved so drift hits all alike."""
    times = {name: [] for name in models}
    for rep in range(REPS + 1):
        for name, model in models.items():
            t0 = time.perf_counter()
            run_sample(model, pos, neg, steps=STEPS, latent_hw=LATENT_HW)
            if rep:  # the first round warms up (and loads each model)
                times[name].append((time.perf_counter() - t0) / STEPS)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def switch_cost():
    switch = switch_mod.LoraSwitch()
    n = 100000
    t0 = time.perf_counter()
    for _ in range(n):
        switch.on = True
        switch.on = False
    return (time.perf_counter() - t0) / n


def main():
    d = Path(tempfile.mkdtemp())
    env.folder_paths.add_model_folder_path("loras", str(d))
    write_lora(d / "bench.safetensors", tiny_flux(seed=0, **DIMS), "flux", "diffusers", rank=16)

    def fresh():  # one torch module per variant: each stays loaded, no re-patching between runs
        return tiny_flux(seed=0, **DIMS)

    pos, neg = make_conds("flux", 128)
    taca = patch_node.TACAModelPatch.execute
    tlora = lora_node.TACALoraLoader.execute
    models = {
        "plain": taca(model=fresh(), gamma=1.2, timestep_cutoff=0).result[0],
        "merged": taca(model=comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(fresh(), "bench.safetensors", 1.0)[0],
                       gamma=1.2, timestep_cutoff=0).result[0],
        "switched-on": taca(model=tlora(model=fresh(), lora_name="bench.safetensors", strength=1.0,
                                        active=lora_node.WHILE_TACA_ACTS).result[0],
                            gamma=1.2, timestep_cutoff=0).result[0],
        "switched-off": taca(model=tlora(model=fresh(), lora_name="bench.safetensors", strength=1.0,
                                         active=lora_node.WHILE_TACA_ACTS).result[0],
                             gamma=1.0, timestep_cutoff=0).result[0],
    }
    print(f"torch {torch.__version__}, ComfyUI {env.version}, CPU {torch.get_num_threads()} threads; FLUX-shaped "
          f"{DIMS}, 128 text + {LATENT_HW[0] * LATENT_HW[1] // 4} image tokens, LoRA rank 16 on "
          f"every block linear; median of {REPS} runs of {STEPS} steps")
    results = per_step_times(models, pos, neg)
    # TACA acts in 'plain' too (cutoff 0, gamma 1.2), so each row differs only by the LoRA
    print(f"{'':>14} {'s/step':>8} {'x plain':>8}")
    for name, t in results.items():
        print(f"{name:>14} {t:8.3f} {t / results['plain']:8.3f}")
    print(f"one switch (flag flip per model call): {switch_cost() * 1e9:.0f} ns")


if __name__ == "__main__":
    main()
