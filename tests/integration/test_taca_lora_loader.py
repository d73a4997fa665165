"""TACA LoRA Loader on tiny FLUX / SD3 models, with LoRA files the tests write in each key format."""
import logging
import pickle
from pathlib import Path

import pytest
import torch

from support.comfy_env import import_comfy

env = import_comfy()

import comfy.sample  # noqa: E402
import nodes as comfy_nodes  # noqa: E402  (ComfyUI's nodes.py: LoraLoaderModelOnly)

from support.lora_files import write_lora  # noqa: E402
from support.tiny_models import cutoff_between_steps, make_conds, tiny_flux, tiny_sd3  # noqa: E402

from support.taca import EVERY_STEP, WHILE_TACA_ACTS, patch, taca_lora  # noqa: E402

STEPS = 4
LATENT = (1, 16, 16, 16)
BUILD = {"flux": tiny_flux, "sd3": tiny_sd3}
FORMATS = ["diffusers", "kohya", "comfy"]


@pytest.fixture(scope="module", params=["flux", "sd3"])
def kind(request):
    return request.param


@pytest.fixture(scope="module")
def base(kind):
    return BUILD[kind](seed=0)


def lora_file(lora_dir, base, kind, fmt, seed=0):
    name = f"{kind}_{fmt}_{seed}.safetensors"
    if not (lora_dir / name).exists():
        write_lora(lora_dir / name, base, kind, fmt, seed=seed)
    return name


def sample(model, kind, *, txt=10, seed=0, start=None, last=None, latent=None, add_noise=True, cfg=1.0):
    pos, neg = make_conds(kind, txt, seed=seed)
    latent = torch.zeros(LATENT) if latent is None else latent
    noise = comfy.sample.prepare_noise(latent, seed) if add_noise else torch.zeros_like(latent)
    return comfy.sample.sample(model, noise, STEPS, cfg, "euler", "simple", pos, neg, latent,
                               disable_noise=not add_noise, start_step=start, last_step=last,
                               force_full_denoise=last is None, disable_pbar=True, seed=seed)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_step_equals_comfy_lora_loader(lora_dir, base, kind, fmt):
    name = lora_file(lora_dir, base, kind, fmt)
    ours = sample(taca_lora(base, name, 0.8, EVERY_STEP), kind)
    comfys = sample(comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(base, name, 0.8)[0], kind)
    assert torch.equal(ours, comfys)
    assert (ours - sample(base, kind)).abs().max() > 1e-3, "the LoRA had no effect"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("order,cfg", [("lora_then_taca", 1.0), ("taca_then_lora", 1.0), ("lora_then_taca", 3.0)])
def test_active_exactly_while_taca_acts(lora_dir, base, kind, fmt, order, cfg):
    name = lora_file(lora_dir, base, kind, fmt)
    cutoff = cutoff_between_steps(base, STEPS, 2)
    if order == "lora_then_taca":
        model = patch(taca_lora(base, name), 1.5, cutoff)
    else:
        model = taca_lora(patch(base, 1.5, cutoff), name)
    got = sample(model, kind, cfg=cfg)
    # reference: LoRA'd model for the first two steps, the base model for the rest (both with TACA)
    lora_always = comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(base, name, 1.0)[0]
    half = sample(patch(lora_always, 1.5, cutoff), kind, last=2, cfg=cfg)
    ref = sample(patch(base, 1.5, cutoff), kind, start=2, latent=half, add_noise=False, cfg=cfg)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert (got - sample(patch(base, 1.5, cutoff), kind, cfg=cfg)).abs().max() > 1e-3, "the LoRA had no effect"
    assert (got - sample(patch(lora_always, 1.5, cutoff), kind, cfg=cfg)).abs().max() > 1e-4, \
        "the LoRA never switched off"


def test_lora_is_off_between_model_calls(lora_dir, base, kind):
    model = patch(taca_lora(base, lora_file(lora_dir, base, kind, "diffusers")), 1.5, cutoff=0)
    sample(model, kind)  # every call is in the window: the LoRA was on in the last one
    wrappers = [w for w in model.get_all_wrappers("apply_model") if hasattr(w, "gate")]
    assert len(wrappers) == 1 and not wrappers[0].gate.is_open()


def test_gamma_one_means_lora_off(lora_dir, base, kind):
    name = lora_file(lora_dir, base, kind, "diffusers")
    assert torch.equal(sample(patch(taca_lora(base, name), gamma=1.0), kind), sample(base, kind))


def test_second_run_and_other_prompt_behave_like_the_first(lora_dir, base, kind):
    model = patch(taca_lora(base, lora_file(lora_dir, base, kind, "diffusers")), 1.5, cutoff_between_steps(base, STEPS, 2))
    first = sample(model, kind, seed=3)
    other = sample(model, kind, seed=4, txt=6)
    assert torch.equal(sample(model, kind, seed=3), first)
    assert not torch.equal(other[:, :, :4], first[:, :, :4])


def test_source_model_untouched(lora_dir, base, kind):
    before = sample(base, kind)
    sd_before = {k: v.clone() for k, v in base.model.state_dict().items()}
    for active in (WHILE_TACA_ACTS, EVERY_STEP):
        sample(patch(taca_lora(base, lora_file(lora_dir, base, kind, "kohya"), 1.0, active)), kind)
    assert not base.patches and not base.weight_wrapper_patches
    assert torch.equal(sample(base, kind), before)
    # (the torch module is shared: ComfyUI patches weights while a patched clone is loaded, and
    # restores them when the base model loads again)
    assert all(torch.equal(sd_before[k], v) for k, v in base.model.state_dict().items())


def test_strength_zero_is_bit_identical(lora_dir, base, kind):
    name = lora_file(lora_dir, base, kind, "diffusers")
    assert torch.equal(sample(taca_lora(base, name, 0.0), kind), sample(base, kind))


def test_wrong_family_lora_is_named(lora_dir):
    flux, sd3 = tiny_flux(), tiny_sd3()
    sd3_lora = lora_file(lora_dir, sd3, "sd3", "kohya")
    with pytest.raises(ValueError, match=r"TACALoraLoader: .* matches 0 of its \d+ layers in this FLUX model"
                                         r".*look like a SD3 LoRA"):
        taca_lora(flux, sd3_lora)
    flux_lora = lora_file(lora_dir, flux, "flux", "diffusers")
    with pytest.raises(ValueError, match=r"matches 16 of its 26 layers in this SD3 model"
                                         r".*look like a FLUX \(or Chroma, HunyuanVideo\) LoRA"):
        taca_lora(sd3, flux_lora)


def test_lora_matching_few_layers_is_refused(lora_dir):
    from safetensors.torch import load_file, save_file
    flux = tiny_flux()
    sd = load_file(str(lora_dir / lora_file(lora_dir, flux, "flux", "kohya")))
    for i in range(30):  # layers this model does not have
        sd[f"lora_unet_double_blocks_{i + 10}_img_attn_qkv.lora_down.weight"] = torch.zeros(4, 64)
        sd[f"lora_unet_double_blocks_{i + 10}_img_attn_qkv.lora_up.weight"] = torch.zeros(192, 4)
    save_file(sd, str(lora_dir / "mostly_other_layers.safetensors"))
    with pytest.raises(ValueError, match=r"matches 14 of its 44 layers in this FLUX model \(30 unmatched"):
        taca_lora(flux, "mostly_other_layers.safetensors")


def test_corrupt_file(lora_dir):
    (lora_dir / "corrupt.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    (lora_dir / "truncated.safetensors").write_bytes(b"\xff\xff\x00\x00\x00\x00\x00\x00{}")
    for name in ("corrupt.safetensors", "truncated.safetensors"):
        with pytest.raises(ValueError, match=r"TACALoraLoader: .* not a valid safetensors file"):
            taca_lora(tiny_flux(), name)


class _Tripwire:
    """Unpickling this creates a file: proof that a loader ran pickle."""
    marker = None

    def __reduce__(self):
        return Path.touch, (Path(self.marker),)


def test_pickled_files_are_refused_and_never_unpickled(lora_dir, tmp_path):
    trip = _Tripwire()
    trip.marker = str(tmp_path / "unpickled")
    (lora_dir / "evil.safetensors").write_bytes(pickle.dumps({"w": trip}, protocol=2))
    torch.save({"lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight": torch.zeros(2, 2)},
               lora_dir / "zipped.pt")
    for name in ("evil.safetensors", "zipped.pt"):
        with pytest.raises(ValueError, match=r"TACALoraLoader: .* pickled PyTorch file.*not loaded"):
            taca_lora(tiny_flux(), name)
    assert not (tmp_path / "unpickled").exists()


def test_without_taca_patch_follows_paper_window_and_says_so(lora_dir, caplog):
    flux = tiny_flux()
    name = lora_file(lora_dir, flux, "flux", "diffusers")
    with caplog.at_level(logging.WARNING):
        got = sample(taca_lora(flux, name), "flux")
    assert any("has no TACA Model Patch" in r.getMessage() for r in caplog.records)
    explicit = sample(patch(taca_lora(flux, name), gamma=1.0 + 1e-6, cutoff=970), "flux")
    plain_lora_window = sample(taca_lora(patch(flux, gamma=1.0 + 1e-6, cutoff=970), name), "flux")
    assert torch.equal(explicit, plain_lora_window)
    assert (got - sample(flux, "flux")).abs().max() > 1e-4  # the paper's window covers the first step
