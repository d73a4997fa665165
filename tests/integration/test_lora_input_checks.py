"""TACA LoRA Loader refuses bad LoRA input before sampling, in both modes (issue 17, parts 1-4).

Each refusal names the node and, where a file is at fault, the file and its first bad key; without
it the input would sample silently wrong (a NaN latent, a LoRA skipped with only a log line) or fail
later at KSampler with a bare matmul error.
"""
import importlib
import math
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from comfy_env import import_comfy

env = import_comfy()

from lora_files import resized_lora, write_lora  # noqa: E402
from pack import load_pack  # noqa: E402
from tiny_models import tiny_sd3  # noqa: E402

_pack = load_pack().__name__
lora_node = importlib.import_module(_pack + ".nodes.taca_lora_loader")
MODES = [lora_node.WHILE_TACA_ACTS, lora_node.EVERY_STEP]


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("loras")
    env.folder_paths.add_model_folder_path("loras", str(d))
    return d


@pytest.fixture(scope="module")
def sd3():
    return tiny_sd3(seed=0)


@pytest.fixture(scope="module")
def good(lora_dir, sd3):
    write_lora(lora_dir / "good.safetensors", sd3, "sd3", "kohya")
    return load_file(str(lora_dir / "good.safetensors"))


def load(model, name, active, strength=1.0):
    return lora_node.TACALoraLoader.execute(model=model, lora_name=name, strength=strength, active=active).result[0]


def edited(lora_dir, good, name, edit):
    sd = {k: v.clone() for k, v in good.items()}
    edit(sd)
    save_file(sd, str(lora_dir / name))
    return name


@pytest.mark.parametrize("active", MODES)
@pytest.mark.parametrize("strength", [math.nan, math.inf, -math.inf])
def test_non_finite_strength_is_refused(sd3, good, active, strength):
    with pytest.raises(ValueError, match=rf"TACALoraLoader: strength must be a finite number .*got {strength}"):
        load(sd3, "good.safetensors", active, strength)


@pytest.mark.parametrize("active", MODES)
def test_a_file_holding_nan_is_refused_naming_file_and_key(lora_dir, sd3, good, active):
    key = "lora_unet_joint_blocks_1_x_block_mlp_fc1.lora_down.weight"

    def poison(sd):
        sd[key][0, 0] = math.nan
        sd["lora_unet_joint_blocks_1_x_block_mlp_fc1.lora_up.weight"][1, 1] = math.inf  # a later key
    name = edited(lora_dir, good, "nan.safetensors", poison)
    with pytest.raises(ValueError, match=rf"TACALoraLoader: 'nan.safetensors' holds non-finite values \(NaN or inf\) "
                                         rf"in '{key}'"):
        load(sd3, name, active)


@pytest.mark.parametrize("active", MODES)
@pytest.mark.parametrize("case,edit,key,got,wanted", [
    # an SD3 LoRA of another width (ComfyUI's 'every step' only logs "shape is invalid" and skips it)
    ("wider", lambda sd: resized_lora(sd, up=2, down=2), "lora_unet_joint_blocks_0_context_block_attn_qkv.lora_up.weight",
     "(768, 4)", "384 rows"),
    # only the down matrices of another width (fails at KSampler today: "mat1 and mat2 shapes cannot be multiplied")
    ("down_width", lambda sd: resized_lora(sd, down=2), "lora_unet_joint_blocks_0_context_block_attn_qkv.lora_down.weight",
     "(4, 256)", "128 columns"),
    ("rank", lambda sd: resized_lora(sd, rank=1, only="lora_unet_joint_blocks_1_x_block_mlp_fc1"),
     "lora_unet_joint_blocks_1_x_block_mlp_fc1.lora_down.weight", "(5, 128)", "4 rows"),
])
def test_a_lora_that_does_not_fit_its_layers_is_refused(lora_dir, sd3, good, active, case, edit, key, got, wanted):
    name = edited(lora_dir, good, f"{case}.safetensors", edit)
    with pytest.raises(ValueError) as e:
        load(sd3, name, active)
    msg = str(e.value)
    assert msg.startswith(f"TACALoraLoader: '{name}' does not fit this SD3 model: its '{key}' has shape {got}"), msg
    assert f"needs {wanted}" in msg and "another size of SD3" in msg, msg


@pytest.mark.parametrize("active", MODES)
def test_diff_and_diff_b_of_another_shape_are_refused(lora_dir, sd3, good, active):
    w = sd3.model.state_dict()["diffusion_model.x_embedder.proj.weight"]
    b = sd3.model.state_dict()["diffusion_model.x_embedder.proj.bias"]
    name = edited(lora_dir, good, "diff.safetensors", lambda sd: sd.update({
        "diffusion_model.x_embedder.proj.diff": torch.zeros_like(w)}))
    assert load(sd3, name, active) is not None  # fitting diff: accepted
    name = edited(lora_dir, good, "diff_b.safetensors", lambda sd: sd.update({
        "diffusion_model.x_embedder.proj.diff": torch.zeros_like(w),
        "diffusion_model.x_embedder.proj.diff_b": torch.zeros(b.shape[0] * 2)}))
    with pytest.raises(ValueError, match=rf"'diff_b.safetensors' does not fit this SD3 model: its "
                                         rf"'diffusion_model.x_embedder.proj.diff_b' has shape \({b.shape[0] * 2},\), "
                                         rf"but the layer it adapts, 'diffusion_model.x_embedder.proj.bias' of shape "
                                         rf"\({b.shape[0]},\)"):
        load(sd3, name, active)
    name = edited(lora_dir, good, "diff_w.safetensors", lambda sd: sd.update({
        "diffusion_model.x_embedder.proj.diff": torch.zeros(w.shape[0], w.shape[1] + 1, *w.shape[2:])}))
    with pytest.raises(ValueError, match=r"its 'diffusion_model.x_embedder.proj.diff' has shape"):
        load(sd3, name, active)


@pytest.mark.parametrize("active", MODES)
def test_an_alpha_that_is_not_one_number_is_refused(lora_dir, sd3, good, active):
    key = "lora_unet_joint_blocks_0_x_block_attn_proj.alpha"
    name = edited(lora_dir, good, "alpha.safetensors", lambda sd: sd.update({key: torch.ones(4)}))
    with pytest.raises(ValueError, match=rf"'alpha.safetensors' does not fit this model: its '{key}' has shape \(4,\)"):
        load(sd3, name, active)


def test_a_deleted_file_is_named(lora_dir, sd3, good):
    name = edited(lora_dir, good, "gone.safetensors", lambda sd: None)
    (lora_dir / name).unlink()
    with pytest.raises(ValueError, match=r"TACALoraLoader: LoRA file 'gone.safetensors' is not in ComfyUI's "
                                         r"models/loras folder"):
        load(sd3, name, MODES[0])


def test_fingerprint_follows_the_file(lora_dir, good):
    name = edited(lora_dir, good, "fp.safetensors", lambda sd: None)
    fp = lora_node.TACALoraLoader.fingerprint_inputs(lora_name=name, strength=1.0, active=MODES[0])
    assert lora_node.TACALoraLoader.fingerprint_inputs(lora_name=name, strength=1.0, active=MODES[0]) == fp
    st = os.stat(lora_dir / name)
    os.utime(lora_dir / name, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # rewritten: same size, later mtime
    touched = lora_node.TACALoraLoader.fingerprint_inputs(lora_name=name)
    assert touched != fp
    edited(lora_dir, good, name, lambda sd: sd.pop("lora_unet_joint_blocks_0_x_block_attn_proj.alpha"))
    assert lora_node.TACALoraLoader.fingerprint_inputs(lora_name=name) not in (fp, touched)
    (lora_dir / name).unlink()
    assert lora_node.TACALoraLoader.fingerprint_inputs(lora_name=name) not in (fp, touched)


def test_the_checks_pass_good_loras_in_every_format(lora_dir, sd3):
    for fmt in ("diffusers", "kohya", "comfy"):
        write_lora(lora_dir / f"ok_{fmt}.safetensors", sd3, "sd3", fmt, dora=fmt != "diffusers")
        for active in MODES:
            assert load(sd3, f"ok_{fmt}.safetensors", active) is not None
