"""Offer munging: Opus in-band FEC is requested on every Opus m-line."""

from __future__ import annotations

from aiortc import RTCPeerConnection

from server.sfu.peer import sdp_media_count, with_opus_fec


async def test_opus_fec_is_requested_and_the_offer_still_parses() -> None:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="sendonly")
    offer = await pc.createOffer()
    munged = with_opus_fec(offer.sdp)
    assert munged.count("useinbandfec=1") == 2
    assert sdp_media_count(munged) == 3
    assert with_opus_fec(munged) == munged  # idempotent
    from aiortc.sdp import SessionDescription

    parsed = SessionDescription.parse(munged)
    opus = [c for m in parsed.media for c in m.rtp.codecs if c.mimeType == "audio/opus"]
    assert opus and all(c.parameters.get("useinbandfec") == 1 for c in opus)
    await pc.close()
