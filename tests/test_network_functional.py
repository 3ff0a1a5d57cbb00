"""Network evidence: link samples and connection changes on the timeline, quality to the judge."""

from __future__ import annotations

import asyncio
import json

import pytest

from terminal.client import HearingClient
from tests.conftest import RunningServer
from tests.media import ColourTrack, ToneTrack

pytestmark = pytest.mark.media


async def test_links_are_sampled_onto_the_timeline(server: RunningServer) -> None:
    server.settings.network_sample_seconds = 1.0
    hearing = await server.create_hearing("judge:审判长", "party:甲")
    judge = HearingClient.from_invite(
        hearing["invites"][0]["url"], tracks={"video": ColourTrack((9, 9, 9))}
    )
    party = HearingClient.from_invite(
        hearing["invites"][1]["url"],
        tracks={"video": ColourTrack((200, 0, 0)), "audio": ToneTrack()},
    )
    await judge.join()
    party_id = (await party.join())["participant"]["id"]
    try:
        seen = []
        for _ in range(8):
            quality = await judge.next_message("quality", timeout=5)
            if quality["participantId"] == party_id:
                seen.append(quality)
            if len(seen) >= 2:
                break
        assert seen, "the judge got no quality samples for the party"
        last = seen[-1]
        assert last["level"] == "good" and last["state"] == "connected", last
        assert last["kbpsIn"] > 50  # the party's video reaches the server
        # the party is not staff: it gets no quality messages
        await asyncio.sleep(1.5)
        while not party.messages.empty():
            assert party.messages.get_nowait()["type"] != "quality"
    finally:
        await judge.close()
        await party.close()
    await server.api("POST", f"/api/hearings/{hearing['id']}/end")
    (folder,) = (server.settings.recordings_dir / hearing["id"]).iterdir()
    events = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    network = [e for e in events if e["kind"] == "network"]
    assert any(e["data"]["participantId"] == party_id for e in network)
    states = [e["data"]["state"] for e in events if e["kind"] == "connection"]
    assert "connected" in states
