"""The HTTP API: hearings and invitations (admin), join-code exchange, health."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from server import state
from server.db import HearingRow, InviteRow, new_id, utcnow
from signaling.errors import ProtocolError
from signaling.hearing import HearingKind
from signaling.ratelimit import TokenBucket
from signaling.roles import Role, grants, parse_role
from signaling.tokens import new_join_code, normalize_join_code

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
MAX_INVITES = 100


class InviteIn(BaseModel):
    role: str
    name: str = Field(min_length=1, max_length=64)
    court: str | None = Field(
        default=None,
        max_length=32,
        description="Code of the court the invitee joins from (GET /api/courts); "
        "absent: the hearing's court (and it follows that court if the hearing's changes)",
    )


class HearingIn(BaseModel):
    court: str | None = Field(default=None, max_length=32)
    case_number: str = Field(alias="caseNumber", min_length=1, max_length=128)
    kind: HearingKind = HearingKind.hearing
    invites: list[InviteIn] = Field(default_factory=list, max_length=MAX_INVITES)
    #: A non-public hearing: no observers, recordings for admins only.
    sealed: bool = False
    #: Roles let in without the lobby (judge and clerk always are).
    auto_admit: list[str] = Field(default_factory=list, alias="autoAdmit", max_length=16)


def json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def require_admin(request: web.Request) -> None:
    services = request.app[state.SERVICES]
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise web.HTTPUnauthorized(
            text=json.dumps(
                {"error": {"code": "unauthorized", "message": "bearer token required"}}
            ),
            content_type="application/json",
        )
    try:
        claims = services.tokens.verify_admin(header[7:].strip(), time.time())
    except ProtocolError as error:
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": {"code": error.code, "message": error.message}}),
            content_type="application/json",
        ) from None
    if claims.role != Role.admin:
        raise web.HTTPForbidden(
            text=json.dumps({"error": {"code": "forbidden", "message": "admin only"}}),
            content_type="application/json",
        )


async def read_json(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=len(body))
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"code": "bad-json", "message": "body is not JSON"}}),
            content_type="application/json",
        ) from None


def unknown_invite_court(services: state.Services, invites: list[InviteIn]) -> web.Response | None:
    """A 400 ``unknown-court`` naming the first invitation whose court is not configured."""
    for index, invite in enumerate(invites):
        if invite.court is not None and invite.court not in services.courts:
            return json_error(
                400, "unknown-court", f"invites[{index}]: no court with code {invite.court!r}"
            )
    return None


def cross_court_refusal(
    kind: HearingKind, court: str, invites: Iterable[tuple[Role, str | None]]
) -> web.Response | None:
    """A 400 ``cross-court-needs-two-courts`` when a cross-court hearing's invitations (role, court)
    are not at two courts at least. Observers do not count: they watch unseen, from anywhere;
    a cross-court hearing is courtroom endpoints in two courts. ``court`` is the hearing's."""
    if kind is not HearingKind.cross_court:
        return None
    courts = {c or court for role, c in invites if grants(role).visible}
    if len(courts) >= 2:
        return None
    where = f"all are at {next(iter(courts))!r}" if courts else "there are none"
    return json_error(
        400,
        "cross-court-needs-two-courts",
        "a cross-court hearing needs invitations (observers aside) at two courts at least, "
        f"and {where}: name the court of the invitations at the other court",
    )


def new_invites(
    hearing_id: str, roles: list[Role], invites: list[InviteIn], expires: dt.datetime
) -> list[InviteRow]:
    """Invitation rows, each with its own single-use join code."""
    return [
        InviteRow(
            id=new_id(),
            hearing_id=hearing_id,
            role=role.value,
            name=invite.name,
            court=invite.court,
            code=new_join_code(secrets.token_bytes(16)),
            expires_at=expires,
        )
        for role, invite in zip(roles, invites, strict=True)
    ]


def _invite_wire(
    services: state.Services, hearing_id: str, invite: InviteRow, hearing_court: str | None = None
) -> dict[str, Any]:
    """An invitation as the API shows it; ``court`` is its own, else ``hearing_court``.

    Its token carries a ``court`` claim only when the invitation names a court: without one the
    participant is at the hearing's court, whatever that is when they join.
    """
    expires = invite.expires_at
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    token = services.tokens.issue_join(
        hearing_id,
        Role(invite.role),
        invite.name,
        time.time(),
        max(expires.timestamp() - time.time(), 1.0),
        participant_key=invite.id,
        court=invite.court,
    )
    return {
        "role": invite.role,
        "name": invite.name,
        "court": invite.court or hearing_court,
        "url": f"{services.settings.base_url}/hearing?token={quote(token)}",
        "code": invite.code,
        "expiresAt": expires.isoformat(),
    }


def _hearing_wire(row: HearingRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "court": row.court,
        "caseNumber": row.case_number,
        "kind": row.kind,
        "state": row.state,
        "sealed": bool(row.sealed),
        "createdAt": row.created_at.isoformat() if row.created_at else None,
        "endedAt": row.ended_at.isoformat() if row.ended_at else None,
    }


async def create_hearing(request: web.Request) -> web.Response:
    require_admin(request)
    services = request.app[state.SERVICES]
    try:
        body = HearingIn.model_validate(await read_json(request))
        roles = [parse_role(i.role) for i in body.invites]
        auto_admit = sorted({parse_role(r).value for r in body.auto_admit})
    except ValidationError as exc:
        return json_error(400, "bad-request", exc.errors(include_url=False)[0]["msg"])
    except ProtocolError as error:
        return json_error(400, error.code, error.message)
    if body.kind is HearingKind.consultation:
        return json_error(400, "bad-request", "consultation rooms are opened from a hearing")
    court = body.court or services.default_court
    if court not in services.courts:
        return json_error(400, "unknown-court", f"no court with code {court!r}")
    refusal = unknown_invite_court(services, body.invites) or cross_court_refusal(
        body.kind, court, ((role, i.court) for role, i in zip(roles, body.invites, strict=True))
    )
    if refusal is not None:
        return refusal
    expires = utcnow() + dt.timedelta(hours=services.settings.token_ttl_hours)

    def store() -> tuple[HearingRow, list[InviteRow]]:
        with services.db.session() as s:
            row = HearingRow(
                id=new_id(),
                court=court,
                case_number=body.case_number,
                kind=body.kind.value,
                auto_admit=",".join(auto_admit),
                sealed=body.sealed,
            )
            s.add(row)
            invites = new_invites(row.id, roles, body.invites, expires)
            s.add_all(invites)
            return row, invites

    row, invites = await asyncio.to_thread(store)
    logger.info("hearing %s created: %s %s", row.id, court, body.case_number)
    return web.json_response(
        {
            **_hearing_wire(row),
            "invites": [_invite_wire(services, row.id, i, row.court) for i in invites],
        },
        status=201,
    )


async def list_hearings(request: web.Request) -> web.Response:
    require_admin(request)
    services = request.app[state.SERVICES]
    rows = await asyncio.to_thread(services.db.list_hearings)
    result = []
    for row in rows:
        wire = _hearing_wire(row)
        live = services.live.get(row.id)
        wire["participants"] = len(live.connections) if live else 0
        result.append(wire)
    return web.json_response(result)


async def end_hearing(request: web.Request) -> web.Response:
    require_admin(request)
    services = request.app[state.SERVICES]
    hearing_id = request.match_info["hearing_id"]
    if not hearing_id.isalnum() or len(hearing_id) > 32:
        return json_error(404, "hearing-not-found", "no such hearing")
    if not await services.end_hearing(hearing_id):
        return json_error(404, "hearing-not-found", "no such hearing")
    return web.json_response({"id": hearing_id, "state": "closed"})


async def list_courts(request: web.Request) -> web.Response:
    services = request.app[state.SERVICES]
    return web.json_response([c.model_dump() for c in services.courts.values()])


async def exchange_join_code(request: web.Request) -> web.Response:
    """A terminal (or a person typing) trades a short join code for its hearing link, once."""
    services = request.app[state.SERVICES]
    peer = request.remote or "?"
    buckets = services.code_buckets  # per server, per client address
    bucket = buckets.setdefault(peer, TokenBucket(0.2, 5))
    if len(buckets) > 10000:
        buckets.clear()
    if not bucket.allow(time.monotonic()):
        return json_error(429, "rate-limited", "too many attempts; wait a minute")
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        return json_error(400, "bad-request", 'expected {"code": "..."}')
    try:
        code = normalize_join_code(body["code"])
    except ProtocolError as error:
        return json_error(400, error.code, error.message)

    def claim() -> InviteRow | None:
        from sqlalchemy import select

        with services.db.session() as s:
            invite = s.scalars(select(InviteRow).where(InviteRow.code == code)).first()
            if invite is None or invite.code_used_at is not None or invite.revoked_at is not None:
                return None
            expires = invite.expires_at
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=dt.UTC)
            if expires < utcnow():
                return None
            invite.code_used_at = utcnow()
            return invite

    invite = await asyncio.to_thread(claim)
    if invite is None:
        return json_error(404, "bad-code", "unknown, used or expired join code")
    wire = _invite_wire(services, invite.hearing_id, invite)
    token = wire["url"].split("token=", 1)[1]
    return web.json_response({"url": wire["url"], "token": token, "hearingId": invite.hearing_id})


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = request.app[state.SERVICES]

    def ping() -> None:
        from sqlalchemy import text

        with services.db.engine.connect() as c:
            c.execute(text("SELECT 1"))

    try:
        await asyncio.to_thread(ping)
    except Exception as exc:
        return web.json_response({"status": "unavailable", "database": str(exc)}, status=503)
    return web.json_response({"status": "ready", "hearings": len(services.live)})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/courts", list_courts)
    app.router.add_post("/api/hearings", create_hearing)
    app.router.add_get("/api/hearings", list_hearings)
    app.router.add_post("/api/hearings/{hearing_id}/end", end_hearing)
    app.router.add_post("/api/join-codes/exchange", exchange_join_code)
