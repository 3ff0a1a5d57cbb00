"""RFC 2198 redundant audio: the payload format and its SDP negotiation (signaling/red.py)."""

from __future__ import annotations

import pytest
from aiortc import AudioStreamTrack, RTCPeerConnection, RTCRtpSender
from hypothesis import given
from hypothesis import strategies as st

from signaling import red


def test_encode_decode_round_trip() -> None:
    payload = red.encode(111, b"primary", [(1920, b"older"), (960, b"newer")])
    # two 4-byte headers, a 1-byte primary header, then the blocks oldest first
    assert payload[0] == 0x80 | 111 and payload[8] == 111
    assert payload[9:] == b"oldernewerprimary"
    blocks = red.decode(payload)
    assert blocks == [
        red.Block(111, 1920, b"older"),
        red.Block(111, 960, b"newer"),
        red.Block(111, 0, b"primary"),
    ]


def test_known_bytes() -> None:
    """RFC 2198 section 3's layout, checked field by field."""
    payload = red.encode(96, b"\x03\x04", [(960, b"\x01\x02")])
    word = int.from_bytes(payload[:4], "big")
    assert word >> 31 == 1  # F: another header follows
    assert (word >> 24) & 0x7F == 96
    assert (word >> 10) & 0x3FFF == 960
    assert word & 0x3FF == 2
    assert payload[4:] == b"\x60\x01\x02\x03\x04"


def test_encode_leaves_out_blocks_the_header_cannot_describe() -> None:
    blocks = [(20000, b"too old"), (0, b"same time"), (960, b"x" * 1024), (960, b""), (960, b"ok")]
    assert red.decode(red.encode(111, b"p", blocks)) == [
        red.Block(111, 960, b"ok"),
        red.Block(111, 0, b"p"),
    ]


def test_primary_only() -> None:
    assert red.decode(red.encode(111, b"p", [])) == [red.Block(111, 0, b"p")]


@pytest.mark.parametrize(
    "payload",
    [
        b"",  # no header at all
        b"\x80\x00",  # header cut short
        b"\xef\x00\x0c\x05\x6f",  # a 5-byte block, no bytes for it
        bytes([0x80 | 111, 0, 0, 1]) * (red.MAX_BLOCKS + 1) + b"\x6f" + b"x" * 16,
    ],
)
def test_malformed(payload: bytes) -> None:
    with pytest.raises(ValueError):
        red.decode(payload)


@given(st.binary(max_size=300))
def test_decode_random_bytes_fails_only_with_value_error(payload: bytes) -> None:
    try:
        blocks = red.decode(payload)
    except ValueError:
        return
    assert sum(len(b.data) for b in blocks) <= len(payload)
    assert blocks[-1].timestamp_offset == 0


@given(
    st.integers(0, 127),
    st.binary(max_size=400),
    st.lists(st.tuples(st.integers(1, 16383), st.binary(min_size=1, max_size=1023)), max_size=3),
)
def test_round_trip_property(pt: int, primary: bytes, redundant: list[tuple[int, bytes]]) -> None:
    blocks = red.decode(red.encode(pt, primary, redundant))
    assert [(b.timestamp_offset, b.data) for b in blocks[:-1]] == redundant
    assert blocks[-1] == red.Block(pt, 0, primary)


# -- SDP ---------------------------------------------------------------------------------------


async def _offer(directions: list[str]) -> str:
    pc = RTCPeerConnection()
    try:
        for direction in directions:
            transceiver = pc.addTransceiver("audio", direction=direction)
            transceiver.setCodecPreferences(
                [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.name == "opus"]
            )
        return (await pc.createOffer()).sdp
    finally:
        await pc.close()


async def test_offer_lists_red_first_where_the_offerer_receives() -> None:
    sdp = red.offer_red(await _offer(["recvonly", "sendonly", "inactive"]))
    assert red.red_payload_types(sdp) == {"0": 63, "1": 63, "2": 63}
    sections = sdp.split("m=audio ")
    opus = red.codec_payload_type(sdp, "1", "opus")
    assert opus is not None and red.codec_payload_type(sdp, "1", "red") == 63
    # receiving (a publisher's microphone): first, so a browser answering it sends RED
    assert sections[1].split("\r\n")[0].endswith(f"SAVPF 63 {opus}")
    # sending: listed last, merely allowed
    assert sections[2].split("\r\n")[0].endswith(f"SAVPF {opus} 63")
    assert f"a=fmtp:63 {opus}/{opus}" in sections[2]
    assert red.offer_red(sdp) == sdp  # idempotent
    plain = red.offer_red(await _offer(["recvonly", "sendonly"]), receive=False)
    assert red.red_payload_types(plain) == {"1": 63}


@pytest.mark.parametrize("direction", ["sendonly", "recvonly"])
async def test_aiortc_answerer_and_red_answer(direction: str) -> None:
    """aiortc parses the offer with RED (an unknown codec to it) and answers Opus only; the
    client's munging puts RED back into its answer, in the offer's place."""
    offer = red.offer_red(await _offer([direction]))
    pc = RTCPeerConnection()
    try:
        from aiortc import RTCSessionDescription

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        if direction == "recvonly":  # the answerer publishes its microphone on this m-line
            transceiver = pc.getTransceivers()[0]
            transceiver.sender.replaceTrack(AudioStreamTrack())
            transceiver.direction = "sendonly"
        answer = (await pc.createAnswer()).sdp
        assert "red/48000" not in answer
        munged = red.answer_red(offer, answer)
        assert red.red_payload_type(munged, "0") == 63
        assert red.red_payload_type(answer, "0") is None
        assert red.red_payload_type(munged, "no-such-mid") is None
        assert red.answer_red(offer, munged) == munged
        formats = munged.split("m=audio ")[1].split("\r\n")[0].split(" ")[2:]
        assert (formats[0] == "63") == (direction == "recvonly"), formats
    finally:
        await pc.close()


def test_rejected_m_line_keeps_no_red() -> None:
    offer = (
        "v=0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96 63\r\na=mid:0\r\na=sendonly\r\n"
        "a=rtpmap:96 opus/48000/2\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 96/96\r\n"
    )
    answer = "v=0\r\ns=-\r\nm=audio 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=recvonly\r\n"
    assert red.answer_red(offer, answer) == answer
    assert red.red_payload_type(answer.replace(" 96\r", " 96 63\r"), "0") is None
