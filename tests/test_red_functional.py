"""Redundant audio end to end: a real server wraps Opus in RED, the client unwraps and repairs.

Loss is made on the subscriber's side, in front of its RED unwrapper (every 10th audio packet
that arrives is thrown away), so the same server and link serve a run with RED and a control run
without. What counts is the audio the subscriber's aiortc receiver *decodes*: the distinct frame
timestamps it produced against the span they cover.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from server import state
from server.sfu.redundancy import RedundancyPolicy
from terminal.client import HearingClient
from tests.conftest import RunningServer
from tests.media import ToneTrack

pytestmark = pytest.mark.media

DROP_EVERY = 10


class Capture:
    def __init__(self) -> None:
        self.pts: list[int] = []
        self.receiver: Any = None
        self.tasks: list[asyncio.Task[None]] = []
        self.arrived = 0
        self.dropped = 0
        self.recovered = 0
        self.lost = 0
        self.received = 0

    def on_track(self, pid: str, kind: str, track: MediaStreamTrack, transceiver: Any) -> None:
        if kind == "audio" and self.receiver is None:
            self.receiver = transceiver.receiver
            self.tasks.append(asyncio.ensure_future(self._drain(track)))

    async def _drain(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if frame.pts is not None:
                    self.pts.append(int(frame.pts))
        except MediaStreamError:
            pass

    def lose_packets(self) -> None:
        """Throw away every DROP_EVERY-th packet before anything else on the client sees it."""
        receiver = self.receiver
        handle = receiver._handle_rtp_packet

        async def lossy(packet: Any, arrival_time_ms: int) -> None:
            self.arrived += 1
            if self.arrived % DROP_EVERY == 0:
                self.dropped += 1
                return
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = lossy

    def decoded_fraction(self, skip: int = 50) -> float:
        """Distinct decoded frames / frames the covered stretch of media time holds (20 ms)."""
        pts = sorted(set(self.pts))[skip:]
        span = (pts[-1] - pts[0]) // 960 + 1
        return len(pts) / span


async def _run(server: RunningServer, redundancy: bool, seconds: float) -> Capture:
    hearing = await server.create_hearing("judge:审判长", "party:甲")
    urls = [i["url"] for i in hearing["invites"]]
    publisher = HearingClient.from_invite(urls[0], tracks={"audio": ToneTrack()})
    capture = Capture()
    subscriber = HearingClient.from_invite(
        urls[1], on_track=capture.on_track, audio_redundancy=redundancy
    )
    try:
        await publisher.join()
        await subscriber.join()
        for _ in range(200):
            if capture.receiver is not None and subscriber.offers >= 1:
                break
            await asyncio.sleep(0.05)
        assert capture.receiver is not None, "no audio track arrived"
        unwrapper = getattr(capture.receiver, "_tingshen_red", None)
        assert (unwrapper is not None) == redundancy
        capture.lose_packets()
        await asyncio.sleep(seconds)
        if unwrapper is not None:
            capture.recovered = unwrapper.recovered
        stats = await capture.receiver.getStats()
        inbound = next(s for s in stats.values() if getattr(s, "type", "") == "inbound-rtp")
        capture.lost = inbound.packetsLost
        capture.received = inbound.packetsReceived
    finally:
        await subscriber.close()
        await publisher.close()
        for task in capture.tasks:
            task.cancel()
    return capture


async def test_red_repairs_the_loss_the_control_run_suffers(server: RunningServer) -> None:
    server.settings.audio_redundancy = "always"
    with_red = await _run(server, redundancy=True, seconds=6.0)
    without = await _run(server, redundancy=False, seconds=6.0)
    print(
        f"\nRED: {with_red.decoded_fraction():.3f} decoded, {with_red.recovered} recovered, "
        f"lost {with_red.lost}/{with_red.received + with_red.lost}; "
        f"control: {without.decoded_fraction():.3f} decoded"
    )
    assert with_red.dropped >= 20 and without.dropped >= 20
    # the control run shows the loss is real for aiortc's receiver
    assert without.decoded_fraction() < 0.95
    # with RED nearly every dropped packet comes back before the jitter buffer misses it
    assert with_red.decoded_fraction() >= 0.98
    assert with_red.recovered >= with_red.dropped * 0.9
    # receiver reports still tell the server what the network lost (recovered packets are not
    # counted as received): ~1 in DROP_EVERY
    lost_share = with_red.lost / (with_red.received + with_red.lost)
    assert 0.5 / DROP_EVERY <= lost_share <= 2.0 / DROP_EVERY


async def test_auto_mode_sends_plain_opus_on_a_clean_link(server: RunningServer) -> None:
    """With no loss reported, "auto" keeps to plain Opus (RED costs bandwidth)."""
    assert server.settings.audio_redundancy == "auto"
    hearing = await server.create_hearing("judge:审判长", "party:甲")
    urls = [i["url"] for i in hearing["invites"]]
    publisher = HearingClient.from_invite(urls[0], tracks={"audio": ToneTrack()})
    capture = Capture()
    subscriber = HearingClient.from_invite(urls[1], on_track=capture.on_track)
    try:
        await publisher.join()
        await subscriber.join()
        await asyncio.sleep(3.0)
        assert capture.receiver is not None
        unwrapper = capture.receiver._tingshen_red
        assert unwrapper.red_packets == 0 and unwrapper.recovered == 0
        assert len(capture.pts) > 50
    finally:
        await subscriber.close()
        await publisher.close()
        for task in capture.tasks:
            task.cancel()


async def _run_uplink(
    server: RunningServer, redundancy: bool, seconds: float
) -> tuple[Capture, int]:
    """The publisher's link loses every DROP_EVERY-th audio packet on its way to the server."""
    hearing = await server.create_hearing("judge:审判长", "party:甲")
    urls = [i["url"] for i in hearing["invites"]]
    publisher = HearingClient.from_invite(
        urls[0], tracks={"audio": ToneTrack()}, audio_redundancy=redundancy
    )
    capture = Capture()
    subscriber = HearingClient.from_invite(urls[1], on_track=capture.on_track)
    try:
        welcome = await publisher.join()
        await subscriber.join()
        assert publisher.pc is not None
        for _ in range(200):
            if publisher.offers >= 1 and capture.receiver is not None:
                break
            await asyncio.sleep(0.05)
        sender = next(t.sender for t in publisher.pc.getTransceivers() if t.kind == "audio")
        wrapper = getattr(sender, "_tingshen_red", None)
        assert (wrapper is not None) == redundancy
        transport = sender.transport
        if wrapper is not None:
            wrapper.policy = RedundancyPolicy("always")
            send = wrapper._send  # below the RED wrapping: what the link carries
        else:
            send = transport._send_rtp
        ssrc = sender._ssrc
        counter = {"audio": 0}

        async def lossy(data: bytes) -> None:
            if int.from_bytes(data[8:12], "big") == ssrc:
                counter["audio"] += 1
                if counter["audio"] % DROP_EVERY == 0:
                    capture.dropped += 1
                    return
            await send(data)

        if wrapper is not None:
            wrapper._send = lossy
        else:
            transport._send_rtp = lossy  # type: ignore[method-assign]
        await asyncio.sleep(seconds)
        live = server.app[state.SERVICES].live[hearing["id"]]
        stream = live.streams[(welcome["participant"]["id"], "audio")]
        unwrapper = getattr(stream.receiver, "_tingshen_red", None)
        recovered = unwrapper.recovered if unwrapper is not None else 0
    finally:
        await subscriber.close()
        await publisher.close()
        for task in capture.tasks:
            task.cancel()
    return capture, recovered


async def test_red_from_a_lossy_publisher_is_repaired_at_the_server(server: RunningServer) -> None:
    with_red, recovered = await _run_uplink(server, redundancy=True, seconds=6.0)
    without, _ = await _run_uplink(server, redundancy=False, seconds=6.0)
    print(
        f"\nuplink RED: subscriber decoded {with_red.decoded_fraction():.3f}, server recovered "
        f"{recovered} of {with_red.dropped} lost; control: {without.decoded_fraction():.3f}"
    )
    assert with_red.dropped >= 20 and without.dropped >= 20
    assert without.decoded_fraction() < 0.95
    # the server unwrapped the publisher's RED and forwarded the repaired stream
    assert recovered >= with_red.dropped * 0.9
    assert with_red.decoded_fraction() >= 0.98
