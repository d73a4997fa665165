"""The web preview's step math (web/taca_schedule_math.js, run in Node) against ComfyUI's own schedules.

Every number the preview shows comes from that file: the model's sigma table, the scheduler's sigmas, what
KSampler / BasicScheduler / Flux2Scheduler / SplitSigmas make of steps, denoise and start/end, and the
paper timestep of each step. Here each is compared with ComfyUI's own code on this checkout (its classes,
its scheduler functions, its nodes) and with the pack's own sigma -> timestep conversion.
"""
import importlib
import inspect
import json
import shutil
import subprocess
import types

import pytest
import torch

from support.comfy_env import import_comfy, skip_or_fail

import_comfy()

import comfy.model_base  # noqa: E402
import comfy.model_sampling  # noqa: E402
import comfy.samplers  # noqa: E402
import comfy.supported_models  # noqa: E402

from support.pack import ROOT  # noqa: E402
from support.tiny_models import tiny_flux  # noqa: E402

from comfyui_taca_under_test.taca_core.schedule import paper_timestep  # noqa: E402

NODE = shutil.which("node")
CUTOFFS = [1000, 990, 970, 950, 900, 800, 500, 0]
STEPS = [1, 2, 3, 4, 8, 20, 25, 30, 50]
# Bit-exact in JS; the rest go through float32 tan / exp / pow, which JS rounds from float64 (1 ulp).
EXACT = {"simple", "sgm_uniform", "normal", "ddim_uniform", "beta", "linear_quadratic"}

# JS family key -> (supported_models class, model_base class, model type when get_model forces one)
FAMILIES = {
    "qwen_image": ("QwenImage", "QwenImage", None), "z_image": ("ZImage", "Lumina2", None),
    "lumina2": ("Lumina2", "Lumina2", None), "krea2": ("Krea2", "Krea2", None),
    "flux2": ("Flux2", "Flux2", None), "flux1": ("Flux", "Flux", None),
    "flux1_schnell": ("FluxSchnell", "Flux", "FLOW"),  # FluxSchnell.get_model passes ModelType.FLOW
    "sd3": ("SD3", "SD3", None), "chroma": ("Chroma", "Chroma", None), "hidream": ("HiDream", "HiDream", None),
    "hunyuan_image": ("HunyuanImage21", "HunyuanImage21", None), "omnigen2": ("Omnigen2", "Omnigen2", None),
    "aura": ("AuraFlow", "AuraFlow", None),
}
# The families the scheduler tests sweep: both table kinds, shift 1 (steps land on round timesteps), x1000
SWEEP = ["flux1", "sd3", "z_image", "flux2", "flux1_schnell", "lumina2"]


def js(*exprs):
    """Evaluate JS expressions with the module as `m`; one Node process for all of them."""
    if NODE is None:
        skip_or_fail("needs Node.js (node) to run the web extension's math")
    module = (ROOT / "web" / "taca_schedule_math.js").as_uri()
    script = (f"const m = await import({json.dumps(module)}); const fs = await import('node:fs');"
              "const ex = JSON.parse(fs.readFileSync(0, 'utf8'));"
              "console.log(JSON.stringify(ex.map(e => new Function('m', 'return ' + e)(m))));")
    r = subprocess.run([NODE, "--input-type=module", "-e", script], input=json.dumps(exprs),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def family_sampling(key):
    """The family's model_sampling as ComfyUI builds it (model_base.model_sampling + its config)."""
    cls, base, forced = FAMILIES[key]
    if not hasattr(comfy.supported_models, cls):
        return None
    config = types.SimpleNamespace(sampling_settings=getattr(comfy.supported_models, cls).sampling_settings)
    model_type = (getattr(comfy.model_base.ModelType, forced) if forced else
                  inspect.signature(getattr(comfy.model_base, base).__init__).parameters["model_type"].default)
    return comfy.model_base.model_sampling(config, model_type)


def js_ms(key):
    return f'm.familySampling("{key}")'


class StubModel:
    """What KSampler / BasicScheduler read from a model: its model_sampling."""
    def __init__(self, ms):
        self.ms = ms

    def get_model_object(self, name):
        assert name == "model_sampling"
        return self.ms


def node_output(out):
    """First output of a node call, V3 (NodeOutput) or V1 (tuple)."""
    return out.args[0] if hasattr(out, "args") else out[0]


def run_node(module, name, **kwargs):
    mod = importlib.import_module(module)
    cls = getattr(mod, name, None)
    if cls is None:
        pytest.skip(f"{module}.{name} is not in this ComfyUI")
    if hasattr(cls, "define_schema"):
        return node_output(cls.execute(**kwargs))
    return node_output(getattr(cls(), cls.FUNCTION)(**kwargs))


def taca_steps(ms, sigmas, cutoff):
    t = paper_timestep(ms, torch.as_tensor(sigmas[:-1], dtype=torch.float32))
    return [i + 1 for i, x in enumerate(t.tolist()) if x >= cutoff]


def js_window(ms_expr, sigmas_expr, cutoffs):
    return [f"m.stepWindow({ms_expr}, m.runRange({sigmas_expr}), {c}).filter(w => w.taca).map(w => w.step)"
            for c in cutoffs]


def assert_sigmas(got, want, exact, where):
    assert got is not None and len(got) == len(want), f"{where}: {got} vs {want}"
    if exact:
        assert got == want, where
    else:
        assert torch.allclose(torch.tensor(got, dtype=torch.float64), torch.tensor(want, dtype=torch.float64),
                              rtol=3e-7, atol=0), where


def assert_steps_agree(got, want, ms, sigmas, cutoff, exact, where):
    """The steps gamma acts on agree; an approximated scheduler may differ only on a knife edge."""
    if got == want:
        return
    assert not exact, f"{where}, cutoff {cutoff}: {got} vs ComfyUI {want}"
    t = paper_timestep(ms, torch.as_tensor(sigmas[:-1], dtype=torch.float32)).tolist()
    for k in set(got) ^ set(want):
        assert abs(t[k - 1] - cutoff) < 1e-3, f"{where}, cutoff {cutoff}: step {k} (t={t[k - 1]})"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_sampling_table_matches_comfyui(family):
    ms = family_sampling(family)
    if ms is None:
        pytest.skip(f"{FAMILIES[family][0]} is not in this ComfyUI")
    table, smin, smax, kind = js(f"{js_ms(family)}.sigmas", f"{js_ms(family)}.sigmaMin",
                                 f"{js_ms(family)}.sigmaMax", f"{js_ms(family)}.kind")
    assert kind == ("flux" if isinstance(ms, comfy.model_sampling.ModelSamplingFlux) else "flow")
    assert table == ms.sigmas.tolist()  # bit for bit, every entry
    assert (smin, smax) == (float(ms.sigma_min), float(ms.sigma_max))
    # the paper timestep of every 37th table entry, as the pack computes it
    sig = ms.sigmas[::37]
    got = js(f"(() => {{ const s = {js_ms(family)}; return {json.dumps(sig.tolist())}"
             f".map(x => m.paperTimestep(s, x)); }})()")[0]
    assert got == paper_timestep(ms, sig).tolist()


@pytest.mark.parametrize("scheduler", list(comfy.samplers.SCHEDULER_NAMES))
def test_scheduler_matches_comfyui(scheduler):
    if scheduler not in js("Object.keys(m.SCHEDULERS)")[0]:
        pytest.fail(f"the preview does not implement ComfyUI's scheduler {scheduler!r}")
    cases, exprs = [], []
    for family in SWEEP:
        ms = family_sampling(family)
        if ms is None:
            continue
        for n in STEPS:
            if scheduler == "kl_optimal" and n == 1:
                continue  # ComfyUI divides by n - 1: nan
            want = comfy.samplers.calculate_sigmas(ms, scheduler, n).tolist()
            cases.append((family, n, ms, want))
            sig = f'm.calculateSigmas({js_ms(family)}, "{scheduler}", {n})'
            exprs += [sig, *js_window(js_ms(family), sig, CUTOFFS)]
    out = js(*exprs)
    per = 1 + len(CUTOFFS)
    for i, (family, n, ms, want) in enumerate(cases):
        got, windows = out[i * per], out[i * per + 1:(i + 1) * per]
        where = f"{scheduler}, {family}, {n} steps"
        assert_sigmas(got, want, scheduler in EXACT, where)
        for c, steps in zip(CUTOFFS, windows):
            assert_steps_agree(steps, taca_steps(ms, want, c), ms, want, c, scheduler in EXACT, where)


def test_beta_quantile_matches_scipy():
    import numpy as np
    import scipy.stats
    ps = np.linspace(0, 1, 401)[1:-1].tolist() + [1e-6, 0.5, 1 - 1e-6]
    for a, b in [(0.6, 0.6), (0.5, 0.7), (2.0, 5.0), (1.0, 1.0), (3.0, 0.4)]:
        got = js(f"{json.dumps(ps)}.map(p => m.betaPpf(p, {a}, {b}))")[0]
        want = scipy.stats.beta.ppf(ps, a, b)
        assert np.max(np.abs(np.array(got) - want)) < 1e-11, (a, b)


@pytest.mark.parametrize("family", ["flux1", "sd3"])
def test_beta_scheduler_picks_comfyuis_table_entries(family):
    """beta only indexes the table: the rounding of ppf * (len - 1) must match for every step count."""
    ms = family_sampling(family)
    counts = list(range(1, 121))
    got = js(*[f"m.betaSigmas({js_ms(family)}, {n})" for n in counts])
    for n, g in zip(counts, got):
        assert g == comfy.samplers.beta_scheduler(ms, n).tolist(), n
    for a, b in [(0.5, 0.7), (2.0, 2.0)]:  # BetaSamplingScheduler's alpha, beta
        got = js(*[f"m.betaSigmas({js_ms(family)}, {n}, {a}, {b})" for n in (7, 20, 33)])
        for n, g in zip((7, 20, 33), got):
            assert g == comfy.samplers.beta_scheduler(ms, n, alpha=a, beta=b).tolist(), (n, a, b)


@pytest.mark.parametrize("sampler", ["euler", "dpm_2", "uni_pc"])
def test_ksampler_steps_and_denoise_match_comfyui(sampler):
    cases, exprs = [], []
    for family in ["flux1", "sd3", "z_image"]:
        ms = family_sampling(family)
        if ms is None:
            continue
        for scheduler in ["simple", "normal", "beta", "karras", "sgm_uniform"]:
            for steps in [4, 8, 20, 30]:
                for denoise in [1.0, 0.9, 0.75, 0.5, 0.33]:
                    ks = comfy.samplers.KSampler(StubModel(ms), steps, "cpu", sampler=sampler,
                                                 scheduler=scheduler, denoise=denoise)
                    cases.append((family, scheduler, steps, denoise, ms, ks.sigmas.tolist()))
                    exprs.append(f'm.ksamplerSchedule({js_ms(family)}, {{steps: {steps}, scheduler: "{scheduler}", '
                                 f'denoise: {denoise}, sampler: "{sampler}"}})')
    for (family, scheduler, steps, denoise, ms, want), got in zip(cases, js(*exprs)):
        where = f"{family} {scheduler} {steps} steps denoise {denoise} {sampler}"
        assert_sigmas(got["sigmas"], want, scheduler in EXACT, where)
        assert (got["first"], got["last"]) == (0, len(want) - 1), where


def test_ksampler_advanced_start_and_end_match_comfyui(monkeypatch):
    """Which sigmas KSampler.sample hands the sampler for start_step / last_step (KSamplerAdvanced)."""
    seen = []
    monkeypatch.setattr(comfy.samplers, "sample", lambda model, noise, pos, neg, cfg, device, sampler, sigmas,
                        *a, **k: seen.append(sigmas.tolist()))
    ms = family_sampling("flux1")
    cases = [(0, 10000), (0, 3), (2, 10000), (5, 12), (19, 10000), (20, 10000), (25, 30), (3, 3), (4, 2)]
    exprs = [f'm.ksamplerSchedule({js_ms("flux1")}, {{steps: 20, scheduler: "simple", '
             f'startStep: {s}, lastStep: {e}}})' for s, e in cases]
    for (start, end), got in zip(cases, js(*exprs)):
        seen.clear()
        ks = comfy.samplers.KSampler(StubModel(ms), 20, "cpu", sampler="euler", scheduler="simple", denoise=1.0)
        ks.sample(torch.zeros(1), None, None, 1.0, latent_image=torch.zeros(1), start_step=start, last_step=end)
        ran = got["sigmas"][got["first"]:got["last"] + 1] if got["last"] > got["first"] else None
        assert (seen[0] if seen else None) == ran, (start, end, got["first"], got["last"])


@pytest.mark.parametrize("scheduler", ["simple", "normal", "beta", "linear_quadratic", "karras"])
def test_basic_scheduler_node_matches_comfyui(scheduler):
    ms = family_sampling("sd3")
    cases = [(n, d) for n in (1, 4, 20, 30) for d in (1.0, 0.8, 0.5, 0.25, 0.0)]
    exprs = [f'm.basicSchedulerSigmas({js_ms("sd3")}, "{scheduler}", {n}, {d})' for n, d in cases]
    for (n, d), got in zip(cases, js(*exprs)):
        want = run_node("comfy_extras.nodes_custom_sampler", "BasicScheduler", model=StubModel(ms),
                        scheduler=scheduler, steps=n, denoise=d).tolist()
        assert_sigmas(got, want, scheduler in EXACT, f"{scheduler} {n} steps denoise {d}")


def test_sigma_nodes_match_comfyui():
    """Flux2Scheduler (FLUX.2: mu from resolution and steps), SplitSigmas(Denoise), the k-diffusion nodes."""
    base = comfy.samplers.calculate_sigmas(family_sampling("flux1"), "simple", 20)
    base_js = f'm.calculateSigmas({js_ms("flux1")}, "simple", 20)'
    checks = []  # (js expression, ComfyUI result, exact)
    for step in (0, 3, 10, 20):
        for slot in (0, 1):
            want = node_output_tuple("SplitSigmas", sigmas=base, step=step)[slot]
            checks.append((f"m.splitSigmas({base_js}, {step}, {slot})", want.tolist(), True))
    for d in (1.0, 0.75, 0.5, 0.125, 0.0):
        for slot in (0, 1):
            want = node_output_tuple("SplitSigmasDenoise", sigmas=base, denoise=d)[slot]
            checks.append((f"m.splitSigmasDenoise({base_js}, {d}, {slot})", want.tolist(), True))
    for n in (1, 8, 20):
        want = run_node("comfy_extras.nodes_custom_sampler", "KarrasScheduler", steps=n, sigma_max=1.0,
                        sigma_min=0.0292, rho=7.0)
        checks.append((f"m.karrasSigmas({n}, 0.0292, 1.0, 7.0)", want.tolist(), False))
        want = run_node("comfy_extras.nodes_custom_sampler", "ExponentialScheduler", steps=n, sigma_max=14.6,
                        sigma_min=0.03)
        checks.append((f"m.exponentialSigmas({n}, 0.03, 14.6)", want.tolist(), False))
        want = run_node("comfy_extras.nodes_custom_sampler", "PolyexponentialScheduler", steps=n, sigma_max=14.6,
                        sigma_min=0.03, rho=1.5)
        checks.append((f"m.polyexponentialSigmas({n}, 0.03, 14.6, 1.5)", want.tolist(), False))
    for (expr, want, exact), got in zip(checks, js(*[c[0] for c in checks])):
        assert_sigmas(got, want, exact, expr)


def node_output_tuple(name, **kwargs):
    cls = getattr(importlib.import_module("comfy_extras.nodes_custom_sampler"), name)
    out = cls.execute(**kwargs) if hasattr(cls, "define_schema") else getattr(cls(), cls.FUNCTION)(**kwargs)
    return out.args if hasattr(out, "args") else out


def test_flux2_scheduler_matches_comfyui():
    nodes_flux = importlib.import_module("comfy_extras.nodes_flux")
    if not hasattr(nodes_flux, "Flux2Scheduler"):
        pytest.skip("Flux2Scheduler is not in this ComfyUI (it came after 0.3.64)")
    cases = [(n, w, h) for n in (1, 4, 8, 20, 28, 50) for w, h in ((1024, 1024), (1248, 832), (512, 512),
                                                                    (2048, 2048), (1032, 1032))]
    exprs = [f"m.flux2SchedulerSigmas({n}, {w}, {h})" for n, w, h in cases]
    exprs += [f"m.flux2Mu({s}, {n})" for s in (1024, 4096, 4300, 4301, 16384) for n in (4, 20, 50)]
    out = js(*exprs)
    for (n, w, h), got in zip(cases, out):
        want = run_node("comfy_extras.nodes_flux", "Flux2Scheduler", steps=n, width=w, height=h).tolist()
        assert_sigmas(got, want, True, f"Flux2Scheduler {n} {w}x{h}")
    mus = out[len(cases):]
    want = [nodes_flux.compute_empirical_mu(s, n) for s in (1024, 4096, 4300, 4301, 16384) for n in (4, 20, 50)]
    assert mus == want
    # FLUX.2's default shift 2.02 (supported_models.Flux2) is this mu at 1024x1024 and 50 steps
    assert round(nodes_flux.compute_empirical_mu(4096, 50), 2) == 2.02


@pytest.mark.parametrize("node,kind,multiplier", [("ModelSamplingFlux", "flux", 1),
                                                   ("ModelSamplingSD3", "flow", 1000),
                                                   ("ModelSamplingAuraFlow", "flow", 1.0)])
def test_model_sampling_nodes_match_comfyui(node, kind, multiplier):
    """The shift the preview reads from a ModelSampling* node gives the sampling that node patches in."""
    cls = getattr(importlib.import_module("comfy_extras.nodes_model_advanced"), node)
    model = tiny_flux()
    if node == "ModelSamplingFlux":
        args = dict(max_shift=1.15, base_shift=0.5, width=1328, height=1328)
        patched = cls().patch(model, **args)[0]
        shift_js = "m.modelSamplingFluxShift(1.15, 0.5, 1328, 1328)"
    else:
        patched = getattr(cls(), cls.FUNCTION)(model, shift=3.1)[0]
        shift_js = "3.1"
    ms = patched.get_model_object("model_sampling")
    table, shift = js(f'm.modelSampling("{kind}", {shift_js}, {multiplier}).sigmas', shift_js)
    assert shift == ms.shift and table == ms.sigmas.tolist()


def test_typical_schedules_match_comfyui():
    """The rows shown when no sampler is linked: each family's own sampling and its template's schedule."""
    rows = js("m.TYPICAL", *[f"m.typicalRows({c})" for c in CUTOFFS])
    typical, by_cutoff = rows[0], rows[1:]
    labels = [r["label"] for r in by_cutoff[0]]
    for name in ("Qwen-Image", "Z-Image", "Z-Image Turbo", "Krea 2 Turbo", "FLUX.2", "FLUX.1", "SD3.5"):
        assert name in labels
    checked = 0
    for i, row in enumerate(typical):
        ms = family_sampling(row["family"])
        if ms is None:
            continue  # a family this ComfyUI does not have
        if row["scheduler"] == "flux2":
            flux = importlib.import_module("comfy_extras.nodes_flux")
            if not hasattr(flux, "Flux2Scheduler"):
                continue
            sigmas = flux.Flux2Scheduler.execute(steps=row["steps"], width=row["width"], height=row["height"]).args[0]
        else:
            sigmas = comfy.samplers.calculate_sigmas(ms, row["scheduler"], row["steps"])
        for c, shown in zip(CUTOFFS, by_cutoff):
            got = [w["step"] for w in shown[i]["window"] if w["taca"]]
            assert got == taca_steps(ms, sigmas.tolist(), c), (row, c)
        checked += 1
    assert checked >= 2
    flux1 = next(r for r in by_cutoff[CUTOFFS.index(970)] if r["label"] == "FLUX.1")
    assert flux1["text"] == "steps 1–2 of 20"


def test_the_papers_first_3_of_30():
    """The official code's FLUX.1 setting: gamma on the first 3 of 30 simple steps at t >= 970."""
    ms = family_sampling("flux1")
    want = taca_steps(ms, comfy.samplers.calculate_sigmas(ms, "simple", 30).tolist(), 970)
    got = js(*js_window(js_ms("flux1"), f'm.calculateSigmas({js_ms("flux1")}, "simple", 30)', [970]))[0]
    assert got == want == [1, 2, 3]


def test_sampler_spec_describes_the_steps():
    """samplerRows: the text the preview shows for a sampler spec read from the graph."""
    spec = {"sampler": "KSampler", "schedule": {"type": "ksampler", "steps": 30, "scheduler": "simple",
                                                "denoise": 1.0, "sampler": "euler", "start": None, "end": None},
            "model": {"family": "flux1", "how": "file flux1-dev.safetensors", "sampling": None}}
    adv = json.loads(json.dumps(spec))
    adv["schedule"].update(start=2, end=10)
    custom = {"sampler": "SamplerCustomAdvanced", "schedule": {"type": "flux2", "steps": 20, "width": 1024,
                                                               "height": 1024},
              "model": {"family": "flux2", "how": "CLIPLoader type flux2", "sampling": None}}
    shifted = json.loads(json.dumps(spec))
    shifted["model"].update(sampling={"kind": "flow", "shift": 3.1, "multiplier": 1.0},
                            samplingNode="ModelSamplingAuraFlow")
    got = js(*[f"(({{window, ms, ...r}}) => r)(m.samplerRows({json.dumps(s)}, 970))" for s in (spec, adv, custom, shifted)])
    assert got[0]["text"] == "steps 1–3 of 30" and got[0]["scheduler"] == "simple, denoise 1.00"
    assert "FLUX.1 (file flux1-dev.safetensors), default shift 1.15" == got[0]["model"]
    assert got[1]["text"] == "step 3 of 30" and "runs steps 3–10" in got[1]["scheduler"]  # t(3) = 977.9
    ms2 = family_sampling("flux2")
    if ms2 is not None and hasattr(importlib.import_module("comfy_extras.nodes_flux"), "Flux2Scheduler"):
        sig = run_node("comfy_extras.nodes_flux", "Flux2Scheduler", steps=20, width=1024, height=1024).tolist()
        steps = taca_steps(ms2, sig, 970)
        assert got[2]["text"] == f"steps 1–{steps[-1]} of 20" and steps == list(range(1, steps[-1] + 1))
    sd = comfy.model_sampling.ModelSamplingDiscreteFlow()
    sd.set_parameters(shift=3.1, multiplier=1.0)
    steps = taca_steps(sd, comfy.samplers.calculate_sigmas(sd, "simple", 30).tolist(), 970)
    assert got[3]["text"] == f"steps 1–{steps[-1]} of 30" and "ModelSamplingAuraFlow shift 3.1" in got[3]["model"]
