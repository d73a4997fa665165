"""Training a TACA LoRA with core's Train LoRA: TACA Training Window, and TACA under gradient checkpointing.

Every test runs core's own Train LoRA node (core_trainer) on a tiny model, in fp32, for one or a few
steps. Train LoRA initialises each LoRA's up matrix to zero, so after one SGD step with lr 1 the LoRA's
up matrices are minus their gradients: comparing LoRAs compares gradients.
"""
import importlib
import logging

import pytest
import torch

from support.comfy_env import import_comfy

env = import_comfy()

import comfy.model_management  # noqa: E402
import comfy.sample  # noqa: E402
import comfy.samplers  # noqa: E402
from comfy.patcher_extension import WrappersMP  # noqa: E402

from support.core_trainer import has_trainer, reloadable, train_lora  # noqa: E402
from support.reference import ReferenceTaca, text_first, with_override  # noqa: E402
from support.pack import load_pack  # noqa: E402
from support.tiny_models import make_conds, run_sample, tiny_flux, tiny_sd3  # noqa: E402

if not has_trainer():
    pytest.skip(f"ComfyUI {env.version} has no Train LoRA node", allow_module_level=True)

_pack = load_pack().__name__
window_node = importlib.import_module(_pack + ".nodes.taca_training_window")
patch_node = importlib.import_module(_pack + ".nodes.taca_model_patch")
override_mod = importlib.import_module(_pack + ".taca_comfy.override")
Window = window_node.TACATrainingWindow
Patch = patch_node.TACAModelPatch
TXT = 9
LATENT_HW = (16, 16)
FLUX_VISUAL = (LATENT_HW[0] // 2) * (LATENT_HW[1] // 2)


def window(model, gamma=1.5, cutoff=970):
    return Window.execute(model=model, gamma=gamma, timestep_cutoff=cutoff).result[0]


def patch(model, gamma=1.5, cutoff=970):
    return Patch.execute(model=model, gamma=gamma, timestep_cutoff=cutoff).result[0]


def latents(model, n=1, seed=0):
    channels = model.get_model_object("latent_format").latent_channels
    return torch.randn(n, channels, *LATENT_HW, generator=torch.Generator().manual_seed(seed))


FAMILIES = {"flux": tiny_flux, "sd3": tiny_sd3}  # make_conds kinds; both put the text first
VISUAL = (LATENT_HW[0] // 2) * (LATENT_HW[1] // 2)  # patch 2


def captions(kind="flux", n=1):
    """n captions (CONDITIONING entries), one per training image."""
    return [make_conds(kind, TXT, seed=i)[0][0] for i in range(n)]


def train(model, n=1, steps=1, seed=0, kind="flux", **inputs):
    """Train LoRA, by default one SGD step with lr 1 (the LoRA's up matrices are then minus their gradients)."""
    torch.manual_seed(seed)  # Train LoRA's LoRA init and sigma draws use torch's global generator
    inputs = {"optimizer": "SGD", "learning_rate": 1.0, **inputs}
    return train_lora(model, latents(model, n), captions(kind, n), steps=steps, **inputs)


_core_fails = {}


def core_failure(kind, checkpointing=True):
    """Why core's Train LoRA cannot train this family here without TACA either (None: it can). Measured on
    the plain model: FLUX's blocks add in place, which autograd refuses without gradient checkpointing,
    and 0.8.0's fused rope kernel (comfy_kitchen.apply_rope) has no autograd formula."""
    key = (kind, checkpointing)
    if key not in _core_fails:
        try:
            train(reloadable(FAMILIES[kind]), kind=kind, gradient_checkpointing=checkpointing)
            _core_fails[key] = None
        except RuntimeError as e:
            _core_fails[key] = str(e).splitlines()[0][:160]
    return _core_fails[key]


def require_core_trains(kind, checkpointing=True):
    reason = core_failure(kind, checkpointing)
    if reason:
        pytest.skip(f"core's Train LoRA cannot train {kind} on ComfyUI {env.version} (checkpointing "
                    f"{checkpointing}) without TACA either: {reason}")


@pytest.fixture
def kind():
    """FLUX where core's trainer handles it, else SD3 (0.8.0: FLUX's rope has no backward)."""
    if core_failure("flux") is None:
        return "flux"
    require_core_trains("sd3")
    return "sd3"


def assert_loras_close(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=1e-4, msg=lambda m: f"{k}: {m}")


def trained_delta(lora):
    return max(v.abs().max().item() for k, v in lora.items() if "lora_up" in k)


def in_window_sigmas(model):
    """An APPLY_MODEL wrapper recording, per training forward, (sigma, TACA's decision for the call)."""
    seen = []

    def record(executor, x, t, *args, **kwargs):
        call = override_mod.CURRENT_CALL.get()
        seen.append((t.detach().clone(), call))
        return executor(x, t, *args, **kwargs)
    m = model.clone()
    m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, "test_recorder", record)
    return m, seen


@pytest.mark.parametrize("checkpointing", [True, False], ids=["checkpointing", "no-checkpointing"])
@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_one_step_gradients_equal_a_dense_reference_taca(kind, checkpointing):
    require_core_trains(kind, checkpointing)
    base = reloadable(FAMILIES[kind])
    got, _ = train(window(base, gamma=1.5), kind=kind, gradient_checkpointing=checkpointing)
    # reference: an independent dense TACA; the window with gamma 1 restricts the sigmas the same way
    ref_model = window(with_override(base, ReferenceTaca(text_first(VISUAL, [TXT]), 1.5, 970)), gamma=1.0)
    want, _ = train(ref_model, kind=kind, gradient_checkpointing=checkpointing)
    assert_loras_close(got, want)
    plain, _ = train(window(base, gamma=1.0), kind=kind, gradient_checkpointing=checkpointing)
    assert trained_delta(got) > 1e-3
    assert max((got[k] - plain[k]).abs().max().item() for k in got) > 1e-4, "TACA changes the gradients"


@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_checkpointing_on_and_off_train_the_same_lora(kind):
    require_core_trains(kind, True)
    require_core_trains(kind, False)
    base = reloadable(FAMILIES[kind])
    on, _ = train(window(base), kind=kind, gradient_checkpointing=True)
    off, _ = train(window(base), kind=kind, gradient_checkpointing=False)
    assert_loras_close(on, off, atol=1e-6)


def test_model_patch_alone_trains_with_checkpointing_and_gamma_1_trains_like_no_patch(kind):
    """The crash this fixes: the block recomputed during backward ran without TACA (CheckpointError)."""
    base = reloadable(FAMILIES[kind])
    train(patch(base, gamma=1.5, cutoff=0), gradient_checkpointing=True, kind=kind)  # every step in TACA's window
    for node in (patch, window):
        same, _ = train(node(base, gamma=1.0, cutoff=0), kind=kind)
        plain, _ = train(base, kind=kind)
        for k in plain:
            assert torch.equal(same[k], plain[k]), f"{node.__name__}, gamma 1: {k}"


def test_every_training_sample_is_in_the_window_and_taca_acts_on_every_forward(kind, caplog):
    base = reloadable(FAMILIES[kind])
    model, seen = in_window_sigmas(window(base, gamma=1.5, cutoff=970))
    with caplog.at_level(logging.INFO, logger="ComfyUI-TACA"):
        train(model, steps=12, kind=kind)
    assert len(seen) == 12
    sigmas = torch.cat([s for s, _ in seen])
    assert bool((1000 * sigmas.double() >= 970).all()), sigmas  # by chance: 9% of draws each
    assert len(set(sigmas.tolist())) > 6, "core's draws, restricted (not one fixed sigma)"
    assert all(isinstance(c, override_mod.TacaCall) and c.gamma == 1.5 for _, c in seen)
    assert "training on sigma >= 0.9700" in caplog.text
    # without the window, Train LoRA's draws fall mostly outside
    model, seen = in_window_sigmas(patch(base, gamma=1.5, cutoff=970))
    train(model, steps=12, kind=kind)
    assert not bool((1000 * torch.cat([s for s, _ in seen]).double() >= 970).all())


def test_sampling_is_the_model_patch_bit_for_bit_and_nothing_stays_patched(kind):
    base = reloadable(FAMILIES[kind])
    pos, neg = make_conds(kind, TXT)

    def sample(m):
        return run_sample(m, pos, neg, steps=3, scheduler="simple")
    before = sample(base)
    windowed = window(base, gamma=1.5, cutoff=900)
    want = sample(patch(base, gamma=1.5, cutoff=900))
    assert torch.equal(sample(windowed), want)
    train(windowed, steps=2, kind=kind)
    assert torch.equal(sample(windowed), want), "after training"
    assert torch.equal(sample(base), before), "the input model"
    assert base.get_model_object("model_sampling").percent_to_sigma(0.5) == \
        type(base.get_model_object("model_sampling")).percent_to_sigma(base.get_model_object("model_sampling"), 0.5)


def test_model_patch_before_or_after_the_window_never_doubles_gamma(kind, caplog):
    base = reloadable(FAMILIES[kind])
    pos, neg = make_conds(kind, TXT)

    def sample(m):
        return run_sample(m, pos, neg, steps=3)
    # before: the window's settings win (it replaces the patch); after: the patch's settings win
    assert torch.equal(sample(window(patch(base, gamma=2.0, cutoff=0), gamma=1.5, cutoff=0)),
                       sample(patch(base, gamma=1.5, cutoff=0)))
    after = patch(window(base, gamma=1.5, cutoff=970), gamma=1.3, cutoff=900)
    assert torch.equal(sample(after), sample(patch(base, gamma=1.3, cutoff=900)))
    model, seen = in_window_sigmas(after)
    with caplog.at_level(logging.INFO, logger="ComfyUI-TACA"):
        train(model, steps=6, gradient_checkpointing=True, kind=kind)
    assert "a TACA Model Patch after this node set gamma=1.3, timestep_cutoff=900" in caplog.text
    assert bool((1000 * torch.cat([s for s, _ in seen]).double() >= 900).all())
    assert all(c.gamma == 1.3 for _, c in seen)


def test_a_batch_mixing_captions_is_warned_and_batch_1_is_not(kind, caplog):
    base = reloadable(FAMILIES[kind])
    with caplog.at_level(logging.WARNING, logger="ComfyUI-TACA"):
        train(window(base), n=2, batch_size=1, steps=2, kind=kind)
    assert "mixes" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="ComfyUI-TACA"):
        train(window(base), n=2, batch_size=2, kind=kind)
    assert "this training batch mixes 2 different captions" in caplog.text
    assert "grad_accumulation_steps 4" in caplog.text


def test_a_sigma_outside_the_window_is_warned(kind, caplog):
    def later_sigma(executor, x, t, *args, **kwargs):  # another node moving the training sigma
        return executor(x, t * 0.5, *args, **kwargs)
    model = window(reloadable(FAMILIES[kind]))
    model.add_wrapper_with_key(WrappersMP.APPLY_MODEL, "test_moves_sigma", later_sigma)
    model.wrappers[WrappersMP.APPLY_MODEL] = dict(reversed(list(model.wrappers[WrappersMP.APPLY_MODEL].items())))
    with caplog.at_level(logging.WARNING, logger="ComfyUI-TACA"):
        train(model, steps=2, kind=kind)
    assert "outside TACA's window" in caplog.text


def test_a_model_sampling_node_after_the_window_is_a_clear_error(kind):
    from comfy_extras.nodes_model_advanced import ModelSamplingFlux
    m = window(reloadable(FAMILIES[kind]))
    node = ModelSamplingFlux()
    after = (node.patch(m, 1.15, 0.5, 256, 256) if hasattr(node, "patch")
             else ModelSamplingFlux.execute(m, 1.15, 0.5, 256, 256).result)[0]
    with pytest.raises(ValueError, match="TACATrainingWindow: a node between TACA Training Window and Train LoRA"):
        train(after, kind=kind)


def test_a_model_no_family_supports_is_a_clear_error():
    from support.tiny_models import tiny_sdxl
    with pytest.raises(ValueError, match="TACATrainingWindow"):
        window(tiny_sdxl())


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("loras")
    env.folder_paths.add_model_folder_path("loras", str(d))
    return d


@pytest.mark.parametrize("dora", [False, True], ids=["lora-branch", "dora-weight-function"])
def test_a_taca_lora_following_taca_trains_as_it_decided_in_the_forward(kind, lora_dir, dora):
    """The TACA LoRA Loader's switch under checkpointing: each block recomputed during backward has the
    LoRA on as in its forward (in the window: on every training step), never a CheckpointError."""
    from support.lora_files import write_lora
    lora_node = importlib.import_module(_pack + ".nodes.taca_lora_loader")
    base = reloadable(FAMILIES[kind])
    name = f"frozen_{kind}_{dora}.safetensors"
    write_lora(lora_dir / name, base, kind, "diffusers", dora=dora)

    def with_lora(active):
        return lora_node.TACALoraLoader.execute(model=window(base), lora_name=name, strength=1.0,
                                                active=active).result[0]
    switched, _ = train(with_lora(lora_node.WHILE_TACA_ACTS), kind=kind, gradient_checkpointing=True)
    always, _ = train(with_lora(lora_node.EVERY_STEP), kind=kind, gradient_checkpointing=True)
    without, _ = train(window(base), kind=kind, gradient_checkpointing=True)
    assert_loras_close(switched, always)
    assert max((switched[k] - without[k]).abs().max().item() for k in switched) > 1e-4, "the LoRA was on"
