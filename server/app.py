"""The aiohttp application: routes, app-lifetime services, graceful shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import WSCloseCode, hdrs, web
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


FONT_TYPES = {".ttf": "font/ttf", ".woff2": "font/woff2"}


async def font_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Fonts under /static/fonts/: their content type, and a year in the browser's cache.

    Python's mimetypes knows ``.ttf`` only from the system's /etc/mime.types, which a fresh machine may
    lack. The Tibetan font is megabytes on a thin link, so browsers keep it; the CSS names it with its
    version (``?v=``), so a new font is a new address.
    """
    if not request.path.startswith("/static/fonts/") or response.status not in (200, 206, 304):
        return
    response.headers[hdrs.CACHE_CONTROL] = "public, max-age=31536000, immutable"
    suffix = "." + request.path.rpartition(".")[2]
    if suffix in FONT_TYPES and response.status != 304:
        response.content_type = FONT_TYPES[suffix]


def _media_sockets(settings: Settings) -> internals.MediaSockets | None:
    """The server's media port range and 1:1 NAT (README "Deployment: addresses and ports")."""
    ports = settings.media_port_range
    nat = settings.nat_public_addresses
    if ports is None and not nat:
        return None  # aioice's own gathering, untouched
    plan = internals.MediaSockets(ports, nat, keep_private=settings.keep_private_host)
    addresses = settings.effective_ice_addresses
    logger.info(
        "media on %s: %s", ", ".join(addresses) if addresses else "every interface", plan.describe()
    )
    exposed = _unreserved_ephemeral(ports) if ports is not None else 0
    if exposed:
        logger.warning(
            "%d of media_ports %s are kernel ephemeral ports, which any program's outgoing "
            "socket may take (reserve them: sysctl net.ipv4.ip_local_reserved_ports=%s)",
            exposed,
            settings.media_ports,
            settings.media_ports,
        )
    return plan


def _unreserved_ephemeral(ports: tuple[int, int]) -> int:
    """How many ports of the range the kernel may hand out as ephemeral ports (Linux)."""
    proc = Path("/proc/sys/net/ipv4")
    try:
        low, high = map(int, (proc / "ip_local_port_range").read_text().split())
        reserved_text = (proc / "ip_local_reserved_ports").read_text().strip()
    except (OSError, ValueError):
        return 0
    reserved: set[int] = set()
    for part in filter(None, reserved_text.split(",")):
        first, _, last = part.partition("-")
        reserved.update(range(int(first), int(last or first) + 1))
    return sum(1 for p in range(max(ports[0], low), min(ports[1], high) + 1) if p not in reserved)


def create_app(settings: Settings) -> web.Application:
    """Build the application; services start and stop with it (cleanup_ctx)."""
    addresses = settings.effective_ice_addresses
    if addresses is not None:
        internals.restrict_host_addresses(addresses)
    media_sockets = _media_sockets(settings)
    internals.configure_media_sockets(media_sockets)
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

    async def forget_media_sockets(app: web.Application) -> None:
        # The plan is process-wide (like aioice's host addresses): a later app must not inherit it.
        previous = internals.configure_media_sockets(None)
        if previous is not media_sockets:
            internals.configure_media_sockets(previous)  # another app's since: leave it

    app.cleanup_ctx.append(services_ctx)
    app.on_cleanup.append(forget_media_sockets)
    app.on_shutdown.append(close_sockets)
    app.router.add_get("/", index_page)
    app.router.add_get("/hearing", hearing_page)
    app.router.add_get("/ws", websocket_handler)
    app.router.add_static("/static/", WEB_DIR, follow_symlinks=False)
    app.on_response_prepare.append(font_headers)
    app.router.add_get("/metrics", metrics.metrics)
    api.add_routes(app)
    scheduling.add_routes(app)
    exhibits.add_routes(app)
    archive_api.setup(app)  # archive: /archive, /api/archive/..., backup replication (issue 4)
    return app
