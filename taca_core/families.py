"""Per-family knowledge, as a table: one row per joint-attention model family ComfyUI runs.

A row says which diffusion-model classes it matches and how one model call lays out its
joint attention: `layout(diffusion_model, x, context, conds)` gets what ComfyUI's
apply_model gets (the noisy latent x, c_crossattn as context, the model's conds such as
ref_latents or attention_mask) and returns a TokenLayout (taca_core.layout): how many text
tokens the model puts into its joint attention (its own padding included), where they sit,
and how many visual tokens (noisy image, reference images) surround them. Attention calls
whose keys are exactly that sequence are joint; shorter ones (refiners, image-only or
text-only attention) are left alone. A row with `refused` names a family TACA cannot act on,
and why. Adding a family is one row (and one test).
"""
import math
from dataclasses import dataclass
from typing import Callable, Optional

from . import family_layouts as fl
from .layout import TokenLayout

# layout(diffusion_model, x, context, conds) -> TokenLayout, or None when the call has no text
LayoutFn = Callable[..., Optional[TokenLayout]]


def grid_tokens(shape, patch) -> int:
    """Tokens per sample of a latent [B, C, *dims] cut into `patch` (padded up, as the models do).

    patch aligns with the trailing dims: a 2-D patch on a [B, C, T, H, W] latent counts one frame.
    """
    dims = tuple(shape)[2:]
    patch = tuple(patch)[-len(dims):]
    return math.prod(math.ceil(s / p) for s, p in zip(dims[-len(patch):], patch))


def _floor_tokens(shape, p) -> int:
    return (shape[-2] // p) * (shape[-1] // p)


def _pad_up(n: int, multiple) -> int:
    return n + (-n) % multiple if multiple else n


def _refs(conds, key="ref_latents"):
    return conds.get(key) or []


def _len(t) -> int:
    return 0 if t is None else t.shape[1]


# ---- one layout function per token arrangement; each mirrors its model's own forward ----

def _flux(dm, x, context, conds):
    """[text | noisy image | reference images]. FLUX.2 left-pads its text to 512 in extra_conds (counted)."""
    p = (dm.patch_size, dm.patch_size)
    return TokenLayout(text=context.shape[1],
                       after=grid_tokens(x.shape, p) + sum(grid_tokens(r.shape, p) for r in _refs(conds)))


def _text_then_image(dm, x, context, conds):
    """[text | image]; the model ignores reference latents (Chroma, Chroma Radiance)."""
    return TokenLayout(text=context.shape[1], after=grid_tokens(x.shape, (dm.patch_size, dm.patch_size)))


def _sd3(dm, x, context, conds):
    """[registers | text | image]; register_length is 0 in the released SD3/SD3.5 checkpoints."""
    return TokenLayout(text=context.shape[1], registers=int(getattr(dm, "register_length", 0)),
                       after=grid_tokens(x.shape, (dm.patch_size, dm.patch_size)))


def _aura(dm, x, context, conds):
    """[8 learned registers | text | image], in the double and the single (joint cx) layers."""
    return TokenLayout(text=context.shape[1], registers=dm.register_tokens.shape[1],
                       after=grid_tokens(x.shape, (dm.patch_size, dm.patch_size)))


def _qwen(dm, x, context, conds):
    """[text | noisy image | reference images]; latents [B, C, T, H, W] in patches of (1, p, p)."""
    p = (1, dm.patch_size, dm.patch_size)
    return TokenLayout(text=context.shape[1],
                       after=grid_tokens(x.shape, p) + sum(grid_tokens(r.shape, p) for r in _refs(conds)))


def _krea2(dm, x, context, conds):
    """[text | image | references]: video latents run frame by frame; references only with a ref method."""
    p = (dm.patch, dm.patch)
    visual = grid_tokens(x.shape, p)  # a 2-D patch on [B, C, T, H, W] counts one frame
    if conds.get("ref_latents_method", dm.default_ref_method) is not None:
        visual += sum(grid_tokens(r.shape, p) for r in _refs(conds))
    return TokenLayout(text=context.shape[1], after=visual)


def _lumina(dm, x, context, conds):
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


def _hunyuan(dm, x, context, conds):
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


@dataclass(frozen=True)
class Family:
    name: str
    models: str  # for messages and the README: which checkpoints this is
    classes: tuple  # diffusion-model class paths (module.qualname)
    layout: Optional[LayoutFn] = None
    refused: str = ""  # non-empty: TACA refuses this family, for this reason

    def call_layout(self, diffusion_model, x, context, conds) -> Optional[TokenLayout]:
        """The layout of one model call, or None when it has no text."""
        if context is None or context.shape[1] == 0:
            return None
        return self.layout(diffusion_model, x, context, conds)


FAMILIES = (
    Family("FLUX", "FLUX.1 dev/schnell/Kontext/Fill, FLUX.2 dev/klein, Ovis-Image, LongCat-Image and "
                   "same-architecture models", ("comfy.ldm.flux.model.Flux",), _flux),
    Family("SD3", "SD3 and SD3.5 large/medium",
           ("comfy.ldm.modules.diffusionmodules.mmdit.OpenAISignatureMMDITWrapper",), _sd3),
    Family("Qwen-Image", "Qwen-Image, Qwen-Image-Edit (reference images), MageFlow",
           ("comfy.ldm.qwen_image.model.QwenImageTransformer2DModel",
            "comfy.ldm.mage_flow.model.MageFlowTransformer2DModel"), _qwen),
    Family("Lumina2", "Lumina Image 2.0, Z-Image (Turbo, omni, pixel space), NewBie",
           ("comfy.ldm.lumina.model.NextDiT", "comfy.ldm.lumina.model.NextDiTPixelSpace"), _lumina),
    Family("Krea2", "Krea 2", ("comfy.ldm.krea2.model.SingleStreamDiT",), _krea2),
    Family("Chroma", "Chroma, Chroma Radiance",
           ("comfy.ldm.chroma.model.Chroma", "comfy.ldm.chroma_radiance.model.ChromaRadiance"), _text_then_image),
    Family("HunyuanVideo", "HunyuanVideo, HunyuanVideo 1.5, HunyuanImage 2.1",
           ("comfy.ldm.hunyuan_video.model.HunyuanVideo",), _hunyuan),
    Family("AuraFlow", "AuraFlow", ("comfy.ldm.aura.mmdit.MMDiT",), _aura),
    Family("HiDream", "HiDream-I1 full/dev/fast, HiDream-E1 (edit)",
           ("comfy.ldm.hidream.model.HiDreamImageTransformer2DModel",), fl.hidream),
    Family("Lens", "Microsoft Lens", ("comfy.ldm.lens.model.LensTransformer2DModel",), fl.image_then_text),
    Family("JoyImage", "JoyAI-Image, JoyAI-Image-Edit (reference images)",
           ("comfy.ldm.joyimage.model.JoyImageTransformer3DModel",), fl.joyimage),
    Family("Mochi", "Genmo Mochi 1 (preview)",
           ("comfy.ldm.genmo.joint_model.asymm_models_joint.AsymmDiTJoint",), fl.mochi),
    Family("PixelDiT", "PixelDiT text-to-image and its PiD super-resolution variant (pixel space)",
           ("comfy.ldm.pixeldit.model.PixDiT_T2I", "comfy.ldm.pixeldit.pid.PidNet"), fl.pixeldit),
    Family("Ideogram4", "Ideogram 4", ("comfy.ldm.ideogram4.model.Ideogram4Transformer2DModel",),
           fl.text_then_image),
    Family("OmniGen2", "OmniGen2 (reference images)", ("comfy.ldm.omnigen.omnigen2.OmniGen2Transformer2DModel",),
           fl.omnigen2),
    Family("Boogu", "Boogu-Image (reference images)", ("comfy.ldm.boogu.model.BooguTransformer2DModel",),
           fl.omnigen2),
    Family("HiDream-O1", "HiDream-O1-Image (text-to-image and edit; pixel space)",
           ("comfy.ldm.hidream_o1.model.HiDreamO1Transformer",), fl.hidream_o1),
    Family("ErnieImage", "ERNIE-Image", ("comfy.ldm.ernie.model.ErnieImageModel",),
           refused="ComfyUI calls its attention without transformer_options (comfy/ldm/ernie/model.py), and no "
                   "other public extension point reaches it, so TACA could not act; rather than silently doing "
                   "nothing, it refuses."),
    Family("SeedVR2", "SeedVR2 (video restoration)", ("comfy.ldm.seedvr.model.NaDiT",),
           refused="it is a restoration model whose 'text' is a fixed embedding stored in the checkpoint, not "
                   "a prompt, so there is no prompt alignment for TACA to improve; its windowed attention is "
                   "also called without transformer_options, so TACA could not act."),
    Family("Qwen-Image 2.1", "Qwen-Image 2.1", ("comfy.ldm.qwen_image21.model.QwenImage21Transformer2DModel",),
           refused="its block-causal attention runs one call per text or image segment, splices reference images "
                   "into the text and caches the text prefix across steps; ComfyUI releases this pack is tested on "
                   "(up to 0.33.0) do not have it, so TACA for it is neither implemented nor tested yet."),
)


def _class_path(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def family_of(diffusion_model) -> Optional[Family]:
    path = _class_path(diffusion_model)
    return next((f for f in FAMILIES if path in f.classes), None)


def supported_families() -> str:
    return "; ".join(f"{f.name} ({f.models})" for f in FAMILIES if not f.refused)


def require_family(node: str, model) -> Family:
    """The family of a ComfyUI MODEL (ModelPatcher), or a ValueError naming node, model, reason and the fix."""
    dm = model.model.diffusion_model
    family = family_of(dm)
    if family is None:
        raise ValueError(
            f"{node}: this model is {type(model.model).__name__} ({type(dm).__name__}), which has no joint "
            f"text-image attention for TACA to act on. Supported: {supported_families()}. "
            "Remove the node from this model's path.")
    if family.refused:
        raise ValueError(
            f"{node}: TACA does not support {family.name} ({type(model.model).__name__}): {family.refused} "
            "Remove the node from this model's path.")
    return family
