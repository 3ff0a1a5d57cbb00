"""Evidence on screen: a screen share is an extra track, forwarded and recorded as its own track."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import pytest

from terminal.client import HearingClient
from tests.conftest import RunningServer
from tests.media import ColourTrack, Received, close_to, drain

pytestmark = pytest.mark.media

CAMERA = (200, 30, 30)
SCREEN = (250, 250, 250)


async def test_share_a_screen_then_stop(server: RunningServer) -> None:
    hearing = await server.create_hearing("judge:审判长", "prosecutor:公诉人", "witness:证人")
    urls = [i["url"] for i in hearing["invites"]]
    got: dict[tuple[str, str], Received] = defaultdict(Received)

    def on_track(pid, kind, track, transceiver) -> None:
        received = got[(pid, kind)]
        received.tasks.append(asyncio.ensure_future(drain(track, received)))

    judge = HearingClient.from_invite(urls[0], on_track=on_track)
    prosecutor = HearingClient.from_invite(urls[1], tracks={"video": ColourTrack(CAMERA)})
    witness = HearingClient.from_invite(urls[2])
    try:
        await judge.join()
        pid = (await prosecutor.join())["participant"]["id"]
        await witness.join()
        assert await _wait(lambda: close_to(got[(pid, "video")].last_rgb, CAMERA), 15)

        prosecutor.tracks["screen"] = ColourTrack(SCREEN, width=640, height=360)
        await prosecutor.send({"type": "share", "on": True})
        assert await _wait(lambda: close_to(got[(pid, "screen")].last_rgb, SCREEN), 15)
        published = await judge.next_message("track-published")
        while published["kind"] != "screen":
            published = await judge.next_message("track-published")
        assert published["participantId"] == pid

        # a witness may speak but not present evidence
        await witness.send({"type": "share", "on": True})
        assert (await witness.next_message("error"))["code"] == "forbidden"

        del prosecutor.tracks["screen"]
        await prosecutor.send({"type": "share", "on": False})
        stopped = await judge.next_message("track-unpublished")
        assert stopped == {"type": "track-unpublished", "participantId": pid, "kind": "screen"}
        before = got[(pid, "video")].video_frames
        await asyncio.sleep(1)
        assert got[(pid, "video")].video_frames - before >= 15  # the camera goes on
    finally:
        for client in (judge, prosecutor, witness):
            await client.close()
        for received in got.values():
            for t in received.tasks:
                t.cancel()
    await server.api("POST", f"/api/hearings/{hearing['id']}/end")
    (folder,) = (server.settings.recordings_dir / hearing["id"]).iterdir()
    entries = [json.loads(x) for x in (folder / "manifest.jsonl").read_text().splitlines()]
    screen = [e for e in entries if e.get("track_id") == f"{pid}-screen"]
    assert any(e["type"] == "track" for e in screen)
    assert any(e["type"] == "segment" for e in screen)
    assert any(e["type"] == "track-removed" for e in screen)


async def _wait(predicate, timeout: float) -> bool:
    for _ in range(int(timeout * 10)):
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return predicate()
