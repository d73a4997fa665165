"""ComfyUI-TACA: Temperature-Adjusted Cross-modal Attention for the MM-DiTs ComfyUI runs."""

WEB_DIRECTORY = "./web"  # the schedule preview on the TACA nodes


async def comfy_entrypoint():
    # ComfyUI imports only: keeps taca_core testable without it. The server adds its routes after loading
    # the packs, so the preview's route is registered here.
    from .nodes import TACAExtension
    from .taca_comfy import preview_route  # noqa: F401
    return TACAExtension()
