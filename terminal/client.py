"""A Python hearing client (aiortc + websockets): the core of the defendant's terminal.

It speaks signaling/PROTOCOL.md: joins with a token, answers every server offer (attaching its own
tracks to the m-lines the server lists under `publish`), and reports the remote tracks it receives
with the participant each belongs to. The functional tests and the benchmark drive the server with it;
the terminal application (terminal/app.py) runs one `HearingClient` per connection attempt.

Client messages are built with the protocol module the server parses them with
(`signaling.messages`), so both ends agree on the wire format by construction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import websockets
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

from server.sfu import red_transport
from signaling import red
from signaling.messages import Answer, ClientMessage, Join, Leave, Mute
from terminal import jitter

logger = logging.getLogger(__name__)

TrackCallback = Callable[[str, str, MediaStreamTrack, RTCRtpTransceiver], None]

#: Refusals after which the same token will never be accepted (PROTOCOL.md, "Refused joins").
FATAL_TOKEN_CODES = frozenset({"bad-token", "token-expired", "hearing-not-found", "hearing-ended"})


class JoinRefused(RuntimeError):
    """The server answered `join` with an `error` (or something other than `welcome`)."""

    def __init__(self, message: dict[str, Any]) -> None:
        super().__init__(f"join refused: {message}")
        self.reply = message
        self.code = str(message.get("code") or message.get("type") or "unknown")
        self.fatal = bool(message.get("fatal", message.get("type") == "bye"))


def ws_url_from_invite(url: str) -> tuple[str, str]:
    """`http://host:port/hearing?token=T` -> (`ws://host:port/ws`, `T`)."""
    parts = urlsplit(url)
    token = parse_qs(parts.query).get("token", [""])[0]
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, "/ws", "", "")), token


def use_local_addresses(addresses: list[str]) -> None:
    """Gather ICE candidates on exactly these local addresses (process-wide, like aioice).

    aioice never offers 127.0.0.1; a terminal on a closed network may also want one interface only.
    """
    import aioice.ice

    chosen = list(addresses)
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [
        a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)
    ]


class HearingClient:
    """One participant's connection to a hearing."""

    def __init__(
        self,
        ws_url: str,
        token: str,
        tracks: dict[str, MediaStreamTrack] | None = None,
        on_track: TrackCallback | None = None,
        ice_addresses: list[str] | None = None,
        audio_redundancy: bool = True,
    ) -> None:
        #: Redundant audio (RFC 2198) on lossy links, both ways (server/sfu/red_transport.py)
        self.audio_redundancy = audio_redundancy
        if ice_addresses is not None:
            use_local_addresses(ice_addresses)
        self.ws_url = ws_url
        self.token = token
        self.tracks = tracks or {}
        self.on_track = on_track
        self.welcome: dict[str, Any] | None = None
        self.participant_id: str | None = None
        self.pc: RTCPeerConnection | None = None
        self.remote: dict[str, tuple[str, str]] = {}  # mid -> (participant id, kind)
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.errors: list[dict[str, Any]] = []
        self.offers = 0
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._seen_tracks: set[int] = set()
        self.closed = asyncio.Event()

    @classmethod
    def from_invite(cls, url: str, **kwargs: Any) -> HearingClient:
        ws_url, token = ws_url_from_invite(url)
        return cls(ws_url, token, **kwargs)

    async def join(self, timeout: float = 10.0) -> dict[str, Any]:
        """Open the socket, send `join`, and wait for `welcome`.

        Raises `JoinRefused` when the server answers otherwise, `TimeoutError` when it does not
        answer within `timeout`, and `OSError` / `websockets.WebSocketException` when it cannot
        be reached.
        """
        self._ws = await asyncio.wait_for(
            websockets.connect(self.ws_url, max_size=2**20, close_timeout=2), timeout
        )
        await self.send_message(Join(token=self.token))
        raw = await asyncio.wait_for(self._ws.recv(), timeout)
        message = json.loads(raw)
        if message.get("type") != "welcome":
            await self._ws.close()
            raise JoinRefused(message)
        self.welcome = message
        self.participant_id = message["participant"]["id"]
        ice = [
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in message.get("iceServers", [])
        ]
        # max-bundle: the server BUNDLEs every m-line on one transport. With aiortc's default
        # ("balanced") a second video m-line in the first offer stays on a transport that BUNDLE
        # then discards, and that video never arrives.
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=ice, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.pc.on("track", self._on_track)
        self._reader = asyncio.create_task(self._read())
        return message

    async def send(self, message: dict[str, Any]) -> None:
        """Send a message given as a JSON-ready dict (tests use it to send anything at all)."""
        await self._ws.send(json.dumps(message))

    async def send_message(self, message: ClientMessage) -> None:
        """Send one protocol message, encoded by `signaling.messages`."""
        await self._ws.send(message.to_json())

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "offer":
                    await self._answer(message)
                    continue
                if kind == "error":
                    self.errors.append(message)
                await self.messages.put(message)
        except websockets.ConnectionClosed:
            pass
        except Exception:
            logger.exception("client %s: reader failed", self.participant_id)
        finally:
            self.closed.set()

    async def _answer(self, message: dict[str, Any]) -> None:
        pc = self.pc
        assert pc is not None
        self.remote = {mid: (t["participantId"], t["kind"]) for mid, t in message["tracks"].items()}
        await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="offer"))
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "audio":
                jitter.install(transceiver.receiver)  # plays on past a lost packet
        publish: dict[str, str] = message["publish"]
        for transceiver in pc.getTransceivers():
            kind = next((k for k, mid in publish.items() if mid == transceiver.mid), None)
            if kind is not None and kind in self.tracks:
                if transceiver.sender.track is not self.tracks[kind]:
                    transceiver.sender.replaceTrack(self.tracks[kind])
                transceiver.direction = "sendonly"
            elif kind is not None:
                # nothing to send on this m-line (yet, or any more: a screen share stopped)
                if transceiver.sender.track is not None:
                    transceiver.sender.replaceTrack(None)
                transceiver.direction = "inactive"
            elif kind is None:
                transceiver.direction = "recvonly"
        await pc.setLocalDescription(await pc.createAnswer())
        sdp = pc.localDescription.sdp
        if self.audio_redundancy:
            sdp = self._accept_red(message["sdp"], sdp, set(publish.values()))
        await self.send_message(Answer(sdp=sdp, offer_id=message["offerId"]))
        self.offers += 1
        # A reused m-line keeps its receiver track: report it again for its new owner.
        for transceiver in pc.getTransceivers():
            track = transceiver.receiver.track
            if (
                track is not None
                and transceiver.mid in self.remote
                and id(track) in self._seen_tracks
            ):
                self._report(transceiver, track)

    def _accept_red(self, offer: str, answer: str, publish_mids: set[str]) -> str:
        """Keep the offer's RED in the answer: unwrap it in front of each audio receiver, and
        wrap the microphone's Opus in it while the server reports loss."""
        assert self.pc is not None
        offered = red.red_payload_types(offer)
        for transceiver in self.pc.getTransceivers():
            mid = transceiver.mid or ""
            pt = offered.get(mid)
            if pt is None or transceiver.kind != "audio":
                continue
            if mid in publish_mids:
                opus = red.codec_payload_type(offer, mid, "opus")
                if opus is not None:
                    red_transport.install_sender(transceiver.sender, pt, opus)
            else:
                red_transport.install(transceiver.receiver, pt)
        return red.answer_red(offer, answer)

    def _on_track(self, track: MediaStreamTrack) -> None:
        assert self.pc is not None
        for transceiver in self.pc.getTransceivers():
            if transceiver.receiver.track is track:
                self._seen_tracks.add(id(track))
                self._report(transceiver, track)
                return

    def _report(self, transceiver: RTCRtpTransceiver, track: MediaStreamTrack) -> None:
        owner = self.remote.get(transceiver.mid or "")
        if owner is not None and self.on_track is not None:
            self.on_track(owner[0], owner[1], track, transceiver)

    async def next_message(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for the next server message of `kind` (others are skipped)."""

        async def wait() -> dict[str, Any]:
            while True:
                message = await self.messages.get()
                if message.get("type") == kind:
                    return message

        return await asyncio.wait_for(wait(), timeout)

    async def mute(self, kind: str, muted: bool) -> None:
        track = self.tracks.get(kind)
        if track is not None:
            track.enabled = not muted  # type: ignore[attr-defined]
        await self.send_message(Mute(kind=kind, muted=muted))

    async def close(self, leave: bool = True) -> None:
        """Leave (unless `leave` is false: a drop as the server sees it), close socket and pc."""
        if self._ws is not None:
            if leave:
                with contextlib.suppress(Exception):
                    await self.send_message(Leave())
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self.pc is not None:
            await self.pc.close()
