"""The archive's HTTP API: search, detail, media with Range, exhibits, verify, export
(``/api/archive/...``).

How this works: :func:`setup` registers the routes and an app-lifetime :class:`ArchiveService`
(audit log, media tickets, the backup replicator) in ``cleanup_ctx``, after the server's own
services. Every handler names its :class:`~server.archive_access.Viewer` first (401 without a
valid token), looks the recording up in the catalog, checks the hearing (403 sealed or another
court's), and writes what it served to the audit log. Blocking work (database, hashing, the
remux, the bundle) runs in threads. Files are served only when the recording's manifest lists
them (:mod:`server.playback`), through ``web.FileResponse``, which answers Range requests (206),
a Range past the end (416) and ``If-Range``. A recording's exhibits are those its signed timeline
registers (:mod:`server.exhibit_archive`); their files are served by SHA-256, with the same
viewers, tickets and audit as the recording's media. The admin side (seal, tokens, audit verify, backup)
is in :mod:`server.archive_admin`; the OpenAPI document in :mod:`server.openapi`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError, field_validator

from recorder.session import EVENTS_NAME
from recorder.verify import verify_recording
from server import catalog, state
from server.archive_access import (
    TicketSigner,
    Viewer,
    bearer_viewer,
    check_hearing,
    http_error,
    judge_hearing_id,
)
from server.audit import AuditLog
from server.backup import DirectoryTarget, ReplicaTarget, Replicator
from server.bundle import write_bundle
from server.db import HearingRow
from server.exhibit_archive import (
    SHA256,
    Exhibit,
    exhibit_folder,
    exhibits_root,
    read_exhibits,
    stored_path,
)
from server.playback import (
    composite_map,
    folder_files,
    media_origin,
    resolve_file,
    track_playable,
)
from server.settings import WEB_DIR

__all__ = ["ARCHIVE", "ArchiveService", "setup"]

logger = logging.getLogger(__name__)

RECORDING_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_QUERY = 2048  # bytes of query string accepted on archive endpoints
AUDIT_WINDOW = 600.0  # seconds: one playback entry per viewer, file and window (seeks are many)
_CONTENT_TYPES = {
    ".webm": "video/webm",
    ".mp4": "video/mp4",
    ".jsonl": "application/x-ndjson",
    ".json": "application/json",
    ".sig": "application/json",
    ".pem": "application/x-pem-file",
    ".part": "application/octet-stream",
    ".partial": "application/octet-stream",
}


class ArchiveService:
    """App-lifetime state of the archive: audit log, tickets, replicator, caches."""

    def __init__(self, services: state.Services) -> None:
        settings = services.settings
        self.services = services
        self.root = settings.recordings_dir.resolve()
        self.audit = AuditLog(services.db, settings.data / "audit-head.json", services.signer)
        self.tickets = TicketSigner(state.load_or_create_secret(settings.data))
        self.cache = settings.data / "cache" / "playback"
        self.exports = settings.data / "exports"
        self._seen: dict[tuple[str, str, str, str], float] = {}
        self._audit_tasks: set[asyncio.Task[None]] = set()
        targets: list[ReplicaTarget] = []
        if settings.backup_dir is not None:
            targets.append(DirectoryTarget(settings.backup_dir))
        if settings.s3_bucket:
            from server.s3_replica import S3Settings, S3Target

            targets.append(
                S3Target(
                    S3Settings(
                        settings.s3_bucket,
                        prefix=settings.s3_prefix,
                        endpoint_url=settings.s3_endpoint_url,
                        region=settings.s3_region,
                        access_key_id=settings.s3_access_key_id,
                        secret_access_key=settings.s3_secret_access_key,
                    )
                )
            )
        self.replicator = Replicator(
            settings.recordings_dir,
            targets,
            interval=settings.backup_interval,
            fixity_interval=settings.fixity_interval_hours * 3600.0,
            quarantine=settings.data / "quarantine",
            exhibits_root=exhibits_root(settings.data),
            on_event=self._backup_event,
        )

    async def start(self) -> None:
        """Clear leftovers of an earlier run and start replication."""

        def tidy() -> None:
            self.exports.mkdir(parents=True, exist_ok=True)
            for stale in self.exports.glob("*.zip*"):
                stale.unlink(missing_ok=True)

        await asyncio.to_thread(tidy)
        self.replicator.start()

    async def stop(self) -> None:
        """Stop replication; wait for audit writes in flight."""
        await self.replicator.stop()
        if self._audit_tasks:
            await asyncio.gather(*self._audit_tasks, return_exceptions=True)

    async def record(self, viewer: Viewer, action: str, **fields: Any) -> None:
        """Append an audit entry for ``viewer`` (in a thread)."""
        await asyncio.to_thread(
            self.audit.append, actor=viewer.subject, role=viewer.role.value, action=action, **fields
        )

    async def record_once(
        self, viewer: Viewer, action: str, recording_id: str, **fields: Any
    ) -> None:
        """Like :meth:`record`, at most once per viewer, file and :data:`AUDIT_WINDOW`."""
        key = (viewer.subject, action, recording_id, str(fields.get("target")))
        now = time.monotonic()
        if now - self._seen.get(key, -AUDIT_WINDOW) < AUDIT_WINDOW:
            return
        if len(self._seen) > 10_000:
            self._seen = {k: t for k, t in self._seen.items() if now - t < AUDIT_WINDOW}
        self._seen[key] = now
        await self.record(viewer, action, recording_id=recording_id, **fields)

    def _backup_event(self, action: str, detail: dict[str, Any]) -> None:
        async def write() -> None:
            try:
                await asyncio.to_thread(
                    self.audit.append,
                    actor="system:backup",
                    role="system",
                    action=action,
                    recording_id=detail.get("recording_id"),
                    hearing_id=detail.get("hearing_id"),
                    target=detail.get("key"),
                    sha256=detail.get("sha256"),
                    detail=detail,
                )
            except Exception:
                logger.exception("audit: cannot record backup event %s", action)

        task = asyncio.get_running_loop().create_task(write())
        self._audit_tasks.add(task)
        task.add_done_callback(self._audit_tasks.discard)


ARCHIVE = web.AppKey("archive", ArchiveService)


# -- request helpers ---------------------------------------------------------------------------------


def _check_query(request: web.Request) -> None:
    if len(request.query_string) > MAX_QUERY:
        raise http_error(web.HTTPBadRequest, "bad-query", f"query longer than {MAX_QUERY} bytes")


async def viewer_of(request: web.Request) -> Viewer:
    """The request's viewer from its bearer token (401/403 otherwise)."""
    _check_query(request)
    services = request.app[state.SERVICES]
    courts: dict[str, str] = {}
    hearing_id = judge_hearing_id(request, services.tokens)
    if hearing_id is not None:
        row = await asyncio.to_thread(services.db.get_hearing, hearing_id)
        if row is not None:
            courts[hearing_id] = row.court
    return bearer_viewer(request, services.tokens, courts)


async def _media_viewer(request: web.Request, recording_id: str) -> Viewer:
    ticket = request.query.get("ticket")
    if ticket is not None and "Authorization" not in request.headers:
        _check_query(request)
        return request.app[ARCHIVE].tickets.check(ticket, recording_id, time.time())
    return await viewer_of(request)


def recording_id_of(request: web.Request) -> str:
    """The ``{recording_id}`` of the path, or 404 when it cannot be one (nothing is looked up)."""
    recording_id = request.match_info["recording_id"]
    if not RECORDING_ID.fullmatch(recording_id):
        raise http_error(web.HTTPNotFound, "recording-not-found", "no such recording")
    return recording_id


async def open_recording(
    request: web.Request, viewer: Viewer, recording_id: str, *, detail: bool = False
) -> tuple[dict[str, Any], Path]:
    """The catalog entry of a recording the viewer may see, and its folder (404/403 otherwise)."""
    services = request.app[state.SERVICES]
    root = request.app[ARCHIVE].root
    query = catalog.recording_detail if detail else catalog.recording_summary

    def lookup() -> tuple[dict[str, Any], HearingRow, Path | None] | None:
        found = query(services.db, root, recording_id)
        if found is None:
            return None
        hearing = services.db.get_hearing(found["hearing_id"])
        if hearing is None:
            return None
        folder = Path(found["path"]).resolve()
        if not folder.is_relative_to(root) or not folder.is_dir():
            return found, hearing, None
        return found, hearing, folder

    looked_up = await asyncio.to_thread(lookup)
    if looked_up is None:
        raise http_error(web.HTTPNotFound, "recording-not-found", "no such recording")
    found, hearing, folder = looked_up
    check_hearing(viewer, hearing)
    if folder is None:
        raise http_error(web.HTTPNotFound, "recording-missing", "the recording's folder is gone")
    return found, folder


class SearchQuery(BaseModel):
    """Query parameters of ``GET /api/archive/recordings``."""

    court: str | None = Field(default=None, max_length=32)
    case: str | None = Field(default=None, max_length=128)
    kind: str | None = Field(default=None, max_length=32)
    status: str | None = Field(default=None, max_length=16)
    hearing: str | None = Field(default=None, max_length=32)
    participant: str | None = Field(default=None, max_length=128)
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = Field(default=50, ge=1, le=500)
    offset: int = Field(default=0, ge=0, le=1_000_000)

    @field_validator("since", "until", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return value + "T00:00:00Z"  # a date alone: from its start (UTC)
        return value


def _public(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "path"}


# -- handlers ---------------------------------------------------------------------------------------


async def archive_page(request: web.Request) -> web.FileResponse:
    """The archive page (it asks for a token itself)."""
    return web.FileResponse(WEB_DIR / "archive.html")


async def search(request: web.Request) -> web.Response:
    """Search recordings; every filter given must match."""
    viewer = await viewer_of(request)
    try:
        query = SearchQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in error["loc"])
        raise http_error(web.HTTPBadRequest, "bad-query", f"{where}: {error['msg']}") from None
    services = request.app[state.SERVICES]
    archive = request.app[ARCHIVE]
    court = query.court
    if viewer.court is not None:
        if court not in (None, viewer.court):
            return web.json_response({"items": [], "limit": query.limit, "offset": query.offset})
        court = viewer.court
    rows = await asyncio.to_thread(
        catalog.list_recordings,
        services.db,
        archive.root,
        hearing_id=query.hearing,
        court=court,
        case_number=query.case,
        kind=query.kind,
        status=query.status,
        since=query.since,
        until=query.until,
        participant=query.participant,
        include_sealed=viewer.is_admin,
        limit=query.limit,
        offset=query.offset,
    )
    filters = query.model_dump(mode="json", exclude_defaults=True)
    await archive.record(viewer, "search", detail={"query": filters, "results": len(rows)})
    items = [_public(r) for r in rows]
    return web.json_response({"items": items, "limit": query.limit, "offset": query.offset})


def _file_url(recording_id: str, name: str, ticket: str) -> str:
    return f"/api/archive/recordings/{recording_id}/files/{quote(name)}?ticket={quote(ticket)}"


def _exhibit_url(recording_id: str, sha256: str, ticket: str) -> str:
    return f"/api/archive/recordings/{recording_id}/exhibits/{sha256}?ticket={quote(ticket)}"


def _exhibits_of(folder: Path) -> list[Exhibit]:
    """The exhibits on the recording's timeline (blocking: run it in a thread)."""
    exhibits, problems = read_exhibits(folder / EVENTS_NAME)
    for problem in problems:
        logger.warning("recording %s: events.jsonl %s", folder.name, problem)
    return exhibits


def _exhibit_items(recording_id: str, exhibits: list[Exhibit], ticket: str) -> list[dict[str, Any]]:
    return [{**e.as_dict(), "url": _exhibit_url(recording_id, e.sha256, ticket)} for e in exhibits]


async def detail(request: web.Request) -> web.Response:
    """A recording: tracks, segments, timeline, notes, pauses, integrity, files with URLs."""
    viewer = await viewer_of(request)
    recording_id = recording_id_of(request)
    archive = request.app[ARCHIVE]
    found, folder = await open_recording(request, viewer, recording_id, detail=True)
    ticket = archive.tickets.issue(viewer, recording_id, time.time())

    def describe() -> dict[str, Any]:
        files = folder_files(folder)
        return {
            "files": files,
            "origin": media_origin(folder),
            "composite_map": composite_map(folder),
            "exhibits": _exhibits_of(folder),
        }

    described = await asyncio.to_thread(describe)
    files = []
    composite = None
    for info in described["files"]:
        item = info.as_dict()
        item["url"] = _file_url(recording_id, info.name, ticket)
        files.append(item)
        if info.kind == "derived" and info.name.startswith("composite") and composite is None:
            composite = item["url"]
    base = f"/api/archive/recordings/{recording_id}"
    playable = [
        {
            "track_id": t["track_id"],
            "kind": t["kind"],
            "participant_name": t["participant_name"],
            "url": f"{base}/tracks/{t['track_id']}/playable.webm?ticket={quote(ticket)}",
        }
        for t in found["tracks"]
    ]
    events = found["events"]
    body = _public(found)
    body.update(
        {
            "notes": [e for e in events if e["kind"] == "note"],
            "pauses": [e for e in events if e["kind"] == "gap"],
            "integrity": {
                "verify_ok": found["verify_ok"],
                "verified_at": found["verified_at"],
                "problems": found["problems"],
            },
            "files": files,
            "exhibits": _exhibit_items(recording_id, described["exhibits"], ticket),
            "playback": {
                "origin": described["origin"],
                "composite": composite,
                "composite_map": described["composite_map"],
                "tracks": playable,
            },
            "ticket": ticket,
            "export_url": f"{base}/export?ticket={quote(ticket)}",
        }
    )
    await archive.record(viewer, "view", recording_id=recording_id, hearing_id=found["hearing_id"])
    return web.json_response(body)


async def serve_file(
    request: web.Request, path: Path, headers: dict[str, str]
) -> web.StreamResponse:
    """``web.FileResponse`` (Range, 206, 416), plus ``If-Range`` with an entity tag.

    aiohttp evaluates ``If-Range`` only as a date; an ETag there would be ignored and the range
    served from a file that may have changed. RFC 9110 §13.1.5: when the tag does not match
    (strong comparison), the whole file is sent. So the Range is dropped in that case.
    """
    if_range = request.headers.get("If-Range", "")
    if if_range.startswith(('"', "W/")) and "Range" in request.headers:
        stat = await asyncio.to_thread(path.stat)
        current = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        if if_range != current:
            stripped = request.headers.copy()
            del stripped["Range"]
            del stripped["If-Range"]
            response = web.FileResponse(path, headers=headers)
            await response.prepare(request.clone(headers=stripped))
            return response
    return web.FileResponse(path, headers=headers)


def _content_type(name: str) -> str:
    return _CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


async def media_file(request: web.Request) -> web.StreamResponse:
    """One file the manifest lists (or a descriptive file), with Range, 206/416 and If-Range."""
    recording_id = recording_id_of(request)
    viewer = await _media_viewer(request, recording_id)
    archive = request.app[ARCHIVE]
    found, folder = await open_recording(request, viewer, recording_id)
    name = request.match_info["name"]
    try:
        path, info = await asyncio.to_thread(resolve_file, folder, name)
    except FileNotFoundError:
        raise http_error(
            web.HTTPNotFound, "file-not-found", "no such file in this recording"
        ) from None
    download = request.query.get("download") in ("1", "true")
    await archive.record_once(
        viewer,
        "download" if download else "play",
        recording_id,
        hearing_id=found["hearing_id"],
        target=info.name,
        sha256=info.sha256,
    )
    headers = {"Content-Type": _content_type(name), "Cache-Control": "private, max-age=0"}
    if info.sha256:
        headers["X-Tingshen-SHA256"] = info.sha256
    if download:
        headers["Content-Disposition"] = f'attachment; filename="{Path(name).name}"'
    return await serve_file(request, path, headers)


async def exhibits(request: web.Request) -> web.Response:
    """The exhibits of a recording: name, SHA-256, size, who and when, and a download URL."""
    viewer = await viewer_of(request)
    recording_id = recording_id_of(request)
    archive = request.app[ARCHIVE]
    found, folder = await open_recording(request, viewer, recording_id)
    registered = await asyncio.to_thread(_exhibits_of, folder)
    ticket = archive.tickets.issue(viewer, recording_id, time.time())
    await archive.record(
        viewer,
        "view",
        recording_id=recording_id,
        hearing_id=found["hearing_id"],
        target="exhibits",
    )
    return web.json_response({"exhibits": _exhibit_items(recording_id, registered, ticket)})


def _content_disposition(name: str) -> str:
    """``attachment`` with the name for every browser: an ASCII fallback, and RFC 6266's
    ``filename*`` (RFC 5987, UTF-8) for the real one (exhibit names are often Chinese)."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\%;' else "_" for c in name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def exhibit_file(request: web.Request) -> web.StreamResponse:
    """One exhibit's file, by its SHA-256, when the recording's timeline registers it; always as
    an attachment (never rendered by the browser on this origin), with Range."""
    recording_id = recording_id_of(request)
    viewer = await _media_viewer(request, recording_id)
    archive = request.app[ARCHIVE]
    found, folder = await open_recording(request, viewer, recording_id)
    sha256 = request.match_info["sha256"]
    if not SHA256.fullmatch(sha256):
        raise http_error(web.HTTPNotFound, "exhibit-not-found", "no such exhibit")
    registered = await asyncio.to_thread(_exhibits_of, folder)
    exhibit = next((e for e in registered if e.sha256 == sha256), None)
    if exhibit is None:
        raise http_error(
            web.HTTPNotFound, "exhibit-not-found", "this recording registers no such exhibit"
        )
    data = request.app[state.SERVICES].settings.data
    path = stored_path(data, found["hearing_id"], sha256)

    def size_of() -> int | None:
        if path.is_symlink() or not path.is_file():
            return None
        return path.stat().st_size

    size = await asyncio.to_thread(size_of)
    if size is None:
        logger.error("recording %s: exhibit %s: stored file is gone", recording_id, sha256)
        raise http_error(web.HTTPNotFound, "exhibit-missing", "the exhibit's stored file is gone")
    if size != exhibit.bytes:
        logger.error("recording %s: exhibit %s: stored file changed size", recording_id, sha256)
        raise http_error(
            web.HTTPConflict, "exhibit-damaged", "the stored file is not the registered exhibit"
        )
    await archive.record_once(
        viewer,
        "download",
        recording_id,
        hearing_id=found["hearing_id"],
        target=f"exhibit {exhibit.name}",
        sha256=sha256,
    )
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": _content_disposition(exhibit.name),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, max-age=0",
        "X-Tingshen-SHA256": sha256,
    }
    return await serve_file(request, path, headers)


async def track_media(request: web.Request) -> web.StreamResponse:
    """One track's segments remuxed into one seekable WebM (cached; see server.playback)."""
    recording_id = recording_id_of(request)
    viewer = await _media_viewer(request, recording_id)
    archive = request.app[ARCHIVE]
    found, folder = await open_recording(request, viewer, recording_id)
    track_id = request.match_info["track_id"]
    if not RECORDING_ID.fullmatch(track_id):
        raise http_error(web.HTTPNotFound, "track-not-found", "no such track")
    made = await asyncio.to_thread(track_playable, folder, track_id, archive.cache / recording_id)
    if made is None:
        raise http_error(web.HTTPNotFound, "track-not-found", "no recorded media for this track")
    path, sha256 = made
    await archive.record_once(
        viewer,
        "play",
        recording_id,
        hearing_id=found["hearing_id"],
        target=f"{track_id} (playable)",
        sha256=sha256,
    )
    headers = {
        "Content-Type": "video/webm",
        "Cache-Control": "private, max-age=0",
        "X-Tingshen-SHA256": sha256,
    }
    return await serve_file(request, path, headers)


async def verify(request: web.Request) -> web.Response:
    """Verify the recording now against the server's key; the result is stored and audited."""
    viewer = await viewer_of(request)
    recording_id = recording_id_of(request)
    services = request.app[state.SERVICES]
    archive = request.app[ARCHIVE]
    found, folder = await open_recording(request, viewer, recording_id)
    trusted = services.signer.public_key_pem()
    report = await asyncio.to_thread(verify_recording, folder, trusted)
    await asyncio.to_thread(catalog.record_verification, services.db, recording_id, report.ok)
    await archive.record(
        viewer,
        "verify",
        recording_id=recording_id,
        hearing_id=found["hearing_id"],
        detail={"ok": report.ok, "faults": report.faults[:20]},
    )
    return web.json_response(
        {
            "ok": report.ok,
            "status": report.status,
            "segments": report.segments,
            "entries": report.entries,
            "faults": report.faults,
            "warnings": report.warnings,
            "key_sha256": services.signer.fingerprint(),
        }
    )


async def export(request: web.Request) -> web.StreamResponse:
    """The export bundle (zip): media, manifest, signature, key, timeline, audit, README."""
    recording_id = recording_id_of(request)
    viewer = await _media_viewer(request, recording_id)
    services = request.app[state.SERVICES]
    archive = request.app[ARCHIVE]
    found, folder = await open_recording(request, viewer, recording_id, detail=True)
    entries = await asyncio.to_thread(
        archive.audit.entries, recording_id=recording_id, limit=100_000
    )
    fd, name = tempfile.mkstemp(suffix=".zip", dir=archive.exports)
    out = Path(name)
    os.close(fd)
    try:
        result = await asyncio.to_thread(
            write_bundle,
            folder,
            out,
            detail=_public(found),
            audit_entries=[e.as_dict() for e in entries],
            created_by=viewer.subject,
            server_key_pem=services.signer.public_key_pem(),
            exhibits_dir=exhibit_folder(services.settings.data, found["hearing_id"]),
        )
        for problem in result.missing_exhibits:
            logger.error("recording %s: export without exhibit %s", recording_id, problem)
        await archive.record(
            viewer,
            "export",
            recording_id=recording_id,
            hearing_id=found["hearing_id"],
            target=f"tingshen-{recording_id}.zip",
            sha256=result.sha256,
            detail={
                "bytes": result.bytes,
                "files": result.files,
                "exhibits": result.exhibits,
                "missing_exhibits": list(result.missing_exhibits),
            },
        )
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="tingshen-{recording_id}.zip"',
                "X-Tingshen-SHA256": result.sha256,
            }
        )
        response.content_length = result.bytes
        await response.prepare(request)
        async for chunk in _chunks(out):
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(out.unlink, missing_ok=True)


async def _chunks(path: Path, size: int = 1 << 20) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(f.read, size):
            yield chunk
    finally:
        f.close()


async def recording_audit(request: web.Request) -> web.Response:
    """The audit entries of one recording (chain order)."""
    viewer = await viewer_of(request)
    recording_id = recording_id_of(request)
    archive = request.app[ARCHIVE]
    await open_recording(request, viewer, recording_id)
    entries = await asyncio.to_thread(
        archive.audit.entries, recording_id=recording_id, limit=10_000
    )
    return web.json_response({"entries": [e.as_dict() for e in entries]})


def setup(app: web.Application) -> None:
    """Register the archive routes and the archive service (after the server's services)."""
    from server import archive_admin, openapi

    async def archive_ctx(app: web.Application) -> AsyncIterator[None]:
        service = ArchiveService(app[state.SERVICES])
        app[ARCHIVE] = service
        await service.start()
        yield
        await service.stop()

    app.cleanup_ctx.append(archive_ctx)
    app.router.add_get("/archive", archive_page)
    app.router.add_get("/api/archive/recordings", search)
    base = "/api/archive/recordings/{recording_id}"
    app.router.add_get(base, detail)
    app.router.add_get(base + "/files/{name:.+}", media_file)
    app.router.add_get(base + "/tracks/{track_id}/playable.webm", track_media)
    app.router.add_get(base + "/exhibits", exhibits)
    app.router.add_get(base + "/exhibits/{sha256}", exhibit_file)
    app.router.add_post(base + "/verify", verify)
    app.router.add_get(base + "/export", export)
    app.router.add_get(base + "/audit", recording_audit)
    archive_admin.add_routes(app)
    openapi.add_routes(app)
