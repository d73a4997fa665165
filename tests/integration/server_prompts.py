"""API prompts of the tiny SD3 with the pack's nodes, and a small client of ComfyUI's HTTP API.

Shared by the server fault tests and bench/soak.py. The graphs use the test-only nodes of
taca_test_nodes (a tiny seeded SD3 and its conditioning: no checkpoint, no text encoder) and core's
EmptySD3LatentImage, KSampler and SaveLatent; a result is the saved latent, read back as a tensor.
"""
import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import torch
from safetensors.torch import load_file

TEST_NODES = Path(__file__).resolve().parent / "taca_test_nodes"
KINDS = ("plain", "taca", "lora_taca", "probe")


def graph(kind="lora_taca", *, lora="good.safetensors", strength=1.0, active="while TACA acts", gamma=1.5,
          cutoff=0, steps=3, seed=0, wait=None, prefix="taca_test", nonce=None):
    """An API prompt (the /prompt "prompt" dict). kind: plain | taca | lora_taca | probe | lora_every (LoRA on
    every step, no TACA). wait: (started, go) paths of a TacaTestWaitFor before the LoRA node. nonce: by
    default a new one, so that every node runs again (ComfyUI's cache would hand back the last result);
    the same nonce twice lets the cache decide."""
    nonce = uuid.uuid4().hex if nonce is None else nonce
    g = {"model": {"class_type": "TacaTestTinySD3", "inputs": {"seed": 0, "nonce": nonce}},
         "conds": {"class_type": "TacaTestConds", "inputs": {"seed": 0, "tokens": 7}},
         "latent": {"class_type": "EmptySD3LatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 1}}}
    model = ["model", 0]
    if wait is not None:
        g["wait"] = {"class_type": "TacaTestWaitFor",
                     "inputs": {"model": model, "started": str(wait[0]), "go": str(wait[1]), "timeout": 120.0}}
        model = ["wait", 0]
    if kind in ("lora_taca", "lora_every"):
        g["lora"] = {"class_type": "TACALoraLoader", "inputs": {
            "model": model, "lora_name": lora, "strength": strength,
            "active": "every step" if kind == "lora_every" else active}}
        model = ["lora", 0]
    if kind in ("taca", "lora_taca", "probe"):
        g["taca"] = {"class_type": "TACAModelPatch", "inputs": {"model": model, "gamma": gamma,
                                                                "timestep_cutoff": cutoff}}
        model = ["taca", 0]
    if kind == "probe":
        g["probe"] = {"class_type": "TACAAttentionProbe", "inputs": {"model": model}}
        model = ["probe", 0]
    g["sample"] = {"class_type": "KSampler", "inputs": {
        "model": model, "positive": ["conds", 0], "negative": ["conds", 1], "latent_image": ["latent", 0],
        "seed": seed, "steps": steps, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0}}
    g["save"] = {"class_type": "SaveLatent", "inputs": {"samples": ["sample", 0], "filename_prefix": prefix}}
    if kind == "probe":
        g["plot"] = {"class_type": "TACAProbePlot", "inputs": {"probe": ["probe", 1], "samples": ["sample", 0]}}
    return g


class Client:
    def __init__(self, url: str, output_dir: Path):
        self.url = url
        self.output_dir = output_dir
        self.client_id = uuid.uuid4().hex

    def post(self, route: str, body: dict, timeout=30):
        req = urllib.request.Request(self.url + route, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read()
                return r.status, (json.loads(text) if text.strip() else None)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def get(self, route: str, timeout=30):
        with urllib.request.urlopen(self.url + route, timeout=timeout) as r:
            return json.loads(r.read())

    def queue(self, prompt: dict) -> str:
        """The prompt id; a RuntimeError with the server's answer when it refuses the prompt at queue time."""
        status, body = self.post("/prompt", {"prompt": prompt, "client_id": self.client_id})
        if status != 200:
            raise RuntimeError(json.dumps(body))
        return body["prompt_id"]

    def wait(self, prompt_id: str, timeout=300) -> dict:
        """The prompt's history entry once it has run (success, error or interrupted)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry:  # the server writes history once the prompt has run
                return entry
            time.sleep(0.02)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout}s")

    def run(self, prompt: dict, timeout=300) -> dict:
        return self.wait(self.queue(prompt), timeout)

    def latent(self, entry: dict) -> torch.Tensor:
        """The latent SaveLatent wrote for this history entry."""
        saved = entry["outputs"]["save"]["latents"][0]
        return load_file(str(self.output_dir / saved["subfolder"] / saved["filename"]))["latent_tensor"]


def status(entry: dict) -> str:
    """success | error | interrupted."""
    names = [m[0] for m in entry["status"].get("messages", [])]
    if "execution_interrupted" in names:
        return "interrupted"
    return entry["status"].get("status_str")


def error(entry: dict) -> dict:
    """The execution_error message of a failed prompt (node_type, exception_message, ...)."""
    return next(m[1] for m in entry["status"]["messages"] if m[0] == "execution_error")
