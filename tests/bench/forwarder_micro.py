"""Per-packet cost of the forwarder's hot path, in µs per packet per subscriber.

Runs `PublishedStream.on_rtp` -> `SenderSlot.forward` for N subscriber slots whose send function is
the real one's work (SRTP `protect` with a real libsrtp session + `sendto` on a loopback UDP
socket), on 1200-byte VP8 payloads. No network peers and no event loop noise, so it isolates what
the forwarder itself adds per subscriber stream.

    python tests/bench/forwarder_micro.py [--subscribers 8] [--packets 20000]

Then the same for audio (120-byte Opus payloads), plain and wrapped in RED two packets deep (what a
lossy subscriber gets, server/sfu/redundancy.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time

from aiortc import RTCPeerConnection
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters
from aiortc.rtp import RtpPacket
from pylibsrtp import Policy, Session

from server.sfu.forwarder import (
    ABS_SEND_TIME_URI,
    AUDIO_LEVEL_URI,
    MID_URI,
    IdleTrack,
    PublishedStream,
    SenderSlot,
)
from server.sfu.redundancy import RedundancyPolicy

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


def srtp_sender(sock: socket.socket, addr: tuple[str, int]):
    policy = Policy(key=os.urandom(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True
    session = Session(policy=policy)

    def send(data: bytes) -> bool:
        sock.sendto(session.protect(data), addr)
        return True

    return send


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=8)
    parser.add_argument("--packets", type=int, default=20000)
    args = parser.parse_args()

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pcs = [RTCPeerConnection() for _ in range(args.subscribers + 1)]
    pub_t = pcs[0].addTransceiver("video", direction="recvonly")
    pub_t._codecs = [VP8]
    stream = PublishedStream("pub", "video", pub_t)
    for pc in pcs[1:]:
        t = pc.addTransceiver(IdleTrack("video"), direction="sendonly")
        t._codecs = [VP8]
        t._headerExtensions = [
            RTCRtpHeaderExtensionParameters(id=1, uri=MID_URI),
            RTCRtpHeaderExtensionParameters(id=3, uri=ABS_SEND_TIME_URI),
        ]
        t._set_mid("3")
        slot = SenderSlot(t, "video")
        slot.attach(stream)
        slot.activate()
        slot._send = srtp_sender(out, sink.getsockname())
        slot._connected = lambda: True

    payload = bytes([0x10, 0x00, 0, 0, 0x9D, 0x01, 0x2A]) + os.urandom(1193)
    packets = []
    for i in range(args.packets):
        p = RtpPacket(payload_type=97, sequence_number=i & 0xFFFF, timestamp=3000 * (i // 5))
        p.payload = payload
        p.marker = int(i % 5 == 4)
        packets.append(p)

    def drain() -> None:
        try:
            while True:
                sink.recv(2048)
        except BlockingIOError:
            pass

    # baseline: the same protect + sendto without the forwarder's header work
    base_send = srtp_sender(out, sink.getsockname())
    raw = [p.serialize() for p in packets]
    t0 = time.perf_counter()
    for i, data in enumerate(raw):
        for _ in range(args.subscribers):
            base_send(data)
        if i % 64 == 0:
            drain()
    floor = (time.perf_counter() - t0) / (len(raw) * args.subscribers) * 1e6

    t0 = time.perf_counter()
    for i, p in enumerate(packets):
        stream.on_rtp(p)
        if i % 64 == 0:
            drain()
    per = (time.perf_counter() - t0) / (len(packets) * args.subscribers) * 1e6
    pps = 1_500_000 / 8 / 1200  # packets per second of a 1.5 Mbps stream
    print(f"subscribers={args.subscribers} packets={args.packets}")
    print(f"protect+sendto alone : {floor:6.2f} µs per packet per subscriber")
    print(
        f"forwarder hot path   : {per:6.2f} µs per packet per subscriber "
        f"(header+history {per - floor:+.2f} µs)"
    )
    print(
        f"=> {per * pps / 1e4:.3f} % of one core per forwarded 1.5 Mbps stream "
        f"({pps:.0f} packets/s), excluding the receive side"
    )
    for pc in pcs:
        await pc.close()
    for distance in (0, 2):
        per = await audio_cost(args.subscribers, args.packets, distance, out, sink, drain)
        what = "plain Opus" if distance == 0 else f"RED, {distance} earlier packets"
        print(
            f"audio, {what:26s}: {per:6.2f} µs per packet per subscriber "
            f"=> {per * 50 / 1e4:.4f} % of one core per forwarded voice (50 packets/s)"
        )


async def audio_cost(
    subscribers: int,
    count: int,
    distance: int,
    out: socket.socket,
    sink: socket.socket,
    drain: object,
) -> float:
    pcs = [RTCPeerConnection() for _ in range(subscribers + 1)]
    pub_t = pcs[0].addTransceiver("audio", direction="recvonly")
    pub_t._codecs = [OPUS]
    stream = PublishedStream("pub", "audio", pub_t)
    for pc in pcs[1:]:
        t = pc.addTransceiver(IdleTrack("audio"), direction="sendonly")
        t._codecs = [OPUS]
        t._headerExtensions = [
            RTCRtpHeaderExtensionParameters(id=1, uri=MID_URI),
            RTCRtpHeaderExtensionParameters(id=2, uri=AUDIO_LEVEL_URI),
        ]
        t._set_mid("1")
        slot = SenderSlot(t, "audio", redundancy="always" if distance else "off")
        slot.red_pt = 63 if distance else None
        slot.redundancy = RedundancyPolicy("always" if distance else "off")
        slot.attach(stream)
        slot.activate()
        slot._send = srtp_sender(out, sink.getsockname())
    packets = []
    for i in range(count):
        p = RtpPacket(payload_type=111, sequence_number=i & 0xFFFF, timestamp=960 * i)
        p.payload = os.urandom(120)
        p.extensions.audio_level = (True, 30)
        packets.append(p)
    t0 = time.perf_counter()
    for i, p in enumerate(packets):
        stream.on_rtp(p)
        if i % 64 == 0:
            drain()  # type: ignore[operator]
    per = (time.perf_counter() - t0) / (count * subscribers) * 1e6
    for pc in pcs:
        await pc.close()
    return per


if __name__ == "__main__":
    asyncio.run(main())
