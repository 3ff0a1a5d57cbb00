"""The archive's administrative endpoints: seal a hearing, issue tokens, check the audit log, backup.

Sealing and token issuing are for admins only; the audit log check and the backup endpoints are
for admins and archivists. Every action is written to the audit log.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from server import state
from server.api import read_json
from server.archive_access import Viewer, http_error
from server.archive_api import ARCHIVE, RECORDING_ID, viewer_of
from server.db import HearingRow
from signaling.errors import ProtocolError
from signaling.roles import Role, can_join, parse_role

__all__ = ["add_routes"]

MAX_TOKEN_HOURS = 24 * 366


class SealIn(BaseModel):
    sealed: bool
    reason: str = Field(default="", max_length=500)


class TokenIn(BaseModel):
    role: str = Field(max_length=32)
    hearing: str | None = Field(default=None, max_length=32)
    subject: str | None = Field(default=None, min_length=1, max_length=64)
    ttl_hours: float = Field(default=12.0, gt=0, le=MAX_TOKEN_HOURS, alias="ttlHours")


def _bad(exc: ValidationError) -> web.HTTPException:
    error = exc.errors(include_url=False)[0]
    where = ".".join(str(x) for x in error["loc"])
    return http_error(web.HTTPBadRequest, "bad-request", f"{where}: {error['msg']}")


async def _admin(request: web.Request) -> Viewer:
    viewer = await viewer_of(request)
    if not viewer.is_admin:
        raise http_error(web.HTTPForbidden, "forbidden", "admin only")
    return viewer


async def _staff(request: web.Request) -> Viewer:
    viewer = await viewer_of(request)
    if viewer.role not in (Role.admin, Role.archivist):
        raise http_error(web.HTTPForbidden, "forbidden", "archivists and admins only")
    return viewer


async def seal(request: web.Request) -> web.Response:
    """Seal or unseal a hearing: a sealed hearing's recordings are refused to all but admins."""
    viewer = await _admin(request)
    services = request.app[state.SERVICES]
    hearing_id = request.match_info["hearing_id"]
    if not hearing_id.isalnum() or len(hearing_id) > 32:
        raise http_error(web.HTTPNotFound, "hearing-not-found", "no such hearing")
    try:
        body = SealIn.model_validate(await read_json(request))
    except ValidationError as exc:
        raise _bad(exc) from None

    def store() -> bool:
        with services.db.session() as s:
            row = s.get(HearingRow, hearing_id)
            if row is None:
                return False
            row.sealed = body.sealed
            return True

    if not await asyncio.to_thread(store):
        raise http_error(web.HTTPNotFound, "hearing-not-found", "no such hearing")
    await request.app[ARCHIVE].record(
        viewer,
        "seal" if body.sealed else "unseal",
        hearing_id=hearing_id,
        detail={"reason": body.reason},
    )
    return web.json_response({"id": hearing_id, "sealed": body.sealed})


async def issue_token(request: web.Request) -> web.Response:
    """A bearer token: archivist or admin (no hearing), or a hearing role's join token."""
    viewer = await _admin(request)
    services = request.app[state.SERVICES]
    try:
        body = TokenIn.model_validate(await read_json(request))
        role = parse_role(body.role)
    except ValidationError as exc:
        raise _bad(exc) from None
    except ProtocolError as error:
        raise http_error(web.HTTPBadRequest, error.code, error.message) from None
    now, ttl = time.time(), body.ttl_hours * 3600.0
    subject = body.subject or role.value
    try:
        if body.hearing is None:
            if can_join(role):
                raise http_error(
                    web.HTTPBadRequest, "bad-request", f"a {role.value} token needs --hearing"
                )
            token = services.tokens.issue_admin(subject, now, ttl, role)
        else:
            if not can_join(role):
                raise http_error(
                    web.HTTPBadRequest, "bad-request", f"a {role.value} token takes no hearing"
                )
            row = await asyncio.to_thread(services.db.get_hearing, body.hearing)
            if row is None:
                raise http_error(web.HTTPNotFound, "hearing-not-found", "no such hearing")
            token = services.tokens.issue_join(body.hearing, role, subject, now, ttl)
    except ProtocolError as error:
        raise http_error(web.HTTPBadRequest, error.code, error.message) from None
    await request.app[ARCHIVE].record(
        viewer,
        "token",
        hearing_id=body.hearing,
        target=subject,
        detail={"role": role.value, "ttl_hours": body.ttl_hours},
    )
    return web.json_response(
        {
            "token": token,
            "role": role.value,
            "subject": subject,
            "hearing": body.hearing,
            "expires_at": now + ttl,
        },
        status=201,
    )


async def audit_verify(request: web.Request) -> web.Response:
    """Walk the whole audit chain and report what is wrong with it."""
    viewer = await _staff(request)
    archive = request.app[ARCHIVE]
    report = await asyncio.to_thread(archive.audit.verify)
    await archive.record(
        viewer, "audit-verify", detail={"ok": report.ok, "entries": report.entries}
    )
    return web.json_response(
        {
            "ok": report.ok,
            "entries": report.entries,
            "head": report.head,
            "head_checked": report.head_checked,
            "faults": report.faults,
        }
    )


async def audit_entries(request: web.Request) -> web.Response:
    """Audit entries in chain order (``after``: seq to continue from; ``limit`` up to 1000)."""
    await _staff(request)
    archive = request.app[ARCHIVE]
    try:
        after = int(request.query.get("after", "-1"))
        limit = int(request.query.get("limit", "200"))
    except ValueError:
        raise http_error(web.HTTPBadRequest, "bad-query", "after and limit are integers") from None
    if not (-1 <= after < 1 << 62 and 1 <= limit <= 1000):
        raise http_error(web.HTTPBadRequest, "bad-query", "after >= -1, 1 <= limit <= 1000")
    entries = await asyncio.to_thread(archive.audit.entries, after_seq=after, limit=limit)
    return web.json_response({"entries": [e.as_dict() for e in entries]})


async def backup_status(request: web.Request) -> web.Response:
    """Replica targets, files copied, the last fixity report."""
    await _staff(request)
    return web.json_response(request.app[ARCHIVE].replicator.status())


async def backup_fixity(request: web.Request) -> web.Response:
    """Run a fixity check now (``?recording=ID`` for one recording) and return its report."""
    viewer = await _staff(request)
    archive = request.app[ARCHIVE]
    services = request.app[state.SERVICES]
    if not archive.replicator.targets:
        raise http_error(web.HTTPConflict, "no-backup", "no backup target is configured")
    folders: list[Path] | None = None
    recording_id = request.query.get("recording")
    if recording_id is not None:
        from server import catalog

        if not RECORDING_ID.fullmatch(recording_id):
            raise http_error(web.HTTPNotFound, "recording-not-found", "no such recording")
        found = await asyncio.to_thread(
            catalog.recording_summary, services.db, archive.root, recording_id
        )
        if found is None:
            raise http_error(web.HTTPNotFound, "recording-not-found", "no such recording")
        folders = [Path(found["path"])]
    await archive.replicator.replicate_once()
    report = await archive.replicator.fixity(folders)
    body: dict[str, Any] = report.as_dict()
    await archive.record(
        viewer, "fixity-run", recording_id=recording_id, detail={"clean": report.clean}
    )
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    """Register the admin endpoints (called by ``server.archive_api.setup``)."""
    app.router.add_post("/api/archive/hearings/{hearing_id}/seal", seal)
    app.router.add_post("/api/tokens", issue_token)
    app.router.add_get("/api/archive/audit", audit_entries)
    app.router.add_get("/api/archive/audit/verify", audit_verify)
    app.router.add_get("/api/archive/backup", backup_status)
    app.router.add_post("/api/archive/backup/fixity", backup_fixity)
