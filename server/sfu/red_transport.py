"""Redundant audio (RFC 2198 RED) over aiortc, which does not know the format: both directions.

aiortc negotiates plain Opus; RED rides next to it, negotiated in the SDP by signaling/red.py.

Receiving (`RedReceiver`): used by the server on a publisher's microphone m-line and by the
terminal's client on the audio it subscribes to. It sits in front of the aiortc receiver's packet
handler. A RED packet is split into its blocks: each redundant block whose packet never arrived is
handed on first, as the Opus packet it copies (its sequence number is the primary's minus its
distance), then the primary. The jitter buffer (and on the server the forwarder and the recorder)
thus see the lost packet before the one after it, never a gap. Plain Opus passes through untouched.
Receiver reports must still tell the sender what the network lost (redundancy and the video gate
act on them), so a recovered packet is taken back out of aiortc's receive statistics.

Sending (`RedSender`): the terminal's client wraps its microphone's Opus in RED toward the server
while the server's receiver reports show loss (same policy as the server's, server/sfu/redundancy.py).
The packets aiortc's sender builds are rewritten on their way to the transport: payload type and
payload only, so sequence numbers, timestamps and header extensions stay aiortc's.

Everything here touches aiortc 1.16 internals (a receiver's packet handler and statistics, the
transport's RTP router and send function), checked by tests/test_aiortc_internals.py.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtp import RtcpRrPacket, RtcpSrPacket, RtpPacket

from server.sfu.redundancy import Mode, RecentPackets, RedundancyPolicy
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
        primary = blocks[-1]
        for place, block in enumerate(blocks[:-1]):
            seq = (packet.sequence_number - (distance - place)) & 0xFFFF
            if block.payload_type != primary.payload_type:
                continue  # only Opus in Opus is negotiated ("<opus>/<opus>")
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


class RedSender:
    """Wraps one aiortc audio sender's Opus in RED while its receiver reports show loss."""

    def __init__(
        self, sender: RTCRtpSender, payload_type: int, opus_payload_type: int, mode: Mode = "auto"
    ) -> None:
        self.sender = sender
        self.payload_type = payload_type
        self.opus_payload_type = opus_payload_type
        self.policy = RedundancyPolicy(mode)
        self.red_packets = 0
        self._recent = RecentPackets()
        self._floor: int | None = None
        transport = sender.transport
        self._send = transport._send_rtp
        transport._send_rtp = self._send_rtp  # type: ignore[method-assign]
        handle_rtcp = sender._handle_rtcp_packet

        async def _handle_rtcp_packet(packet: Any) -> None:
            if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
                for report in packet.reports:
                    if report.ssrc == sender._ssrc:
                        self.policy.observe(report.fraction_lost / 256.0, time.monotonic())
            await handle_rtcp(packet)

        sender._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]

    async def _send_rtp(self, data: bytes) -> None:
        """The transport's send, for every sender on it (BUNDLE): rewrite only our Opus."""
        if (
            len(data) < 12
            or int.from_bytes(data[8:12], "big") != self.sender._ssrc
            or data[1] & 0x7F != self.opus_payload_type
        ):
            await self._send(data)
            return
        start = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10:  # header extension: 4-byte header + its length in words
            if len(data) < start + 4:
                await self._send(data)
                return
            start += 4 + 4 * int.from_bytes(data[start + 2 : start + 4], "big")
        end = len(data) - (data[-1] if data[0] & 0x20 else 0)  # padding
        payload = data[start:end]
        seq = int.from_bytes(data[2:4], "big")
        ts = int.from_bytes(data[4:8], "big")
        if self._floor is None:
            self._floor = seq
        distance = self.policy.distance
        if distance:
            blocks = self._recent.blocks(seq, ts, distance, self._floor)
            wrapped = red.encode(self.opus_payload_type, payload, blocks)
            header = bytearray(data[:start])
            header[0] &= ~0x20 & 0xFF  # no padding on the rewritten packet
            header[1] = (header[1] & 0x80) | self.payload_type
            self.red_packets += 1
            self._recent.add(seq, ts, payload)
            await self._send(bytes(header) + wrapped)
            return
        self._recent.add(seq, ts, payload)
        await self._send(data)


def install_sender(
    sender: RTCRtpSender, payload_type: int, opus_payload_type: int, mode: Mode = "auto"
) -> RedSender:
    """Send RED on `sender` (once; a second call updates the payload types)."""
    existing: RedSender | None = getattr(sender, "_tingshen_red", None)
    if existing is not None:
        existing.payload_type = payload_type
        existing.opus_payload_type = opus_payload_type
        return existing
    wrapper = RedSender(sender, payload_type, opus_payload_type, mode)
    sender._tingshen_red = wrapper  # type: ignore[attr-defined]
    return wrapper
