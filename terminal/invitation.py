"""The terminal's invitation: a single-use join code traded once for a hearing link, kept on disk.

How this works: a join code (``ABCD-EFGH``) can be exchanged only once
(``POST /api/join-codes/exchange``), so the link it buys is the terminal's only way back into the
hearing after a dropped link, a terminal reboot or a server restart. :class:`InvitationStore` keeps
it in the state file (JSON, written atomically, mode 0600: the token is a bearer secret). The app
asks :meth:`InvitationStore.current` for a link: the stored one while it belongs to the configured
code and server, otherwise it exchanges the code. A link the server refuses for good (bad or
expired token, hearing not found or ended) is :meth:`forgotten <InvitationStore.forget>`; then only
a new code helps, and the app waits for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from signaling.errors import ProtocolError
from signaling.tokens import normalize_join_code

logger = logging.getLogger(__name__)

__all__ = ["CodeRefused", "Invitation", "InvitationStore", "ServerUnreachable", "exchange_code"]

EXCHANGE_TIMEOUT = 10.0


class CodeRefused(Exception):
    """The server will not trade this code (wrong, used or expired), or the code is malformed."""

    def __init__(self, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        #: set for "rate-limited": try again after this many seconds
        self.retry_after = retry_after


class ServerUnreachable(Exception):
    """No answer from the server (down, restarting, link cut): try again with backoff."""


@dataclass(frozen=True)
class Invitation:
    """A hearing link obtained for a join code."""

    server: str
    code: str
    url: str
    token: str
    hearing_id: str

    def __repr__(self) -> str:
        return f"Invitation(hearing={self.hearing_id}, code={self.code})"


async def exchange_code(server: str, code: str) -> Invitation:
    """Trade `code` for its hearing link at `server` (raises `CodeRefused`, `ServerUnreachable`)."""
    try:
        normalized = normalize_join_code(code)
    except ProtocolError as refusal:
        raise CodeRefused(
            "bad-code", f"the join code {code!r} is malformed: {refusal.message}"
        ) from None
    url = server.rstrip("/") + "/api/join-codes/exchange"
    timeout = aiohttp.ClientTimeout(total=EXCHANGE_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, json={"code": normalized}) as response,
        ):
            body: Any = await response.json(content_type=None)
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        raise ServerUnreachable(f"{url}: {exc or type(exc).__name__}") from None
    if status == 200 and isinstance(body, dict) and {"url", "token", "hearingId"} <= body.keys():
        return Invitation(server, normalized, body["url"], body["token"], body["hearingId"])
    error = body.get("error", {}) if isinstance(body, dict) else {}
    error_code = str(error.get("code", status)) if isinstance(error, dict) else str(status)
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    if status == 429:
        raise CodeRefused("rate-limited", message or "too many attempts", retry_after=60.0)
    if status >= 500:
        raise ServerUnreachable(f"{url}: HTTP {status}")
    raise CodeRefused(error_code, message or f"HTTP {status}")


class InvitationStore:
    """The state file holding the terminal's current invitation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._invitation: Invitation | None = None
        self._loaded = False

    def load(self) -> Invitation | None:
        """The stored invitation, if the file holds a valid one."""
        if not self._loaded:
            self._loaded = True
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._invitation = Invitation(**data["invitation"])
            except FileNotFoundError:
                pass
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning("state file %s unreadable (%s): starting afresh", self.path, exc)
        return self._invitation

    def save(self, invitation: Invitation) -> None:
        """Keep `invitation` (atomically: a power cut leaves the old or the new file)."""
        self._invitation = invitation
        self._loaded = True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"invitation": asdict(invitation)}, f, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.path)

    def forget(self) -> None:
        """The server refused the stored link for good: drop it."""
        if self._invitation is not None:
            logger.info("forgetting the link of hearing %s", self._invitation.hearing_id)
        self._invitation = None
        self._loaded = True
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def matches(self, server: str, code: str | None) -> Invitation | None:
        """The stored invitation if it was bought with `code` (any code when None) at `server`."""
        invitation = self.load()
        if invitation is None or invitation.server.rstrip("/") != server.rstrip("/"):
            return None
        if code is not None:
            try:
                if normalize_join_code(code) != invitation.code:
                    return None
            except ProtocolError:
                return None
        return invitation

    async def current(self, server: str, code: str | None) -> Invitation | None:
        """The link to join with: the stored one for `code`, or `code` exchanged now.

        Returns None when there is neither (no code configured and nothing stored). Raises
        `CodeRefused` or `ServerUnreachable` from the exchange.
        """
        stored = self.matches(server, code)
        if stored is not None:
            return stored
        if code is None:
            return None
        invitation = await exchange_code(server, code)
        await asyncio.to_thread(self.save, invitation)
        logger.info("join code exchanged for hearing %s", invitation.hearing_id)
        return invitation
