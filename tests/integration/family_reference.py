"""An independent dense TACA for the family tests, and what each family's joint calls look like.

The reference knows nothing of taca_core: each test states, by hand from the model's code, how many
visual tokens a joint call has, how the model turns a prompt of T tokens into text tokens (padding,
glyph tokens) and how many register tokens sit before the text. A call whose key count matches one of
those sequences is joint: the reference materialises its logits, multiplies image-query x text-key
logits by gamma and takes the softmax. Every other call runs untouched.
"""
import torch


def dense_attention(q, k, v, heads, *, bhld, out_bhld, mask, text_keys, text_queries, gamma):
    if not bhld:  # [B, L, H*D] (or [B, L, H, D])
        q, k, v = (t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2) for t in (q, k, v))
    if k.shape[1] != q.shape[1]:  # grouped KV heads
        k, v = (t.repeat_interleave(q.shape[1] // t.shape[1], dim=1) for t in (k, v))
    logits = q.double() @ k.double().transpose(-1, -2) * q.shape[-1] ** -0.5
    rows = torch.ones(q.shape[2], dtype=torch.bool)
    rows[text_queries[0]:text_queries[1]] = False
    cols = torch.zeros(k.shape[2], dtype=torch.bool)
    cols[text_keys[0]:text_keys[1]] = True
    logits[:, :, rows[:, None] & cols[None, :]] *= gamma
    if mask is not None:
        while mask.ndim < 4:  # ComfyUI: [Lq, Lk] -> [1, Lq, Lk] -> [B, 1, Lq, Lk]
            mask = mask.unsqueeze(0) if mask.ndim == 2 else mask.unsqueeze(1)
        logits = logits.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else logits + mask.double()
    out = (logits.softmax(-1) @ v.double()).to(q.dtype)
    return out if out_bhld else out.transpose(1, 2).flatten(2)


class Joint:
    """The joint sequences of one test: [registers | text | visual] for each prompt length."""

    def __init__(self, visual, text_lengths, registers=0):
        self.visual, self.registers = visual, registers
        self.text_of_keys = {registers + t + visual: t for t in text_lengths}

    def spans(self, n_queries, n_keys):
        text = self.text_of_keys.get(n_keys)
        if text is None or n_queries < self.registers + text:
            return None
        return (self.registers, self.registers + text), (0, self.registers + text)


def dense_reference_override(gamma, cutoff, joint: Joint, calls: list):
    """An optimized_attention_override with the reference TACA on the calls `joint` names.

    gamma acts when 1000 * sigma >= cutoff (every family here is a flow model with sigma_max = 1).
    calls collects (queries, keys) of the joint calls it changed.
    """
    def override(func, q, k, v, *args, **kwargs):
        sigma = kwargs["transformer_options"]["sigmas"]
        bhld = kwargs.get("skip_reshape", False)
        td = 2 if bhld else 1
        spans = joint.spans(q.shape[td], k.shape[td])
        if spans is None or not bool((1000 * sigma.double() >= cutoff).all()):
            return func(q, k, v, *args, **kwargs)
        calls.append((q.shape[td], k.shape[td]))
        heads = args[0] if args else kwargs["heads"]
        mask = args[1] if len(args) >= 2 else kwargs.get("mask")
        return dense_attention(q, k, v, heads, bhld=bhld, out_bhld=kwargs.get("skip_output_reshape", False),
                               mask=mask, text_keys=spans[0], text_queries=spans[1], gamma=gamma)
    return override


def shape_recorder(seen: set):
    """An override that records (queries, keys) of what reaches it and runs it unchanged."""
    def override(func, q, k, v, *args, **kwargs):
        td = 2 if kwargs.get("skip_reshape", False) else 1
        seen.add((q.shape[td], k.shape[td]))
        return func(q, k, v, *args, **kwargs)
    return override


def with_override(model, override):
    m = model.clone()
    m.model_options["transformer_options"]["optimized_attention_override"] = override
    return m
