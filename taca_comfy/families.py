"""The family table: everything the pack knows per joint-attention model family, one row each.

To add a family, add one `Family(...)` row to FAMILIES and one entry to the parametrized family
test (tests/integration/families.py builds a tiny model of it with ComfyUI's own classes). A row:

- name: short name, shown in messages and the README's supported-models table.
- models: the checkpoints it covers, for node descriptions, errors and the README.
- classes: the diffusion-model class paths (module.qualname) ComfyUI builds for those checkpoints.
- layout: `layout(diffusion_model, x, context, conds) -> TokenLayout or None`, the token layout of
  one model call (x: the noisy latent, context: c_crossattn, conds: extra conds such as ref_latents).
  It mirrors the model's forward: how many text tokens its joint attention holds (its own padding
  included), where they sit, how many visual tokens surround them (taca_core.layout.TokenLayout).
  Attention calls whose keys are exactly that sequence are joint; shorter ones (refiners,
  image-only or text-only attention) are left alone. Write it in layouts.py, reusing its helpers.
- lora_hint: a regex (re.search) that the layer names of this family's LoRAs match: ComfyUI's,
  diffusers' and kohya's names (dots or underscores), marker stripped ("...attn.to_q", no ".lora_A").
  Name the family's own blocks and sub-layers, not generic ones (img_in, final_layer, attn.to_q).
  A LoRA is guessed to be for the rows whose hint matches the most of its layer names; ties give
  several (FLUX, Chroma and HunyuanVideo share FLUX's blocks). The order of rows does not matter.
- preview: what the schedule preview needs (PreviewDefaults below): the family's checkpoint lines
  (variants), each with its ComfyUI model config in comfy.supported_models (whose sampling_settings and
  model type give the sigmas), the loader file names / CLIP loader types that name it in a graph, and the
  typical schedules of ComfyUI's own templates for it (shown when no sampler is linked). Patterns are
  tried in table order, variants in row order: one that a later variant's names also match must exclude
  them (Qwen-Image's excludes Qwen-Image 2.1's).
- refused: non-empty for a family TACA cannot act on; the reason, shown to the user.
- layer_attention: `layer_attention(diffusion_model, transformer_options) -> function or None`, the
  attention function the calling layer prefers (a checkpoint's per-layer backend, ComfyAttention), which
  ComfyUI skips whenever an override is set; TACA's override runs it instead (override.py).
- no_step_cache: transformer_options entries that turn off a cache of activations the model reuses
  across steps on the premise that its weights do not change; the TACA LoRA's 'while TACA acts' mode
  sets them, since it changes the weights between steps.

Nothing else in the pack names a family: node descriptions, errors, the README table, the LoRA
check and the schedule preview all read this table.
"""
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..taca_core.layout import TokenLayout
from . import layouts as L

# layout(diffusion_model, x, context, conds) -> TokenLayout, or None when the call has no text
LayoutFn = Callable[..., Optional[TokenLayout]]
_S = r"[._]"  # in LoRA hints: diffusers/ComfyUI names use dots, kohya names underscores

# LoRA hints of layers several rows share: FLUX's blocks (Chroma and HunyuanVideo reuse its double and
# single blocks; kohya's FLUX names equal ComfyUI's HunyuanVideo names), OmniGen2's (Boogu reuses its refiners)
_FLUX_BLOCKS = (rf"double_blocks{_S}\d+{_S}(img|txt)_(attn{_S}(qkv|proj)$|mlp{_S}(\d|fc[12]|(gate|up|down)_proj)$"
                rf"|mod{_S}lin)|single_blocks{_S}\d+{_S}(linear[12]|modulation{_S}lin)|single_transformer_blocks")
# diffusers' joint blocks (text projections beside the image ones): FLUX's double blocks, SD3, Qwen-Image
_JOINT_BLOCKS = (rf"(^|\.|lora_transformer_)transformer_blocks{_S}\d+{_S}"
                 rf"(attn{_S}(add_[qkv]_proj|to_add_out)|ff_context{_S}|norm1_context{_S})")
_FLUX_BLOCKS += "|" + _JOINT_BLOCKS
_OMNIGEN2_PARTS = (rf"ref_image_refiner|ref_image_patch_embedder|time_caption_embed"
                   rf"|(noise|context)_refiner{_S}\d+{_S}(attn{_S}to_|feed_forward{_S}linear_)")


@dataclass(frozen=True)
class Typical:
    """A typical schedule of ComfyUI's template for a variant: KSampler's steps and scheduler, or a sigmas
    node (its id and widget values as ((name, value), ...)) where the template uses one."""
    label: str
    steps: int = 0
    scheduler: str = "simple"
    node: str = ""
    inputs: tuple = ()


@dataclass(frozen=True)
class PreviewVariant:
    """One checkpoint line of a family as the schedule preview tells it apart."""
    label: str
    supported_model: str  # class name in comfy.supported_models: its sampling settings and model type
    files: str = ""       # regex searched in the loader's file name (lower case)
    clip: str = ""        # regex searched in "<CLIP loader type or node id> <its first file name>"
    typical: tuple = ()   # Typical rows, shown when no sampler is linked


@dataclass(frozen=True)
class PreviewDefaults:
    variants: tuple = ()  # PreviewVariant, most specific first


@dataclass(frozen=True)
class Family:
    name: str
    models: str
    classes: tuple
    layout: Optional[LayoutFn] = None
    lora_hint: str = ""
    preview: PreviewDefaults = field(default_factory=PreviewDefaults)
    refused: str = ""
    layer_attention: Optional[Callable] = None
    no_step_cache: dict = field(default_factory=dict, compare=False)  # compare=False: the row stays hashable

    def bind_layer_attention(self, diffusion_model):
        """layer_attention for this model: (transformer_options) -> function or None; None if the row has none."""
        if self.layer_attention is None:
            return None
        return lambda options: self.layer_attention(diffusion_model, options)

    def call_layout(self, diffusion_model, x, context, conds) -> Optional[TokenLayout]:
        """The layout of one model call, or None when it has no text."""
        if context is None or context.shape[1] == 0:
            return None
        return self.layout(diffusion_model, x, context, conds)


FAMILIES = (
    Family("FLUX", "FLUX.1 dev/schnell/Kontext/Fill, FLUX.2 dev/klein, Ovis-Image, LongCat-Image and "
                   "same-architecture models", ("comfy.ldm.flux.model.Flux",), L.flux,
           lora_hint=_FLUX_BLOCKS + r"|(double|single)_stream_modulation",
           # ComfyUI's templates: image_flux2_text_to_image.json (Flux2Scheduler 20 steps, 1024x1024),
           # image_flux2_klein_text_to_image.json (4 steps), flux_dev_full_text_to_image.json (20, simple)
           preview=PreviewDefaults((
               PreviewVariant("FLUX.2", "Flux2", files=r"flux[-_ .]?2", clip=r"^flux2 ", typical=(
                   Typical("FLUX.2", node="Flux2Scheduler", inputs=(("steps", 20), ("width", 1024), ("height", 1024))),
                   Typical("FLUX.2 klein", node="Flux2Scheduler",
                           inputs=(("steps", 4), ("width", 1024), ("height", 1024))))),
               PreviewVariant("FLUX.1 schnell", "FluxSchnell", files=r"schnell"),
               PreviewVariant("FLUX.1", "Flux", files=r"flux", clip=r"^flux ", typical=(Typical("FLUX.1", 20),))))),
    Family("SD3", "SD3 and SD3.5 large/medium",
           ("comfy.ldm.modules.diffusionmodules.mmdit.OpenAISignatureMMDITWrapper",), L.sd3,
           lora_hint=rf"joint_blocks{_S}\d+{_S}(context|x)_block|" + _JOINT_BLOCKS,
           preview=PreviewDefaults((  # sd3.5_simple_example.json: 20 steps, sgm_uniform
               PreviewVariant("SD3.5", "SD3", files=r"sd[-_ ]?3|stable[-_ ]?diffusion[-_ ]?3",
                              clip=r"^(sd3|TripleCLIPLoader) ", typical=(Typical("SD3.5", 20, "sgm_uniform"),)),))),
    Family("Qwen-Image", "Qwen-Image, Qwen-Image-Edit (reference images), MageFlow",
           ("comfy.ldm.qwen_image.model.QwenImageTransformer2DModel",
            "comfy.ldm.mage_flow.model.MageFlowTransformer2DModel"), L.qwen,
           lora_hint=rf"transformer_blocks{_S}\d+{_S}((img|txt)_mlp{_S}net|(img|txt)_mod{_S}\d)|" + _JOINT_BLOCKS,
           preview=PreviewDefaults((  # image_qwen_image.json: 20 steps, simple (Lightning LoRA off)
               PreviewVariant("Qwen-Image", "QwenImage", files=r"qwen[-_ ]?image(?![-_ .]?2[-_ .]?1(?!\d))",
                              clip=r"^qwen_image (?!.*qwen3[-_ .]?vl)", typical=(Typical("Qwen-Image", 20),)),))),
    Family("Lumina2", "Lumina Image 2.0, Z-Image (Turbo, omni, pixel space), NewBie",
           ("comfy.ldm.lumina.model.NextDiT", "comfy.ldm.lumina.model.NextDiTPixelSpace"), L.lumina,
           lora_hint=rf"(cap_embedder|(^|{_S})(layers|noise_refiner|context_refiner){_S}\d+{_S}"
                     rf"(attention{_S}(qkv|out|to_[qkv]|to_out)|feed_forward{_S}w[123]$|adaLN_modulation))",
           preview=PreviewDefaults((  # image_z_image.json (25, simple), image_z_image_turbo.json (8, simple)
               # Z-Image's templates load its Qwen3 encoder with CLIPLoader type lumina2
               PreviewVariant("Z-Image", "ZImage", files=r"z[-_ ]?image", clip=r"^lumina2 .*qwen",
                              typical=(Typical("Z-Image", 25), Typical("Z-Image Turbo", 8))),
               PreviewVariant("Lumina 2", "Lumina2", files=r"lumina", clip=r"^lumina2 ")))),
    Family("Krea2", "Krea 2", ("comfy.ldm.krea2.model.SingleStreamDiT",), L.krea2,
           lora_hint=rf"(txtfusion|text_fusion|attn{_S}(wq|wk|wv|wo|gate|to_gate)$|(ff|mlp){_S}(gate|up|down)$)",
           preview=PreviewDefaults((  # image_krea2_turbo_t2i.json: 8 steps, simple
               PreviewVariant("Krea 2", "Krea2", files=r"krea[-_ ]?2", clip=r"^krea2 ",
                              typical=(Typical("Krea 2 Turbo", 8),)),))),
    Family("Chroma", "Chroma, Chroma Radiance",
           ("comfy.ldm.chroma.model.Chroma", "comfy.ldm.chroma_radiance.model.ChromaRadiance"), L.text_then_image,
           lora_hint=_FLUX_BLOCKS + r"|distilled_guidance_layer|nerf_(blocks|final_layer|image_embedder)"
                                    r"|img_in_patch",
           preview=PreviewDefaults((PreviewVariant("Chroma", "Chroma", files=r"chroma", clip=r"^chroma "),))),
    Family("HunyuanVideo", "HunyuanVideo, HunyuanVideo 1.5, HunyuanImage 2.1",
           ("comfy.ldm.hunyuan_video.model.HunyuanVideo",), L.hunyuan,
           lora_hint=_FLUX_BLOCKS + r"|token_refiner|byt5_in|vision_in|cond_type_embedding"
                                    rf"|txt_in{_S}(c_embedder|t_embedder|input_embedder)",
           preview=PreviewDefaults((PreviewVariant("HunyuanImage 2.1", "HunyuanImage21", files=r"hunyuan[-_ ]?image",
                                                   clip=r"^hunyuan_image "),))),
    Family("AuraFlow", "AuraFlow", ("comfy.ldm.aura.mmdit.MMDiT",), L.aura,
           lora_hint=rf"(double_layers|single_layers|joint_transformer_blocks|{_S}w[12][qkvo]$|mod(CX|F){_S}\d)",
           preview=PreviewDefaults((PreviewVariant("AuraFlow", "AuraFlow", files=r"aura[-_ ]?flow"),))),
    Family("HiDream", "HiDream-I1 full/dev/fast, HiDream-E1 (edit)",
           ("comfy.ldm.hidream.model.HiDreamImageTransformer2DModel",), L.hidream,
           lora_hint=r"(double|single)_stream_blocks",
           preview=PreviewDefaults((PreviewVariant("HiDream", "HiDream", files=r"hidream",
                                                   clip=r"^(hidream|QuadrupleCLIPLoader) "),))),
    Family("Lens", "Microsoft Lens", ("comfy.ldm.lens.model.LensTransformer2DModel",), L.image_then_text,
           lora_hint=rf"(attn{_S}(img|txt)_qkv|transformer_blocks{_S}\d+{_S}((img|txt)_mlp{_S}w[123]$|(img|txt)_mod{_S}\d))"),
    Family("JoyImage", "JoyAI-Image, JoyAI-Image-Edit (reference images)",
           ("comfy.ldm.joyimage.model.JoyImageTransformer3DModel",), L.joyimage,
           lora_hint=rf"double_blocks{_S}\d+{_S}(attn{_S}(img|txt)_attn|(img|txt)_mlp{_S}net|(img|txt)_mod{_S}modulate)"),
    Family("Mochi", "Genmo Mochi 1 (preview)",
           ("comfy.ldm.genmo.joint_model.asymm_models_joint.AsymmDiTJoint",), L.mochi,
           lora_hint=rf"((^|\.|unet_)blocks{_S}\d+{_S}(attn{_S}(qkv|proj)_[xy]|mlp_[xy]|mod_[xy])|t5_y(proj|_embedder))"),
    Family("PixelDiT", "PixelDiT text-to-image and its PiD super-resolution variant (pixel space)",
           ("comfy.ldm.pixeldit.model.PixDiT_T2I", "comfy.ldm.pixeldit.pid.PidNet"), L.pixeldit,
           lora_hint=r"(patch_blocks|pixel_blocks|pixel_embedder|lq_proj)"),
    Family("Ideogram4", "Ideogram 4", ("comfy.ldm.ideogram4.model.Ideogram4Transformer2DModel",),
           L.packed_text_then_image,
           lora_hint=rf"(llm_cond_proj|embed_image_indicator|adaln_proj|(^|{_S})layers{_S}\d+{_S}"
                     rf"(adaln_modulation|attention{_S}(o|qkv)$|feed_forward{_S}w[123]$))"),
    Family("OmniGen2", "OmniGen2 (reference images)", ("comfy.ldm.omnigen.omnigen2.OmniGen2Transformer2DModel",),
           L.omnigen2,
           lora_hint=_OMNIGEN2_PARTS + rf"|(^|{_S})layers{_S}\d+{_S}(attn{_S}to_|feed_forward{_S}linear_)",
           preview=PreviewDefaults((PreviewVariant("OmniGen2", "Omnigen2", files=r"omnigen[-_ ]?2",
                                                   clip=r"^omnigen2 "),))),
    Family("Boogu", "Boogu-Image (reference images)", ("comfy.ldm.boogu.model.BooguTransformer2DModel",),
           L.omnigen2, lora_hint=_OMNIGEN2_PARTS + r"|(double|single)_stream_layers"),
    Family("HiDream-O1", "HiDream-O1-Image (text-to-image and edit; pixel space)",
           ("comfy.ldm.hidream_o1.model.HiDreamO1Transformer",), L.hidream_o1,
           lora_hint=rf"(language_model{_S}layers|final_layer2|t_embedder1|visual{_S}(blocks|merger))"),
    Family("ErnieImage", "ERNIE-Image", ("comfy.ldm.ernie.model.ErnieImageModel",),
           lora_hint=rf"(layers{_S}\d+{_S}self_attention{_S}to_([qkv]|out)|adaLN_(sa|mlp)_ln)",
           refused="ComfyUI calls its attention without transformer_options (comfy/ldm/ernie/model.py), and no "
                   "other public extension point reaches it, so TACA could not act; rather than silently doing "
                   "nothing, it refuses."),
    Family("SeedVR2", "SeedVR2 (video restoration)", ("comfy.ldm.seedvr.model.NaDiT",),
           refused="it is a restoration model whose 'text' is a fixed embedding stored in the checkpoint, not "
                   "a prompt, so there is no prompt alignment for TACA to improve; its windowed attention is "
                   "also called without transformer_options, so TACA could not act."),
    Family("Qwen-Image 2.1", "Qwen-Image 2.1 (text-to-image and edit with reference images)",
           ("comfy.ldm.qwen_image21.model.QwenImage21Transformer2DModel",), L.qwen21,
           # its own names only: its attention layers' (attn.to_q, ...) are also Qwen-Image's, Krea 2's, FLUX's
           lora_hint=rf"(transformer_blocks{_S}\d+{_S}img_mlp{_S}(gate_up|gate_layer|proj|out)({_S}|$)"
                     rf"|txt_in{_S}(in|out)_layer)",
           # the text and reference K/V cached from step 1 (model.py's prefix cache; the QwenImage21Cache node)
           layer_attention=L.qwen21_layer_attention,
           no_step_cache={"qwen_image21_cache": {"device": "off"}},
           # image_qwen_image_2_1_t2i.json: KSampler 25 steps, simple; image_qwen_image_2_1_turbo_t2i.json:
           # ManualSigmas (8 steps). Its shift (0.69) puts sigma >= 0.97 on 1 step of 3, 2 of 20 or 30, 3 of 50.
           preview=PreviewDefaults((PreviewVariant(
               "Qwen-Image 2.1", "QwenImage21", files=r"qwen[-_ ]?image[-_ .]?2[-_ .]?1(?!\d)",
               clip=r"^qwen_image .*qwen3[-_ .]?vl", typical=(  # its templates: type qwen_image, a Qwen3-VL file
                   Typical("Qwen-Image 2.1", 25),
                   Typical("Qwen-Image 2.1 Turbo", node="ManualSigmas", inputs=(
                       ("sigmas", "1.0, 0.978453, 0.95418, 0.926626, 0.89508, 0.845148, 0.704534, 0.414568, 0"),)))),))),
)

# LoRAs of models TACA has no row for, named in the mismatch message
OTHER_LORA_HINTS = (("SD1.x/SDXL (UNet)", r"(down_blocks|up_blocks|mid_block|input_blocks|output_blocks"
                                          r"|middle_block|lora_te\d?_)"),)


def _class_path(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def family_of(diffusion_model) -> Optional[Family]:
    path = _class_path(diffusion_model)
    return next((f for f in FAMILIES if path in f.classes), None)


def supported_families() -> str:
    """Every supported family with its checkpoints, for error messages."""
    return "; ".join(f"{f.name} ({f.models})" for f in FAMILIES if not f.refused)


def family_names() -> str:
    """The supported families' names, for node descriptions and tooltips."""
    return ", ".join(f.name for f in FAMILIES if not f.refused)


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


def preview_variant(file: str = "", clip: str = ""):
    """(family, variant, how) the schedule preview assumes for a model: the first variant, in table order,
    whose file pattern the loader's file name matches, else whose CLIP pattern matches `clip` ("<CLIP loader
    type or node id> <file>"); (None, None, "") when none does."""
    for text, attr, how in ((str(file or "").lower(), "files", f"file {file}"), (str(clip or ""), "clip", clip)):
        for f in FAMILIES:
            for v in f.preview.variants:
                pattern = getattr(v, attr)
                if text and pattern and re.search(pattern, text, re.I if attr == "clip" else 0):
                    return f, v, how if attr == "files" else f"CLIP loader {clip.split(' ')[0]}"
    return None, None, ""


def typical_schedules():
    """(variant, Typical) for every typical schedule in the table, in table order."""
    return [(v, t) for f in FAMILIES for v in f.preview.variants for t in v.typical]


def guess_lora_family(layer_names) -> tuple:
    """What a LoRA's layer names look like: the names of the rows whose hint matches the most of them.

    () when no hint matches any. Rows of FAMILIES keep the table's order, then OTHER_LORA_HINTS.
    """
    layer_names = list(layer_names)
    hints = [(f.name, re.compile(f.lora_hint)) for f in FAMILIES if f.lora_hint]
    hints += [(name, re.compile(h)) for name, h in OTHER_LORA_HINTS]
    scores = [(sum(bool(h.search(n)) for n in layer_names), name) for name, h in hints]
    best = max((s for s, _ in scores), default=0)
    return tuple(name for s, name in scores if s == best) if best else ()


def lora_family_label(guess: tuple) -> str:
    """A guess_lora_family result for messages: 'FLUX (or Chroma, HunyuanVideo)', 'unknown' for ()."""
    if not guess:
        return "unknown"
    return guess[0] + (f" (or {', '.join(guess[1:])})" if len(guess) > 1 else "")
