"""Who may see which recording: bearer tokens, media tickets, sealed hearings.

How this works: every archive request names a :class:`Viewer`. An ``Authorization: Bearer``
header carries either an admin or archivist token (``TokenAuthority.verify_admin``) or the join
token of a judge, who may then see the recordings of the hearings of that judge's court (the court
of the hearing the token was issued for). Anything else, or nothing, is 401. A sealed hearing is
refused (403) to everyone but an admin; so are a judge's requests for another court's hearings.

A ``<video>`` element cannot send an ``Authorization`` header, so the recording detail hands out
file URLs carrying a *media ticket*: an HMAC-SHA256 signed, short-lived grant naming the viewer and
one recording (``?ticket=...``). A ticket opens only that recording's files and is re-checked
against the hearing's seal on every request; it never opens search, detail or export.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from aiohttp import web

from server.db import HearingRow
from signaling.errors import ProtocolError
from signaling.roles import Role
from signaling.tokens import TokenAuthority

__all__ = [
    "TICKET_TTL",
    "TicketSigner",
    "Viewer",
    "bearer_viewer",
    "check_hearing",
    "http_error",
]

TICKET_TTL = 6 * 3600.0
_TICKET_CONTEXT = b"tingshen-media-ticket-v1"
_MAX_TICKET_CHARS = 1024


def http_error(status: type[web.HTTPException], code: str, message: str) -> web.HTTPException:
    """An HTTP error with the API's JSON error body (raise it)."""
    return status(
        text=json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False),
        content_type="application/json",
    )


@dataclass(frozen=True)
class Viewer:
    """The person behind a request: ``subject`` as the audit log names them, ``role``, and for a
    judge the one court whose hearings they may see."""

    subject: str
    role: Role
    court: str | None = None

    @property
    def is_admin(self) -> bool:
        """Admins alone see sealed hearings (and seal, unseal, issue tokens)."""
        return self.role == Role.admin

    def may_see(self, hearing: HearingRow) -> bool:
        """Whether this viewer may see the recordings of ``hearing``."""
        if self.is_admin:
            return True
        if hearing.sealed:
            return False
        return self.court is None or hearing.court == self.court


def check_hearing(viewer: Viewer, hearing: HearingRow) -> None:
    """Raise 403 unless ``viewer`` may see ``hearing``'s recordings."""
    if viewer.may_see(hearing):
        return
    if hearing.sealed and not viewer.is_admin:
        raise http_error(web.HTTPForbidden, "sealed", "this hearing is sealed")
    raise http_error(web.HTTPForbidden, "forbidden", "this recording is not yours to see")


def bearer_viewer(
    request: web.Request, tokens: TokenAuthority, judge_court: dict[str, str]
) -> Viewer:
    """The viewer named by the request's bearer token; raises 401 without a valid one.

    ``judge_court`` maps hearing ids to court codes (the caller looks the hearing up: this module
    does no I/O); a judge's token whose hearing is not in it is refused.
    """
    token = _bearer(request)
    now = time.time()
    try:
        claims = tokens.verify_admin(token, now)
    except ProtocolError as error:
        if error.code == "token-expired":
            raise http_error(web.HTTPUnauthorized, error.code, error.message) from None
    else:
        if claims.role in (Role.admin, Role.archivist):
            return Viewer(f"{claims.role.value}:{claims.subject}", claims.role)
        raise http_error(web.HTTPForbidden, "forbidden", "an archivist token is required")
    try:
        join = tokens.verify_join(token, now)
    except ProtocolError as error:
        raise http_error(web.HTTPUnauthorized, error.code, error.message) from None
    if join.role != Role.judge:
        raise http_error(web.HTTPForbidden, "forbidden", "an archivist token is required")
    court = judge_court.get(join.hearing_id)
    if court is None:
        raise http_error(web.HTTPUnauthorized, "bad-token", "the token's hearing is unknown")
    return Viewer(f"judge:{join.name}@{join.hearing_id}", Role.judge, court)


def judge_hearing_id(request: web.Request, tokens: TokenAuthority) -> str | None:
    """The hearing id of the request's judge join token, if it carries one (else None)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    try:
        claims = tokens.verify_join(header[7:].strip(), time.time())
    except ProtocolError:
        return None
    return claims.hearing_id if claims.role == Role.judge else None


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not header[7:].strip():
        raise http_error(
            web.HTTPUnauthorized, "unauthorized", "an archivist bearer token is required"
        )
    return header[7:].strip()


class TicketSigner:
    """Signs and checks media tickets with a key derived from the server's token secret."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, _TICKET_CONTEXT, hashlib.sha256).digest()

    def issue(self, viewer: Viewer, recording_id: str, now: float, ttl: float = TICKET_TTL) -> str:
        """A ticket for ``viewer`` to fetch the files of ``recording_id`` until ``now + ttl``."""
        payload = {
            "s": viewer.subject,
            "r": viewer.role.value,
            "c": viewer.court,
            "id": recording_id,
            "exp": int(now + ttl),
        }
        body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
        mac = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(mac)}"

    def check(self, ticket: str, recording_id: str, now: float) -> Viewer:
        """The viewer a ticket names; raises 401 for a forged, expired or foreign ticket."""
        if not ticket or len(ticket) > _MAX_TICKET_CHARS or not ticket.isascii():
            raise http_error(web.HTTPUnauthorized, "bad-ticket", "malformed media ticket")
        body, _, mac = ticket.partition(".")
        want = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        try:
            given = _unb64(mac)
            payload = json.loads(_unb64(body))
            viewer = Viewer(str(payload["s"]), Role(payload["r"]), payload.get("c"))
            expires, ticket_id = int(payload["exp"]), str(payload["id"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise http_error(web.HTTPUnauthorized, "bad-ticket", "malformed media ticket") from None
        if not hmac.compare_digest(want, given):
            raise http_error(web.HTTPUnauthorized, "bad-ticket", "media ticket does not verify")
        if ticket_id != recording_id:
            raise http_error(web.HTTPUnauthorized, "bad-ticket", "ticket is for another recording")
        if now >= expires:
            raise http_error(web.HTTPUnauthorized, "ticket-expired", "media ticket has expired")
        return viewer


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
