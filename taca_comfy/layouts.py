"""The token layout of one model call, per family: the `layout` column of the family table.

Each function is `layout(diffusion_model, x, context, conds) -> TokenLayout or None` and mirrors
its model's own forward in ComfyUI (0.33.0 unless noted): x is the noisy latent, context is
c_crossattn, conds are the model's extra conds (ref_latents, attention_mask, ...). It is called
only when the call has text (Family.call_layout). None: this call has no text stream TACA can use.
"""
import math
from typing import Optional

from ..taca_core.layout import GenerationRowsLayout, TargetRowsLayout, TokenLayout


def patch_count(dims, patch) -> int:
    """Patches of a grid of size `dims` cut into `patch` (padded up, as the models do)."""
    return math.prod(math.ceil(d / p) for d, p in zip(dims, patch))


def grid_tokens(shape, patch) -> int:
    """Tokens per sample of a latent [B, C, *dims] cut into `patch`.

    patch aligns with the trailing dims: a 2-D patch on a [B, C, T, H, W] latent counts one frame.
    """
    dims = tuple(shape)[2:]
    patch = tuple(patch)[-len(dims):]
    return patch_count(dims[-len(patch):], patch)


def _floor_tokens(shape, p) -> int:
    return (shape[-2] // p) * (shape[-1] // p)


def _pad_up(n: int, multiple) -> int:
    return n + (-n) % multiple if multiple else n


def _refs(conds, key="ref_latents"):
    return conds.get(key) or []


def _len(t) -> int:
    return 0 if t is None else t.shape[1]


def flux(dm, x, context, conds):
    """[text | noisy image | reference images]. FLUX.2 left-pads its text to 512 in extra_conds (counted)."""
    p = (dm.patch_size, dm.patch_size)
    return TokenLayout(text=context.shape[1],
                       after=grid_tokens(x.shape, p) + sum(grid_tokens(r.shape, p) for r in _refs(conds)))


def text_then_image(dm, x, context, conds):
    """[text | image]; the model ignores reference latents (Chroma, Chroma Radiance)."""
    return TokenLayout(text=context.shape[1], after=grid_tokens(x.shape, (dm.patch_size, dm.patch_size)))


def sd3(dm, x, context, conds):
    """[registers | text | image]; register_length is 0 in the released SD3/SD3.5 checkpoints."""
    return TokenLayout(text=context.shape[1], registers=int(getattr(dm, "register_length", 0)),
                       after=grid_tokens(x.shape, (dm.patch_size, dm.patch_size)))


def aura(dm, x, context, conds):
    """[8 learned registers | text | image], in the double and the single (joint cx) layers."""
    return TokenLayout(text=context.shape[1], registers=dm.register_tokens.shape[1],
                       after=grid_tokens(x.shape, (dm.patch_size, dm.patch_size)))


def qwen(dm, x, context, conds):
    """[text | noisy image | reference images]; latents [B, C, T, H, W] in patches of (1, p, p)."""
    p = (1, dm.patch_size, dm.patch_size)
    return TokenLayout(text=context.shape[1],
                       after=grid_tokens(x.shape, p) + sum(grid_tokens(r.shape, p) for r in _refs(conds)))


def krea2(dm, x, context, conds):
    """[text | image | references]: video latents run frame by frame; references only with a ref method."""
    p = (dm.patch, dm.patch)
    visual = grid_tokens(x.shape, p)  # a 2-D patch on [B, C, T, H, W] counts one frame
    if conds.get("ref_latents_method", dm.default_ref_method) is not None:
        visual += sum(grid_tokens(r.shape, p) for r in _refs(conds))
    return TokenLayout(text=context.shape[1], after=visual)


def lumina(dm, x, context, conds):
    """[captions | SigLIP | reference images | noisy image], each part padded by Z-Image to its multiple.

    Older releases (no pad_tokens_multiple) keep the first num_tokens caption tokens.
    """
    p = dm.patch_size
    if not hasattr(dm, "pad_tokens_multiple"):  # ComfyUI < 0.8: captions cut to num_tokens
        return TokenLayout(text=int(conds.get("num_tokens", context.shape[1])), after=grid_tokens(x.shape, (p, p)))
    m = dm.pad_tokens_multiple
    refs = _refs(conds)
    if not refs:
        return TokenLayout(text=_pad_up(context.shape[1], m), after=_pad_up(grid_tokens(x.shape, (p, p)), m))
    # Z-Image omni (patchify_and_embed): every reference brings a caption (or m pad tokens), SigLIP
    # features (or m pad tokens) and its latent; then the main caption, m SigLIP pad tokens, the noisy
    # latent, and captions beyond the references.
    contexts, siglips = _refs(conds, "ref_contexts"), _refs(conds, "siglip_feats")
    use_siglip = getattr(dm, "siglip_embedder", None) is not None
    siglip_pad = m if getattr(dm, "siglip_pad_token", None) is not None else 0
    text = visual = 0
    for i, ref in enumerate(refs):
        con = contexts[i] if i < len(contexts) else None
        text += _pad_up(con.shape[1], m) if con is not None else m
        if use_siglip:
            sig = siglips[i] if i < len(siglips) else None
            visual += _pad_up(sig.shape[1] * sig.shape[2], m) if sig is not None else siglip_pad
        visual += _pad_up(_floor_tokens(ref.shape, p), m)
    text += _pad_up(context.shape[1], m) + sum(_pad_up(c.shape[1], m) for c in contexts[len(refs):])
    visual += (siglip_pad if use_siglip else 0) + _pad_up(grid_tokens(x.shape, (p, p)), m)
    return TokenLayout(text=text, after=visual)


def hunyuan(dm, x, context, conds):
    """[vision | text | references | image]: the text stream is the LLM text with byT5 glyph tokens
    (after it for HunyuanImage 2.1, before it for HunyuanVideo 1.5); SigLIP image features in front of
    it (image-to-video) are not text: they are left alone like registers."""
    byt5 = _len(conds.get("txt_byt5")) if getattr(dm, "byt5_in", None) is not None else 0
    vision = _len(conds.get("clip_fea")) if getattr(dm, "vision_in", None) is not None else 0
    patch = dm.patch_size
    visual = grid_tokens(x.shape, patch)
    if conds.get("ref_latent") is not None:
        visual += grid_tokens(conds["ref_latent"].shape, patch)
    return TokenLayout(text=context.shape[1] + byt5, registers=vision, after=visual)


def hidream(dm, x, context, conds) -> Optional[TokenLayout]:
    """[image | T5 | last llama layer | this block's llama layer] in every block, double and single.

    HiDream-E1's reference (image_cond) is concatenated to the noisy latent along the width
    before patchifying: it is part of the image grid.
    """
    llama = conds.get("encoder_hidden_states_llama3")
    if llama is None:
        return None
    w = x.shape[-1] + (conds["image_cond"].shape[-1] if conds.get("image_cond") is not None else 0)
    p = (dm.patch_size, dm.patch_size)
    return TokenLayout(before=patch_count((x.shape[-2], w), p), text=context.shape[1] + 2 * llama.shape[2])


def image_then_text(dm, x, context, conds) -> Optional[TokenLayout]:
    """[image | text], the latent already patch-packed (one token per latent pixel): Lens.

    Lens always passes a key mask (padded text keys masked); an empty negative has no text.
    """
    return TokenLayout(before=x.shape[-2] * x.shape[-1], text=context.shape[1])


def joyimage(dm, x, context, conds) -> Optional[TokenLayout]:
    """[target | reference latents | text], 5-D latents cut into patch_size (t, h, w)."""
    p = tuple(dm.patch_size)  # (t, h, w)
    visual = sum(grid_tokens(lat.shape, p) for lat in [x, *_refs(conds)])
    return TokenLayout(before=visual, text=context.shape[1])


def mochi(dm, x, context, conds) -> Optional[TokenLayout]:
    """[video | text[:num_tokens]]: every block cuts the text to the attention mask's token count."""
    p = dm.patch_size
    text = min(int(conds.get("num_tokens", 256)), context.shape[1])  # 256: forward's default
    return TokenLayout(before=grid_tokens(x.shape, (1, p, p)), text=text)


def pixeldit(dm, x, context, conds) -> Optional[TokenLayout]:
    """[text[:txt_max_length] | patches] in the patch blocks; the pixel blocks are image-only.

    ComfyUI batches cond and uncond of different lengths by repeating both to a common length
    (CONDCrossAttn) before the model truncates: the context here is already that.
    """
    p = (dm.patch_size, dm.patch_size)
    return TokenLayout(text=min(context.shape[1], dm.txt_max_length), after=grid_tokens(x.shape, p))


def packed_text_then_image(dm, x, context, conds) -> Optional[TokenLayout]:
    """[text | image], the latent already patch-packed: Ideogram4 (no context: an image-only pass).

    With padded text Ideogram4 passes a per-query-row (block-diagonal) mask.
    """
    return TokenLayout(text=context.shape[1], after=x.shape[-2] * x.shape[-1])


def omnigen2(dm, x, context, conds) -> Optional[TokenLayout]:
    """[text | reference images | image] in the joint layers (Boogu: also its double-stream attention).

    The caption, noise and reference refiners (and Boogu's image self-attention) are shorter.
    """
    p = (dm.patch_size, dm.patch_size)
    visual = sum(grid_tokens(lat.shape, p) for lat in [*_refs(conds), x])
    return TokenLayout(text=context.shape[1], after=visual)


VISION_END_ID = 151653  # Qwen3-VL <|vision_end|> (comfy.text_encoders.hidream_o1; no ComfyUI import here)


def hidream_o1(dm, x, context, conds) -> Optional[TokenLayout]:
    """[prefix (ar_len tokens) | tms | target patches | reference patches].

    The text span is the prefix, minus the vision blocks edit mode splices in after
    `<|im_start|>user\\n` (ViT tokens of the reference images: image, not text). Those blocks and
    the 3 template tokens before them become registers: keys not scaled. The total is the model's
    own token_types length.
    """
    ar_len, ids, types = conds.get("ar_len"), conds.get("input_ids"), conds.get("token_types")
    if ar_len is None or ids is None or types is None or ar_len <= 0:
        return None
    prefix = ids[0, :ar_len].tolist()
    vision_end = max((i for i, t in enumerate(prefix) if t == VISION_END_ID), default=-1)
    registers = vision_end + 1
    return GenerationRowsLayout(registers=registers, text=ar_len - registers, after=types.shape[1] - ar_len)


def qwen21(dm, x, context, conds) -> Optional[TargetRowsLayout]:
    """[text parts with reference images spliced in at image_slots | target image] (Qwen-Image 2.1).

    Mirrors QwenImage21Transformer2DModel.build_sequence: one reference per slot (missing slots: after all
    text), each text part before its image, the target last; a latent [B, 64, h, w] is h * w tokens. The
    whole context is text to TACA, including the vision tokens its text encoder keeps when no VAE gives
    reference latents (nothing in the model call marks them, and the image then conditions through them).
    """
    refs, n_text = list(_refs(conds)), context.shape[1]
    slots = (list(conds.get("image_slots") or []) + [n_text] * len(refs))[:len(refs)]
    bounds = [0] + slots + [n_text]
    spans, length = [], 0
    for start, end, image in zip(bounds[:-1], bounds[1:], refs + [x]):
        if end > start:
            spans.append((length, length + end - start))
            length += end - start
        length += image.shape[-2] * image.shape[-1]
    target = x.shape[-2] * x.shape[-1]
    return TargetRowsLayout(text_spans=tuple(spans), prefix=length - target, target=target)


def qwen21_layer_attention(dm, options):
    """The attention function block `block_index`'s layer prefers: its ComfyAttention's, set from a checkpoint's
    per-layer attention config (upstream reads comfy_kitchen_int8); None when it has none."""
    blocks, i = getattr(dm, "transformer_blocks", None), options.get("block_index")
    if blocks is None or i is None or not 0 <= i < len(blocks):
        return None
    return getattr(getattr(blocks[i].attn, "comfy_attention", None), "function", None)
