"""The forwarder's per-packet work, without a network: headers, offsets, history, sender reports."""

from __future__ import annotations

from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtcpRtpfbPacket, RtpPacket

from server.sfu.forwarder import (
    ABS_SEND_TIME_URI,
    AUDIO_LEVEL_URI,
    MID_URI,
    IdleTrack,
    PublishedStream,
    SenderSlot,
)


def ext_map(ids: dict[str, int]) -> HeaderExtensionsMap:
    m = HeaderExtensionsMap()
    m.configure(
        RTCRtpParameters(
            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in ids.items()]
        )
    )
    return m


class Rig:
    """A publisher stream and one subscriber slot on unconnected peer connections."""

    def __init__(self, kind: str) -> None:
        self.pub_pc = RTCPeerConnection()
        self.sub_pc = RTCPeerConnection()
        pub_t = self.pub_pc.addTransceiver(kind, direction="recvonly")
        sub_t = self.sub_pc.addTransceiver(IdleTrack(kind), direction="sendonly")
        codecs = [c for c in RTCRtpSender.getCapabilities(kind).codecs if "rtx" not in c.mimeType]
        # what negotiation would settle: one codec, the extensions aiortc offers
        from aiortc.rtcrtpparameters import RTCRtpCodecParameters

        codec = codecs[0]
        pub_t._codecs = [
            RTCRtpCodecParameters(
                mimeType=codec.mimeType, clockRate=codec.clockRate, payloadType=100
            )
        ]
        sub_t._codecs = [
            RTCRtpCodecParameters(
                mimeType=codec.mimeType, clockRate=codec.clockRate, payloadType=111
            )
        ]
        self.ids = (
            {MID_URI: 1, ABS_SEND_TIME_URI: 3}
            if kind == "video"
            else {MID_URI: 1, AUDIO_LEVEL_URI: 2}
        )
        sub_t._headerExtensions = [
            RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in self.ids.items()
        ]
        sub_t._set_mid("7")
        self.stream = PublishedStream("pub", kind, pub_t)
        self.slot = SenderSlot(sub_t, kind)
        self.sent: list[bytes] = []
        self.slot.attach(self.stream)
        self.slot.activate()
        self.slot._send = self._capture  # instead of SRTP + UDP
        self.slot._connected = lambda: True

    def _capture(self, data: bytes) -> bool:
        self.sent.append(data)
        return True

    def parsed(self) -> list[RtpPacket]:
        m = ext_map(self.ids)
        return [RtpPacket.parse(d, m) for d in self.sent]

    async def close(self) -> None:
        await self.pub_pc.close()
        await self.sub_pc.close()


def packet(
    seq: int, ts: int, payload: bytes, marker: int = 0, pt: int = 100, **kw: Any
) -> RtpPacket:
    p = RtpPacket(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=0x1234, marker=marker)
    p.payload = payload
    for k, v in kw.items():
        setattr(p, k, v)
    return p


KEY = bytes([0x10, 0x00, 0, 0, 0x9D, 0x01, 0x2A])  # S=1 PID=0, keyframe tag
DELTA = bytes([0x10, 0x01, 0, 0])
CONT = bytes([0x00, 0xAA, 0xBB])


async def test_video_waits_for_a_keyframe_then_rewrites_headers() -> None:
    rig = Rig("video")
    try:
        rig.stream.on_rtp(packet(1000, 90000, DELTA, marker=1))
        assert rig.sent == []  # a new subscriber starts at a keyframe
        assert rig.stream.keyframes is not None and rig.stream.keyframes.requested == 1
        rig.stream.on_rtp(packet(1001, 93000, KEY))
        rig.stream.on_rtp(packet(1002, 93000, CONT, marker=1))
        rig.stream.on_rtp(packet(1004, 96000, DELTA, marker=1))  # 1003 lost upstream
        out = rig.parsed()
        assert [p.ssrc for p in out] == [rig.slot.sender._ssrc] * 3
        assert {p.payload_type for p in out} == {111}
        seqs = [p.sequence_number for p in out]
        assert seqs[1] == (seqs[0] + 1) & 0xFFFF
        assert seqs[2] == (seqs[0] + 3) & 0xFFFF  # the gap is preserved for NACKs
        assert out[1].timestamp == out[0].timestamp
        assert (out[2].timestamp - out[0].timestamp) & 0xFFFFFFFF == 3000
        assert [p.marker for p in out] == [0, 1, 1]
        assert [p.payload for p in out] == [KEY, CONT, DELTA]
        assert all(p.extensions.mid == "7" for p in out)
        assert all(p.extensions.abs_send_time is not None for p in out)
    finally:
        await rig.close()


async def test_nack_is_answered_from_history() -> None:
    rig = Rig("video")
    try:
        rig.stream.on_rtp(packet(5, 0, KEY))
        for i in range(6, 20):
            rig.stream.on_rtp(packet(i, 3000 * i, DELTA, marker=1))
        first = rig.parsed()[0].sequence_number
        rig.sent.clear()
        nack = RtcpRtpfbPacket(fmt=1, ssrc=1, media_ssrc=rig.slot.sender._ssrc)
        nack.lost = [first + 3, first + 4, (first + 4000) & 0xFFFF]  # the last was never sent
        await rig.slot.sender._handle_rtcp_packet(nack)
        assert [p.sequence_number for p in rig.parsed()] == [first + 3, first + 4]
        assert rig.slot.retransmitted == 2
    finally:
        await rig.close()


async def test_audio_keeps_level_and_padding() -> None:
    rig = Rig("audio")
    try:
        p = packet(7, 960, b"\x01\x02\x03", padding_size=4)
        p.extensions.audio_level = (True, 42)
        rig.stream.on_rtp(p)
        (out,) = rig.parsed()
        assert out.payload == b"\x01\x02\x03" and out.padding_size == 4
        assert out.extensions.audio_level == (True, 42)
        # an unknown payload type is not forwarded
        rig.stream.on_rtp(packet(8, 1920, b"\x00", pt=55))
        assert len(rig.sent) == 1
    finally:
        await rig.close()


async def test_sender_report_is_translated_to_the_subscriber_timeline() -> None:
    rig = Rig("audio")
    try:
        rig.stream.on_rtp(packet(1, 48000, b"\x00"))
        (out,) = rig.parsed()
        offset = (out.timestamp - 48000) & 0xFFFFFFFF
        from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket

        sr = RtcpSrPacket(
            ssrc=0x1234,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=0xE000000080000000,
                rtp_timestamp=96000,
                packet_count=2,
                octet_count=3,
            ),
        )
        await rig.stream.receiver._handle_rtcp_packet(sr)
        sender = rig.slot.sender
        assert sender._RTCRtpSender__ntp_timestamp == 0xE000000080000000  # type: ignore[attr-defined]
        assert sender._RTCRtpSender__rtp_timestamp == (96000 + offset) & 0xFFFFFFFF  # type: ignore[attr-defined]
        assert sender._RTCRtpSender__packet_count == 1  # type: ignore[attr-defined]
    finally:
        await rig.close()


async def test_reused_slot_continues_its_own_sequence_line() -> None:
    rig = Rig("audio")
    try:
        for i in range(3):
            rig.stream.on_rtp(packet(100 + i, 960 * i, b"\x00"))
        last = rig.parsed()[-1]
        rig.slot.detach()
        other_t = rig.pub_pc.addTransceiver("audio", direction="recvonly")
        other_t._codecs = rig.stream.transceiver._codecs
        other = PublishedStream("other", "audio", other_t)
        rig.slot.attach(other)
        rig.sent.clear()
        other.on_rtp(packet(40000, 123456789, b"\x00"))
        (first,) = rig.parsed()
        assert first.sequence_number == (last.sequence_number + 1) & 0xFFFF
        assert first.ssrc == last.ssrc
    finally:
        await rig.close()


@pytest.mark.parametrize("kind", ["audio", "video"])
async def test_detached_slot_forwards_nothing(kind: str) -> None:
    rig = Rig(kind)
    try:
        rig.slot.detach()
        rig.stream.on_rtp(packet(1, 0, KEY))
        assert rig.sent == [] and rig.stream.outputs == []
    finally:
        await rig.close()
