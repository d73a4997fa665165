"""Bad LoRA input and server faults through a real ComfyUI server (issue 17, part 6).

One server per module (--cpu, loopback) with the pack and the test-only nodes of taca_test_nodes (a
tiny seeded SD3, 3 steps). Every fault is followed by good prompts whose latents must be bit-identical
to the first run of the same prompt: each refusal of the TACA LoRA Loader as the server reports it
(node, file, key), a LoRA file rewritten, deleted, truncated or replaced by garbage between queueing and
execution, /interrupt during a LoRA + TACA run with a prompt queued behind it, /free, two clients
queueing at once, and a server killed (SIGKILL) and restarted on the same base directory.
"""
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch

from comfy_env import import_comfy

import_comfy()

from comfy_server import ComfyServer  # noqa: E402
from lora_files import resized_lora, write_lora  # noqa: E402
from server_prompts import TEST_NODES, Client, error, graph, status  # noqa: E402
from tiny_models import tiny_sd3  # noqa: E402

KINDS = ("plain", "taca", "lora_taca", "lora_every", "probe")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = ComfyServer(Path(os.environ["COMFYUI_PATH"]), tmp_path_factory.mktemp("comfy") / "base",
                    extra_nodes=[TEST_NODES])
    loras = s.base_dir / "models" / "loras"
    write_lora(loras / "good.safetensors", tiny_sd3(0), "sd3", "kohya")
    write_lora(loras / "other.safetensors", tiny_sd3(0), "sd3", "kohya", seed=1)
    try:
        yield s.wait_ready()
    finally:
        s.stop()


def client(server):
    return Client(server.url, server.base_dir / "output")


def ok(c, prompt):
    entry = c.run(prompt)
    assert status(entry) == "success", entry["status"]
    return c.latent(entry)


@pytest.fixture(scope="module")
def refs(server):
    """The first result of each good prompt."""
    c = client(server)
    out = {kind: ok(c, graph(kind)) for kind in KINDS}
    assert not torch.equal(out["lora_taca"], out["taca"]) and not torch.equal(out["lora_every"], out["plain"])
    assert not torch.equal(out["taca"], out["plain"])
    return out


def still_good(server, refs, kinds=("lora_taca", "plain")):
    c = client(server)
    for kind in kinds:
        assert torch.equal(ok(c, graph(kind)), refs[kind]), kind


def test_good_prompts_repeat_bit_identically(server, refs):
    still_good(server, refs, KINDS)


def _lora_file(server, name, edit):
    from safetensors.torch import load_file, save_file
    loras = server.base_dir / "models" / "loras"
    sd = load_file(str(loras / "good.safetensors"))
    edit(sd)
    save_file(sd, str(loras / name))
    return name


def _poison(sd):
    sd["lora_unet_joint_blocks_1_x_block_mlp_fc1.lora_down.weight"][0, 0] = float("nan")


@pytest.mark.parametrize("active", ["while TACA acts", "every step"])
@pytest.mark.parametrize("case,edit,strength,expected", [
    ("nan_strength", None, float("nan"), ["strength must be a finite number"]),
    ("nan_tensor", _poison, 1.0, ["'nan_tensor.safetensors' holds non-finite values",
                                  "'lora_unet_joint_blocks_1_x_block_mlp_fc1.lora_down.weight'"]),
    ("wider", lambda sd: resized_lora(sd, up=2, down=2), 1.0,
     ["'wider.safetensors' does not fit this SD3 model", "'lora_unet_joint_blocks_0_context_block_attn_qkv.lora_up"
      ".weight' has shape (768, 4)", "needs 384 rows"]),
    ("down_width", lambda sd: resized_lora(sd, down=2), 1.0,
     ["'down_width.safetensors' does not fit this SD3 model", "lora_down.weight' has shape (4, 256)",
      "needs 128 columns"]),
])
def test_each_refusal_is_reported_by_the_server(server, refs, active, case, edit, strength, expected):
    name = _lora_file(server, f"{case}.safetensors", edit) if edit else "good.safetensors"
    kind = "lora_every" if active == "every step" else "lora_taca"
    entry = client(server).run(graph(kind, lora=name, strength=strength))
    assert status(entry) == "error"
    err = error(entry)
    assert err["node_type"] == "TACALoraLoader"
    assert err["exception_message"].startswith("TACALoraLoader: "), err["exception_message"]
    for part in expected:
        assert part in err["exception_message"], err["exception_message"]
    still_good(server, refs)


def test_an_infinite_strength_is_refused_when_queued(server, refs):
    with pytest.raises(RuntimeError, match="strength"):
        client(server).queue(graph("lora_taca", strength=float("inf")))
    still_good(server, refs)


def test_a_file_rewritten_under_the_same_name_is_read_again(server, refs):
    loras = server.base_dir / "models" / "loras"
    c = client(server)
    other = ok(c, graph("lora_taca", lora="other.safetensors"))
    shutil.copy(loras / "good.safetensors", loras / "swap.safetensors")
    prompt = graph("lora_taca", lora="swap.safetensors", nonce="fixed")  # the same prompt each time: cached
    assert torch.equal(ok(c, prompt), refs["lora_taca"])
    for content, expected in (("other", other), ("good", refs["lora_taca"])):
        before = os.stat(loras / "swap.safetensors").st_mtime_ns
        shutil.copy(loras / f"{content}.safetensors", loras / "swap.safetensors")
        os.utime(loras / "swap.safetensors", ns=(before + 10**9, before + 10**9))  # a later mtime, even on coarse clocks
        assert torch.equal(ok(c, prompt), expected), content


@pytest.mark.parametrize("fault", ["deleted", "truncated", "garbage"])
def test_a_file_changed_between_queueing_and_execution(server, refs, tmp_path, fault):
    loras = server.base_dir / "models" / "loras"
    name = f"{fault}.safetensors"
    shutil.copy(loras / "good.safetensors", loras / name)
    c = client(server)
    started, go = tmp_path / "started", tmp_path / "go"
    prompt_id = c.queue(graph("lora_taca", lora=name, wait=(started, go)))  # validated now: the file is there
    deadline = time.time() + 60
    while not started.exists():
        assert time.time() < deadline
        time.sleep(0.01)
    data = (loras / name).read_bytes()
    if fault == "deleted":
        (loras / name).unlink()
    elif fault == "truncated":
        (loras / name).write_bytes(data[:len(data) // 2])
    else:
        (loras / name).write_bytes(os.urandom(len(data)))
    go.touch()
    entry = c.wait(prompt_id)
    assert status(entry) == "error"
    err = error(entry)
    assert err["node_type"] == "TACALoraLoader" and f"'{name}'" in err["exception_message"], err
    still_good(server, refs)


def test_interrupt_during_a_lora_taca_run_with_a_prompt_queued_behind(server, refs, tmp_path):
    c = client(server)
    started, go = tmp_path / "started", tmp_path / "go"
    long_id = c.queue(graph("lora_taca", steps=400, wait=(started, go)))
    behind_id = c.queue(graph("lora_taca"))
    deadline = time.time() + 60
    while not started.exists():
        assert time.time() < deadline
        time.sleep(0.01)
    go.touch()
    time.sleep(0.2)  # into the sampling
    assert c.post("/interrupt", {})[0] == 200
    assert status(c.wait(long_id)) == "interrupted"
    behind = c.wait(behind_id)
    assert status(behind) == "success" and torch.equal(c.latent(behind), refs["lora_taca"])
    still_good(server, refs)


def test_free_between_runs(server, refs):
    c = client(server)
    assert c.post("/free", {"unload_models": True, "free_memory": True})[0] == 200
    still_good(server, refs, KINDS)


def test_two_clients_queueing_at_once(server, refs):
    kinds = {0: ["lora_taca", "plain", "probe", "lora_taca"], 1: ["taca", "lora_every", "lora_taca", "plain"]}
    ids, errors = {}, []

    def queue_all(i):
        try:
            c = client(server)
            ids[i] = [(kind, c.queue(graph(kind))) for kind in kinds[i]]
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)
    threads = [threading.Thread(target=queue_all, args=(i,)) for i in kinds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    c = client(server)
    for i in kinds:
        for kind, prompt_id in ids[i]:
            entry = c.wait(prompt_id)
            assert status(entry) == "success" and torch.equal(c.latent(entry), refs[kind]), (i, kind)


def test_killed_and_restarted_on_the_same_base_directory(server, refs):
    c = client(server)
    queued = c.queue(graph("lora_taca", steps=400))  # killed while it runs or waits
    server.kill()
    server.start().wait_ready()
    still_good(server, refs, KINDS)
    assert client(server).get(f"/history/{queued}") == {}  # a new server: the killed one's queue is gone
