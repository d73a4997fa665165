"""TACA LoRA cost per sampling step, side by side in one run (needs ComfyUI):

    COMFYUI_PATH=/path/to/ComfyUI python bench/bench_lora_switch.py [--device cuda] [--dtype bfloat16]

Samples one FLUX-shaped model (random weights, ComfyUI's own classes) with a LoRA on every linear
layer of its blocks, the variants interleaved, and prints the time per step of:
  plain         no LoRA; TACA acting on every step (the baseline of the "on" rows)
  plain-off     no LoRA; a TACA Model Patch with gamma 1, never acting (the baseline of the "off" rows)
  merged        the LoRA merged into the weights (LoraLoaderModelOnly; what 'every step' does), TACA acting
  bypass-on     TACA LoRA 'while TACA acts' as shipped: a gated branch beside each layer, window = every step
  bypass-off    the same, window = no step
  copy-on       the alternative design: ComfyUI's patch function on a copy of each weight (weight
                functions, which make ComfyUI copy every adapted weight on every forward), every step
  copy-off      the same, no step
plus the cost of one switch (the gate opened and closed per model call), and on CUDA the peak memory.
On the CPU the time is this process's CPU time (one torch thread by default), which other processes on a
shared machine disturb far less than wall time; on CUDA it is wall time, synchronised. Models load through
ComfyUI's classic ModelPatcher (dynamic VRAM needs ComfyUI's server start-up).
"""
import argparse
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

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--device", default="cpu", help="cpu or cuda")
ap.add_argument("--dtype", default=None, help="float32 (CPU default) or bfloat16 (CUDA default)")
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
ARGS = ap.parse_args()
DEVICE = torch.device(ARGS.device)
DTYPE = getattr(torch, ARGS.dtype or ("bfloat16" if DEVICE.type == "cuda" else "float32"))
torch.set_num_threads(ARGS.threads)
CLOCK = time.process_time if DEVICE.type == "cpu" else time.perf_counter

from comfy_env import import_comfy  # noqa: E402

env = import_comfy(cpu=DEVICE.type == "cpu")
import importlib  # noqa: E402

import nodes as comfy_nodes  # noqa: E402
from comfy.model_patcher import LowVramPatch  # noqa: E402
from comfy.patcher_extension import WrappersMP  # noqa: E402
from lora_files import write_lora  # noqa: E402
from pack import load_pack  # noqa: E402
from tiny_models import make_conds, run_sample, tiny_flux  # noqa: E402

pack = load_pack().__name__
lora_node = importlib.import_module(pack + ".nodes.taca_lora_loader")
patch_node = importlib.import_module(pack + ".nodes.taca_model_patch")
switch_mod = importlib.import_module(pack + ".taca_comfy.lora_switch")
lora_mod = importlib.import_module(pack + ".taca_comfy.lora")
families = importlib.import_module(pack + ".taca_comfy.families")
lora_file = importlib.import_module(pack + ".taca_comfy.lora_file")

DIMS = dict(hidden_size=512, num_heads=8, depth=2, depth_single_blocks=2, axes_dim=[16, 24, 24])
LATENT_HW = (64, 64)  # 32 x 32 = 1024 image tokens
LORA = "bench.safetensors"


def sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def per_step_times(models, pos, neg):
    """Seconds per step of each model, (fastest run, median run), and CUDA peak bytes; the variants
    interleaved so drift hits all alike. Interference from other processes only adds time: the fastest
    run is the steadier figure on a shared machine."""
    times, peaks = {name: [] for name in models}, {}
    for rep in range(ARGS.reps + 1):
        for name, model in models.items():
            if DEVICE.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            sync()
            t0 = CLOCK()
            run_sample(model, pos, neg, steps=ARGS.steps, latent_hw=LATENT_HW)
            sync()
            if rep:  # the first round warms up (and loads each model)
                times[name].append((CLOCK() - t0) / ARGS.steps)
                if DEVICE.type == "cuda":
                    peaks[name] = max(peaks.get(name, 0), torch.cuda.max_memory_allocated())
    return {name: (min(t), sorted(t)[len(t) // 2]) for name, t in times.items()}, peaks


def switch_cost():
    gate = switch_mod.LoraGate()
    n = 100000
    t0 = CLOCK()
    for _ in range(n):
        gate.close_to(gate.opened(True))
    return (CLOCK() - t0) / n


def copy_variant(model, lora_sd):
    """The design not shipped, for comparison: the LoRA added to a copy of each weight, in ComfyUI's cast path."""
    mapped = lora_mod.map_lora("bench", families.require_family("bench", model), model, lora_sd, LORA)
    patches = lora_mod.patch_lists(mapped, 1.0)
    switched, gate = model.clone(), switch_mod.LoraGate()
    for key in patches:
        switched.add_weight_wrapper(key, switch_mod.SwitchedLoraWeight(gate, LowVramPatch(key, patches)))
    switched.add_wrapper(WrappersMP.APPLY_MODEL, switch_mod.TacaLoraApplyModelWrapper(gate, "bench"))
    return switched


def main():
    d = Path(tempfile.mkdtemp())
    env.folder_paths.add_model_folder_path("loras", str(d))
    write_lora(d / LORA, tiny_flux(seed=0, **DIMS), "flux", "diffusers", rank=16)
    lora_sd = lora_file.load_lora_state_dict(d / LORA)

    def fresh():  # one torch module per variant: each stays loaded, no re-patching between runs
        return tiny_flux(seed=0, device=DEVICE, dtype=DTYPE, **DIMS)

    def taca(model, on=True):
        return patch_node.TACAModelPatch.execute(model=model, gamma=1.2 if on else 1.0, timestep_cutoff=0).result[0]

    def tlora(model):
        return lora_node.TACALoraLoader.execute(model=model, lora_name=LORA, strength=1.0,
                                                active=lora_node.WHILE_TACA_ACTS).result[0]

    pos, neg = make_conds("flux", 128)
    models = {
        "plain": taca(fresh()),
        "plain-off": taca(fresh(), on=False),
        "merged": taca(comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(fresh(), LORA, 1.0)[0]),
        "bypass-on": taca(tlora(fresh())),
        "bypass-off": taca(tlora(fresh()), on=False),
        "copy-on": taca(copy_variant(fresh(), lora_sd)),
        "copy-off": taca(copy_variant(fresh(), lora_sd), on=False),
    }
    threads = (f"{torch.get_num_threads()} thread(s), CPU time" if DEVICE.type == "cpu"
               else f"{torch.cuda.get_device_name(DEVICE)}, wall time")
    print(f"torch {torch.__version__}, ComfyUI {env.version}, {DEVICE.type} ({threads}), {DTYPE}; FLUX-shaped "
          f"{DIMS}, 128 text + {LATENT_HW[0] * LATENT_HW[1] // 4} image tokens, LoRA rank 16 on every block "
          f"linear; {ARGS.reps} runs of {ARGS.steps} steps each")
    results, peaks = per_step_times(models, pos, neg)
    print(f"{'':>12} {'fastest':>8} {'x base':>7} {'median':>8} {'x base':>7}  base" + ("       peak MiB" if peaks else ""))
    for name, (fastest, median) in results.items():
        base = "plain-off" if name.endswith("-off") else "plain"
        peak = f"  {peaks[name] / 2 ** 20:10.0f}" if peaks else ""
        print(f"{name:>12} {fastest:8.4f} {fastest / results[base][0]:7.3f} {median:8.4f} "
              f"{median / results[base][1]:7.3f}  {base:<9}{peak}")
    print(f"one switch (gate opened and closed, per model call): {switch_cost() * 1e9:.0f} ns")


if __name__ == "__main__":
    main()
