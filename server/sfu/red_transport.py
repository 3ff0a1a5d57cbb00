"""Receiving redundant audio (RFC 2198 RED) with aiortc, which does not know the format.

How this works. The server wraps a lossy subscriber's Opus in RED (server/sfu/redundancy.py). The
client's answer keeps RED on its audio m-lines (`signaling.red.answer_red`) while aiortc itself
negotiates plain Opus; this module sits in front of the aiortc receiver's packet handler. A RED
packet is split into its blocks: each redundant block whose packet never arrived is handed to the
receiver first, as the Opus packet it copies (its sequence number is the primary's minus its
distance), then the primary. The jitter buffer thus sees the lost packet before the one after it,
never a gap. Plain Opus packets pass through untouched.

Receiver reports must still tell the server what the network lost (the server's redundancy and
video gate act on them), so a recovered packet is taken back out of aiortc's receive statistics.
That and the handler itself are aiortc 1.16 internals, checked by tests/test_aiortc_internals.py.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.rtp import RtpPacket

from signaling import red

logger = logging.getLogger(__name__)

#: Sequence numbers remembered per stream to tell a lost packet from one already handed on.
SEEN_WINDOW = 256


class RedReceiver:
    """Unwraps RED on one aiortc `RTCRtpReceiver`; `payload_type` is the negotiated RED type."""

    def __init__(self, receiver: RTCRtpReceiver, payload_type: int) -> None:
        self.receiver = receiver
        self.payload_type = payload_type
        self.red_packets = 0
        self.recovered = 0  # packets given back from redundancy
        self.malformed = 0
        self._seen: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._handle = receiver._handle_rtp_packet
        receiver._handle_rtp_packet = self._handle_rtp_packet  # type: ignore[method-assign]

    def _remember(self, ssrc: int, seq: int) -> bool:
        """Note a packet as handed on; False if it already was."""
        key = (ssrc, seq)
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > SEEN_WINDOW:
            self._seen.popitem(last=False)
        return True

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if packet.payload_type != self.payload_type:
            if self._remember(packet.ssrc, packet.sequence_number):
                await self._handle(packet, arrival_time_ms)
            return
        self.red_packets += 1
        try:
            blocks = red.decode(packet.payload)
        except ValueError as exc:
            self.malformed += 1
            logger.debug("malformed RED packet %d: %s", packet.sequence_number, exc)
            return
        distance = len(blocks) - 1
        for place, block in enumerate(blocks[:-1]):
            seq = (packet.sequence_number - (distance - place)) & 0xFFFF
            if not self._remember(packet.ssrc, seq):
                continue
            copy = RtpPacket(
                payload_type=block.payload_type,
                sequence_number=seq,
                timestamp=(packet.timestamp - block.timestamp_offset) & 0xFFFFFFFF,
                ssrc=packet.ssrc,
                payload=block.data,
            )
            await self._handle(copy, arrival_time_ms)
            _uncount(self.receiver, packet.ssrc)
            self.recovered += 1
        if not self._remember(packet.ssrc, packet.sequence_number):
            return
        primary = blocks[-1]
        packet.payload_type = primary.payload_type
        packet.payload = primary.data
        await self._handle(packet, arrival_time_ms)


def _uncount(receiver: RTCRtpReceiver, ssrc: int) -> None:
    """Take a recovered packet back out of the receiver's RTCP statistics (not a network arrival)."""
    streams: dict[int, Any] = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    stats = streams.get(ssrc)
    if stats is not None and stats.packets_received > 0:
        stats.packets_received -= 1


def _route_red(receiver: RTCRtpReceiver) -> None:
    """Let the transport's RTP router hand RED packets to their receiver.

    aiortc routes a packet only when its payload type is one the receiver negotiated, and aiortc
    negotiated plain Opus: RED packets would be dropped before any receiver sees them. The patched
    router falls back to the packet's SSRC (from the offer's `a=ssrc`) or MID for a payload type
    that the receiver it names unwraps.
    """
    router = receiver.transport._rtp_router
    if getattr(router, "_tingshen_red_routing", False):
        return
    route = router.route_rtp

    def route_rtp(packet: RtpPacket) -> Any:
        target = route(packet)
        if target is not None:
            return target
        candidate = router.ssrc_table.get(packet.ssrc)
        if candidate is None and packet.extensions.mid is not None:
            candidate = router.mid_table.get(packet.extensions.mid)
        unwrapper: RedReceiver | None = getattr(candidate, "_tingshen_red", None)
        if unwrapper is not None and unwrapper.payload_type == packet.payload_type:
            return candidate
        return None

    router.route_rtp = route_rtp  # type: ignore[method-assign]
    router._tingshen_red_routing = True  # type: ignore[attr-defined]


def install(receiver: RTCRtpReceiver, payload_type: int) -> RedReceiver:
    """Unwrap RED on `receiver` (once; a second call updates the payload type)."""
    existing: RedReceiver | None = getattr(receiver, "_tingshen_red", None)
    if existing is not None:
        existing.payload_type = payload_type
        return existing
    unwrapper = RedReceiver(receiver, payload_type)
    receiver._tingshen_red = unwrapper  # type: ignore[attr-defined]
    _route_red(receiver)
    return unwrapper
