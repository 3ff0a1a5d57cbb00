"""Hostile packets at the forwarder: the Janus fuzzing corpora and random bytes never raise.

RTP and RTCP reach the forwarder after aiortc's parser; whatever it accepts goes through our hooks
(fan-out, keyframe detection, NACK/PLI/REMB/RR handling, sender-report translation) and must
neither raise nor stop the stream for the others.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiortc.rtp import RtcpPacket, RtpPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from server.sfu.keyframes import vp8_payload_is_keyframe
from tests.conftest import SHARED
from tests.test_sfu_forwarder import KEY, Rig, packet

CORPORA = SHARED / "fuzz-corpora" / "janus"


def corpus(name: str) -> list[Path]:
    folder = CORPORA / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (the shared fuzz corpora live beside the checkout)")
    return sorted(p for p in folder.iterdir() if p.is_file())


async def test_rtp_corpus_through_the_forwarder() -> None:
    rig = Rig("video")
    try:
        rig.stream.on_rtp(packet(1, 0, KEY))
        fed = 0
        for path in corpus("rtp_fuzzer"):
            try:
                parsed = RtpPacket.parse(path.read_bytes())
            except ValueError:
                continue
            parsed.payload_type = 100  # as if negotiated, so it reaches the subscriber path
            rig.stream.on_rtp(parsed)
            vp8_payload_is_keyframe(parsed.payload)
            fed += 1
        assert fed > 0
        before = len(rig.sent)
        rig.stream.on_rtp(packet(2, 3000, b"\x10\x01\x00"))
        assert len(rig.sent) == before + 1  # the stream goes on
    finally:
        await rig.close()


async def test_rtcp_corpus_at_sender_and_receiver_hooks() -> None:
    rig = Rig("video")
    try:
        handled = 0
        for path in corpus("rtcp_fuzzer"):
            try:
                packets = RtcpPacket.parse(path.read_bytes())
            except ValueError:
                continue
            for rtcp in packets:
                await rig.slot.sender._handle_rtcp_packet(rtcp)
                await rig.stream.receiver._handle_rtcp_packet(rtcp)
                handled += 1
        assert handled > 0
    finally:
        await rig.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_vp8_keyframe_detection_never_raises(payload: bytes) -> None:
    assert vp8_payload_is_keyframe(payload) in (True, False)


def test_a_truncated_remb_is_refused_by_aiortcs_router_not_raised() -> None:
    from aiortc.rtcdtlstransport import RtpRouter
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket

    import server.sfu.forwarder  # noqa: F401  (installs the hardening)

    short = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=b"REMB\x01\x00\x00\x00")
    assert RtpRouter().route_rtcp(short) == set()
