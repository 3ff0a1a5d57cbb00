"""RED over aiortc (server/sfu/red_transport.py): unwrapping in front of a receiver, wrapping on
the way to the transport. Stand-ins replace the aiortc objects; the pins on the real ones are in
tests/test_aiortc_internals.py and the end-to-end runs in tests/test_red_functional.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from server.sfu import red_transport
from server.sfu.redundancy import RedundancyPolicy
from signaling import red

RED_PT, OPUS_PT, SSRC = 63, 111, 0x1234


class FakeReceiver:
    def __init__(self) -> None:
        self.got: list[tuple[int, int, int, bytes]] = []
        self._RTCRtpReceiver__remote_streams = {SSRC: SimpleNamespace(packets_received=0)}

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self._RTCRtpReceiver__remote_streams[SSRC].packets_received += 1
        self.got.append(
            (packet.payload_type, packet.sequence_number, packet.timestamp, packet.payload)
        )


def _red_packet(
    seq: int, blocks: list[tuple[int, bytes]], primary: bytes, pt: int = OPUS_PT
) -> RtpPacket:
    return RtpPacket(
        payload_type=RED_PT,
        sequence_number=seq,
        timestamp=seq * 960,
        ssrc=SSRC,
        payload=red.encode(pt, primary, blocks),
    )


async def test_unwraps_and_recovers_only_what_was_lost() -> None:
    receiver = FakeReceiver()
    unwrapper = red_transport.RedReceiver(receiver, RED_PT)  # type: ignore[arg-type]
    handle = receiver._handle_rtp_packet
    await handle(_red_packet(10, [], b"p10"), 0)
    # 11 lost; 12 carries 10 and 11
    await handle(_red_packet(12, [(1920, b"p10"), (960, b"p11")], b"p12"), 0)
    assert receiver.got == [
        (OPUS_PT, 10, 9600, b"p10"),
        (OPUS_PT, 11, 10560, b"p11"),  # recovered, before the packet after it
        (OPUS_PT, 12, 11520, b"p12"),
    ]
    assert unwrapper.recovered == 1 and unwrapper.red_packets == 2
    # the recovered packet is not a network arrival in the receiver's RTCP statistics
    assert receiver._RTCRtpReceiver__remote_streams[SSRC].packets_received == 2
    # a late original of 11, and a repeated 12, are dropped as duplicates
    await handle(_red_packet(11, [], b"p11"), 0)
    await handle(_red_packet(12, [], b"p12"), 0)
    assert len(receiver.got) == 3


async def test_hostile_red_is_dropped_or_contained() -> None:
    receiver = FakeReceiver()
    unwrapper = red_transport.RedReceiver(receiver, RED_PT)  # type: ignore[arg-type]
    handle = receiver._handle_rtp_packet
    bad = RtpPacket(payload_type=RED_PT, sequence_number=1, ssrc=SSRC, payload=b"\x80\x00")
    await handle(bad, 0)
    assert unwrapper.malformed == 1 and receiver.got == []
    # a redundant block claiming another codec (say the video payload type) is not handed on
    await handle(_red_packet(5, [(960, b"x")], b"p5"), 0)
    # mismatched block type: block PT 97, primary PT 111
    header = (0x80000000 | (97 << 24) | (960 << 10) | 6).to_bytes(4, "big")
    mixed = RtpPacket(payload_type=RED_PT, sequence_number=7, timestamp=7 * 960, ssrc=SSRC)
    mixed.payload = header + bytes([OPUS_PT]) + b"video?" + b"p7"
    await handle(mixed, 0)
    assert [g[1] for g in receiver.got] == [4, 5, 7]
    # plain Opus passes through untouched
    await handle(RtpPacket(payload_type=OPUS_PT, sequence_number=8, ssrc=SSRC, payload=b"o"), 0)
    assert receiver.got[-1] == (OPUS_PT, 8, 0, b"o")


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)


class FakeSender:
    def __init__(self) -> None:
        self.transport = FakeTransport()
        self._ssrc = SSRC

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        pass


def _opus_bytes(seq: int, payload: bytes, ssrc: int = SSRC, pt: int = OPUS_PT) -> bytes:
    packet = RtpPacket(
        payload_type=pt, sequence_number=seq, timestamp=seq * 960, ssrc=ssrc, payload=payload
    )
    packet.extensions.mid = "0"
    extensions = HeaderExtensionsMap()
    extensions.configure(
        SimpleNamespace(
            headerExtensions=[SimpleNamespace(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid")]
        )  # type: ignore[arg-type]
    )
    return packet.serialize(extensions)


async def test_sender_wraps_its_own_opus_only_while_the_policy_says() -> None:
    sender = FakeSender()
    transport = sender.transport
    wrapper = red_transport.RedSender(sender, RED_PT, OPUS_PT)  # type: ignore[arg-type]
    send = transport._send_rtp
    await send(_opus_bytes(1, b"a"))  # clean link: plain Opus, byte for byte
    assert transport.sent[-1] == _opus_bytes(1, b"a")
    wrapper.policy = RedundancyPolicy("always")
    await send(_opus_bytes(2, b"b"))
    await send(_opus_bytes(3, b"c"))
    packet = RtpPacket.parse(transport.sent[-1])
    assert packet.payload_type == RED_PT and packet.sequence_number == 3
    assert [(b.timestamp_offset, b.data) for b in red.decode(packet.payload)] == [
        (1920, b"a"),
        (960, b"b"),
        (0, b"c"),
    ]
    assert transport.sent[-1][:2] == bytes([0x90, RED_PT])  # extension bit kept, marker clear
    # another sender's packets on the same (BUNDLEd) transport, and video, pass untouched
    other = _opus_bytes(4, b"x", ssrc=999)
    video = _opus_bytes(4, b"v", pt=96)
    await send(other)
    await send(video)
    assert transport.sent[-2:] == [other, video]
    assert wrapper.red_packets == 2
