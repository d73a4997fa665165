"""ComfyUI-TACA: Temperature-Adjusted Cross-modal Attention for MM-DiTs (FLUX, SD3/SD3.5)."""

async def comfy_entrypoint():
    from .nodes import TACAExtension  # ComfyUI imports only: keeps taca_core testable without it
    return TACAExtension()
