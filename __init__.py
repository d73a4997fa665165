"""ComfyUI-TACA: Temperature-Adjusted Cross-modal Attention for the MM-DiTs ComfyUI runs."""

WEB_DIRECTORY = "./web"  # the schedule preview on the TACA Model Patch node


async def comfy_entrypoint():
    from .nodes import TACAExtension  # ComfyUI imports only: keeps taca_core testable without it
    return TACAExtension()
