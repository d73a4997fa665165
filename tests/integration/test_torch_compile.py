"""TACA and its LoRA under torch.compile, through ComfyUI's own TorchCompileModel node.

ComfyUI (0.5+) tells torch.compile to ignore everything reached through transformer_options when it
decides whether a compiled graph still fits a call, and TACA decides per model call. A graph traced
in the window must never serve a call outside it, nor the other way round: each step of a compiled
run equals the same step uncompiled, with a window covering only the first step, over two runs.
The backend is aot_eager (no C++ compiler needed; TorchCompileModel offers inductor, which goes
through the same graph capture and guards).
"""
import pytest
import torch

from support.comfy_env import import_comfy

env = import_comfy()

from support.lora_files import write_lora  # noqa: E402
from support.tiny_models import cutoff_between_steps, make_conds, run_sample, tiny_flux  # noqa: E402

from support.taca import patch, taca_lora  # noqa: E402

STEPS = 2  # the first in the window, the second not
LORA = "compile.safetensors"


@pytest.fixture(scope="module", autouse=True)
def lora_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("loras")
    env.folder_paths.add_model_folder_path("loras", str(d))
    write_lora(d / LORA, tiny_flux(), "flux", "diffusers")


def per_step(model):
    """The denoised prediction of every step of one sampling run."""
    pos, neg = make_conds("flux", 9)
    steps = []
    run_sample(model, pos, neg, steps=STEPS, callback=lambda i, x0, x, n: steps.append(x0.clone()))
    return steps


@pytest.mark.parametrize("node", ["TACAModelPatch", "TACALoraLoader"])  # each decides per call on its own
def test_compiled_equals_uncompiled_on_every_step_over_two_runs(node):
    try:
        from comfy_extras.nodes_torch_compile import TorchCompileModel
    except ImportError:
        pytest.skip(f"ComfyUI {env.version} has no TorchCompileModel node")
    torch._dynamo.reset()
    base = tiny_flux()
    if node == "TACAModelPatch":
        model = patch(base, cutoff=cutoff_between_steps(base, STEPS, 1))
    else:  # without a TACA Model Patch it follows the paper's window, timestep >= 970: the first step
        assert cutoff_between_steps(base, STEPS, 1) < 970
        model = taca_lora(base, LORA)
    expected = per_step(model)
    plain = per_step(base)
    assert (expected[0] - plain[0]).abs().max() > 1e-3, "the node acts on the first step"
    compiled = TorchCompileModel.execute(model=model, backend="aot_eager").result[0]  # ComfyUI's node code
    try:
        for run in range(2):
            for step, (got, want) in enumerate(zip(per_step(compiled), expected, strict=True)):
                torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5,
                                           msg=lambda m: f"run {run}, step {step}: {m}")
    finally:
        torch._dynamo.reset()
