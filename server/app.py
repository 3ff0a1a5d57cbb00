"""The aiohttp application: routes, app-lifetime services, graceful shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web
from aiohttp.typedefs import Handler

from server import api, archive_api, exhibits, metrics, scheduling, state
from server.settings import WEB_DIR, Settings, load_courts
from server.sfu import internals
from server.ws import websocket_handler
from signaling.messages import encode_bye

logger = logging.getLogger(__name__)


async def hearing_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_DIR / "hearing.html")


async def index_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_DIR / "index.html")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")  # links carry tokens
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def create_app(settings: Settings) -> web.Application:
    """Build the application; services start and stop with it (cleanup_ctx)."""
    addresses = settings.effective_ice_addresses
    if addresses is not None:
        internals.restrict_host_addresses(addresses)
    app = web.Application(client_max_size=api.MAX_BODY, middlewares=[security_headers])

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        services = state.Services(settings, load_courts(settings.courts_file))
        app[state.SERVICES] = services
        await services.open()
        metrics.setup(app, services)
        yield
        await services.close()

    async def close_sockets(app: web.Application) -> None:
        # Before the runner waits for handlers: open WebSockets would hold shutdown for a minute.
        bye = encode_bye("shutdown")
        for ws in list(app[state.SERVICES].sockets):
            if not ws.closed:
                try:
                    await ws.send_str(bye)
                except ConnectionError:
                    pass
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    app.cleanup_ctx.append(services_ctx)
    app.on_shutdown.append(close_sockets)
    app.router.add_get("/", index_page)
    app.router.add_get("/hearing", hearing_page)
    app.router.add_get("/ws", websocket_handler)
    app.router.add_static("/static/", WEB_DIR, follow_symlinks=False)
    app.router.add_get("/metrics", metrics.metrics)
    api.add_routes(app)
    scheduling.add_routes(app)
    exhibits.add_routes(app)
    archive_api.setup(app)  # archive: /archive, /api/archive/..., backup replication (issue 4)
    return app
