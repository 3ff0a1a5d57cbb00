"""Exhibits: a file shown as evidence, registered on the hearing's timeline with its SHA-256.

`POST /api/hearings/{id}/exhibits` with the presenter's own join token (roles with the `screen`
grant: the court, counsel and parties) and the file as the body; `X-Exhibit-Name` names it. The
file is kept content-addressed under `<data>/exhibits/<hearing>/<sha256>` (never overwritten, never
served by name), and the timeline of the recording gets who, when, what and the hash. Exhibits are
registered while the hearing is in progress: that is what makes them part of its record. The
archive serves them and puts them in export bundles: :mod:`server.exhibit_archive`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
import time
import unicodedata
from pathlib import Path

from aiohttp import web

from server import state
from server.api import json_error
from server.exhibit_archive import exhibit_folder
from signaling.errors import ProtocolError
from signaling.roles import grants

logger = logging.getLogger(__name__)

MAX_NAME_CHARS = 200
CHUNK = 256 * 1024


def _clean_name(raw: str) -> str | None:
    """A display name: printable, no path, bounded. None if nothing usable is left."""
    name = "".join(c for c in raw if unicodedata.category(c)[0] != "C").strip()
    name = name.replace("/", "_").replace("\\", "_")
    return name[:MAX_NAME_CHARS] or None


def _upload_file(folder: Path) -> tuple[int, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    handle, raw_path = tempfile.mkstemp(dir=folder, prefix=".upload-")
    return handle, Path(raw_path)


def _finish(temporary: Path, folder: Path) -> tuple[str, int]:
    """Hash the upload and move it to its content address (in a thread: hashing is CPU work)."""
    digest = hashlib.sha256()
    size = 0
    with temporary.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    sha256 = digest.hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / sha256
    if target.exists():
        temporary.unlink()
    else:
        with temporary.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(temporary, target)
    return sha256, size


async def register_exhibit(request: web.Request) -> web.Response:
    services = request.app[state.SERVICES]
    hearing_id = request.match_info["hearing_id"]
    if not hearing_id.isalnum() or len(hearing_id) > 32:
        return json_error(404, "hearing-not-found", "no such hearing")
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return json_error(401, "unauthorized", "the presenter's join token is required")
    try:
        claims = services.tokens.verify_join(header[7:].strip(), time.time())
    except ProtocolError as error:
        return json_error(401, error.code, error.message)
    if claims.hearing_id != hearing_id:
        return json_error(403, "forbidden", "the token is for another hearing")
    if "screen" not in grants(claims.role).publish:
        return json_error(403, "forbidden", f"a {claims.role} does not present evidence")
    if await services.is_revoked(claims.participant_key):
        return json_error(401, "bad-token", "this invitation was revoked")
    live = services.live.get(hearing_id)
    if live is None or live.recorder is None or live.recorder.stopped:
        return json_error(409, "not-in-session", "exhibits are registered during the hearing")
    name = _clean_name(request.headers.get("X-Exhibit-Name", ""))
    if name is None:
        return json_error(400, "bad-request", "X-Exhibit-Name must name the exhibit")
    limit = services.settings.exhibit_max_bytes
    if request.content_length is not None and request.content_length > limit:
        return json_error(413, "too-large", f"an exhibit is at most {limit} bytes")

    folder = exhibit_folder(services.settings.data, hearing_id)
    handle, temporary = await asyncio.to_thread(_upload_file, folder)
    received = 0
    try:
        with os.fdopen(handle, "wb") as out:
            async for chunk in request.content.iter_chunked(CHUNK):
                received += len(chunk)
                if received > limit:
                    return json_error(413, "too-large", f"an exhibit is at most {limit} bytes")
                await asyncio.to_thread(out.write, chunk)
        if received == 0:
            return json_error(400, "bad-request", "the exhibit is empty")
        sha256, size = await asyncio.to_thread(_finish, temporary, folder)
    finally:
        await asyncio.to_thread(temporary.unlink, missing_ok=True)
    at = time.time()
    live.recorder.event(
        "exhibit",
        {"name": name, "sha256": sha256, "bytes": size, "by": claims.name, "role": claims.role},
        at=at,
    )
    logger.info("hearing %s: exhibit %s (%s) by %s", hearing_id, name, sha256, claims.name)
    return web.json_response(
        {"name": name, "sha256": sha256, "bytes": size, "at": at, "by": claims.name}, status=201
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/hearings/{hearing_id}/exhibits", register_exhibit)
