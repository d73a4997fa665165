"""Test-only ComfyUI nodes for the server tier (linked into the test server's custom_nodes, never shipped).

TacaTestTinySD3 and TacaTestConds stand in for a checkpoint and a text encoder (the tiny seeded SD3 of
tiny_models and its random conditioning); TacaTestWaitFor holds a prompt at one point of the graph until
the test says go, so a test can change a file between queueing and execution.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/integration: tiny_models

import tiny_models  # noqa: E402


class TacaTestTinySD3:
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "build"
    CATEGORY = "_for_testing"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0, "min": 0, "max": 1000}),
                             "nonce": ("STRING", {"default": ""})}}  # a new nonce: every node runs again

    def build(self, seed, nonce):
        return (tiny_models.tiny_sd3(seed=seed),)


class TacaTestConds:
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    FUNCTION = "conds"
    CATEGORY = "_for_testing"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0, "min": 0, "max": 1000}),
                             "tokens": ("INT", {"default": 7, "min": 1, "max": 256})}}

    def conds(self, seed, tokens):
        return tiny_models.make_conds("sd3", tokens, seed=seed)


class TacaTestWaitFor:
    """Passes model through once `go` exists, after creating `started` (timeout: seconds)."""
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "wait"
    CATEGORY = "_for_testing"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "started": ("STRING", {"default": ""}),
                             "go": ("STRING", {"default": ""}),
                             "timeout": ("FLOAT", {"default": 60.0, "min": 0.0, "max": 600.0})}}

    def wait(self, model, started, go, timeout):
        Path(started).touch()
        deadline = time.time() + timeout
        while not Path(go).exists():
            if time.time() > deadline:
                raise TimeoutError(f"TacaTestWaitFor: {go} did not appear in {timeout}s")
            time.sleep(0.01)
        return (model,)


NODE_CLASS_MAPPINGS = {"TacaTestTinySD3": TacaTestTinySD3, "TacaTestConds": TacaTestConds,
                       "TacaTestWaitFor": TacaTestWaitFor}
