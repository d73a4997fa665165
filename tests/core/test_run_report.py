"""The end-of-run report names the cause it saw."""
from comfyui_taca_under_test.taca_core.layout import TokenLayout
from comfyui_taca_under_test.taca_comfy.override import TacaCall
from comfyui_taca_under_test.taca_comfy.wrappers import TacaRun

LAYOUT = TokenLayout(text=5, after=16)


def call(seen=0, fired=0, unexpected=0, shape=()):
    c = TacaCall(1.2, LAYOUT)
    c.seen, c.fired, c.unexpected, c.unexpected_shape = seen, fired, unexpected, shape
    return c


def report(*calls):
    run = TacaRun()
    for c in calls:
        run.record(c)
    return run.problems()


def test_all_good_reports_nothing():
    assert report(call(seen=4, fired=4), call(seen=6, fired=4)) == []


def test_no_attention_call_blames_a_replaced_forward():
    (msg,) = report(call(), call(seen=4, fired=4))
    assert "on 1 of 2 model call(s)" in msg and "no attention call reached TACA" in msg and "TeaCache" in msg


def test_attention_but_none_joint_names_the_expected_layout():
    (msg,) = report(call(seen=3))
    assert "none was a joint" in msg and "5 text + 16 visual = 21 tokens" in msg and "TeaCache" not in msg


def test_unexpected_shapes_are_counted_with_an_example():
    (msg,) = report(call(seen=4, fired=2, unexpected=2, shape=(30, 30)))
    assert msg.startswith("2 attention call(s) had a shape TACA did not expect (e.g. 30 queries x 30 keys")
    assert "TeaCache" not in msg
