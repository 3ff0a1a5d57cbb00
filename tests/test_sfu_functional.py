"""One publisher, three subscribers, through a real server on loopback (aiortc clients)."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest

from terminal.client import HearingClient
from tests.conftest import RunningServer
from tests.media import ColourTrack, Received, ToneTrack, close_to, drain

pytestmark = pytest.mark.media

RED = (220, 30, 30)
BLUE = (30, 60, 220)


def subscriber(url: str, got: dict[str, Received]) -> HearingClient:
    def on_track(pid, kind, track, transceiver) -> None:
        received = got[pid]
        received.tasks.append(asyncio.ensure_future(drain(track, received)))

    return HearingClient.from_invite(url, on_track=on_track)


async def wait_until(predicate, timeout: float, step: float = 0.1) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


@pytest.mark.parametrize("relay_mode", ["rtp", "mediarelay"])
async def test_one_publisher_three_subscribers(server: RunningServer, relay_mode: str) -> None:
    server.settings.relay_mode = relay_mode  # type: ignore[assignment]
    hearing = await server.create_hearing("judge:审判长", "party:甲", "party:乙", "observer:丙")
    urls = [i["url"] for i in hearing["invites"]]
    publisher = HearingClient.from_invite(
        urls[0], tracks={"video": ColourTrack(RED), "audio": ToneTrack()}
    )
    welcome = await publisher.join()
    judge_id = welcome["participant"]["id"]
    received: list[dict[str, Received]] = [defaultdict(Received) for _ in range(3)]
    subs = [subscriber(url, got) for url, got in zip(urls[1:], received, strict=True)]
    try:
        for sub in subs:
            await sub.join()

        def all_see_red() -> bool:
            return all(
                close_to(got[judge_id].last_rgb, RED) and got[judge_id].audio_frames > 25
                for got in received
            )

        assert await wait_until(all_see_red, 20), [
            (g[judge_id].video_frames, g[judge_id].audio_frames, g[judge_id].last_rgb)
            for g in received
        ]
        # A subscriber leaving mid-stream does not disturb the others.
        await subs[0].close()
        before = [received[i][judge_id].video_frames for i in (1, 2)]
        await asyncio.sleep(2)
        after = [received[i][judge_id].video_frames for i in (1, 2)]
        assert all(a - b >= 20 for a, b in zip(after, before, strict=True)), (before, after)
    finally:
        for client in [publisher, *subs]:
            await client.close()
        for got in received:
            for r in got.values():
                for t in r.tasks:
                    t.cancel()


async def test_late_joiners_and_leavers_renegotiate_and_reuse_slots(server: RunningServer) -> None:
    """B watches while C comes and goes and D arrives: B sees D on C's old m-lines."""
    hearing = await server.create_hearing("judge:A", "party:B", "party:C", "party:D")
    urls = [i["url"] for i in hearing["invites"]]
    got: dict[str, Received] = defaultdict(Received)
    a = HearingClient.from_invite(urls[0], tracks={"video": ColourTrack(RED)})
    b = subscriber(urls[1], got)
    c = HearingClient.from_invite(urls[2], tracks={"video": ColourTrack(BLUE)})
    d = HearingClient.from_invite(urls[3], tracks={"video": ColourTrack((240, 240, 240))})
    try:
        a_id = (await a.join())["participant"]["id"]
        await b.join()
        assert await wait_until(lambda: close_to(got[a_id].last_rgb, RED), 15)
        c_id = (await c.join())["participant"]["id"]
        assert await wait_until(lambda: close_to(got[c_id].last_rgb, BLUE), 15)
        assert b.pc is not None
        m_lines = len(b.pc.getTransceivers())
        await c.close()
        left = await b.next_message("participant-left")
        assert left["participantId"] == c_id and left["reason"] == "left"
        d_id = (await d.join())["participant"]["id"]
        assert await wait_until(lambda: close_to(got[d_id].last_rgb, (240, 240, 240)), 15)
        assert len(b.pc.getTransceivers()) == m_lines  # D took C's idle slot
        # A was never disturbed
        before = got[a_id].video_frames
        await asyncio.sleep(1)
        assert got[a_id].video_frames - before >= 15
    finally:
        for client in (a, b, d):
            await client.close()
        for r in got.values():
            for t in r.tasks:
                t.cancel()


async def test_shutdown_says_going_away(server: RunningServer) -> None:
    hearing = await server.create_hearing("party:甲")
    client = HearingClient.from_invite(hearing["invites"][0]["url"])
    await client.join()
    await server.app.shutdown()  # what the runner does first on SIGTERM
    await asyncio.wait_for(client.closed.wait(), 5)
    assert client._ws.close_code == 1001
    await client.close(leave=False)


async def test_observer_gets_no_empty_offer_then_one_when_someone_publishes(
    server: RunningServer,
) -> None:
    hearing = await server.create_hearing("observer:旁听", "judge:审判长")
    got: dict[str, Received] = defaultdict(Received)
    observer = subscriber(hearing["invites"][0]["url"], got)
    judge = HearingClient.from_invite(
        hearing["invites"][1]["url"], tracks={"video": ColourTrack(RED)}
    )
    try:
        await observer.join()
        await asyncio.sleep(0.5)
        assert observer.offers == 0  # an offer without m-lines is refused by browsers
        judge_id = (await judge.join())["participant"]["id"]
        assert await wait_until(lambda: close_to(got[judge_id].last_rgb, RED), 15)
        # the judge was never told about the observer
        seen = []
        while not judge.messages.empty():
            seen.append(judge.messages.get_nowait()["type"])
        assert "participant-joined" not in seen, seen
    finally:
        await observer.close()
        await judge.close()
        for r in got.values():
            for t in r.tasks:
                t.cancel()


async def test_publishing_participant_joining_late_gets_every_stream(
    server: RunningServer,
) -> None:
    """The first offer to a late joiner carries its own m-lines and others' video together."""
    hearing = await server.create_hearing("judge:A", "party:B")
    got: dict[str, Received] = defaultdict(Received)
    a = HearingClient.from_invite(
        hearing["invites"][0]["url"], tracks={"video": ColourTrack(RED), "audio": ToneTrack()}
    )

    def on_track(pid, kind, track, transceiver) -> None:
        got[pid].tasks.append(asyncio.ensure_future(drain(track, got[pid])))

    b = HearingClient.from_invite(
        hearing["invites"][1]["url"],
        tracks={"video": ColourTrack(BLUE), "audio": ToneTrack()},
        on_track=on_track,
    )
    try:
        a_id = (await a.join())["participant"]["id"]
        await asyncio.sleep(2)  # A is connected and sending before B arrives
        await b.join()
        assert await wait_until(
            lambda: close_to(got[a_id].last_rgb, RED) and got[a_id].audio_frames > 25, 15
        ), (got[a_id].video_frames, got[a_id].audio_frames)
    finally:
        await a.close()
        await b.close()
        for r in got.values():
            for t in r.tasks:
                t.cancel()
