"""Scheduling API for the courts' case systems: read, update, invite, cancel a hearing.

Creating and listing live in api.py (`POST /api/hearings`, `GET /api/hearings`); this module adds
the rest of a hearing's life before it opens. A hearing can be changed only while it is
`scheduled`: once someone has joined, its court, case number and kind are part of the record.
Every route needs the admin bearer token; the OpenAPI description is at `/api/openapi.json`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from server import state
from server.api import (
    MAX_INVITES,
    InviteIn,
    _hearing_wire,
    _invite_wire,
    cross_court_refusal,
    json_error,
    new_invites,
    read_json,
    require_admin,
    unknown_invite_court,
)
from server.db import HearingRow, InviteRow, utcnow
from signaling.errors import ProtocolError
from signaling.hearing import HearingKind, HearingState
from signaling.roles import Role, parse_role

logger = logging.getLogger(__name__)


class HearingPatch(BaseModel):
    """Fields of a scheduled hearing that may change; absent fields stay as they are."""

    model_config = {"extra": "forbid", "populate_by_name": True}

    court: str | None = Field(default=None, max_length=32)
    case_number: str | None = Field(default=None, alias="caseNumber", min_length=1, max_length=128)
    kind: HearingKind | None = None
    sealed: bool | None = None
    auto_admit: list[str] | None = Field(default=None, alias="autoAdmit", max_length=16)


class InvitesIn(BaseModel):
    invites: list[InviteIn] = Field(min_length=1, max_length=MAX_INVITES)


def _hearing_id(request: web.Request) -> str | None:
    hearing_id = request.match_info["hearing_id"]
    if not hearing_id.isalnum() or len(hearing_id) > 32:
        return None
    return hearing_id


def _detail(services: state.Services, row: HearingRow, invites: list[InviteRow]) -> dict[str, Any]:
    wire = _hearing_wire(row)
    wire["autoAdmit"] = [r for r in row.auto_admit.split(",") if r]
    wire["invites"] = [
        {**_invite_wire(services, row.id, i, row.court), "revoked": i.revoked_at is not None}
        for i in invites
    ]
    return wire


async def get_hearing(request: web.Request) -> web.Response:
    require_admin(request)
    services = request.app[state.SERVICES]
    hearing_id = _hearing_id(request)
    row = await asyncio.to_thread(services.db.get_hearing, hearing_id) if hearing_id else None
    if row is None or hearing_id is None:
        return json_error(404, "hearing-not-found", "no such hearing")
    invites = await asyncio.to_thread(services.db.invites_of, hearing_id)
    return web.json_response(_detail(services, row, invites))


async def update_hearing(request: web.Request) -> web.Response:
    require_admin(request)
    services = request.app[state.SERVICES]
    hearing_id = _hearing_id(request)
    if hearing_id is None:
        return json_error(404, "hearing-not-found", "no such hearing")
    try:
        patch = HearingPatch.model_validate(await read_json(request))
        auto_admit = (
            None
            if patch.auto_admit is None
            else sorted({parse_role(r).value for r in patch.auto_admit})
        )
    except ValidationError as exc:
        return json_error(400, "bad-request", exc.errors(include_url=False)[0]["msg"])
    except ProtocolError as error:
        return json_error(400, error.code, error.message)
    if patch.court is not None and patch.court not in services.courts:
        return json_error(400, "unknown-court", f"no court with code {patch.court!r}")
    if patch.kind is HearingKind.consultation:
        return json_error(400, "bad-request", "consultation rooms are opened from a hearing")

    def apply() -> tuple[str | web.Response, HearingRow | None, list[InviteRow]]:
        with services.db.session() as s:
            row = s.get(HearingRow, hearing_id)
            if row is None:
                return "missing", None, []
            if row.state != HearingState.scheduled or hearing_id in services.live:
                return "opened", row, []
            invites = list(s.scalars(select(InviteRow).where(InviteRow.hearing_id == row.id)))
            if patch.kind is not None or patch.court is not None:
                # Made cross-court, or moved: its invitations must still span two courts.
                refusal = cross_court_refusal(
                    patch.kind or HearingKind(row.kind),
                    patch.court or row.court,
                    ((Role(i.role), i.court) for i in invites if i.revoked_at is None),
                )
                if refusal is not None:
                    return refusal, None, []
            if patch.court is not None:
                row.court = patch.court
            if patch.case_number is not None:
                row.case_number = patch.case_number
            if patch.kind is not None:
                row.kind = patch.kind.value
            if patch.sealed is not None:
                row.sealed = patch.sealed
            if auto_admit is not None:
                row.auto_admit = ",".join(auto_admit)
            return "ok", row, invites

    outcome, row, invites = await asyncio.to_thread(apply)
    if isinstance(outcome, web.Response):
        return outcome
    if outcome == "missing" or row is None:
        return json_error(404, "hearing-not-found", "no such hearing")
    if outcome == "opened":
        return json_error(409, "hearing-opened", "a hearing that has opened cannot be changed")
    logger.info("hearing %s updated", hearing_id)
    return web.json_response(_detail(services, row, invites))


async def add_invites(request: web.Request) -> web.Response:
    """More invitations for a hearing that has not ended (a witness called during the hearing)."""
    require_admin(request)
    services = request.app[state.SERVICES]
    hearing_id = _hearing_id(request)
    if hearing_id is None:
        return json_error(404, "hearing-not-found", "no such hearing")
    try:
        body = InvitesIn.model_validate(await read_json(request))
        roles = [parse_role(i.role) for i in body.invites]
    except ValidationError as exc:
        return json_error(400, "bad-request", exc.errors(include_url=False)[0]["msg"])
    except ProtocolError as error:
        return json_error(400, error.code, error.message)
    refusal = unknown_invite_court(services, body.invites)
    if refusal is not None:
        return refusal
    expires = utcnow() + dt.timedelta(hours=services.settings.token_ttl_hours)

    def store() -> tuple[HearingRow | None, list[InviteRow]]:
        with services.db.session() as s:
            row = s.get(HearingRow, hearing_id)
            if row is None or row.state == HearingState.closed:
                return row, []
            invites = new_invites(row.id, roles, body.invites, expires)
            s.add_all(invites)
            return row, invites

    row, invites = await asyncio.to_thread(store)
    if row is None:
        return json_error(404, "hearing-not-found", "no such hearing")
    if not invites:
        return json_error(409, "hearing-ended", "the hearing has ended")
    return web.json_response(
        {"invites": [_invite_wire(services, row.id, i, row.court) for i in invites]}, status=201
    )


async def cancel_hearing(request: web.Request) -> web.Response:
    """Cancel a hearing that has not opened (scheduled -> closed); an open one is ended instead."""
    require_admin(request)
    services = request.app[state.SERVICES]
    hearing_id = _hearing_id(request)
    row = await asyncio.to_thread(services.db.get_hearing, hearing_id) if hearing_id else None
    if row is None or hearing_id is None:
        return json_error(404, "hearing-not-found", "no such hearing")
    if row.state != HearingState.scheduled or hearing_id in services.live:
        return json_error(409, "hearing-opened", "this hearing has opened: end it instead")
    await services.end_hearing(hearing_id)
    logger.info("hearing %s cancelled before it opened", hearing_id)
    return web.json_response({"id": hearing_id, "state": "closed", "cancelled": True})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/hearings/{hearing_id}", get_hearing)
    app.router.add_patch("/api/hearings/{hearing_id}", update_hearing)
    app.router.add_post("/api/hearings/{hearing_id}/invites", add_invites)
    app.router.add_post("/api/hearings/{hearing_id}/cancel", cancel_hearing)


def openapi_paths() -> dict[str, Any]:
    """The scheduling routes (and create/list/end from api.py) for /api/openapi.json."""
    from server.api import HearingIn

    error = {"description": "error", "content": {"application/json": {}}}
    hearing_id = {
        "name": "hearing_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9]{1,32}$"},
    }

    def body(model: type[BaseModel]) -> dict[str, Any]:
        return {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema(by_alias=True)}},
        }

    ok = {"description": "OK", "content": {"application/json": {}}}
    invite_courts = (
        "Each invitation may name the court its invitee joins from (`court`, a code of "
        "GET /api/courts; absent: the hearing's court); a code not configured is 400 "
        "`unknown-court`. Each invitation in the answer has `court` (its own, else the hearing's)."
    )
    return {
        "/api/courts": {
            "get": {
                "summary": "The configured courts: code, name, name_en, level (no token needed)",
                "responses": {"200": ok},
            },
        },
        "/api/hearings": {
            "post": {
                "summary": "Create a hearing with its invitations (admin)",
                "description": invite_courts
                + " A `cross-court` hearing must have invitations (observers aside) at two "
                "courts at least, else 400 `cross-court-needs-two-courts`.",
                "requestBody": body(HearingIn),
                "responses": {"201": ok, "400": error, "401": error},
            },
            "get": {"summary": "List hearings (admin)", "responses": {"200": ok, "401": error}},
        },
        "/api/hearings/{hearing_id}": {
            "get": {
                "summary": "A hearing with its invitations",
                "parameters": [hearing_id],
                "responses": {"200": ok, "401": error, "404": error},
            },
            "patch": {
                "summary": "Change a scheduled hearing",
                "description": "Making it `cross-court`, or moving a cross-court hearing to "
                "another court, is 400 `cross-court-needs-two-courts` unless its invitations "
                "(observers and revoked ones aside) are still at two courts at least.",
                "parameters": [hearing_id],
                "requestBody": body(HearingPatch),
                "responses": {"200": ok, "400": error, "404": error, "409": error},
            },
        },
        "/api/hearings/{hearing_id}/invites": {
            "post": {
                "summary": "Add invitations",
                "description": invite_courts,
                "parameters": [hearing_id],
                "requestBody": body(InvitesIn),
                "responses": {"201": ok, "400": error, "404": error, "409": error},
            },
        },
        "/api/hearings/{hearing_id}/cancel": {
            "post": {
                "summary": "Cancel a hearing that has not opened",
                "parameters": [hearing_id],
                "responses": {"200": ok, "404": error, "409": error},
            },
        },
        "/api/hearings/{hearing_id}/exhibits": {
            "post": {
                "summary": "Register an exhibit during the hearing (the presenter's join token; "
                "the file is the body, X-Exhibit-Name names it; SHA-256 on the timeline)",
                "parameters": [hearing_id],
                "requestBody": {"required": True, "content": {"application/octet-stream": {}}},
                "responses": {
                    "201": ok,
                    "400": error,
                    "401": error,
                    "403": error,
                    "409": error,
                    "413": error,
                },
            },
        },
        "/api/hearings/{hearing_id}/end": {
            "post": {
                "summary": "End a hearing (everyone leaves; the recording completes)",
                "parameters": [hearing_id],
                "responses": {"200": ok, "404": error},
            },
        },
    }
