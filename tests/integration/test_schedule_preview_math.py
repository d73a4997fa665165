"""The web preview's step math (web/taca_schedule_math.js, run in Node) against ComfyUI's own sigmas."""
import json
import shutil
import subprocess

import pytest
import torch

from comfy_env import import_comfy, skip_or_fail

import_comfy()

import comfy.samplers  # noqa: E402

from pack import ROOT  # noqa: E402
from tiny_models import tiny_flux, tiny_sd3  # noqa: E402

NODE = shutil.which("node")
CUTOFFS = [1000, 990, 970, 900, 800, 500, 0]


def js_steps(kind, shift, steps, cutoffs):
    if NODE is None:
        skip_or_fail("needs Node.js (node) to run the web extension's math")
    module = (ROOT / "web" / "taca_schedule_math.js").as_uri()
    script = (f"import({json.dumps(module)}).then(m => console.log(JSON.stringify("
              f"{json.dumps(cutoffs)}.map(c => m.tacaSteps({json.dumps(kind)}, {shift}, {steps}, c)))))")
    return json.loads(subprocess.run([NODE, "-e", script], capture_output=True, text=True, check=True).stdout)


@pytest.mark.parametrize("kind,shift,build", [("flux", 1.15, tiny_flux), ("sd3", 3.0, tiny_sd3)])
@pytest.mark.parametrize("steps", [4, 20, 30])
def test_preview_steps_match_comfyui(kind, shift, build, steps):
    sampling = build().get_model_object("model_sampling")
    sigmas = comfy.samplers.calculate_sigmas(sampling, "simple", steps)[:steps].double()
    expected = [[k + 1 for k, s in enumerate(sigmas.tolist()) if 1000 * s >= c] for c in CUTOFFS]
    assert js_steps(kind, shift, steps, CUTOFFS) == expected
    assert expected[2] == ([1, 2, 3] if steps == 30 else expected[2])  # the official "first 3 of 30"
