"""The layout functions of taca_core/family_layouts.py on stand-in model calls (no ComfyUI).

The integration tier checks them on ComfyUI's real models; here the counting rules themselves.
"""
from types import SimpleNamespace

import pytest
import torch

from comfyui_taca_under_test.taca_comfy import layouts as fl
from comfyui_taca_under_test.taca_core.attention import taca_split_attention
from support.reference import dense_taca
from comfyui_taca_under_test.taca_core.layout import JOINT, NOT_JOINT, UNEXPECTED, TokenLayout


def z(*shape):
    return torch.zeros(*shape)


def test_hidream_counts_t5_and_two_llama_layers_after_the_image_and_e1s_reference_in_the_grid():
    dm = SimpleNamespace(patch_size=2)
    conds = {"encoder_hidden_states_llama3": z(1, 2, 7, 8)}
    assert fl.hidream(dm, z(1, 16, 8, 9), z(1, 5, 8), conds) == TokenLayout(before=4 * 5, text=5 + 14)
    conds["image_cond"] = z(1, 16, 8, 9)  # E1: concatenated along the width, then patchified
    assert fl.hidream(dm, z(1, 16, 8, 9), z(1, 5, 8), conds) == TokenLayout(before=4 * 9, text=19)
    assert fl.hidream(dm, z(1, 16, 8, 9), z(1, 5, 8), {}) is None


@pytest.mark.parametrize("num_tokens,expected", [(3, 3), (40, 10), (None, 10)])
def test_mochi_cuts_the_text_to_num_tokens(num_tokens, expected):
    conds = {} if num_tokens is None else {"num_tokens": num_tokens}  # None: forward's default 256
    layout = fl.mochi(SimpleNamespace(patch_size=2), z(1, 12, 3, 8, 6), z(1, 10, 4), conds)
    assert layout == TokenLayout(before=3 * 4 * 3, text=expected)


def test_pixeldit_truncates_at_its_text_window():
    dm = SimpleNamespace(patch_size=16, txt_max_length=300)
    assert fl.pixeldit(dm, z(2, 3, 64, 40), z(2, 350, 8), {}) == TokenLayout(text=300, after=4 * 3)
    assert fl.pixeldit(dm, z(2, 3, 64, 40), z(2, 12, 8), {}) == TokenLayout(text=12, after=12)


def test_references_count_as_visual_tokens():
    refs = {"ref_latents": [z(1, 16, 4, 6), z(1, 16, 3, 3)]}
    assert fl.omnigen2(SimpleNamespace(patch_size=2), z(1, 16, 8, 8), z(1, 5, 4), refs) == \
        TokenLayout(text=5, after=6 + 4 + 16)
    joy = {"ref_latents": [z(1, 16, 1, 4, 6)]}
    assert fl.joyimage(SimpleNamespace(patch_size=[1, 2, 2]), z(1, 16, 1, 8, 8), z(1, 5, 4), joy) == \
        TokenLayout(before=16 + 6, text=5)


def o1_conds(prefix_ids, after):
    ids = torch.tensor([prefix_ids + [151673]])  # the prefix, then tms
    return {"ar_len": len(prefix_ids), "input_ids": ids, "token_types": z(1, len(prefix_ids) + after)}


def test_hidream_o1_text_is_the_prefix_without_the_vision_blocks():
    t2i = fl.hidream_o1(None, None, None, o1_conds([1, 2, 3, 10, 11, 12, 4, 5], after=7))
    assert (t2i.registers, t2i.text, t2i.after) == (0, 8, 7)
    vision = [151652, 151655, 151655, 151653]
    edit = fl.hidream_o1(None, None, None, o1_conds([1, 2, 3] + vision + [10, 11, 12, 4, 5], after=11))
    assert (edit.registers, edit.text, edit.after) == (7, 5, 11)
    assert fl.hidream_o1(None, None, None, {}) is None


def test_generation_rows_layout_classifies_the_prefix_cached_call():
    layout = fl.GenerationRowsLayout(registers=2, text=6, after=7)  # 15 keys, 7 generation rows
    assert layout.classify(7, 15) == (JOINT, ((2, 8), (0, 0)))
    assert layout.classify(15, 15) == (UNEXPECTED, None)  # all rows: not how HiDream-O1 calls
    assert layout.classify(7, 7) == (NOT_JOINT, None)


def test_generation_rows_all_get_gamma_on_the_text_keys():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 4, n, 8, generator=g) for n in (7, 15, 15))
    kind, (text_keys, text_queries) = fl.GenerationRowsLayout(registers=2, text=6, after=7).classify(7, 15)

    def attend(q_, k_, v_, mask):
        return torch.nn.functional.scaled_dot_product_attention(q_, k_, v_)
    got = taca_split_attention(attend, q, k, v, text_keys=text_keys, text_queries=text_queries, gamma=1.3,
                               token_dim=2, out_token_dim=2)
    torch.testing.assert_close(got, dense_taca(q, k, v, text_keys=(2, 8), text_queries=(0, 0), gamma=1.3),
                               atol=1e-5, rtol=1e-5)
