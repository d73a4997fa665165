"""TACA attention cost, side by side in one run: python bench/bench_attention.py [--device cuda]

Compares, per attention call on the same inputs:
  sdpa        plain fused SDPA (no TACA): the baseline
  taca        taca_core.taca_attention (two fused SDPA calls over disjoint query rows)
  dense       logits materialised, gamma applied, softmax (the official SD3 code's approach)
  two_pass    two full SDPA passes (original and gamma-scaled keys), rows recombined:
              the paper's "selective recomposition"
Prints time and peak extra memory (CUDA) relative to sdpa.
"""
import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from taca_core.attention import dense_taca_attention, scale_keys, taca_attention  # noqa: E402


def two_pass(q, k, v, *, txt_len, gamma):
    plain = F.scaled_dot_product_attention(q, k, v)
    scaled = F.scaled_dot_product_attention(q, scale_keys(k, (0, txt_len), gamma, 2), v)
    return torch.cat((plain[:, :, :txt_len], scaled[:, :, txt_len:]), dim=2)


METHODS = {
    "sdpa": lambda q, k, v, t, g: F.scaled_dot_product_attention(q, k, v),
    "taca": lambda q, k, v, t, g: taca_attention(q, k, v, text_keys=(0, t), gamma=g),
    "dense": lambda q, k, v, t, g: dense_taca_attention(q, k, v, text_keys=(0, t), gamma=g),
    "two_pass": lambda q, k, v, t, g: two_pass(q, k, v, txt_len=t, gamma=g),
}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(fn, args, device, reps):
    for _ in range(2):
        fn(*args)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    base_mem = torch.cuda.memory_allocated() if device.type == "cuda" else 0
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        fn(*args)
        sync(device)
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() - base_mem if device.type == "cuda" else None
    times.sort()
    return times[len(times) // 2], peak


def run(shape, device, dtype, reps, methods):
    b, h, txt, img, d = shape
    g = torch.Generator(device="cpu").manual_seed(0)
    q, k, v = (torch.randn(b, h, txt + img, d, generator=g).to(device, dtype) for _ in range(3))
    err = (taca_attention(q, k, v, text_keys=(0, txt), gamma=1.2).float()
           - dense_taca_attention(q, k, v, text_keys=(0, txt), gamma=1.2).float()).abs().max().item()
    print(f"\nB{b} H{h} D{d}, {txt} text + {img} image tokens, {dtype}, {device} "
          f"(taca vs dense max |diff| {err:.2e})")
    print(f"{'method':>10} {'median ms':>10} {'x sdpa':>8} {'peak MiB':>9} {'x sdpa':>8}")
    results = {name: measure(METHODS[name], (q, k, v, txt, 1.2), device, reps) for name in methods}
    t0, m0 = results["sdpa"]
    for name, (t, m) in results.items():
        mem = f"{m / 2**20:9.1f} {m / m0:8.2f}" if m is not None else f"{'-':>9} {'-':>8}"
        print(f"{name:>10} {t * 1e3:10.2f} {t / t0:8.2f} {mem}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--reps", type=int, default=None)
    a = p.parse_args()
    device = torch.device(a.device)
    gpu = device.type == "cuda"
    dtype = torch.bfloat16 if gpu else torch.float32
    reps = a.reps or (50 if gpu else 5)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name() if gpu else 'CPU'}, "
          f"{torch.get_num_threads()} threads")
    run((1, 24, 512, 4096, 128), device, dtype, reps, list(METHODS))  # FLUX at 1024x1024
    run((1, 24, 333, 1024, 64), device, dtype, reps, list(METHODS))   # SD3.5-sized at 512x512
    run((2, 8, 77, 1024, 64), device, dtype, reps, list(METHODS))     # small, CPU-friendly


if __name__ == "__main__":
    main()
