"""The whole loop, per family: TACA Training Window -> core's Train LoRA -> core's Save LoRA -> TACA LoRA
Loader (while TACA acts) + TACA Model Patch, and the LoRA acts only in TACA's window.

A family whose plain model core's trainer cannot train in this release skips, naming core's error
(measured on the model without any TACA node, so it is core's failure, not ours).
"""
import importlib
from pathlib import Path

import pytest
import torch

from support.comfy_env import import_comfy

env = import_comfy()

import comfy.sample  # noqa: E402
import comfy.samplers  # noqa: E402

from support import tiny_families as tf  # noqa: E402
from support.core_trainer import has_trainer, reloadable, train_lora  # noqa: E402
from support.pack import load_pack  # noqa: E402
from support.tiny_models import make_conds, tiny_flux, tiny_sd3  # noqa: E402

if not has_trainer():
    pytest.skip(f"ComfyUI {env.version} has no Train LoRA node", allow_module_level=True)

_pack = load_pack().__name__
Window = importlib.import_module(_pack + ".nodes.taca_training_window").TACATrainingWindow
Patch = importlib.import_module(_pack + ".nodes.taca_model_patch").TACAModelPatch
lora_node = importlib.import_module(_pack + ".nodes.taca_lora_loader")
TXT = 7


def _cond(extra=lambda g, n: {}, ctx=tf.CTX):
    def make(seed=0):
        g = torch.Generator().manual_seed(seed)
        return [[torch.randn(1, TXT, ctx, generator=g), extra(g, TXT)]]
    return make


FAMILIES = {  # builder, latent size (Qwen-Image's VAE, Wan 2.1's, encodes an image as one frame), conditioning
    "flux": (tiny_flux, (16, 16), lambda seed=0: make_conds("flux", TXT, seed=seed)[0]),
    "sd3": (tiny_sd3, (16, 16), lambda seed=0: make_conds("sd3", TXT, seed=seed)[0]),
    "qwen_image": (tf.tiny_qwen_image, (1, 8, 8), _cond()),
    "lumina2": (tf.tiny_lumina2, (8, 8),
                _cond(lambda g, n: {"attention_mask": torch.ones(1, n, dtype=torch.long)})),
    "z_image": (tf.tiny_z_image, (8, 8), _cond()),
}


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("output")
    env.folder_paths.set_output_directory(str(out))
    (out / "loras").mkdir()
    env.folder_paths.add_model_folder_path("loras", str(out / "loras"))
    return out / "loras"


def build(kind):
    try:
        return reloadable(FAMILIES[kind][0])
    except pytest.skip.Exception:
        raise
    except Exception as e:  # a release without this family: tiny_families skips
        pytest.skip(f"{kind}: {e}")


def latents(model, kind):
    channels = model.get_model_object("latent_format").latent_channels
    return torch.randn(1, channels, *FAMILIES[kind][1], generator=torch.Generator().manual_seed(0))


def train(model, kind):
    torch.manual_seed(0)
    return train_lora(model, latents(model, kind), FAMILIES[kind][2](), optimizer="SGD", learning_rate=1.0)[0]


def save_lora(lora, name):
    """Core's Save LoRA node, into the output folder's loras/ (also a loras folder here)."""
    from comfy_extras.nodes_train import SaveLoRA
    if hasattr(SaveLoRA, "save"):
        SaveLoRA().save(lora, f"loras/{name}", 1)
    else:
        SaveLoRA.execute(lora, f"loras/{name}", 1)


def one_step(model, kind, sigma):
    """The denoised latent of one Euler step from sigma: a single model call at sigma."""
    pos = FAMILIES[kind][2](seed=1)
    latent = latents(model, kind)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(2))
    return comfy.sample.sample_custom(model, noise, 1.0, comfy.samplers.sampler_object("euler"),
                                      torch.tensor([sigma, 0.0]), pos, pos, latent, disable_pbar=True, seed=0)


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_trained_lora_loads_in_the_taca_lora_loader_and_acts_only_in_the_window(kind, lora_dir):
    base = build(kind)
    try:
        train(base, kind)  # the plain model: does core's trainer handle this family here?
    except RuntimeError as e:
        pytest.skip(f"core's Train LoRA cannot train {kind} on ComfyUI {env.version} without TACA either: "
                    f"{str(e).splitlines()[0][:160]}")
    lora = train(Window.execute(model=base, gamma=1.5, timestep_cutoff=970).result[0], kind)
    save_lora(lora, f"taca_{kind}")
    files = sorted(p.name for p in Path(lora_dir).glob(f"taca_{kind}_*.safetensors"))
    assert files, "Save LoRA wrote the file"
    env.folder_paths.filename_list_cache.clear() if hasattr(env.folder_paths, "filename_list_cache") else None
    taca = Patch.execute(model=base, gamma=1.5, timestep_cutoff=970).result[0]
    with_lora = lora_node.TACALoraLoader.execute(model=taca, lora_name=files[-1], strength=1.0,
                                                 active=lora_node.WHILE_TACA_ACTS).result[0]
    assert (one_step(with_lora, kind, 0.99) - one_step(taca, kind, 0.99)).abs().max() > 1e-4, "acts in the window"
    assert torch.equal(one_step(with_lora, kind, 0.5), one_step(taca, kind, 0.5)), "off outside it"
