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
    """Tokens of a latent whose trailing dims `shape` are cut into `patch` (padded up, as the models do)."""
    shape = tuple(shape)[-len(patch):]
    return math.prod(math.ceil(s / p) for s, p in zip(shape, patch))


def _refs(conds, key="ref_latents"):
    return conds.get(key) or []


def _flux_like(dm, x, context, conds) -> Optional[TokenLayout]:
    """[text | noisy image | reference images]; FLUX.2 pads its text to 512 before the model (counted)."""
    if context is None:
        return None
    p = (dm.patch_size, dm.patch_size)
    visual = grid_tokens(x.shape, p) + sum(grid_tokens(r.shape, p) for r in _refs(conds))
    return TokenLayout(text=context.shape[1], after=visual)


def _sd3(dm, x, context, conds) -> Optional[TokenLayout]:
    """[registers | text | image]; register_length is 0 in the released SD3/SD3.5 checkpoints."""
    if context is None:
        return None
    p = (dm.patch_size, dm.patch_size)
    return TokenLayout(text=context.shape[1], registers=int(getattr(dm, "register_length", 0)),
                       after=grid_tokens(x.shape, p))


@dataclass(frozen=True)
class Family:
    name: str
    models: str  # for messages and the README: which checkpoints this is
    classes: tuple  # diffusion-model class paths (module.qualname)
    layout: Optional[LayoutFn] = None
    refused: str = ""  # non-empty: TACA refuses this family, for this reason


FAMILIES = (
    Family("FLUX", "FLUX.1 dev/schnell/Kontext/Fill, FLUX.2 dev/klein, Ovis-Image, LongCat-Image and "
                   "same-architecture models", ("comfy.ldm.flux.model.Flux",), _flux_like),
    Family("SD3", "SD3 and SD3.5 large/medium",
           ("comfy.ldm.modules.diffusionmodules.mmdit.OpenAISignatureMMDITWrapper",), _sd3),
    Family("HiDream", "HiDream-I1 full/dev/fast, HiDream-E1 (edit)",
           ("comfy.ldm.hidream.model.HiDreamImageTransformer2DModel",), fl.hidream),
    Family("Lens", "Microsoft Lens", ("comfy.ldm.lens.model.LensTransformer2DModel",), fl.image_then_text),
    Family("JoyImage", "JoyAI-Image, JoyAI-Image-Edit (reference images)",
           ("comfy.ldm.joyimage.model.JoyImageTransformer3DModel",), fl.joyimage),
    Family("Mochi", "Genmo Mochi 1 (preview)",
           ("comfy.ldm.genmo.joint_model.asymm_models_joint.AsymmDiTJoint",), fl.mochi),
    Family("PixelDiT", "PixelDiT text-to-image (pixel space)", ("comfy.ldm.pixeldit.model.PixDiT_T2I",),
           fl.pixeldit),
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
