"""Where the text tokens are, for each MM-DiT family ComfyUI runs.

Both families concatenate [text, image] and call ComfyUI's attention once per
block on the joint sequence; TACA needs to know, per model call, how many of
the leading tokens are text and how long a joint sequence is (shorter calls,
like SD3.5's image-only x_block_self_attn, are left alone). Adding a family is
one entry in FAMILIES, matched on the diffusion model's class.
"""
import math
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class MMDiTFamily:
    name: str
    models: str  # for messages: which checkpoints this is
    diffusion_model_classes: tuple
    # attribute: count of learned tokens the model prepends to the text (SD3 registers)
    text_prefix_attr: Optional[str] = None

    def text_tokens(self, diffusion_model, context) -> int:
        prefix = getattr(diffusion_model, self.text_prefix_attr, 0) if self.text_prefix_attr else 0
        return int(prefix) + context.shape[1]

    @staticmethod
    def image_tokens(diffusion_model, x) -> int:
        """Patches of the noisy latent; extra visual tokens (FLUX Kontext references) come after."""
        p = diffusion_model.patch_size
        return math.ceil(x.shape[-2] / p) * math.ceil(x.shape[-1] / p)


FAMILIES = (
    MMDiTFamily("FLUX", "FLUX.1 dev/schnell/Kontext/Fill and same-architecture models",
                ("comfy.ldm.flux.model.Flux",)),
    MMDiTFamily("SD3", "SD3 and SD3.5 large/medium",
                ("comfy.ldm.modules.diffusionmodules.mmdit.OpenAISignatureMMDITWrapper",),
                text_prefix_attr="register_length"),
)


def _class_path(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def family_of(diffusion_model) -> Optional[MMDiTFamily]:
    path = _class_path(diffusion_model)
    return next((f for f in FAMILIES if path in f.diffusion_model_classes), None)


def supported_families() -> str:
    return "; ".join(f"{f.name} ({f.models})" for f in FAMILIES)


def require_family(node: str, model) -> MMDiTFamily:
    """The family of a ComfyUI MODEL (ModelPatcher), or a ValueError naming node, model type and the fix."""
    dm = model.model.diffusion_model
    family = family_of(dm)
    if family is None:
        raise ValueError(
            f"{node}: this model is {type(model.model).__name__} ({type(dm).__name__}), which has no joint "
            f"text-image attention for TACA to act on. Supported: {supported_families()}. "
            "Remove the node from this model's path.")
    return family
