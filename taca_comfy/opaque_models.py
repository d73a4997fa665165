"""Models whose attention never reaches ComfyUI's, which TACA hooks: it would silently do nothing.

Nunchaku (SVDQuant, nunchaku-tech/ComfyUI-nunchaku) replaces model.diffusion_model with its own
transformer, which runs its own fused attention kernels. Matched on that object's class: its name
and the end of its module path (ComfyUI imports a custom-node pack under its folder's name, which
differs between installs: ComfyUI-nunchaku, comfyui-nunchaku, ...). Adding one is one entry.
"""
from dataclasses import dataclass

from .families import Family, require_family


@dataclass(frozen=True)
class OpaqueModel:
    module_suffix: str  # the class's module path, from the pack's root
    class_name: str
    what: str  # for messages


OPAQUE_MODELS = (
    OpaqueModel("wrappers.flux", "ComfyFluxWrapper", "a Nunchaku (SVDQuant) FLUX.1 model"),
    OpaqueModel("wrappers.flux2", "ComfyFlux2Wrapper", "a Nunchaku (SVDQuant) FLUX.2 model"),
    OpaqueModel("models.qwenimage", "NunchakuQwenImageTransformer2DModel", "a Nunchaku (SVDQuant) Qwen-Image model"),
)


def opaque_model(diffusion_model):
    """The OPAQUE_MODELS entry diffusion_model's class matches, or None."""
    cls = type(diffusion_model)
    module = cls.__module__
    return next((m for m in OPAQUE_MODELS if cls.__qualname__ == m.class_name
                 and (module == m.module_suffix or module.endswith("." + m.module_suffix))), None)


def require_taca_can_act(node: str, model) -> Family:
    """The family of a ComfyUI MODEL, or a ValueError naming the node, the model and the fix."""
    opaque = opaque_model(model.model.diffusion_model)
    if opaque is not None:
        raise ValueError(
            f"{node}: this is {opaque.what}. It runs its own attention kernels and never calls ComfyUI's "
            "attention, which is where TACA acts, so TACA would silently do nothing. Load the regular "
            "checkpoint of this model (bf16, fp8 or GGUF) for TACA, or remove the node.")
    return require_family(node, model)
