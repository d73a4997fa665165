"""TACA on Qwen-Image 2.1 (block-causal attention, reference images spliced into the text, prefix cache):
a tiny model built with ComfyUI's own classes from the backport onto 0.33.0, sampled on the CPU.

The independent reference is an attention override that knows, from this test's own numbers, which key
columns are text for each call length (written out per case below: the text parts with the 6-token
reference images between them), materialises the logits of the target image's call (24 query rows, all
keys) and multiplies the text columns by gamma; the text and reference calls pass through. It never uses
taca_core. Runs: CFG 2 with a negative of another length (separate forwards) or the same length (one
batch), a batch of 2 latents, the prefix cache on (ComfyUI's default) and off, TACA on every step or only
in the paper's window (step 1 of 3, the step that fills the cache). Other trees skip: they have no
Qwen-Image 2.1.
"""
import collections
from dataclasses import dataclass

import pytest
import torch

from support.comfy_env import import_comfy

import_comfy()

import comfy.lora  # noqa: E402
import nodes as comfy_nodes  # noqa: E402  (ComfyUI's nodes.py: LoraLoaderModelOnly)

from comfyui_taca_under_test.taca_comfy.probe import attach_probe  # noqa: E402
from support import tiny_qwen21 as Q  # noqa: E402
from support.lora_files import write_layers  # noqa: E402
from support.reference import CallCounter, Layout, ReferenceTaca, with_override  # noqa: E402
from support.taca import TACALoraLoader, patch  # noqa: E402

GAMMA = 1.5
POS, NEG = 7, 5   # 7 and 5 tokens never batch together (lcm 35 is past ComfyUI's repeat limit)
TARGET = 24       # query rows of the target image's call


@dataclass(frozen=True)
class Case:
    cond_kw: dict
    text_cols: dict      # key count of the target call -> the text key spans (positive and negative)
    neg: int = NEG


CASES = {
    "text_only": Case({}, {POS + 24: [(0, 7)], NEG + 24: [(0, 5)]}),
    "text_only_same_length_batched": Case({}, {POS + 24: [(0, 7)]}, neg=POS),
    "ref_after_text": Case({"refs": 1}, {POS + 6 + 24: [(0, 7)], NEG + 6 + 24: [(0, 5)]}),
    # [text 0:3 | ref 6 | text 3:] -> text keys 0..3 and 9..
    "ref_in_text": Case({"refs": 1, "slots": [3], "neg_slots": [3]},
                        {37: [(0, 3), (9, 13)], 35: [(0, 3), (9, 11)]}),
    "ref_first": Case({"refs": 1, "slots": [0], "neg_slots": [0]}, {37: [(6, 13)], 35: [(6, 11)]}),
    # [text 0:2 | ref | text 2:5 | ref | text 5:7] and the negative's [text 0:2 | ref | text 2:4 | ref | text 4:5]
    "two_refs": Case({"refs": 2, "slots": [2, 5], "neg_slots": [2, 4]},
                     {43: [(0, 2), (8, 11), (17, 19)], 41: [(0, 2), (8, 10), (16, 17)]}),
}


def cache(model, on):
    return model if on else Q.without_prefix_cache(model)


def dense_reference(text_cols, gamma, cutoff=0, passthrough=None):
    """The one dense reference: gamma on the target call's text columns (every query row is a target row)."""
    layout = Layout(lambda nq, nk: text_cols.get(nk) if nq == TARGET else None, queries_at_end=True)
    return ReferenceTaca(layout, gamma, cutoff, passthrough)


def target_keys(reference):
    return {nk for _, nk in reference.calls}


_model = {}


def base():
    Q.skip_unless_available()
    if "m" not in _model:
        _model["m"] = Q.build(0)
    return _model["m"]


def run(model, case, **kw):
    c = CASES[case]
    return Q.sample(model, POS, c.neg, **c.cond_kw, **kw)


@pytest.mark.parametrize("cache_on", [True, False], ids=["cache_on", "cache_off"])
@pytest.mark.parametrize("cutoff", [0, 970])
@pytest.mark.parametrize("case", sorted(CASES))
def test_equals_dense_reference_with_cfg_and_batch_2(case, cutoff, cache_on):
    m = cache(base(), cache_on)
    reference = dense_reference(CASES[case].text_cols, GAMMA, cutoff)
    want = run(with_override(m, reference), case)
    got = run(patch(m, cutoff=cutoff), case)
    assert target_keys(reference) == set(CASES[case].text_cols), f"target calls of {sorted(target_keys(reference))} keys"
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert (got - run(m, case)).abs().max() > 1e-3, "TACA had no visible effect"


@pytest.mark.parametrize("cutoff", [0, 970])
@pytest.mark.parametrize("case", sorted(CASES))
def test_prefix_cache_on_equals_off_bit_for_bit(case, cutoff):
    """TACA acts on the target rows only: nothing it does reaches the cached text and reference K/V, even
    when it acts on the step that fills the cache and not on the later steps that read it."""
    on, off = CallCounter(), CallCounter()
    got_on = run(patch(with_override(base(), on), cutoff=cutoff), case)
    got_off = run(patch(with_override(Q.without_prefix_cache(base()), off), cutoff=cutoff), case)
    assert torch.equal(got_on, got_off)
    assert torch.equal(run(base(), case), run(Q.without_prefix_cache(base()), case))  # the model's own
    prefix_calls = {c: sum(n for (nq, _), n in calls.items() if nq != TARGET) for c, calls in (("on", on.calls), ("off", off.calls))}
    assert prefix_calls["on"] * 3 == prefix_calls["off"] > 0, prefix_calls  # with the cache: step 1 only


@pytest.mark.parametrize("case", sorted(CASES))
def test_gamma_one_is_bit_identical(case):
    assert torch.equal(run(patch(base(), gamma=1.0), case), run(base(), case))


def test_steps_below_the_cutoff_are_bit_identical():
    """denoise 0.6 of 5 steps starts below sigma 0.97 with this model's shift: the paper's cutoff never acts."""
    import comfy.samplers
    first = comfy.samplers.calculate_sigmas(base().get_model_object("model_sampling"), "simple", 5)[2]
    assert float(first) < 0.97
    for case in ("text_only", "ref_in_text"):
        plain = run(base(), case, steps=5, denoise=0.6)
        assert torch.equal(run(patch(base(), 2.0, cutoff=970), case, steps=5, denoise=0.6), plain)
        assert not torch.equal(run(patch(base(), 2.0, cutoff=0), case, steps=5, denoise=0.6), plain)


def test_only_the_target_call_is_split():
    """Text (causal mask) and reference calls reach the next override unchanged; the target call arrives
    once per block, with every text span's keys scaled in one fused call (its rows are all image rows)."""
    plain, taca = CallCounter(), CallCounter()
    run(Q.without_prefix_cache(with_override(base(), plain)), "two_refs")
    run(patch(Q.without_prefix_cache(with_override(base(), taca))), "two_refs")
    assert taca.calls == plain.calls
    assert {k for (q, k) in plain.calls if q == TARGET} == {43, 41}


# ------------------------------------------------------------------ TACA LoRA Loader and probe
# ComfyUI maps Qwen-Image LoRAs (Qwen-Image 2.1 is a model_base.QwenImage) in these formats (comfy/lora.py).
LORA_FORMATS = ["diffusion_model.", "", "transformer.", "lycoris_", "lora_unet_"]


def write_lora(path, model, fmt, seed=0, layers=("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0")):
    """A rank-2 kohya-style LoRA on `layers` of every block, named in format `fmt`."""
    key_map = comfy.lora.model_lora_keys_unet(model.model, {})
    names = []
    for key in model.model.state_dict():
        if key.startswith("diffusion_model.transformer_blocks.") and key.endswith(tuple(f"{n}.weight" for n in layers)):
            name = key[len("diffusion_model."):-len(".weight")]
            name = {"lycoris_": "lycoris_" + name.replace(".", "_"),
                    "lora_unet_": "lora_unet_" + name.replace(".", "_")}.get(fmt, fmt + name)
            assert key_map.get(name) == key, f"ComfyUI does not map {name}"
            names.append(name)
    assert names
    write_layers(path, model, names, peft=False, rank=2, seed=seed)
    return path.name


@pytest.mark.parametrize("fmt", LORA_FORMATS)
def test_taca_lora_loader_applies_the_lora_while_taca_acts(lora_dir, fmt):
    """With TACA acting on every step, the TACA LoRA equals ComfyUI's own LoRA loading plus TACA."""
    lora = write_lora(lora_dir / f"qwen21_{fmt or 'bare'}.safetensors", base(), fmt)
    ours = TACALoraLoader.execute(model=base(), lora_name=lora, strength=1.0, active="while TACA acts").result[0]
    comfys = comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(base(), lora, 1.0)[0]
    got, want = run(patch(ours), "ref_in_text"), run(patch(comfys), "ref_in_text")
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert (got - run(patch(base()), "ref_in_text")).abs().max() > 1e-3, "the LoRA had no effect"


def test_lora_on_the_fused_mlp_maps(lora_dir):
    """A LoRA on the fused img_mlp.gate_up under its own name maps (the unfused halves would not, here)."""
    lora = write_lora(lora_dir / "qwen21_mlp.safetensors", base(), "diffusion_model.",
                      layers=("img_mlp.gate_up", "img_mlp.out"))
    ours = TACALoraLoader.execute(model=base(), lora_name=lora, strength=1.0, active="every step").result[0]
    comfys = comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(base(), lora, 1.0)[0]
    torch.testing.assert_close(run(patch(ours), "text_only"), run(patch(comfys), "text_only"), atol=1e-5, rtol=1e-5)


def test_lora_only_in_the_window_turns_the_prefix_cache_off(lora_dir):
    """A LoRA on step 1 only changes the prefix K/V that step fills the cache with; later steps (no LoRA)
    must not reuse them. The TACA LoRA turns the cache off: equal to a run with QwenImage21Cache off."""
    lora = write_lora(lora_dir / "qwen21_window.safetensors", base(), "diffusion_model.", seed=1)

    def taca_lora(model):
        return TACALoraLoader.execute(model=patch(model, cutoff=970), lora_name=lora, strength=1.0,
                                      active="while TACA acts").result[0]
    got = run(taca_lora(base()), "ref_in_text")
    assert torch.equal(got, run(taca_lora(Q.without_prefix_cache(base())), "ref_in_text"))
    stale = taca_lora(base())  # what the cache would have done: the LoRA-altered prefix reused on steps 2, 3
    stale.model_options["transformer_options"].pop("qwen_image21_cache")
    assert (run(stale, "ref_in_text") - got).abs().max() > 1e-4


def test_probe_records_every_target_call_with_the_cache_on():
    probed, probe = attach_probe("TACAAttentionProbe", patch(base(), cutoff=970))
    run(probed, "ref_in_text", batch=1)
    calls = probe.to_dict()["calls"]
    assert len(calls) == 3 * 2  # 3 steps x cond, uncond: the cached steps too
    assert all(len(c["blocks"]) == Q.UNET["num_layers"] for c in calls)
    window = [c for c in calls if c["gamma"] != 1.0]
    assert len(window) == 2 and all(b["share_taca"] > b["share_plain"] for c in window for b in c["blocks"])


# ------------------------------------------------------------------ a layer's preferred attention
def with_layer_attention():
    """A fresh tiny model whose layers prefer their own attention function, as a checkpoint's per-layer
    config sets it (ComfyAttention.function; upstream: comfy_kitchen_int8). This one computes in float64,
    so its results differ from ComfyUI's default attention in the last bits."""
    from comfy.ldm.modules.attention import attention_pytorch, wrap_attn
    calls = collections.Counter()

    @wrap_attn  # as ComfyUI's attention functions are (a layer's preferred one is called inside the wrapper)
    def layer_attention(q, k, v, heads, **kwargs):
        calls[q.shape[1]] += 1
        return attention_pytorch(q.double(), k.double(), v.double(), heads, **kwargs).to(q.dtype)
    m = Q.build(0)
    for block in m.model.diffusion_model.transformer_blocks:
        block.attn.comfy_attention.function = layer_attention
    return m, calls, layer_attention


def test_a_layers_preferred_attention_still_runs_under_taca():
    """ComfyUI skips a layer's preferred attention whenever an override is set; TACA's runs it: outside the
    window the output is bit-identical to the unpatched model's, inside it TACA's calls go through it."""
    base()  # skips on trees without Qwen-Image 2.1
    m, calls, layer_attention = with_layer_attention()
    plain = run(m, "ref_in_text", steps=5, denoise=0.6)
    assert calls and not torch.equal(plain, run(Q.build(0), "ref_in_text", steps=5, denoise=0.6))
    assert torch.equal(run(patch(m, 2.0, cutoff=990), "ref_in_text", steps=5, denoise=0.6), plain)
    calls.clear()
    got = run(patch(m), "ref_in_text")
    assert calls[TARGET] > 0, calls
    # the reference is an override too: ComfyUI skips the layer's function for it, so it calls that itself
    reference = dense_reference(CASES["ref_in_text"].text_cols, GAMMA, passthrough=layer_attention)
    torch.testing.assert_close(got, run(with_override(m, reference), "ref_in_text"), atol=1e-5, rtol=1e-5)
