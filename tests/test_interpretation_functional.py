"""Interpretation (issue 5, item 7): the interpreter hears everyone; the interpreter's own voice is a
track of its own in the recording, beside the voices interpreted."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from typing import Any

import pytest
from aiortc import MediaStreamTrack

from recorder.verify import verify_recording
from terminal.client import HearingClient
from tests.conftest import RunningServer
from tests.media import Received, ToneTrack, drain

pytestmark = pytest.mark.media


async def test_interpreter_hears_everyone_and_is_recorded_apart(server: RunningServer) -> None:
    hearing = await server.create_hearing(
        "judge:审判长", "defendant:扎西", "witness:卓玛", "interpreter:次仁"
    )
    urls = [i["url"] for i in hearing["invites"]]
    got: dict[str, Received] = defaultdict(Received)

    def on_track(pid: str, kind: str, track: MediaStreamTrack, transceiver: Any) -> None:
        if kind == "audio":
            got[pid].tasks.append(asyncio.ensure_future(drain(track, got[pid])))

    speakers = [HearingClient.from_invite(url, tracks={"audio": ToneTrack()}) for url in urls[:3]]
    interpreter = HearingClient.from_invite(
        urls[3], tracks={"audio": ToneTrack()}, on_track=on_track
    )
    clients = [*speakers, interpreter]
    try:
        ids = [(await client.join())["participant"]["id"] for client in clients]
        for _ in range(150):
            if all(got[pid].audio_frames > 50 for pid in ids[:3]):
                break
            await asyncio.sleep(0.1)
        # judge, defendant and witness all reach the interpreter
        assert {pid: got[pid].audio_frames > 50 for pid in ids[:3]} == dict.fromkeys(ids[:3], True)
        await asyncio.sleep(2.5)  # a closed segment or two of every voice
    finally:
        for client in clients:
            await client.close()
        for received in got.values():
            for task in received.tasks:
                task.cancel()
    status, _ = await server.api("POST", f"/api/hearings/{hearing['id']}/end")
    assert status == 200

    (folder,) = (server.settings.recordings_dir / hearing["id"]).iterdir()
    assert verify_recording(folder).ok
    entries = [json.loads(x) for x in (folder / "manifest.jsonl").read_text().splitlines()]
    tracks = {e["track_id"] for e in entries if e.get("type") == "track"}
    # four voices, four tracks: the interpreter's is neither mixed into nor replacing another's
    assert tracks == {f"{pid}-audio" for pid in ids}, tracks
    segments: dict[str, int] = defaultdict(int)
    for entry in entries:
        if entry.get("type") == "segment":
            segments[entry["track_id"]] += 1
    assert segments[f"{ids[3]}-audio"] >= 1, segments
