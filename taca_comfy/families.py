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
- lora_hint: a regex that the layer names of this family's LoRAs match (ComfyUI's and diffusers'
  names, dots or underscores), used to tell a user which model a mismatched LoRA is for. A LoRA is
  guessed to be for the row whose hint matches most of its layers (ties: the earlier row).
- preview: the sampling the schedule preview assumes for this family when the graph does not say
  (PreviewDefaults below).
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


@dataclass(frozen=True)
class PreviewDefaults:
    """What the schedule preview assumes for a family: ComfyUI's model config and typical schedules."""
    supported_model: str = ""  # class name in comfy.supported_models: its sampling_settings give the sigmas
    typical: tuple = ()        # ((label, steps, scheduler), ...) shown when no sampler is linked


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
           lora_hint=r"(single_transformer_blocks|single_blocks|double_blocks)"),
    Family("SD3", "SD3 and SD3.5 large/medium",
           ("comfy.ldm.modules.diffusionmodules.mmdit.OpenAISignatureMMDITWrapper",), L.sd3,
           lora_hint=r"(joint_blocks|context_block|x_block)"),
    Family("Qwen-Image", "Qwen-Image, Qwen-Image-Edit (reference images), MageFlow",
           ("comfy.ldm.qwen_image.model.QwenImageTransformer2DModel",
            "comfy.ldm.mage_flow.model.MageFlowTransformer2DModel"), L.qwen,
           lora_hint=rf"transformer_blocks{_S}\d+{_S}((img|txt)_mod|(img|txt)_mlp{_S}net)"),
    Family("Lumina2", "Lumina Image 2.0, Z-Image (Turbo, omni, pixel space), NewBie",
           ("comfy.ldm.lumina.model.NextDiT", "comfy.ldm.lumina.model.NextDiTPixelSpace"), L.lumina,
           lora_hint=rf"(noise_refiner|context_refiner|cap_embedder"
                     rf"|(^|{_S})layers{_S}\d+{_S}(attention|feed_forward){_S})"),
    Family("Krea2", "Krea 2", ("comfy.ldm.krea2.model.SingleStreamDiT",), L.krea2,
           lora_hint=rf"(txtfusion|attn{_S}(wq|wk|wv|wo|to_gate)({_S}|$)|ff{_S}(gate|up|down)({_S}|$))"),
    Family("Chroma", "Chroma, Chroma Radiance",
           ("comfy.ldm.chroma.model.Chroma", "comfy.ldm.chroma_radiance.model.ChromaRadiance"), L.text_then_image,
           lora_hint=r"(single_transformer_blocks|single_blocks|double_blocks)"),
    Family("HunyuanVideo", "HunyuanVideo, HunyuanVideo 1.5, HunyuanImage 2.1",
           ("comfy.ldm.hunyuan_video.model.HunyuanVideo",), L.hunyuan,
           lora_hint=r"(individual_token_refiner|byt5_in|vision_in|single_blocks|double_blocks)"),
    Family("AuraFlow", "AuraFlow", ("comfy.ldm.aura.mmdit.MMDiT",), L.aura,
           lora_hint=rf"(double_layers|single_layers|joint_transformer_blocks|{_S}w[12][qkvo]({_S}|$))"),
    Family("HiDream", "HiDream-I1 full/dev/fast, HiDream-E1 (edit)",
           ("comfy.ldm.hidream.model.HiDreamImageTransformer2DModel",), L.hidream,
           lora_hint=r"(double|single)_stream_blocks"),
    Family("Lens", "Microsoft Lens", ("comfy.ldm.lens.model.LensTransformer2DModel",), L.image_then_text,
           lora_hint=rf"((img|txt)_qkv|(img|txt)_mlp{_S}w[123]({_S}|$))"),
    Family("JoyImage", "JoyAI-Image, JoyAI-Image-Edit (reference images)",
           ("comfy.ldm.joyimage.model.JoyImageTransformer3DModel",), L.joyimage,
           lora_hint=rf"attn{_S}(img|txt)_attn"),
    Family("Mochi", "Genmo Mochi 1 (preview)",
           ("comfy.ldm.genmo.joint_model.asymm_models_joint.AsymmDiTJoint",), L.mochi,
           lora_hint=r"(qkv_[xy]|mod_[xy]|mlp_[xy]|t5_yproj)"),
    Family("PixelDiT", "PixelDiT text-to-image and its PiD super-resolution variant (pixel space)",
           ("comfy.ldm.pixeldit.model.PixDiT_T2I", "comfy.ldm.pixeldit.pid.PidNet"), L.pixeldit,
           lora_hint=r"(patch_blocks|pixel_blocks)"),
    Family("Ideogram4", "Ideogram 4", ("comfy.ldm.ideogram4.model.Ideogram4Transformer2DModel",),
           L.packed_text_then_image,
           lora_hint=rf"(llm_cond_proj|embed_image_indicator|layers{_S}\d+{_S}adaln_modulation"
                     rf"|attention{_S}o({_S}|$))"),
    Family("OmniGen2", "OmniGen2 (reference images)", ("comfy.ldm.omnigen.omnigen2.OmniGen2Transformer2DModel",),
           L.omnigen2,
           lora_hint=rf"(ref_image_refiner|ref_image_patch_embedder|time_caption_embed"
                     rf"|(^|{_S})(layers|noise_refiner|context_refiner){_S}\d+{_S}attn{_S}to_"
                     rf"|feed_forward{_S}linear_[123])"),
    Family("Boogu", "Boogu-Image (reference images)", ("comfy.ldm.boogu.model.BooguTransformer2DModel",),
           L.omnigen2, lora_hint=r"((double|single)_stream_layers|img_instruct_attn)"),
    Family("HiDream-O1", "HiDream-O1-Image (text-to-image and edit; pixel space)",
           ("comfy.ldm.hidream_o1.model.HiDreamO1Transformer",), L.hidream_o1,
           lora_hint=r"(language_model|final_layer2|t_embedder1)"),
    Family("ErnieImage", "ERNIE-Image", ("comfy.ldm.ernie.model.ErnieImageModel",),
           lora_hint=rf"(self_attention{_S}to_[qkv]({_S}|$)|adaLN_(sa|mlp)_ln)",
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
           no_step_cache={"qwen_image21_cache": {"device": "off"}}),
)

# LoRAs of models TACA has no row for, named in the mismatch message
OTHER_LORA_HINTS = (("SD1.x/SDXL (UNet)", r"(down_blocks|input_blocks|output_blocks|lora_te)"),)


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


def guess_lora_family(layer_names) -> tuple:
    """What a LoRA's layer names look like: the names of the rows whose hint matches most of them (or none)."""
    layer_names = list(layer_names)
    hints = [(f.name, f.lora_hint) for f in FAMILIES if f.lora_hint] + list(OTHER_LORA_HINTS)
    scores = [(sum(bool(re.search(h, n)) for n in layer_names), name) for name, h in hints]
    best = max((s for s, _ in scores), default=0)
    return tuple(name for s, name in scores if s == best) if best else ()
