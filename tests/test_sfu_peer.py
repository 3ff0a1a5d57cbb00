"""Peer: offer munging (Opus in-band FEC), early trickled candidates, prompt triggered checks."""

from __future__ import annotations

import pytest
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


async def test_candidates_trickled_before_the_answer_is_applied_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A browser sends its candidates right behind its answer; they must not be lost while the
    negotiation task has not applied the answer yet."""
    import asyncio

    import aioice.ice

    # aioice offers no loopback candidates by itself (the suite runs with only lo up)
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])

    from aiortc import RTCSessionDescription

    from server.sfu.peer import Offer, Peer

    offers: asyncio.Queue[Offer] = asyncio.Queue()

    async def send_offer(offer: Offer) -> None:
        await offers.put(offer)

    peer = Peer(
        "p1",
        publish_kinds=["audio"],
        ice_servers=[],
        send_offer=send_offer,
        on_published=lambda stream: None,
        on_failed=lambda reason: None,
    )
    client = RTCPeerConnection()
    try:
        peer.start()
        offer = await asyncio.wait_for(offers.get(), 10)
        await client.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        await client.setLocalDescription(await client.createAnswer())
        answer = client.localDescription.sdp
        lines = answer.split("\r\n")
        trickled = [line[2:] for line in lines if line.startswith("a=candidate:")]
        assert trickled
        bare = "\r\n".join(
            line for line in lines if not line.startswith(("a=candidate:", "a=end-of-candidates"))
        )
        await client.close()  # no checks from it: the server knows it only by the trickle
        mid = offer.publish["audio"]
        for candidate in trickled:  # before the answer, as a browser's trickle often arrives
            await peer.add_candidate(candidate, mid, 0)
        await peer.handle_answer(bare, offer.offer_id)
        transport = peer.pc.getTransceivers()[0].receiver.transport.transport
        for _ in range(100):
            if transport.getRemoteCandidates() or offers.qsize():
                break
            await asyncio.sleep(0.02)
        remote = {(c.ip, c.port) for c in transport.getRemoteCandidates()}
        assert len(remote) == len(trickled), (remote, trickled)
    finally:
        await client.close()
        await peer.close()


def test_an_incoming_check_resends_our_own_pending_check_at_once() -> None:
    """RFC 8445 7.3.1.4: a check on a pair whose own check is In-Progress prompts it now, not at
    aioice's next retransmission (seconds away after an outage)."""
    from types import SimpleNamespace

    import aioice.ice

    from server.sfu import internals

    state = aioice.ice.CandidatePair.State
    sent: list[tuple[object, tuple[str, int]]] = []
    addr = ("10.0.0.2", 5000)
    request = object()
    transaction = SimpleNamespace(_Transaction__addr=addr, _Transaction__request=request)
    protocol = SimpleNamespace(
        transactions={b"t1": transaction}, send_stun=lambda m, a: sent.append((m, a))
    )
    pair = SimpleNamespace(protocol=protocol, remote_addr=addr, state=state.IN_PROGRESS)
    incoming: list[object] = []
    connection = SimpleNamespace(
        _check_list=[pair], check_incoming=lambda m, a, p: incoming.append(m)
    )
    internals._install_triggered_resend(connection)  # type: ignore[arg-type]
    connection.check_incoming("check-1", addr, protocol)
    assert incoming == ["check-1"] and sent == [(request, addr)]
    connection.check_incoming("check-2", addr, protocol)  # within the interval: not again
    assert len(sent) == 1
    pair.state = state.SUCCEEDED
    internals.TRIGGERED_RESEND_INTERVAL = 0.0
    try:
        connection.check_incoming("check-3", addr, protocol)
    finally:
        internals.TRIGGERED_RESEND_INTERVAL = 0.2
    assert len(sent) == 1  # nothing pending to prompt
    connection.check_incoming("check-4", ("10.0.0.3", 1), protocol)  # another pair: untouched
    assert len(sent) == 1
