"""The keyframe throttle coalesces (never drops) and VP8 keyframe detection on RTP payloads."""

from __future__ import annotations

import asyncio

from server.sfu.keyframes import KeyframeRequester, KeyframeThrottle, vp8_payload_is_keyframe


def test_first_request_goes_now_then_coalesces() -> None:
    t = KeyframeThrottle(0.3)
    assert t.request(10.0) == 0.0
    delay = t.request(10.1)
    assert delay is not None and abs(delay - 0.2) < 1e-9
    # more requests inside the window fold into the scheduled one
    assert t.request(10.15) is None
    assert t.request(10.29) is None
    t.fire(10.3)
    assert not t.pending
    # right after the scheduled send, a new request waits a full window again
    assert t.request(10.31) is not None
    t.fire(10.6)
    assert t.request(11.0) == 0.0


async def test_requester_never_drops_a_request_inside_the_window() -> None:
    sent: list[float] = []
    loop = asyncio.get_running_loop()
    req = KeyframeRequester(lambda: sent.append(loop.time()), interval=0.1)
    for _ in range(30):  # a room of 30 joins at once
        req.request()
    assert len(sent) == 1
    await asyncio.sleep(0.15)
    assert len(sent) == 2  # the coalesced one went out when the window ended
    assert sent[1] - sent[0] >= 0.09
    await asyncio.sleep(0.15)
    assert len(sent) == 2  # and nothing more
    req.close()


def _payload(descriptor: bytes, frame_tag: int) -> bytes:
    return descriptor + bytes([frame_tag, 0, 0, 0x9D, 0x01, 0x2A])


def test_vp8_keyframe_detection() -> None:
    # minimal descriptor: S=1, PID=0
    assert vp8_payload_is_keyframe(_payload(b"\x10", 0x00))
    assert not vp8_payload_is_keyframe(_payload(b"\x10", 0x01))  # P=1: interframe
    # not the start of a partition
    assert not vp8_payload_is_keyframe(_payload(b"\x00", 0x00))
    # X=1, I=1 with a 15-bit picture id (M bit), L=1, T=1
    descriptor = bytes([0x90, 0xE0, 0x80 | 0x12, 0x34, 0x05, 0x40])
    assert vp8_payload_is_keyframe(_payload(descriptor, 0x00))
    assert not vp8_payload_is_keyframe(_payload(descriptor, 0x01))
    # 7-bit picture id
    assert vp8_payload_is_keyframe(_payload(bytes([0x90, 0x80, 0x12]), 0x00))
    # truncated inputs never raise
    for data in (b"", b"\x90", b"\x90\x80", b"\x90\xe0\x80"):
        assert vp8_payload_is_keyframe(data) is False
