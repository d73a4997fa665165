"""Cost of TACA per training step of core's Train LoRA, side by side in one run (needs ComfyUI):

    COMFYUI_PATH=/path/to/ComfyUI python bench/bench_training.py [--device cuda] [--family sd3]

Trains a FLUX-shaped (or SD3-shaped) model with random weights (ComfyUI's own classes) through core's
Train LoRA node, gradient checkpointing on (its default), the variants interleaved:
  plain   TACA Training Window with gamma 1: TACA never acts (the baseline)
  taca    TACA Training Window with gamma 1.2: TACA acts on every training step
Both draw the same sigmas (the window restricts them the same way, from the same seed), so the only
difference is TACA's attention. Prints seconds per training step (the minimum over --reps runs of
--steps steps, node overhead included) and the ratio. On the CPU the time is this process's CPU time
(one torch thread by default); on CUDA it is wall time, synchronised. Goal (issue #15): <= 1.05x.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
if not os.environ.get("COMFYUI_PATH"):
    sys.exit("set COMFYUI_PATH to a ComfyUI checkout (see README, Development)")

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--device", default="cpu", help="cpu or cuda")
ap.add_argument("--family", default="flux", choices=["flux", "sd3"])
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--steps", type=int, default=4, help="training steps per run")
ap.add_argument("--size", type=int, default=32, help="latent height and width (image: 8x)")
ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
ARGS = ap.parse_args()
DEVICE = torch.device(ARGS.device)
torch.set_num_threads(ARGS.threads)
CLOCK = time.process_time if DEVICE.type == "cpu" else time.perf_counter

from support.comfy_env import import_comfy  # noqa: E402

env = import_comfy(cpu=DEVICE.type == "cpu")
import importlib  # noqa: E402

from support.core_trainer import reloadable, train_lora  # noqa: E402
from support.pack import load_pack  # noqa: E402
from support.tiny_models import make_conds, tiny_flux, tiny_sd3  # noqa: E402

Window = importlib.import_module(load_pack().__name__ + ".nodes.taca_training_window").TACATrainingWindow
TXT = 64

if ARGS.family == "flux":  # a bigger FLUX shape than the tests': 256 wide, 4 + 4 blocks
    base = reloadable(tiny_flux, device=DEVICE, hidden_size=256, num_heads=4, depth=4, depth_single_blocks=4,
                      axes_dim=[16, 24, 24])
else:
    base = reloadable(tiny_sd3)
    if DEVICE.type != "cpu":
        base.load_device = DEVICE
channels = base.get_model_object("latent_format").latent_channels
latents = torch.randn(1, channels, ARGS.size, ARGS.size, generator=torch.Generator().manual_seed(0))
positive = [make_conds(ARGS.family, TXT)[0][0]]
dtype = "fp32" if DEVICE.type == "cpu" else "bf16"
VARIANTS = {"plain": Window.execute(model=base, gamma=1.0, timestep_cutoff=970).result[0],
            "taca": Window.execute(model=base, gamma=1.2, timestep_cutoff=970).result[0]}


def run(model):
    torch.manual_seed(0)
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    t0 = CLOCK()
    train_lora(model, latents, positive, steps=ARGS.steps, training_dtype=dtype, lora_dtype=dtype)
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    return (CLOCK() - t0) / ARGS.steps


run(VARIANTS["plain"])  # warm-up
best = {name: float("inf") for name in VARIANTS}
for _ in range(ARGS.reps):
    for name, model in VARIANTS.items():
        best[name] = min(best[name], run(model))
print(f"ComfyUI {env.version}, {ARGS.family}, {DEVICE.type}, latent {ARGS.size}x{ARGS.size}, {TXT} text tokens, "
      f"{ARGS.steps} steps x {ARGS.reps} reps, gradient checkpointing on")
print(f"{'variant':<8} {'s/step':>10} {'ratio':>7}")
for name, t in best.items():
    print(f"{name:<8} {t:>10.4f} {t / best['plain']:>7.3f}")
