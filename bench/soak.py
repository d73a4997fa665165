"""Soak a real ComfyUI server with the pack: N API prompts, faults interleaved, bounded in count and time.

    COMFYUI_PATH=/path/to/ComfyUI python bench/soak.py [--prompts 1000] [--max-minutes 30] [--fault-every 12]
        [--restarts 1] [--warmup 50] [--clear-history] [--server-arg=--cache-classic ...]

Starts its own server (--cpu, 127.0.0.1 only, a fresh temporary base directory) with the pack and the
test-only nodes (tests/integration/taca_test_nodes: a tiny seeded SD3, 3 steps), and cycles through the
good configurations plain, taca, lora_taca (TACA LoRA while TACA acts), lora_every (every step) and
probe (probe + plot). Every good result must be bit-identical to the first result of its configuration.
Every --fault-every prompts one fault runs, in turn: the TACA LoRA Loader's refusals (NaN strength in both
modes, a NaN tensor, a LoRA of another width, one with down matrices of another width), a LoRA file deleted,
truncated or replaced by garbage between queueing and execution, /interrupt during a LoRA + TACA run with
a prompt queued behind it, and /free; --restarts times a SIGKILL and restart on the same base directory.
Prints the server's RSS at start, after --warmup prompts and at the end, its slope per 100 prompts after
warm-up (least squares), its thread and open-file counts, the median server time per configuration
(execution_start to execution_success, from the history) and every fault's outcome.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
if not os.environ.get("COMFYUI_PATH"):
    sys.exit("set COMFYUI_PATH to a ComfyUI checkout (see README, Development)")

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--prompts", type=int, default=1000, help="good + fault prompts in all (default 1000)")
ap.add_argument("--max-minutes", type=float, default=30.0, help="stop queueing after this long")
ap.add_argument("--fault-every", type=int, default=12)
ap.add_argument("--restarts", type=int, default=1, help="SIGKILL + restarts, spread over the run")
ap.add_argument("--warmup", type=int, default=50, help="prompts before the 'after warm-up' RSS")
ap.add_argument("--clear-history", action="store_true", help="clear the server's history every 100 prompts")
ap.add_argument("--server-arg", action="append", default=[], help="extra ComfyUI flag, e.g. --server-arg=--cache-classic")
ARGS = ap.parse_args()

import torch  # noqa: E402

from comfy_env import import_comfy  # noqa: E402

env = import_comfy()

from comfy_server import ComfyServer  # noqa: E402
from lora_files import resized_lora, write_lora  # noqa: E402
from server_prompts import TEST_NODES, Client, error, graph, status  # noqa: E402
from tiny_models import tiny_sd3  # noqa: E402

GOOD = ("plain", "taca", "lora_taca", "lora_every", "probe")


def proc_stats(pid):
    """(RSS in MB, threads, open files) of the server process, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"]), len(os.listdir(f"/proc/{pid}/fd"))


def server_ms(entry):
    stamps = {m[0]: m[1].get("timestamp") for m in entry["status"].get("messages", [])}
    if stamps.get("execution_start") and stamps.get("execution_success"):
        return stamps["execution_success"] - stamps["execution_start"]
    return None


def slope_per_100(points):
    """Least-squares slope of (prompt number, RSS MB) points, in MB per 100 prompts."""
    if len(points) < 2:
        return float("nan")
    xs, ys = zip(*points)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 100 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else float("nan")


class Soak:
    def __init__(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="taca_soak_"))
        self.server = ComfyServer(Path(os.environ["COMFYUI_PATH"]), self.tmp / "base", extra_nodes=[TEST_NODES],
                                  args=ARGS.server_arg)
        self.loras = self.server.base_dir / "models" / "loras"
        write_lora(self.loras / "good.safetensors", tiny_sd3(0), "sd3", "kohya")
        self.server.wait_ready()
        self.refs, self.latency, self.faults, self.rss = {}, {k: [] for k in GOOD}, [], []
        self.count, self.good_runs, self.mismatches, self.failures = 0, 0, [], []
        self.stats_start = proc_stats(self.server.proc.pid)
        self.stats_warm = None

    def client(self):
        return Client(self.server.url, self.server.base_dir / "output")

    def after_prompt(self):
        self.count += 1
        rss, _, _ = proc_stats(self.server.proc.pid)
        self.rss.append((self.count, rss))
        if self.count == ARGS.warmup:
            self.stats_warm = proc_stats(self.server.proc.pid)
        if ARGS.clear_history and self.count % 100 == 0:
            self.client().post("/history", {"clear": True})

    def good(self, kind):
        c = self.client()
        entry = c.run(graph(kind))
        self.after_prompt()
        if status(entry) != "success":
            self.failures.append((self.count, kind, status(entry)))
            return False
        latent = c.latent(entry)
        self.good_runs += 1
        ms = server_ms(entry)
        if ms is not None:
            self.latency[kind].append(ms)
        if kind not in self.refs:
            self.refs[kind] = latent
        elif not torch.equal(latent, self.refs[kind]):
            self.mismatches.append((self.count, kind))
            return False
        return True

    def lora_file(self, name, edit=None):
        from safetensors.torch import load_file, save_file
        sd = load_file(str(self.loras / "good.safetensors"))
        if edit:
            edit(sd)
        save_file(sd, str(self.loras / name))
        return name

    def refusal(self, kind, **kw):
        entry = self.client().run(graph(kind, **kw))
        self.after_prompt()
        if status(entry) != "error":
            return f"NOT REFUSED ({status(entry)})"
        err = error(entry)
        return f"refused by {err['node_type']}: {err['exception_message'][:110]}..."

    def changed_between(self, how):
        name = self.lora_file(f"{how}.safetensors")
        c = self.client()
        started, go = self.tmp / f"started_{self.count}", self.tmp / f"go_{self.count}"
        prompt_id = c.queue(graph("lora_taca", lora=name, wait=(started, go)))
        while not started.exists():
            time.sleep(0.01)
        data = (self.loras / name).read_bytes()
        if how == "deleted":
            (self.loras / name).unlink()
        elif how == "truncated":
            (self.loras / name).write_bytes(data[:len(data) // 2])
        else:
            (self.loras / name).write_bytes(os.urandom(len(data)))
        go.touch()
        entry = c.wait(prompt_id)
        self.after_prompt()
        if status(entry) != "error":
            return f"NOT REFUSED ({status(entry)})"
        return f"refused: {error(entry)['exception_message'][:110]}..."

    def interrupt(self):
        c = self.client()
        started, go = self.tmp / f"started_{self.count}", self.tmp / f"go_{self.count}"
        long_id = c.queue(graph("lora_taca", steps=400, wait=(started, go)))
        behind_id = c.queue(graph("lora_taca"))
        while not started.exists():
            time.sleep(0.01)
        go.touch()
        time.sleep(0.2)
        c.post("/interrupt", {})
        long_status = status(c.wait(long_id))
        behind = c.wait(behind_id)
        self.after_prompt()
        self.after_prompt()
        same = status(behind) == "success" and torch.equal(c.latent(behind), self.refs["lora_taca"])
        return f"long run {long_status}; prompt behind it {status(behind)}, {'bit-identical' if same else 'DIFFERENT'}"

    def free(self):
        code, _ = self.client().post("/free", {"unload_models": True, "free_memory": True})
        return f"/free answered {code}"

    def restart(self):
        self.server.kill()
        t0 = time.time()
        self.server.start().wait_ready()
        return f"SIGKILL, restarted on the same base directory in {time.time() - t0:.1f} s"

    def fault_list(self):
        wider = self.lora_file("wider.safetensors", lambda sd: resized_lora(sd, up=2, down=2))
        down = self.lora_file("down_width.safetensors", lambda sd: resized_lora(sd, down=2))
        nan = self.lora_file("nan_tensor.safetensors",
                             lambda sd: sd["lora_unet_joint_blocks_1_x_block_mlp_fc1.lora_down.weight"].fill_(float("nan")))
        return [
            ("NaN strength, while TACA acts", lambda: self.refusal("lora_taca", strength=float("nan"))),
            ("NaN strength, every step", lambda: self.refusal("lora_every", strength=float("nan"))),
            ("NaN in a LoRA tensor", lambda: self.refusal("lora_taca", lora=nan)),
            ("LoRA of another width, every step", lambda: self.refusal("lora_every", lora=wider)),
            ("LoRA of another width, while TACA acts", lambda: self.refusal("lora_taca", lora=wider)),
            ("down matrices of another width", lambda: self.refusal("lora_taca", lora=down)),
            ("file deleted between queue and execution", lambda: self.changed_between("deleted")),
            ("file truncated between queue and execution", lambda: self.changed_between("truncated")),
            ("file replaced by garbage between queue and execution", lambda: self.changed_between("garbage")),
            ("/interrupt during LoRA + TACA, a prompt queued behind", self.interrupt),
            ("/free", self.free),
        ]

    def run(self):
        t0 = time.time()
        faults = self.fault_list()
        restart_at = {int(ARGS.prompts * (i + 1) / (ARGS.restarts + 1)) for i in range(ARGS.restarts)}
        i = fault_i = 0
        while self.count < ARGS.prompts and time.time() - t0 < ARGS.max_minutes * 60:
            if any(self.count >= r for r in restart_at):
                restart_at = {r for r in restart_at if self.count < r}
                outcome = self.restart()
                after = all(self.good(k) for k in GOOD)
                self.faults.append((self.count, "SIGKILL + restart", outcome, after))
                continue
            if self.count >= len(GOOD) and self.count % ARGS.fault_every == 0:
                name, fn = faults[fault_i % len(faults)]
                fault_i += 1
                outcome = fn()
                after = self.good("lora_taca") and self.good("plain")
                self.faults.append((self.count, name, outcome, after))
                continue
            self.good(GOOD[i % len(GOOD)])
            i += 1
        self.elapsed = time.time() - t0
        self.stats_end = proc_stats(self.server.proc.pid)

    def report(self):
        print(f"ComfyUI {env.version}, torch {torch.__version__}, server --cpu on 127.0.0.1"
              f"{''.join(' ' + a for a in ARGS.server_arg)}{', history cleared every 100' if ARGS.clear_history else ''}; tiny SD3 (hidden 128, 2 joint blocks), 128x128 image, 3 steps euler")
        print(f"{self.count} prompts in {self.elapsed / 60:.1f} min: {self.good_runs} good runs, {len(self.faults)} "
              f"faults; good results not bit-identical to their first: {len(self.mismatches)} {self.mismatches[:5]}; "
              f"good prompts that failed: {len(self.failures)} {self.failures[:5]}")
        for label, st in (("start", self.stats_start), (f"after {ARGS.warmup} prompts", self.stats_warm),
                          ("end", self.stats_end)):
            if st:
                print(f"server RSS {label:>18}: {st[0]:8.1f} MB, {st[1]} threads, {st[2]} open files")
        print("(at the end: the server process started last)")
        starts = [0] + [c for c, name, _, _ in self.faults if name == "SIGKILL + restart"]
        for a, b in zip(starts, starts[1:] + [self.count + 1]):  # each server process's life, after its warm-up
            warm = [(n, r) for n, r in self.rss if a + ARGS.warmup < n <= b]
            print(f"RSS slope after warm-up, server started at prompt {a} (least squares over {len(warm)} "
                  f"prompts): {slope_per_100(warm):+.2f} MB per 100 prompts; "
                  f"{warm[0][1] if warm else float('nan'):.1f} -> {warm[-1][1] if warm else float('nan'):.1f} MB")
        base = statistics.median(self.latency["plain"]) if self.latency["plain"] else float("nan")
        print("median server time per configuration (execution_start to execution_success):")
        for kind in GOOD:
            if self.latency[kind]:
                med = statistics.median(self.latency[kind])
                print(f"  {kind:>11}: {med:6.0f} ms  x{med / base:5.2f}  ({len(self.latency[kind])} runs)")
        print("faults (prompt count when it ran, fault, outcome, next good prompts bit-identical):")
        for count, name, outcome, after in self.faults:
            print(f"  {count:5} {name}: {outcome}; next good: {'bit-identical' if after else 'NOT IDENTICAL/FAILED'}")

    def close(self):
        self.server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


if __name__ == "__main__":
    soak = Soak()
    try:
        soak.run()
        soak.report()
    finally:
        soak.close()
