"""RTP-level media forwarding: the SFU's hot path.

How this works. A publisher's track arrives on an aiortc `RTCRtpReceiver`. We wrap that receiver's
`_handle_rtp_packet` (per instance) so that every parsed, decrypted RTP packet is first handed to its
`PublishedStream`, which fans it out to each subscriber's `SenderSlot`. A slot writes a fresh RTP
header for its subscriber (its own SSRC, a sequence number and timestamp shifted by a per-slot offset,
the negotiated payload type, its MID and abs-send-time extensions), keeps the bytes in a small history
for NACKs, and SRTP-protects and sends them on the subscriber's transport. Nothing is decoded or
re-encoded; the cost per subscriber stream is one header build, one `protect` and one `sendto`.

After the fan-out the receiver carries on as usual (NACK generation upstream, jitter buffer). The
complete encoded frames it assembles go to a `FrameTap` instead of aiortc's decoder thread: that is
where the recorder takes its frames, and it is why no decoder ever runs on the server.

Offsets preserve gaps: a packet the publisher lost is a gap for every subscriber too, so the
subscriber's NACK for it maps to the same loss that our receiver already NACKs upstream; the
retransmission then flows through here like any packet. A slot that is reused for another publisher
continues its own sequence and timestamp line, so the subscriber sees one continuous stream per SSRC.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)

from server.sfu import internals
from server.sfu.keyframes import DEFAULT_INTERVAL, KeyframeRequester, vp8_payload_is_keyframe
from server.sfu.redundancy import Mode, RecentPackets, RedundancyPolicy
from signaling import red

logger = logging.getLogger(__name__)
internals.harden_remb_parsing()

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
ABS_SEND_TIME_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

#: A publisher's packets resuming after this long, or this many sequence numbers ahead, are a new
#: stretch of its stream rather than a loss (see PublishedStream._discontinuity).
DISCONTINUITY_SECONDS = 1.0
DISCONTINUITY_PACKETS = 1000
HISTORY_SIZE = 512
#: NACKs for packets forwarded longer ago than this are not answered.
MAX_RETRANSMIT_AGE = 1.0  # packets kept per subscriber stream for NACKs (~2.5 s of 1.5 Mbps video)
_HISTORY_MASK = HISTORY_SIZE - 1
_HEADER = struct.Struct("!BBHII")
_NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01


def _abs_send_time() -> bytes:
    """abs-send-time: 24-bit 6.18 fixed-point seconds of NTP time."""
    value = int((time.time() + _NTP_EPOCH_OFFSET) * 262144.0) & 0xFFFFFF
    return value.to_bytes(3, "big")


class IdleTrack(MediaStreamTrack):
    """The track a forwarding sender carries: it never yields, so aiortc's encode loop stays idle."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def recv(self) -> Any:
        await self._never
        raise MediaStreamError  # pragma: no cover - the future is only cancelled

    def stop(self) -> None:
        super().stop()
        if not self._never.done():
            self._never.cancel()


class PublishedStream:
    """One publisher's incoming audio or video stream, fanned out to the slots subscribed to it."""

    def __init__(
        self,
        participant_id: str,
        kind: str,
        transceiver: RTCRtpTransceiver,
        keyframe_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.participant_id = participant_id
        self.kind = kind
        self.transceiver = transceiver
        self.receiver: RTCRtpReceiver = transceiver.receiver
        self.outputs: list[SenderSlot] = []
        self.media_ssrc: int | None = None
        self.sender_report: tuple[int, int] | None = None  # (ntp, rtp) of the publisher's last SR
        self.on_report: Callable[[int, int], None] | None = None  # the recorder's SR hook
        #: The recorder's audio input: (RTP timestamp, Opus payload) for every packet.
        self.on_audio_packet: Callable[[int, bytes], None] | None = None
        #: Not forwarded to anyone (the judge's mute, a meeting's floor); still recorded.
        self.silenced = False
        self.packets = 0
        self.octets = 0
        self.tap: internals.FrameTap | None = None
        self._waiting = 0  # outputs that wait for a keyframe before they start
        self._is_video = kind != "audio"  # camera or screen: both VP8 video
        self.keyframes: KeyframeRequester | None = None
        if self._is_video:
            self.keyframes = KeyframeRequester(self._send_pli, keyframe_interval)
        self._pli_tasks: set[asyncio.Task[None]] = set()
        self._last_seq: int | None = None
        self._last_arrival = 0.0
        #: The packets a RED payload to a lossy subscriber repeats (audio only).
        self.recent = RecentPackets()
        self._hook_receiver()

    # -- hooks into aiortc ------------------------------------------------------------------

    def _hook_receiver(self) -> None:
        receiver = self.receiver
        self.tap = internals.install_frame_tap(receiver)
        handle_rtp = receiver._handle_rtp_packet
        handle_rtcp = receiver._handle_rtcp_packet
        on_rtp = self.on_rtp
        on_sr = self.on_sender_report

        async def _handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
            on_rtp(packet)
            await handle_rtp(packet, arrival_time_ms)

        async def _handle_rtcp_packet(packet: Any) -> None:
            if isinstance(packet, RtcpSrPacket):
                on_sr(packet)
            await handle_rtcp(packet)

        receiver._handle_rtp_packet = _handle_rtp_packet  # type: ignore[method-assign]
        receiver._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]

    def _send_pli(self) -> None:
        if self.media_ssrc is None:
            return
        task = asyncio.ensure_future(self.receiver._send_rtcp_pli(self.media_ssrc))
        self._pli_tasks.add(task)
        task.add_done_callback(self._pli_tasks.discard)

    # -- the hot path -----------------------------------------------------------------------

    def on_rtp(self, packet: RtpPacket) -> None:
        """Fan one incoming RTP packet out to every subscribed slot."""
        self.media_ssrc = packet.ssrc
        self.packets += 1
        self.octets += len(packet.payload)
        now = time.monotonic()
        last_seq = self._last_seq
        if last_seq is not None and (
            now - self._last_arrival > DISCONTINUITY_SECONDS
            or DISCONTINUITY_PACKETS < (packet.sequence_number - last_seq) & 0xFFFF < 0x8000
        ):
            self._discontinuity()
        self._last_seq = packet.sequence_number
        self._last_arrival = now
        record = self.on_audio_packet
        if record is not None and packet.payload:
            record(packet.timestamp, packet.payload)
        outputs = self.outputs
        if not outputs or self.silenced:
            return
        if not self._is_video:
            self._forward_audio(packet, now)
            return
        keyframe = vp8_payload_is_keyframe(packet.payload) if self._waiting else False
        ext = _abs_send_time()
        for slot in outputs:
            slot.forward(packet, ext, keyframe, now)

    def _forward_audio(self, packet: RtpPacket, now: float) -> None:
        level = packet.extensions.audio_level
        ext = bytes([(0x80 if level[0] else 0) | (level[1] & 0x7F)]) if level else b""
        for slot in self.outputs:
            slot.forward(packet, ext, False, now)
        if packet.payload:
            self.recent.add(packet.sequence_number, packet.timestamp, packet.payload)

    def _discontinuity(self) -> None:
        """The publisher's link came back after an outage (or it restarted its stream).

        Its sequence numbers ran on while nothing arrived; carried over, that jump would read as
        massive loss to every subscriber (and trip their audio-first gates). Each slot continues
        its own line instead, and video restarts at a keyframe.
        """
        logger.info("%s of %s resumes after a gap", self.kind, self.participant_id)
        self.recent.clear()
        for slot in self.outputs:
            slot.resync()
        self.request_keyframe()

    def on_sender_report(self, packet: RtcpSrPacket) -> None:
        info = packet.sender_info
        self.sender_report = (info.ntp_timestamp, info.rtp_timestamp)
        for slot in self.outputs:
            slot.on_source_sender_report(info.ntp_timestamp, info.rtp_timestamp)
        if self.on_report is not None:
            self.on_report(info.ntp_timestamp, info.rtp_timestamp)

    # -- subscriptions ----------------------------------------------------------------------

    def subscribe(self, slot: SenderSlot) -> None:
        if slot in self.outputs:
            return
        self.outputs.append(slot)
        if self._is_video:
            self._waiting += 1  # the slot asks for the keyframe itself once it can receive it

    def unsubscribe(self, slot: SenderSlot) -> None:
        if slot in self.outputs:
            self.outputs.remove(slot)
            if slot.waiting_keyframe:
                self._waiting -= 1

    def keyframe_arrived(self) -> None:
        self._waiting -= 1

    def expect_keyframe(self) -> None:
        """A subscribed slot (re)starts and waits for the next keyframe."""
        self._waiting += 1

    def request_keyframe(self) -> None:
        if self.keyframes is not None:
            self.keyframes.request()

    def close(self) -> None:
        for slot in list(self.outputs):
            slot.detach()
        if self.keyframes is not None:
            self.keyframes.close()
        for task in self._pli_tasks:
            task.cancel()


class SenderSlot:
    """A subscriber's `sendonly` transceiver and the RTP stream it emits from a `PublishedStream`."""

    def __init__(
        self, transceiver: RTCRtpTransceiver, kind: str, redundancy: Mode = "auto"
    ) -> None:
        self.transceiver = transceiver
        self.kind = kind
        self.sender: RTCRtpSender = transceiver.sender
        self.source: PublishedStream | None = None
        self.waiting_keyframe = False
        self.packets = 0
        self.octets = 0
        self.retransmitted = 0
        self.remb_bps: int | None = None
        #: Called with (kind, fraction lost 0..1) for each receiver report, (kind, -bps) for REMB.
        self.on_feedback: Callable[[str, float, int | None], None] | None = None
        self.paused = False  # audio first: this subscriber's link cannot carry video now
        # The stream's own line of sequence numbers and timestamps (RFC 3550 random starts).
        self._next_seq = random.getrandbits(15)
        self._last_ts = random.getrandbits(32)
        self._last_time: float | None = None
        self._seq_offset = 0
        self._ts_offset = 0
        self._need_sync = True
        self._history: list[bytes | None] = [None] * HISTORY_SIZE
        self._history_time: list[float] = [0.0] * HISTORY_SIZE
        self._send: Callable[[bytes], bool] | None = None
        self._connected: Callable[[], bool] | None = None
        self._keyframe_asked = 0.0
        self._ssrc = self.sender._ssrc
        self._pt_map: dict[int, int] = {}
        self._mid_elem = b""
        self._ext_prefix = b""  # id byte of abs-send-time (video) or audio level (audio)
        self._clock_rate = 90000 if kind == "video" else 48000
        self._rtx_tasks: set[asyncio.Task[None]] = set()
        #: RED toward this subscriber: the payload type its answer kept (None: plain Opus only)
        self.red_pt: int | None = None
        self.redundancy = RedundancyPolicy(redundancy if kind == "audio" else "off")
        self._red_floor = 0  # the first source sequence number of this slot's current line
        self._hook_sender()

    def _hook_sender(self) -> None:
        handle_rtcp = self.sender._handle_rtcp_packet

        async def _handle_rtcp_packet(packet: Any) -> None:
            if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
                self.retransmit(packet.lost)
                return
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                if self.source is not None:
                    self.source.request_keyframe()
                return
            if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                try:
                    self.remb_bps = unpack_remb_fci(packet.fci)[0]
                except (ValueError, struct.error):  # a short FCI fails inside struct
                    return
                if self.on_feedback is not None:
                    self.on_feedback(self.kind, 0.0, self.remb_bps)
                return
            if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
                for report in packet.reports:
                    if report.ssrc != self._ssrc:
                        continue
                    if self.red_pt is not None:
                        self.redundancy.observe(report.fraction_lost / 256.0, time.monotonic())
                    if self.on_feedback is not None and not self.paused:
                        self.on_feedback(self.kind, report.fraction_lost / 256.0, None)
            await handle_rtcp(packet)  # receiver reports: aiortc keeps RTT and stats

        self.sender._handle_rtcp_packet = _handle_rtcp_packet  # type: ignore[method-assign]

    def activate(self) -> None:
        """Read what negotiation settled (transport, payload types, extension ids)."""
        self._send = internals.rtp_send_function(self.sender.transport)
        self._connected = internals.transport_connected(self.sender.transport)
        ids = internals.header_extension_ids(self.transceiver)
        mid = (self.transceiver.mid or "").encode()
        mid_id = ids.get(MID_URI)
        self._mid_elem = bytes([(mid_id << 4) | (len(mid) - 1)]) + mid if mid_id and mid else b""
        if self.kind == "video":
            abs_id = ids.get(ABS_SEND_TIME_URI)
            self._ext_prefix = bytes([(abs_id << 4) | 2]) if abs_id else b""
        else:
            level_id = ids.get(AUDIO_LEVEL_URI)
            self._ext_prefix = bytes([level_id << 4]) if level_id else b""
        if self.source is not None:
            self._pt_map = _payload_type_map(self.source, self.transceiver)

    # -- attach / detach --------------------------------------------------------------------

    def attach(self, source: PublishedStream) -> None:
        if self.source is source:
            return
        self.detach()
        self.source = source
        self._need_sync = True
        self.waiting_keyframe = self.kind == "video"
        self._keyframe_asked = 0.0
        if self._send is not None:
            self._pt_map = _payload_type_map(source, self.transceiver)
        source.subscribe(self)

    def detach(self) -> None:
        if self.source is not None:
            self.source.unsubscribe(self)
            self.source = None
        self.waiting_keyframe = False

    def close(self) -> None:
        self.detach()
        self._send = None
        for task in self._rtx_tasks:
            task.cancel()

    # -- per packet -------------------------------------------------------------------------

    def resync(self) -> None:
        """Continue this slot's own sequence/timestamp line from the source's next packet."""
        self._need_sync = True

    def set_paused(self, paused: bool) -> None:
        """Audio first: stop (or restart, at a keyframe) forwarding video to this subscriber."""
        if paused == self.paused:
            return
        self.paused = paused
        source = self.source
        if paused:
            if self.waiting_keyframe and source is not None:
                source.keyframe_arrived()
            self.waiting_keyframe = False
        elif source is not None and self.kind == "video":
            # continue this slot's own sequence line; start again at a keyframe
            self._need_sync = True
            self.waiting_keyframe = True
            self._keyframe_asked = 0.0
            source.expect_keyframe()

    def forward(self, packet: RtpPacket, ext_value: bytes, keyframe: bool, now: float) -> None:
        send = self._send
        if send is None or self.paused:
            return
        if self.waiting_keyframe:
            if not keyframe:
                self._ask_keyframe()
                return
            self.waiting_keyframe = False
            if self.source is not None:
                self.source.keyframe_arrived()
        pt = self._pt_map.get(packet.payload_type)
        if pt is None:
            return
        if self._need_sync:
            self._sync(packet)
        seq = (packet.sequence_number + self._seq_offset) & 0xFFFF
        ts = (packet.timestamp + self._ts_offset) & 0xFFFFFFFF

        ext = self._mid_elem
        if ext_value and self._ext_prefix:
            ext = ext + self._ext_prefix + ext_value
        first = 0x80
        if ext:
            pad = -len(ext) % 4
            ext = b"\xbe\xde" + ((len(ext) + pad) >> 2).to_bytes(2, "big") + ext + b"\x00" * pad
            first = 0x90
        payload = packet.payload
        red_pt = self.red_pt
        if red_pt is not None and self.redundancy.distance and self.source is not None:
            blocks = self.source.recent.blocks(
                packet.sequence_number, packet.timestamp, self.redundancy.distance, self._red_floor
            )
            payload = red.encode(pt, payload, blocks)
            pt = red_pt
        if packet.padding_size:
            first |= 0x20
            payload = payload + b"\x00" * (packet.padding_size - 1) + bytes([packet.padding_size])
        data = _HEADER.pack(first, (packet.marker << 7) | pt, seq, ts, self._ssrc) + ext + payload
        index = seq & _HISTORY_MASK
        self._history[index] = data
        self._history_time[index] = now
        if send(data):
            self.packets += 1
            self.octets += len(payload)
            self._next_seq = (seq + 1) & 0xFFFF
            self._last_ts = ts
            self._last_time = time.monotonic()

    def _ask_keyframe(self) -> None:
        """Waiting for a keyframe: ask once the subscriber can receive it, and again every 0.5 s.

        Asking at attach time is too early (the subscriber's DTLS may not be up yet, and the keyframe
        would be dropped here), and a keyframe lost on the way must not leave the subscriber black.
        """
        now = time.monotonic()
        if now < self._keyframe_asked + 0.5 or self._connected is None or not self._connected():
            return
        self._keyframe_asked = now
        if self.source is not None:
            self.source.request_keyframe()

    def _sync(self, packet: RtpPacket) -> None:
        """Continue this slot's own sequence/timestamp line from the new source's first packet."""
        self._need_sync = False
        self._red_floor = packet.sequence_number
        self._seq_offset = (self._next_seq - packet.sequence_number) & 0xFFFF
        if self._last_time is None:
            target = self._last_ts
        else:
            elapsed = max(time.monotonic() - self._last_time, 0.001)
            target = (self._last_ts + int(elapsed * self._clock_rate)) & 0xFFFFFFFF
        self._ts_offset = (target - packet.timestamp) & 0xFFFFFFFF
        source = self.source
        if source is not None and source.sender_report is not None:
            self.on_source_sender_report(*source.sender_report)

    def on_source_sender_report(self, ntp: int, rtp: int) -> None:
        """Translate the publisher's NTP<->RTP mapping into this stream's timestamp line."""
        if self._need_sync:
            return
        internals.set_sender_report_fields(
            self.sender,
            ntp,
            (rtp + self._ts_offset) & 0xFFFFFFFF,
            self.packets & 0xFFFFFFFF,
            self.octets & 0xFFFFFFFF,
        )

    def retransmit(self, lost: list[int]) -> None:
        send = self._send
        if send is None:
            return
        oldest = time.monotonic() - MAX_RETRANSMIT_AGE
        for seq in lost:
            index = seq & _HISTORY_MASK
            data = self._history[index]
            if data is None or int.from_bytes(data[2:4], "big") != seq:
                continue
            # After an outage a receiver asks for everything it missed: seconds-old video only
            # floods its jitter buffer (and can stall it). A late repair is no repair.
            if self._history_time[index] < oldest:
                continue
            if send(data):
                self.retransmitted += 1


def _payload_type_map(source: PublishedStream, transceiver: RTCRtpTransceiver) -> dict[int, int]:
    """Publisher payload type -> this subscriber's payload type, matched by codec."""
    out_by_codec: dict[tuple[str, int], int] = {}
    for codec in internals.negotiated_codecs(transceiver):
        key = (codec.mimeType.lower(), codec.clockRate)
        out_by_codec.setdefault(key, codec.payloadType)
    mapping: dict[int, int] = {}
    for codec in internals.negotiated_codecs(source.transceiver):
        out = out_by_codec.get((codec.mimeType.lower(), codec.clockRate))
        if out is not None and not codec.mimeType.lower().endswith("/rtx"):
            mapping[codec.payloadType] = out
    return mapping
