import pytest

from comfyui_taca_under_test.taca_core.layout import JOINT, NOT_JOINT, UNEXPECTED, TokenLayout


@pytest.mark.parametrize("layout,nq,nk,expected", [
    # text first: [text 5 | image 16 | reference 8]
    (TokenLayout(text=5, after=24), 29, 29, (JOINT, ((0, 5), (0, 5)))),
    (TokenLayout(text=5, after=24), 21, 29, (JOINT, ((0, 5), (0, 5)))),    # KV-cached reference keys
    (TokenLayout(text=5, after=24), 4, 29, (UNEXPECTED, None)),             # queries miss part of the text
    (TokenLayout(text=5, after=24), 30, 29, (UNEXPECTED, None)),
    (TokenLayout(text=5, after=24), 31, 31, (UNEXPECTED, None)),            # tokens TACA did not count
    (TokenLayout(text=5, after=24), 16, 16, (NOT_JOINT, None)),             # image-only (SD3.5 x_block attn2)
    (TokenLayout(text=5, after=24), 5, 5, (NOT_JOINT, None)),               # text-only (refiners)
    (TokenLayout(text=5, after=24), 24, 24, (NOT_JOINT, None)),             # image + reference (noise refiner)
    # image first: [image 16 | text 5]
    (TokenLayout(text=5, before=16), 21, 21, (JOINT, ((16, 21), (16, 21)))),
    (TokenLayout(text=5, before=16), 18, 21, (UNEXPECTED, None)),           # no KV cache with the text last
    # registers: [registers 3 | text 5 | image 16]
    (TokenLayout(text=5, registers=3, after=16), 24, 24, (JOINT, ((3, 8), (0, 8)))),
    # in the middle: [siglip 4 | text 5 | image 16]
    (TokenLayout(text=5, before=4, after=16), 25, 25, (JOINT, ((4, 9), (4, 9)))),
])
def test_classify(layout, nq, nk, expected):
    assert layout.classify(nq, nk) == expected


def test_describe():
    assert TokenLayout(text=5, registers=3, after=16).describe() == "3 register + 5 text + 16 visual = 24 tokens"
