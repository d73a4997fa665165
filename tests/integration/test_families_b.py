"""TACA on HiDream, Lens, JoyImage, Mochi, PixelDiT, Ideogram4, OmniGen2, Boogu and HiDream-O1, and the
refusal of ErnieImage and SeedVR2: tiny models built with ComfyUI's own classes, sampled on the CPU.

Every case is compared against an independent dense reference: an attention override that knows the
family's layout from this test's own numbers (how many visual tokens the tiny latent makes, where the
family puts its text), materialises the logits and multiplies the image-query x text-key ones by gamma.
It never uses taca_core. Runs use CFG with unequal prompt lengths and a batch of 2 latents.
"""
import collections
import functools
import importlib
from dataclasses import dataclass, field

import pytest
import torch

from comfy_env import import_comfy

env = import_comfy()

import comfy.lora  # noqa: E402
import comfy.samplers  # noqa: E402
import nodes as comfy_nodes  # noqa: E402  (ComfyUI's nodes.py: LoraLoaderModelOnly)
from safetensors.torch import save_file  # noqa: E402

from pack import load_pack  # noqa: E402
from tiny_families_b import O1_TEMPLATE_TOKENS, TINY, skip_unless_available, tiny_seedvr2  # noqa: E402

TACAModelPatch = importlib.import_module(load_pack().__name__ + ".nodes.taca_model_patch").TACAModelPatch
TACALoraLoader = importlib.import_module(load_pack().__name__ + ".nodes.taca_lora_loader").TACALoraLoader
schedule = importlib.import_module(load_pack().__name__ + ".taca_core.schedule")
GAMMA = 1.5
POS, NEG = 6, 4  # prompt lengths of the positive and the negative


def patch(model, gamma=GAMMA, cutoff=0):
    return TACAModelPatch.execute(model=model, gamma=gamma, timestep_cutoff=cutoff).result[0]


def with_override(model, override):
    m = model.clone()
    m.model_options["transformer_options"]["optimized_attention_override"] = override
    return m


# ------------------------------------------------------------------ the independent reference
@dataclass
class Spec:
    """Where one family's text sits, from the key count of an attention call.

    text_cols(n_queries, n_keys) -> (start, stop) of the text keys, or None for a call that is not joint.
    Query rows are the first n_queries keys, or the last ones (queries_at_end: HiDream-O1's
    generation rows); rows inside the text columns are text rows and keep their logits.
    """
    text_cols: callable
    joint_keys: set  # the key counts of the joint calls this test expects (cond and uncond)
    queries_at_end: bool = False


def image_first(visual, joint_keys):
    return Spec(lambda nq, nk: (visual, nk) if nk in joint_keys else None, set(joint_keys))


def text_first(visual, joint_keys):
    return Spec(lambda nq, nk: (0, nk - visual) if nk in joint_keys else None, set(joint_keys))


@dataclass
class DenseReference:
    spec: Spec
    gamma: float
    seen: collections.Counter = field(default_factory=collections.Counter)

    def __deepcopy__(self, memo):  # ComfyUI 0.8.x and older deep-copy model_options on clone: stay one object
        return self

    def __call__(self, func, q, k, v, *rest, **kwargs):
        bhld = kwargs.get("skip_reshape", False)
        heads = rest[0] if rest else kwargs["heads"]
        nq, nk = (q.shape[2], k.shape[2]) if bhld else (q.shape[1], k.shape[1])
        cols = self.spec.text_cols(nq, nk)
        if cols is None:
            return func(q, k, v, *rest, **kwargs)
        self.seen[nk] += 1
        if not bhld:
            q, k, v = (t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2) for t in (q, k, v))
        if k.shape[1] != q.shape[1]:  # grouped-query attention: fewer key/value heads
            k, v = (t.repeat_interleave(q.shape[1] // t.shape[1], dim=1) for t in (k, v))
        logits = q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5
        first_row = nk - nq if self.spec.queries_at_end else 0
        rows = torch.arange(first_row, first_row + nq)
        image_rows = (rows < cols[0]) | (rows >= cols[1])
        text_keys = torch.zeros(nk, dtype=torch.bool)
        text_keys[cols[0]:cols[1]] = True
        logits = torch.where(image_rows[:, None] & text_keys[None, :], logits * self.gamma, logits)
        mask = rest[1] if len(rest) >= 2 else kwargs.get("mask")
        if mask is not None:
            logits = logits.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else logits + mask
        out = logits.softmax(-1) @ v
        return out if kwargs.get("skip_output_reshape", False) else out.transpose(1, 2).flatten(2)


class CallCounter:
    """A plain override that counts (queries, keys) of the calls it runs."""

    def __init__(self):
        self.calls = collections.Counter()

    def __deepcopy__(self, memo):  # see DenseReference
        return self

    def __call__(self, func, q, k, v, *rest, **kwargs):
        d = 2 if kwargs.get("skip_reshape", False) else 1
        self.calls[(q.shape[d], k.shape[d])] += 1
        return func(q, k, v, *rest, **kwargs)


# ------------------------------------------------------------------ the cases
# name -> (family, cond options, spec). Visual tokens: the tiny latents of TINY (see tiny_families_b).
@functools.lru_cache(maxsize=None)
def o1_vision_block_tokens():
    """Edit mode: the tokens ComfyUI splices into the prefix for one 64x64 reference on the tiny latent
    ([vision_start, image_pad x ViT tokens, vision_end]), by ComfyUI's own preprocessing."""
    from comfy.ldm.hidream_o1.conditioning import prepare_ref_images
    _, height, width = TINY["hidream_o1"].latent_shape
    ref = prepare_ref_images([torch.rand(1, 64, 64, 3)], height, width, torch.device("cpu"), torch.float32)
    return sum(n + 2 for n in ref["per_ref_vit_tokens"])


def o1_spec(edit):
    """HiDream-O1: the prefix is the first nk - nq keys (the queries are the generation rows). Its text:
    all of it (text-to-image), or in edit mode all but the 3 template tokens and the vision block
    before the prompt. Text-to-image keys: prefix (prompt + template, tms excluded) + tms + 6 patches."""
    def cols(nq, nk):  # every HiDream-O1 call through transformer_options is a generation-row call
        return (3 + o1_vision_block_tokens() if edit else 0, nk - nq)
    t2i_keys = {n + O1_TEMPLATE_TOKENS - 1 + 1 + 6 for n in (POS, NEG)}
    return Spec(cols, set() if edit else t2i_keys, queries_at_end=True)


CASES = {
    # HiDream: text = T5 + 2 x llama (llama = T5 - 3 here); image 16 (+ 32 for the E1 reference)
    "hidream": ("hidream", {}, image_first(16, {16 + POS + 2 * 3, 16 + NEG + 2 * 1})),
    "hidream_e1": ("hidream", {"edit_hw": (8, 8)}, image_first(32, {32 + POS + 6, 32 + NEG + 2})),
    "lens": ("lens", {}, image_first(16, {16 + POS, 16 + NEG})),
    "lens_padded": ("lens", {"pad": 2}, image_first(16, {16 + POS, 16 + NEG})),  # always-on key mask
    "joyimage_ref": ("joyimage", {"ref_hw": (4, 6)}, image_first(16 + 6, {22 + POS, 22 + NEG})),
    "mochi_padded": ("mochi", {"pad": 4}, image_first(32, {32 + POS, 32 + NEG})),  # padding cut off
    "pixeldit": ("pixeldit", {}, text_first(16, {16 + 12})),  # 6 and 4 repeated to 12, one batch
    "pid": ("pid", {}, text_first(16, {16 + 12})),  # PixelDiT + a low-quality latent added to the patches
    "ideogram4_padded": ("ideogram4", {"pad": 2}, text_first(16, {16 + POS, 16 + NEG})),  # per-row mask
    "omnigen2_ref": ("omnigen2", {"ref_hw": (4, 6)}, text_first(16 + 6, {22 + POS, 22 + NEG})),
    "boogu_ref": ("boogu", {"ref_hw": (4, 4)}, text_first(16 + 4, {20 + POS, 20 + NEG})),
    "hidream_o1": ("hidream_o1", {}, o1_spec(edit=False)),
    "hidream_o1_edit": ("hidream_o1", {"ref_images": 1}, o1_spec(edit=True)),
}


_models = {}


def model_of(name):
    if name not in _models:
        _models[name] = TINY[name].build(0)
    return _models[name]


def run(name, model, cond_kw, *, batch=2, steps=2, pos=POS, neg=NEG):
    if name == "hidream_o1":
        model.model.diffusion_model.clear_kv_cache()  # each run starts cold, then reuses its prefix cache
    return TINY[name].sample(model, pos, neg_txt=neg, cfg=2.0, batch=batch, steps=steps, **cond_kw)


@pytest.mark.parametrize("case", sorted(CASES))
def test_equals_dense_reference_with_cfg_and_batch_2(case):
    name, cond_kw, spec = CASES[case]
    skip_unless_available(name)
    base = model_of(name)
    reference = DenseReference(spec, GAMMA)
    want = run(name, with_override(base, reference), cond_kw)
    got = run(name, patch(base), cond_kw)
    plain = run(name, base, cond_kw)
    assert reference.seen, f"{case}: the reference never saw a joint call"
    if spec.joint_keys:
        assert set(reference.seen) == spec.joint_keys, f"{case}: joint calls of {sorted(reference.seen)} keys"
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert (got - plain).abs().max() > 1e-3, f"{case}: TACA had no visible effect"


def test_hidream_o1_second_call_reuses_the_prefix_cache():
    """The cached (hot) path is really taken, so the reference comparison covers it."""
    skip_unless_available("hidream_o1")
    base = model_of("hidream_o1")
    counter = CallCounter()
    run("hidream_o1", with_override(patch(base), counter), {}, batch=1, steps=3)
    assert len(base.model.diffusion_model._kv_cache_entries) == 2  # cond and uncond prefixes


@pytest.mark.parametrize("case", sorted(CASES))
def test_gamma_one_is_bit_identical(case):
    name, cond_kw, _ = CASES[case]
    skip_unless_available(name)
    base = model_of(name)
    assert torch.equal(run(name, patch(base, gamma=1.0), cond_kw), run(name, base, cond_kw))


SUPPORTED = sorted({name for name, _, _ in CASES.values()})


@pytest.mark.parametrize("name", SUPPORTED)
def test_steps_below_the_cutoff_are_bit_identical(name):
    """denoise 0.6 of 5 steps starts below sigma 0.99 for every shift here: a cutoff of 990 never acts."""
    skip_unless_available(name)
    base = model_of(name)
    first = comfy.samplers.calculate_sigmas(base.get_model_object("model_sampling"), "simple", 5)[2]
    assert float(first) < 0.99

    def partial(model):
        if name == "hidream_o1":
            model.model.diffusion_model.clear_kv_cache()
        return TINY[name].sample(model, POS, neg_txt=NEG, cfg=2.0, steps=5, denoise=0.6)
    plain = partial(base)
    assert not torch.equal(partial(patch(base, 2.0, cutoff=0)), plain)
    assert torch.equal(partial(patch(base, 2.0, cutoff=990)), plain)


@pytest.mark.parametrize("name", SUPPORTED)
def test_window_is_the_papers_timestep_for_this_model_sampling(name):
    """Flow models all (multiplier 1 or 1000, FLUX-style or discrete shift): the paper's timestep is 1000 * sigma."""
    skip_unless_available(name)
    ms = model_of(name).get_model_object("model_sampling")
    sigmas = comfy.samplers.calculate_sigmas(ms, "simple", 8)[:-1]
    torch.testing.assert_close(schedule.paper_timestep(ms, sigmas), 1000 * sigmas.double(), atol=1e-6, rtol=1e-6)
    assert float(schedule.paper_timestep(ms, ms.sigma_max)) == pytest.approx(1000.0)


@pytest.mark.parametrize("case", ["pixeldit", "omnigen2_ref", "boogu_ref", "mochi_padded"])
def test_calls_that_are_not_joint_pass_through_unchanged(case):
    """Refiners, image-only and pixel-level attention reach the next override exactly as without TACA;
    the joint calls arrive split into image rows (scaled text keys) and text rows."""
    name, cond_kw, spec = CASES[case]
    skip_unless_available(name)
    base = model_of(name)
    plain, taca = CallCounter(), CallCounter()
    run(name, with_override(base, plain), cond_kw)
    run(name, patch(with_override(base, taca)), cond_kw)
    not_joint = {shape: n for shape, n in plain.calls.items() if shape[1] not in spec.joint_keys}
    assert not_joint or case == "mochi_padded"
    assert {s: n for s, n in taca.calls.items() if s[1] not in spec.joint_keys} == not_joint
    for (nq, nk), n in plain.calls.items():
        if nk in spec.joint_keys:
            assert (nq, nk) not in taca.calls  # every joint call was split
            assert sum(m for (q, k), m in taca.calls.items() if k == nk) == 2 * n  # text rows + image rows


def test_pixeldit_truncates_long_prompts_to_its_text_window():
    """Prompts of 20 and 10 tokens batch as 20 (repeated), of which the model keeps 16 (its max)."""
    skip_unless_available("pixeldit")
    base = model_of("pixeldit")
    reference = DenseReference(text_first(16, {16 + 16}), GAMMA)
    want = run("pixeldit", with_override(base, reference), {}, pos=20, neg=10)
    got = run("pixeldit", patch(base), {}, pos=20, neg=10)
    assert set(reference.seen) == {32}
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name,reason", [("ernie", "without transformer_options"),
                                         ("seedvr2", "fixed embedding")])
def test_refused_families_get_a_clear_error(name, reason):
    skip_unless_available(name)
    model = tiny_seedvr2() if name == "seedvr2" else model_of(name)
    with pytest.raises(ValueError) as e:
        patch(model)
    message = str(e.value)
    assert "TACAModelPatch" in message and reason in message
    assert {"ernie": "ErnieImage", "seedvr2": "SeedVR2"}[name] in message


def test_ernie_attention_never_reaches_transformer_options():
    """The basis of ErnieImage's refusal: an attention override installed on the model sees no call."""
    skip_unless_available("ernie")
    counter = CallCounter()
    out = TINY["ernie"].sample(with_override(model_of("ernie"), counter), POS, neg_txt=NEG, cfg=2.0, steps=2)
    assert torch.isfinite(out).all() and not counter.calls


# ------------------------------------------------------------------ the TACA LoRA Loader
# Layer names per format, from the model's own attention weights: ComfyUI's (diffusion_model.*), plus
# the trainer formats ComfyUI maps for that family (comfy/lora.py): SimpleTuner's transformer.* for
# HiDream, the official bare names of Mochi and OmniGen2 (Boogu is an OmniGen2 to ComfyUI).
LORA_FORMATS = {"hidream": "transformer.", "mochi": "", "omnigen2": "", "boogu": ""}


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("loras_b")
    env.folder_paths.add_model_folder_path("loras", str(d))
    return d


def write_attention_lora(path, model, prefix, rank=2, seed=0):
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, w in model.model.state_dict().items():
        attention = "attn" in key or "attention" in key
        if not (key.startswith("diffusion_model.") and key.endswith(".weight") and w.ndim == 2 and attention):
            continue
        name = prefix + key[len("diffusion_model."):-len(".weight")]
        assert key_map.get(name) == key, f"ComfyUI does not map {name}"
        sd[f"{name}.lora_down.weight"] = torch.randn(rank, w.shape[1], generator=g) * 0.5 / w.shape[1] ** 0.5
        sd[f"{name}.lora_up.weight"] = torch.randn(w.shape[0], rank, generator=g) * 0.5
        sd[f"{name}.alpha"] = torch.tensor(float(rank))
    assert sd
    save_file(sd, str(path))
    return path.name


@pytest.mark.parametrize("name,fmt", [(n, "diffusion_model.") for n in SUPPORTED] +
                         [(n, p) for n, p in LORA_FORMATS.items()])
def test_taca_lora_loader_applies_the_lora_while_taca_acts(lora_dir, name, fmt):
    """With TACA acting on every step, the TACA LoRA equals ComfyUI's own LoRA loading plus TACA."""
    skip_unless_available(name)
    base = model_of(name)
    lora = write_attention_lora(lora_dir / f"{name}_{fmt or 'bare'}.safetensors", base, fmt)
    ours = TACALoraLoader.execute(model=base, lora_name=lora, strength=1.0, active="while TACA acts").result[0]
    comfys = comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(base, lora, 1.0)[0]
    got = run(name, patch(ours), {}, batch=1)
    want = run(name, patch(comfys), {}, batch=1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert (got - run(name, patch(base), {}, batch=1)).abs().max() > 1e-3, "the LoRA had no effect"
