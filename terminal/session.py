"""One connection of the terminal to its hearing: a WebSocket, a peer connection, and a watchdog.

How this works: :meth:`HearingSession.run` joins with a `HearingClient` (terminal/client.py), fresh
tracks over the terminal's long-lived camera and microphone, and a fresh :class:`CourtFeed`, then
watches the connection four times a second until something ends it. It returns a
:class:`SessionEnd` saying why, and the app (terminal/app.py) decides what to do next: reconnect
with backoff, go back to the join code, or wait for the next hearing. A session never retries by
itself: aiortc has no ICE restart, so every reconnect is a new socket and a new peer connection.

What ends a session: the socket closes (server restart, dropped TCP), the server says ``bye`` or a
fatal ``error``, the peer connection fails, the media path does not come up within
`connect_timeout`, media that should arrive stops for `media_timeout` (a cut link, long before
ICE consent gives up after 30 s), or the terminal is told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websockets
from aiortc import MediaStreamTrack

from terminal.client import FATAL_TOKEN_CODES, HearingClient, JoinRefused
from terminal.config import TerminalConfig
from terminal.court import CourtFeed
from terminal.invitation import Invitation
from terminal.status import TerminalStatus

logger = logging.getLogger(__name__)

__all__ = ["HearingSession", "SessionEnd"]

WATCH_INTERVAL = 0.25


@dataclass(frozen=True)
class SessionEnd:
    """Why a session ended, and what the app should make of it."""

    #: unreachable, refused, bye, socket-closed, ice-failed, connect-timeout, media-stalled, stopped
    reason: str
    detail: str = ""
    #: the server's error code or bye reason, when there is one
    code: str | None = None
    #: whether the token itself was refused for good (go back to the join code)
    token_refused: bool = False
    #: whether media flowed in both directions at some point (then backoff starts afresh)
    healthy: bool = False


TrackFactory = Callable[[], dict[str, MediaStreamTrack]]


class HearingSession:
    """One attempt: join, keep answering offers, watch, and clean up."""

    def __init__(
        self,
        config: TerminalConfig,
        invitation: Invitation,
        status: TerminalStatus,
        court: CourtFeed,
        make_tracks: TrackFactory,
    ) -> None:
        self.config = config
        self.invitation = invitation
        self.status = status
        self.court = court
        self._make_tracks = make_tracks
        self.client: HearingClient | None = None
        self._healthy = False
        self._leave = False
        #: False while waiting in the lobby (no offer, no media until `admitted`)
        self.admitted = True
        self._admitted_at: float | None = None

    async def run(self, stop: asyncio.Event) -> SessionEnd:
        """Run until the connection ends or `stop` is set; always cleans up."""
        client = HearingClient.from_invite(
            self.invitation.url,
            tracks=self._make_tracks(),
            on_track=self.court.on_track,
            ice_addresses=self.config.ice_addresses,
        )
        self.client = client
        try:
            try:
                welcome = await client.join(timeout=self.config.connect_timeout)
            except JoinRefused as refused:
                return self._refused(refused)
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                return SessionEnd("unreachable", f"{type(exc).__name__}: {exc}".rstrip(": "))
            self._welcome(welcome)
            return await self._watch(client, stop)
        finally:
            await self._close(client)

    def _refused(self, refused: JoinRefused) -> SessionEnd:
        message = str(refused.reply.get("message", ""))
        logger.warning("join refused: %s %s", refused.code, message)
        return SessionEnd(
            "refused",
            message or refused.code,
            code=refused.code,
            token_refused=refused.code in FATAL_TOKEN_CODES,
        )

    def _welcome(self, welcome: dict[str, Any]) -> None:
        status = self.status
        hearing = welcome.get("hearing", {})
        participant = welcome.get("participant", {})
        status.hearing_id = hearing.get("id")
        status.case_number = str(hearing.get("caseNumber", ""))
        status.hearing_state = hearing.get("state")
        status.pause_reason = None
        status.participant_id = participant.get("id")
        status.name = str(participant.get("name", ""))
        # Whom the court window shows: the floor decides in a meeting, the spotlight in a hearing;
        # both are sent right after this welcome when set.
        self.court.meeting = hearing.get("kind") == "meeting"
        self.court.spotlight = None
        self.court.floor_holder = None
        for other in welcome.get("participants", []):
            self.court.add(other)
        self.admitted = bool(welcome.get("admitted", True))
        logger.info(
            "joined hearing %s as %s (%s)%s",
            status.hearing_id,
            status.participant_id,
            participant.get("role"),
            "" if self.admitted else ", waiting in the lobby",
        )
        if not self.admitted:
            status.set_connection("lobby", "waiting for the judge to admit this terminal")

    async def _watch(self, client: HearingClient, stop: asyncio.Event) -> SessionEnd:
        self._admitted_at = time.monotonic() if self.admitted else None
        connected_at: float | None = None
        while True:
            end = self._handle_messages(client)
            if end is not None:
                return end
            self._sync_tracks(client)
            if stop.is_set():
                self._leave = True
                return SessionEnd("stopped", healthy=self._healthy)
            if client.closed.is_set():
                end = self._handle_messages(client)  # a bye may have come just before the close
                return end or SessionEnd("socket-closed", "the server closed the connection")
            now = time.monotonic()
            pc = client.pc
            state = pc.connectionState if pc is not None else "new"
            if state in ("failed", "closed"):
                return SessionEnd("ice-failed", f"peer connection {state}", healthy=self._healthy)
            if state == "connected":
                if connected_at is None:
                    connected_at = now
                    self.status.set_connection("connected")
                    since = now - (self._admitted_at or now)
                    logger.info("media path up %.2f s after join or admission", since)
                if self.court.stalled(now, self.config.media_timeout):
                    return SessionEnd(
                        "media-stalled",
                        f"no media for {self.config.media_timeout:g} s",
                        healthy=self._healthy,
                    )
                # Healthy (the next failure starts the backoff afresh): media flowed, or the
                # connection held a while (nobody may be publishing yet).
                up = now - connected_at
                if not self._healthy and (up > 10.0 or (self.court.media_flowing and up > 2.0)):
                    self._healthy = True
            elif (
                connected_at is None
                and self._admitted_at is not None
                and now - self._admitted_at > self.config.connect_timeout
            ):
                return SessionEnd(
                    "connect-timeout",
                    f"media path not up after {self.config.connect_timeout:g} s ({state})",
                )
            elif connected_at is not None:
                # "disconnected": ICE lost its pair but may find it again; the media watchdog
                # (or "failed") decides.
                if self.court.stalled(now, self.config.media_timeout):
                    return SessionEnd(
                        "media-stalled", f"ICE {state}, no media", healthy=self._healthy
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_INTERVAL)

    def _handle_messages(self, client: HearingClient) -> SessionEnd | None:
        while True:
            try:
                message = client.messages.get_nowait()
            except asyncio.QueueEmpty:
                return None
            end = self._handle(message)
            if end is not None:
                return end

    def _handle(self, message: dict[str, Any]) -> SessionEnd | None:
        kind = message.get("type")
        status = self.status
        if kind == "participant-joined" or kind == "participant-updated":
            participant = message.get("participant")
            if isinstance(participant, dict):
                self.court.add(participant)
        elif kind == "participant-left":
            self.court.remove(str(message.get("participantId")))
        elif kind == "floor":
            holder = message.get("holder")
            self.court.floor_holder = holder if isinstance(holder, str) else None
        elif kind == "spotlight":
            spotlit = message.get("participantId")
            self.court.spotlight = spotlit if isinstance(spotlit, str) else None
            logger.info("spotlight on %s", self.court.spotlight)
        elif kind == "hearing-state":
            old = (status.hearing_state, status.pause_reason)
            status.hearing_state = message.get("state")
            status.pause_reason = message.get("pauseReason")
            logger.info("hearing state %s -> %s", old, (status.hearing_state, status.pause_reason))
        elif kind == "bye":
            reason = str(message.get("reason", ""))
            logger.info("server says bye: %s", reason)
            return SessionEnd(
                "bye",
                reason,
                code=reason,
                token_refused=reason in ("ended", "ejected"),
                healthy=self._healthy,
            )
        elif kind == "error":
            code = str(message.get("code", ""))
            logger.warning("server error %s: %s", code, message.get("message"))
            status.last_error = f"{code}: {message.get('message', '')}"
            if message.get("fatal"):
                return SessionEnd(
                    "refused",
                    str(message.get("message", code)),
                    code=code,
                    token_refused=code in FATAL_TOKEN_CODES,
                    healthy=self._healthy,
                )
        elif kind == "admitted":
            logger.info("admitted by the court")
            self.admitted = True
            self._admitted_at = time.monotonic()
            status.set_connection("connecting", "admitted")
        elif kind in ("track-published", "participant-waiting", "note"):
            pass  # the offer that follows carries a new track; the lobby is the judge's business
        else:
            logger.debug("unhandled message %s", kind)
        return None

    def _sync_tracks(self, client: HearingClient) -> None:
        # Offers are answered inside HearingClient; its `remote` map is the latest offer's tracks.
        self.court.set_tracks(
            {mid: {"participantId": p, "kind": k} for mid, (p, k) in client.remote.items()}
        )

    async def _close(self, client: HearingClient) -> None:
        try:
            await asyncio.wait_for(client.close(leave=self._leave), 5.0)
        except (TimeoutError, Exception) as exc:  # cleanup must not stop the next attempt
            logger.warning("closing the connection: %s", exc or type(exc).__name__)
        await self.court.stop()
