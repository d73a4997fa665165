"""The schedule preview's route against what TACA really does: a tiny FLUX sampled on the CPU with TACA Model
Patch, every model call recorded (did TACA change its attention?), each call assigned to its sampler step by
ComfyUI's own step callback. The steps the route marks are exactly the steps on which TACA acted, for first-
and second-order samplers, several schedulers, denoise < 1, KSamplerAdvanced's start/end and custom sigmas."""
import asyncio
import importlib
from collections import defaultdict

import pytest
import torch

from comfy_env import import_comfy

import_comfy()

import comfy.sample  # noqa: E402
import comfy.samplers  # noqa: E402
import nodes  # noqa: E402
from comfy.patcher_extension import WrappersMP  # noqa: E402

from pack import load_pack  # noqa: E402
from tiny_models import make_conds, tiny_flux  # noqa: E402

PACK = load_pack().__name__
preview = importlib.import_module(PACK + ".taca_comfy.preview")
CURRENT_CALL = importlib.import_module(PACK + ".taca_comfy.override").CURRENT_CALL
TACAModelPatch = importlib.import_module(PACK + ".nodes.taca_model_patch").TACAModelPatch
FILE = "flux1-dev.safetensors"  # the tiny model is comfy.supported_models.Flux, as this file name says


@pytest.fixture(scope="module", autouse=True)
def server_nodes():
    """The node classes the route runs (comfy_extras' ModelSampling* and sigmas nodes), registered as the
    server registers them."""
    for name in ("nodes_custom_sampler", "nodes_model_advanced", "nodes_flux"):
        path = import_comfy().path / "comfy_extras" / f"{name}.py"
        assert asyncio.run(nodes.load_custom_node(str(path), module_parent="comfy_extras")), name


@pytest.fixture(scope="module")
def model():
    return tiny_flux(seed=0)


def recording(model, events):
    """model with an APPLY_MODEL wrapper inside TACA's that records whether TACA changed an attention call."""
    m = model.clone()

    def record(executor, *args, **kwargs):
        call = CURRENT_CALL.get()
        out = executor(*args, **kwargs)
        events.append(("call", call is not None and call.fired > 0))
        return out
    m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, "test_record", record)
    return m


def acted_steps(events, first_step=1):
    """The steps (numbered from first_step) on which TACA acted on at least one model call. A sampler calls
    back right after each step's first model call; later calls until the next step's first are that step's."""
    acted, step, pending = defaultdict(bool), None, []
    for kind, value in events:
        if kind == "call":
            pending.append(value)
            continue
        *rest, first = pending
        if rest:
            acted[step] |= any(rest)
        step, pending = value + first_step, []
        acted[step] |= first
    acted[step] |= any(pending)
    return sorted(s for s, a in acted.items() if a), len(acted)


def run(model, *, sampler="euler", scheduler="simple", steps=6, denoise=1.0, start=None, end=None, sigmas=None):
    positive, negative = make_conds("flux", 5)
    latent = torch.zeros(1, 16, 8, 8)
    noise = comfy.sample.prepare_noise(latent, 0)
    events = []
    callback = lambda i, *_: events.append(("step", i))  # noqa: E731
    m = recording(model, events)
    if sigmas is not None:
        comfy.sample.sample_custom(m, noise, 1.0, comfy.samplers.sampler_object(sampler), sigmas, positive,
                                   negative, latent, callback=callback, disable_pbar=True, seed=0)
    else:
        comfy.sample.sample(m, noise, steps, 1.0, sampler, scheduler, positive, negative, latent, denoise=denoise,
                            start_step=start, last_step=end, callback=callback, disable_pbar=True, seed=0)
    return acted_steps(events, first_step=1 + (start or 0))


def model_sampling_node(model, name, **inputs):
    return preview._run_node(nodes.NODE_CLASS_MAPPINGS[name], model=model, **inputs)[0]


# (sampler settings, cutoff); cfg 1: one model call per step for euler, two for heun's inner steps
KSAMPLER_CASES = [
    (dict(sampler="euler", scheduler="simple", steps=8), 900),
    (dict(sampler="heun", scheduler="normal", steps=6), 850),
    (dict(sampler="dpmpp_2s_ancestral", scheduler="karras", steps=6), 900),
    (dict(sampler="dpm_2", scheduler="beta", steps=8), 850),  # drops the penultimate sigma
    (dict(sampler="euler", scheduler="sgm_uniform", steps=10, denoise=0.7), 600),
    (dict(sampler="heun", scheduler="simple", steps=12, start=2, end=8), 700),  # KSamplerAdvanced
]


@pytest.mark.parametrize("settings,cutoff", KSAMPLER_CASES, ids=lambda x: str(x))
def test_route_steps_are_the_steps_taca_acted_on(model, settings, cutoff):
    patched = TACAModelPatch.execute(model=model, gamma=1.2, timestep_cutoff=cutoff).result[0]
    acted, n_steps = run(patched, **settings)
    advanced = "start" in settings
    answer = preview.schedule_preview({
        "gamma": 1.2, "cutoff": cutoff, "model": {"file": FILE},
        "sampler": {"node": "KSamplerAdvanced" if advanced else "KSampler", "sampler_name": settings["sampler"],
                    "scheduler": settings["scheduler"], "steps": settings["steps"],
                    "denoise": settings.get("denoise", 1.0), "start": settings.get("start"),
                    "end": settings.get("end")}})
    assert answer["taca_steps"] == acted
    ran = [w["step"] for w in answer["window"] if w["run"]]
    assert len(ran) == n_steps and 0 < len(acted) < n_steps, (acted, ran)  # both sides of the cutoff are seen
    if advanced:
        assert ran[0] == settings["start"] + 1 and ran[-1] == settings["end"]


def test_route_follows_a_model_sampling_node(model):
    shifted = model_sampling_node(model, "ModelSamplingAuraFlow", shift=6.0)
    patched = TACAModelPatch.execute(model=shifted, gamma=1.2, timestep_cutoff=900).result[0]
    acted, _ = run(patched, steps=8)
    request = {"gamma": 1.2, "cutoff": 900, "model": {"file": FILE}, "sampler": {
        "node": "KSampler", "sampler_name": "euler", "scheduler": "simple", "steps": 8, "denoise": 1.0}}
    unshifted = preview.schedule_preview(request)["taca_steps"]
    request["model"]["sampling"] = {"node": "ModelSamplingAuraFlow", "inputs": {"shift": 6.0}}
    answer = preview.schedule_preview(request)
    assert answer["taca_steps"] == acted != unshifted  # shift 6 keeps more steps near sigma 1
    assert "ModelSamplingAuraFlow: ModelSamplingDiscreteFlow shift 6" in answer["model"]


def test_route_runs_the_graphs_sigmas_nodes(model):
    """SamplerCustomAdvanced <- SplitSigmas (low half) <- BasicScheduler: the nodes' own code makes the sigmas."""
    spec = {"node": "SplitSigmas", "slot": 1, "inputs": {"step": 1},
            "sigmas": {"node": "BasicScheduler", "inputs": {"scheduler": "simple", "steps": 10, "denoise": 1.0}}}
    sigmas = preview.node_sigmas(spec, preview.resolve_model({"file": FILE})[0])
    patched = TACAModelPatch.execute(model=model, gamma=1.2, timestep_cutoff=850).result[0]
    acted, n_steps = run(patched, sigmas=sigmas)
    answer = preview.schedule_preview({"gamma": 1.2, "cutoff": 850, "model": {"file": FILE},
                                       "sampler": {"node": "SamplerCustomAdvanced", "sigmas": spec}})
    assert answer["taca_steps"] == acted and 0 < len(acted) < n_steps == len(answer["window"]) == 9


def test_gamma_one_acts_on_no_step(model):
    answer = preview.schedule_preview({"gamma": 1.0, "cutoff": 0, "model": {"file": FILE}, "sampler": {
        "node": "KSampler", "sampler_name": "euler", "scheduler": "simple", "steps": 4, "denoise": 1.0}})
    assert answer["taca_steps"] == [] and len(answer["window"]) == 4


def test_families_resolve_to_their_comfy_config():
    """File names and CLIP types pick the family table's variant, whose comfy.supported_models config gives the
    sampling; a family this ComfyUI lacks falls back to FLUX.1 and says so."""
    import comfy.supported_models as sm
    for facts, label, config in [
            ({"file": "qwen_image_fp8_e4m3fn.safetensors"}, "Qwen-Image", "QwenImage"),
            ({"file": "flux1-schnell.safetensors"}, "FLUX.1 schnell", "FluxSchnell"),
            ({"file": "x.safetensors", "clip": "TripleCLIPLoader clip_g.safetensors"}, "SD3.5", "SD3"),
            ({"file": "z_image_turbo_bf16.safetensors"}, "Z-Image", "ZImage"),
            ({"file": "qwen_image_2.1_int8_convrot.safetensors"}, "Qwen-Image 2.1", "QwenImage21"),
            ({"file": "x.gguf", "clip": "qwen_image qwen3vl_8b_int8_convrot.safetensors"}, "Qwen-Image 2.1",
             "QwenImage21"),
            ({"file": "x.gguf", "clip": "qwen_image qwen_2.5_vl_7b_fp8_scaled.safetensors"}, "Qwen-Image",
             "QwenImage")]:
        patcher, text = preview.resolve_model(facts)
        assert text.startswith(label + " ("), text
        ms = patcher.get_model_object("model_sampling")
        if hasattr(sm, config):
            want = getattr(sm, config)({"disable_unet_model_creation": True}).sampling_settings.get("shift")
            assert want is None or abs(float(ms.shift) - want) < 1e-6, (label, ms.shift, want)
        else:
            assert f"this ComfyUI has no {config} config: assuming FLUX.1" in text


def test_typical_rows_are_the_tables():
    rows = preview.schedule_preview({"gamma": 1.2, "cutoff": 970, "sampler": None})["rows"]
    by_label = {r["label"]: r for r in rows}
    assert by_label["FLUX.1"]["steps"] == 20 and by_label["FLUX.1"]["taca_steps"] == [1, 2]
    assert by_label["SD3.5"]["scheduler"] == "sgm_uniform"
    if "Qwen-Image 2.1" in by_label:  # the figures for its shift: 3 of 50, 2 of 20 or 30, 1 of 3
        assert by_label["Qwen-Image 2.1"]["steps"] == 25
        patcher = preview.resolve_model({"file": "qwen_image_2.1.safetensors"})[0]
        for steps, n in [(3, 1), (20, 2), (30, 2), (50, 3)]:
            sigmas, _, _ = preview.ksampler_sigmas(patcher, steps, "euler", "simple")
            assert int((sigmas[:-1] >= 0.97).sum()) == n, steps
        assert by_label["Qwen-Image 2.1 Turbo"]["taca_steps"] == [1, 2]  # ManualSigmas 1.0, 0.978, 0.954, ...


@pytest.mark.parametrize("request_, message", [
    ({"gamma": 7}, "gamma must be in"),
    ({"sampler": {"node": "KSampler", "scheduler": "nope", "steps": 4}}, "scheduler nope"),
    ({"sampler": {"node": "KSampler", "scheduler": "simple", "steps": None}}, "steps is not a number"),
    ({"sampler": {"node": "SamplerCustom", "sigmas": {"node": "KSampler"}}}, "sigmas from KSampler are not"),
    ({"sampler": {"node": "SamplerCustom", "sigmas": {"node": "NoSuchNode"}}}, "NoSuchNode is not a node"),
    ({"sampler": {"node": "KSampler", "steps": 4, "scheduler": "simple"},
      "model": {"sampling": {"node": "CLIPLoader"}}}, "not a ModelSampling node"),
])
def test_what_cannot_be_previewed_is_said(request_, message):
    with pytest.raises(preview.PreviewError, match=message):
        preview.schedule_preview(request_)
