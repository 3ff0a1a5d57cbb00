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
