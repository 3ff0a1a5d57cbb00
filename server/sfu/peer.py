"""One participant's `RTCPeerConnection`, negotiated by the server.

The server always offers (signaling/PROTOCOL.md): the first offer carries one `recvonly` m-line per
kind the participant may publish and one `sendonly` m-line per stream it subscribes to. When the set
of subscribed streams changes the peer renegotiates: new streams reuse an idle (`inactive`) slot of
the same kind or add a transceiver; streams that went away leave their slot `inactive`. Offers are
strictly sequential: a change while an offer is out is folded into the next offer.

Everything is BUNDLEd on one ICE/DTLS transport (`max-bundle`), so renegotiation never gathers new
candidates.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.sdp import candidate_from_sdp

from server.sfu import internals, red_transport
from server.sfu.baseline import RelayedSlot, RelayedStream, relay_track
from server.sfu.forwarder import IdleTrack, PublishedStream, SenderSlot
from server.sfu.quality import VideoGate
from server.sfu.redundancy import Mode
from signaling import red
from signaling.errors import ProtocolError

logger = logging.getLogger(__name__)

#: The only codecs negotiated: every browser has them, the recorder muxes them into WebM as they
#: arrive, and one codec per kind means a publisher's packets fit every subscriber unchanged.
#: No RTX: retransmissions go on the media SSRC, which keeps the forwarder's NACK path one line.
CODECS = {"audio": "audio/opus", "video": "video/VP8"}
ANSWER_TIMEOUT = 15.0
#: Candidates kept from before the first answer is applied (a browser has a handful).
MAX_EARLY_CANDIDATES = 32


@dataclass(frozen=True)
class Offer:
    offer_id: int
    sdp: str
    publish: dict[str, str]  # kind -> mid
    tracks: dict[str, tuple[str, str]]  # mid -> (participant id, kind)


def media_kind(kind: str) -> str:
    """A screen share is a second video stream."""
    return "audio" if kind == "audio" else "video"


def _codec_preferences(kind: str) -> list[RTCRtpCodecCapability]:
    return [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType == CODECS[kind]]


class Peer:
    """A participant's peer connection: its published streams and its subscription slots."""

    def __init__(
        self,
        participant_id: str,
        publish_kinds: Iterable[str],
        ice_servers: list[RTCIceServer],
        send_offer: Callable[[Offer], Awaitable[None]],
        on_published: Callable[[PublishedStream], None],
        on_failed: Callable[[str], None],
        keyframe_interval: float = 0.3,
        relay: MediaRelay | None = None,
        on_state: Callable[[str], None] | None = None,
        on_video_gate: Callable[[str], None] | None = None,
        on_unpublished: Callable[[PublishedStream], None] | None = None,
        audio_redundancy: Mode = "auto",
    ) -> None:
        self._audio_redundancy = audio_redundancy
        self._on_unpublished = on_unpublished
        self.participant_id = participant_id
        self._on_state = on_state
        self._on_video_gate = on_video_gate
        self.video_gate = VideoGate(now=time.monotonic())
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=ice_servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        internals.use_media_sockets(self.pc)  # media_ports, nat_1_1_mapping (settings)
        internals.prompt_triggered_checks(self.pc)  # fast ICE recovery after an outage
        self._send_offer = send_offer
        self._on_published = on_published
        self._on_failed = on_failed
        self._keyframe_interval = keyframe_interval
        self._relay = relay  # the benchmark's decode/re-encode baseline; None in production
        self.published: dict[str, PublishedStream] = {}
        self._publish_kinds = [k for k in ("audio", "video", "screen") if k in set(publish_kinds)]
        self.slots: list[SenderSlot] = []
        self._wanted: list[PublishedStream] = []
        self._offer_id = 0
        self._answer: asyncio.Future[str] | None = None
        self._dirty = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._active: set[str] = set()  # published kinds whose m-line the client sends on
        #: Trickled candidates that came before the answer they belong to was applied.
        self._early_candidates: list[RTCIceCandidate | None] = []
        self.pc.on("connectionstatechange", self._on_connection_state)
        self.connection_state = "new"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Create the publish m-lines and send the first offer."""
        for kind in self._publish_kinds:
            transceiver = self.pc.addTransceiver(media_kind(kind), direction="recvonly")
            transceiver.setCodecPreferences(_codec_preferences(media_kind(kind)))
            if self._relay is not None:
                self.published[kind] = RelayedStream(
                    self.participant_id, kind, transceiver, relay=self._relay
                )
            else:
                self.published[kind] = PublishedStream(
                    self.participant_id, kind, transceiver, self._keyframe_interval
                )
        self.request_negotiation()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for slot in self.slots:
            slot.close()
        for stream in self.published.values():
            stream.close()
        await self.pc.close()

    def _on_connection_state(self) -> None:
        old, new = self.connection_state, self.pc.connectionState
        if old == new:
            return
        self.connection_state = new
        logger.info("peer %s connection %s -> %s", self.participant_id, old, new)
        if self._on_state is not None:
            self._on_state(new)
        if new == "failed" and not self._closed:
            self._on_failed("ice-failed")

    def _update_published(self) -> None:
        """After an answer: which publish m-lines does the client send on now?

        The "track" event fires only the first time an m-line receives; a screen share stops and
        starts again on the same m-line, so the answer's directions are what counts.
        """
        for kind, stream in self.published.items():
            sending = stream.transceiver.currentDirection in ("recvonly", "sendrecv")
            if sending and kind not in self._active:
                self._active.add(kind)
                logger.info("peer %s publishes %s", self.participant_id, kind)
                if isinstance(stream, RelayedStream):
                    stream.start_sink()
                self._on_published(stream)
            elif not sending and kind in self._active:
                self._active.discard(kind)
                logger.info("peer %s stopped %s", self.participant_id, kind)
                if self._on_unpublished is not None:
                    self._on_unpublished(stream)

    # -- subscriptions -------------------------------------------------------------------------

    def subscribe(self, stream: PublishedStream) -> None:
        if stream not in self._wanted:
            self._wanted.append(stream)
            self.request_negotiation()

    def unsubscribe(self, stream: PublishedStream) -> None:
        if stream in self._wanted:
            self._wanted.remove(stream)
            for slot in self.slots:
                if slot.source is stream:
                    slot.detach()
            self.request_negotiation()

    def _apply_layout(self) -> None:
        """Give every wanted stream a slot; idle the others."""
        slot: SenderSlot | None
        for slot in self.slots:
            if slot.source is not None and slot.source not in self._wanted:
                slot.detach()
        served = {slot.source for slot in self.slots if slot.source is not None}
        for stream in self._wanted:
            if stream in served:
                continue
            kind = media_kind(stream.kind)
            if self._relay is not None:
                # Baseline: a sender's encode loop is bound to its track; no slot reuse.
                track = relay_track(self._relay, stream)
                transceiver = self.pc.addTransceiver(track, direction="sendonly")
                transceiver.setCodecPreferences(_codec_preferences(kind))
                relayed = RelayedSlot(transceiver, kind)
                self.slots.append(relayed)
                relayed.attach(stream)
                continue
            slot = next((s for s in self.slots if s.source is None and s.kind == kind), None)
            if slot is None:
                transceiver = self.pc.addTransceiver(IdleTrack(kind), direction="sendonly")
                transceiver.setCodecPreferences(_codec_preferences(kind))
                slot = SenderSlot(transceiver, kind, redundancy=self._audio_redundancy)
                slot.on_feedback = self._feedback
                slot.paused = kind == "video" and self.video_gate.state == "off"
                self.slots.append(slot)
            slot.attach(stream)
        for slot in self.slots:
            slot.transceiver.direction = "sendonly" if slot.source is not None else "inactive"

    # -- audio first ---------------------------------------------------------------------------

    def _feedback(self, kind: str, fraction_lost: float, remb_bps: int | None) -> None:
        now = time.monotonic()
        if remb_bps is not None:
            change = self.video_gate.observe_remb(remb_bps, now)
        else:
            change = self.video_gate.observe_loss(kind, fraction_lost, now)
        if change is None:
            return
        logger.info("peer %s: video %s (audio first)", self.participant_id, change)
        for slot in self.slots:
            if slot.kind == "video":
                slot.set_paused(change == "off")
        if self._on_video_gate is not None:
            self._on_video_gate(change)

    # -- negotiation ---------------------------------------------------------------------------

    def request_negotiation(self) -> None:
        if self._closed:
            return
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._negotiate())

    async def _negotiate(self) -> None:
        try:
            while self._dirty and not self._closed:
                self._dirty = False
                self._apply_layout()
                if not self.pc.getTransceivers():
                    break  # nothing to carry yet (an observer before anyone publishes): no offer
                offer = await self.pc.createOffer()
                sdp = with_opus_fec(offer.sdp)
                if self._audio_redundancy != "off":
                    sdp = red.offer_red(sdp)
                offer = RTCSessionDescription(sdp=sdp, type="offer")
                await self.pc.setLocalDescription(offer)
                self._unwrap_red(sdp)
                self._offer_id += 1
                self._answer = asyncio.get_running_loop().create_future()
                await self._send_offer(self._describe_offer())
                sdp = await asyncio.wait_for(asyncio.shield(self._answer), ANSWER_TIMEOUT)
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
                await self._apply_early_candidates()
                for slot in self.slots:
                    slot.activate()
                    if slot.kind == "audio" and self._audio_redundancy != "off":
                        slot.red_pt = red.red_payload_type(sdp, slot.transceiver.mid or "")
                self._update_published()
        except TimeoutError:
            logger.warning("peer %s did not answer offer %d", self.participant_id, self._offer_id)
            self._on_failed("answer-timeout")
        except ConnectionError:
            logger.info("peer %s: socket gone before the offer went out", self.participant_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("peer %s negotiation failed", self.participant_id)
            self._on_failed("negotiation-failed")
        finally:
            self._answer = None

    def _unwrap_red(self, offer: str) -> None:
        """A publisher may send its microphone in RED (offered first on that m-line): unwrap it
        before the forwarder and the recorder see the packets."""
        stream = self.published.get("audio")
        if stream is None or self._audio_redundancy == "off":
            return
        pt = red.red_payload_types(offer).get(stream.transceiver.mid or "")
        if pt is not None:
            red_transport.install(stream.receiver, pt)

    def _describe_offer(self) -> Offer:
        local = self.pc.localDescription
        publish = {
            kind: stream.transceiver.mid or ""
            for kind, stream in self.published.items()
            if stream.transceiver.mid
        }
        tracks: dict[str, tuple[str, str]] = {}
        for slot in self.slots:
            if slot.source is not None and slot.transceiver.mid:
                tracks[slot.transceiver.mid] = (slot.source.participant_id, slot.source.kind)
        return Offer(self._offer_id, local.sdp, publish, tracks)

    async def handle_answer(self, sdp: str, offer_id: int) -> None:
        """Apply the client's answer to the outstanding offer; bad SDP leaves the offer open."""
        answer = self._answer
        if answer is None or answer.done() or offer_id != self._offer_id:
            raise ProtocolError("stale-answer", f"no offer {offer_id} is waiting for an answer")
        try:
            from aiortc.sdp import SessionDescription

            parsed = SessionDescription.parse(sdp)
        except Exception as exc:
            raise ProtocolError("bad-sdp", f"answer is not valid SDP: {exc}") from None
        local = self.pc.localDescription
        if local is None or len(parsed.media) != sdp_media_count(local.sdp):
            raise ProtocolError("bad-sdp", "answer does not match the offer's media sections")
        answer.set_result(sdp)

    async def add_candidate(self, candidate: str, sdp_mid: str | None, index: int | None) -> None:
        parsed: RTCIceCandidate | None = None
        if candidate:
            try:
                parsed = candidate_from_sdp(candidate.removeprefix("candidate:"))
            except Exception:
                raise ProtocolError("bad-message", "malformed ICE candidate") from None
        if parsed is not None:
            parsed.sdpMid = sdp_mid
            parsed.sdpMLineIndex = index if index is not None else (0 if sdp_mid is None else None)
        if self.pc.remoteDescription is None:
            # A browser trickles candidates right behind its answer, which the negotiation task
            # has not applied yet: keep them for it (dropped, a rejoin after an outage had only
            # peer-reflexive discovery to go on, and that needs the client's checks to get through).
            if len(self._early_candidates) < MAX_EARLY_CANDIDATES:
                self._early_candidates.append(parsed)
            return
        await self._add_parsed_candidate(parsed)

    async def _apply_early_candidates(self) -> None:
        early, self._early_candidates = self._early_candidates, []
        for candidate in early:
            try:
                await self._add_parsed_candidate(candidate)
            except ProtocolError as exc:
                logger.info("peer %s: early candidate refused: %s", self.participant_id, exc)

    async def _add_parsed_candidate(self, parsed: RTCIceCandidate | None) -> None:
        if parsed is None:
            await self.pc.addIceCandidate(None)
            return
        try:
            await self.pc.addIceCandidate(parsed)
        except Exception:
            raise ProtocolError("bad-message", "ICE candidate refused") from None

    # -- introspection -------------------------------------------------------------------------

    @property
    def publishing(self) -> bool:
        """Whether the client sends any media on its publish m-lines now."""
        return bool(self._active)

    def slot_for(self, stream: PublishedStream) -> SenderSlot | None:
        return next((s for s in self.slots if s.source is stream), None)

    @property
    def transceivers(self) -> list[RTCRtpTransceiver]:
        return self.pc.getTransceivers()


def with_opus_fec(sdp: str) -> str:
    """Ask for Opus in-band FEC on every Opus payload type of an offer.

    A sender adds FEC when the receiver's description says `useinbandfec=1`; on a lossy link the
    next packet then carries a low-bitrate copy of the previous one, so a single loss is repaired
    without a retransmission (audio never waits for NACKs). aiortc writes no fmtp for Opus itself.
    """
    lines = sdp.split("\r\n")
    opus = {
        line.split()[0].split(":")[1]
        for line in lines
        if line.startswith("a=rtpmap:") and line.split()[1].lower().startswith("opus/")
    }
    out: list[str] = []
    for line in lines:
        out.append(line)
        if line.startswith("a=rtpmap:") and line.split()[0].split(":")[1] in opus:
            pt = line.split()[0].split(":")[1]
            if not any(x.startswith(f"a=fmtp:{pt} ") for x in lines):
                out.append(f"a=fmtp:{pt} minptime=10;useinbandfec=1")
    return "\r\n".join(out)


def sdp_media_count(sdp: str) -> int:
    return sum(1 for line in sdp.splitlines() if line.startswith("m="))
