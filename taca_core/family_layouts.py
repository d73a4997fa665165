"""Layout functions of the image-first, masked, padded and prefix-cached families of the table.

Each is `layout(diffusion_model, x, context, conds) -> TokenLayout or None`, as families.py
describes (called only with text: Family.call_layout); the row that uses it is in families.py.
What each family's joint attention looks like in ComfyUI 0.33.0 is noted on the function.
"""
import math
from dataclasses import dataclass
from typing import Optional

from .layout import JOINT, NOT_JOINT, UNEXPECTED, TokenLayout


def _patches(dims, patch) -> int:
    """Patches of a grid of size `dims` cut into `patch` (padded up, as the models do)."""
    return math.prod(math.ceil(d / p) for d, p in zip(dims, patch))


def _refs(conds, key="ref_latents"):
    return conds.get(key) or []


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
    return TokenLayout(before=_patches((x.shape[-2], w), p), text=context.shape[1] + 2 * llama.shape[2])


def image_then_text(dm, x, context, conds) -> Optional[TokenLayout]:
    """[image | text], the latent already patch-packed (one token per latent pixel): Lens.

    Lens always passes a key mask (padded text keys masked); an empty negative has no text.
    """
    return TokenLayout(before=x.shape[-2] * x.shape[-1], text=context.shape[1])


def joyimage(dm, x, context, conds) -> Optional[TokenLayout]:
    """[target | reference latents | text], 5-D latents cut into patch_size (t, h, w)."""
    p = tuple(dm.patch_size)  # (t, h, w)
    visual = sum(_patches(lat.shape[-3:], p) for lat in [x, *_refs(conds)])
    return TokenLayout(before=visual, text=context.shape[1])


def mochi(dm, x, context, conds) -> Optional[TokenLayout]:
    """[video | text[:num_tokens]]: every block cuts the text to the attention mask's token count."""
    p = dm.patch_size
    text = min(int(conds.get("num_tokens", 256)), context.shape[1])  # 256: forward's default
    return TokenLayout(before=_patches(x.shape[-3:], (1, p, p)), text=text)


def pixeldit(dm, x, context, conds) -> Optional[TokenLayout]:
    """[text[:txt_max_length] | patches] in the patch blocks; the pixel blocks are image-only.

    ComfyUI batches cond and uncond of different lengths by repeating both to a common length
    (CONDCrossAttn) before the model truncates: the context here is already that.
    """
    p = (dm.patch_size, dm.patch_size)
    return TokenLayout(text=min(context.shape[1], dm.txt_max_length), after=_patches(x.shape[-2:], p))


def text_then_image(dm, x, context, conds) -> Optional[TokenLayout]:
    """[text | image], the latent already patch-packed: Ideogram4 (no context: an image-only pass).

    With padded text Ideogram4 passes a per-query-row (block-diagonal) mask.
    """
    return TokenLayout(text=context.shape[1], after=x.shape[-2] * x.shape[-1])


def omnigen2(dm, x, context, conds) -> Optional[TokenLayout]:
    """[text | reference images | image] in the joint layers (Boogu: also its double-stream attention).

    The caption, noise and reference refiners (and Boogu's image self-attention) are shorter.
    """
    p = (dm.patch_size, dm.patch_size)
    visual = sum(_patches(lat.shape[-2:], p) for lat in [*_refs(conds), x])
    return TokenLayout(text=context.shape[1], after=visual)


@dataclass(frozen=True)
class GenerationRowsLayout(TokenLayout):
    """A joint call whose queries are the LAST keys: the generation rows of a causal-prefix model.

    HiDream-O1 runs its text prefix's own rows elsewhere (causal, text only) and hands only the
    generation rows to ComfyUI's attention, with every key (the prefix's from its KV cache from the
    second call on). None of those query rows is text, so each gets gamma on the text keys.
    """

    def classify(self, n_queries: int, n_keys: int):
        if n_keys < self.total:
            return NOT_JOINT, None
        if n_keys == self.total and n_queries == n_keys - self.text_stream[1]:
            return JOINT, (self.text_keys, (0, 0))
        return UNEXPECTED, None


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
