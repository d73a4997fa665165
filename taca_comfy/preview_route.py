"""The schedule preview's server route: POST /taca/schedule_preview (also under /api/, as ComfyUI serves every
route), registered on import through PromptServer.instance.routes, the public way packs add routes. The
answer is preview.schedule_preview's JSON; a request it cannot preview gets status 400 and {"error": ...}."""
import json
import logging

from aiohttp import web
from server import PromptServer

from .preview import PreviewError, schedule_preview

ROUTE = "/taca/schedule_preview"
log = logging.getLogger("ComfyUI-TACA")


@PromptServer.instance.routes.post(ROUTE)
async def taca_schedule_preview(request):
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise PreviewError("the request is not a JSON object")
        return web.json_response(schedule_preview(body))
    except (PreviewError, json.JSONDecodeError) as e:
        return web.json_response({"error": str(e)}, status=400)
    except Exception as e:  # a graph shape nobody foresaw: say so on the node, keep the server going
        log.exception("TACA schedule preview failed")
        return web.json_response({"error": f"{type(e).__name__}: {e}"}, status=500)
