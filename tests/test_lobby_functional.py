"""The lobby and the judge's controls through a real server: admit, eject with revocation, notes."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import aiohttp
import pytest

from terminal.client import HearingClient
from tests.conftest import RunningServer
from tests.media import ColourTrack, Received, close_to, drain

pytestmark = pytest.mark.media

GREEN = (20, 200, 40)


async def test_wait_admit_eject_revoke_and_notes(server: RunningServer) -> None:
    hearing = await server.create_hearing(
        "judge:审判长", "clerk:书记员", "party:甲", "observer:丙", lobby=True
    )
    urls = {i["role"]: i["url"] for i in hearing["invites"]}
    codes = {i["role"]: i["code"] for i in hearing["invites"]}
    got: dict[str, Received] = defaultdict(Received)

    def on_track(pid, kind, track, transceiver) -> None:
        got[pid].tasks.append(asyncio.ensure_future(drain(track, got[pid])))

    judge = HearingClient.from_invite(urls["judge"], tracks={"video": ColourTrack(GREEN)})
    clerk = HearingClient.from_invite(urls["clerk"])
    party = HearingClient.from_invite(urls["party"], on_track=on_track)
    observer = HearingClient.from_invite(urls["observer"])
    try:
        judge_id = (await judge.join())["participant"]["id"]
        await clerk.join()
        await observer.join()  # observers wait too, unseen by the court
        welcome = await party.join()
        party_id = welcome["participant"]["id"]
        assert welcome["admitted"] is False and welcome["participants"] == []
        waiting = await judge.next_message("participant-waiting")
        assert waiting["participant"]["name"] in ("甲", "丙")
        await asyncio.sleep(1)
        assert party.offers == 0 and not got  # no media in the lobby

        # only the judge admits
        await clerk.send({"type": "admit", "participantId": party_id})
        assert (await clerk.next_message("error"))["code"] == "forbidden"
        await judge.send({"type": "admit", "participantId": party_id})
        await party.next_message("admitted")
        assert await _wait(lambda: close_to(got[judge_id].last_rgb, GREEN), 15)
        joined = await clerk.next_message("participant-joined")
        assert joined["participant"]["id"] == party_id

        # the clerk keeps the record; the judge sees it, the party does not
        await clerk.send({"type": "note", "text": "出示证据3"})
        note = await judge.next_message("note")
        assert note["text"] == "出示证据3" and note["authorName"] == "书记员"

        # eject: out within a second, and the invitation no longer works
        await judge.send({"type": "eject", "participantId": party_id})
        bye = await asyncio.wait_for(party.next_message("bye"), 1.0)
        assert bye["reason"] == "ejected"
        left = await judge.next_message("participant-left")
        assert left == {"type": "participant-left", "participantId": party_id, "reason": "ejected"}
        again = HearingClient.from_invite(urls["party"])
        with pytest.raises(RuntimeError, match="revoked"):
            await again.join()
        async with aiohttp.ClientSession() as s:
            async with s.post(
                server.base_url + "/api/join-codes/exchange", json={"code": codes["party"]}
            ) as r:
                assert r.status == 404
        for message in list(_drained(party)):
            assert message["type"] != "note"
    finally:
        for client in (judge, clerk, party, observer):
            await client.close()
        for received in got.values():
            for t in received.tasks:
                t.cancel()

    status, _ = await server.api("POST", f"/api/hearings/{hearing['id']}/end")
    assert status == 200
    (folder,) = (server.settings.recordings_dir / hearing["id"]).iterdir()
    events = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    for kind in ("waiting", "admit", "note", "eject"):
        assert kind in kinds, kinds


async def test_judge_ends_the_hearing_from_the_page_protocol(server: RunningServer) -> None:
    hearing = await server.create_hearing("judge:审判长", "party:甲")
    judge = HearingClient.from_invite(hearing["invites"][0]["url"])
    party = HearingClient.from_invite(hearing["invites"][1]["url"])
    await judge.join()
    await party.join()
    try:
        await party.send({"type": "end"})
        assert (await party.next_message("error"))["code"] == "forbidden"
        await judge.send({"type": "end"})
        assert (await party.next_message("bye"))["reason"] == "ended"
    finally:
        await judge.close()
        await party.close()
    _, rows = await server.api("GET", "/api/hearings")
    assert {h["id"]: h["state"] for h in rows}[hearing["id"]] == "closed"


def _drained(client: HearingClient):
    while not client.messages.empty():
        yield client.messages.get_nowait()


async def _wait(predicate, timeout: float) -> bool:
    for _ in range(int(timeout * 10)):
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return predicate()


async def test_sealed_hearing_refuses_observers(server: RunningServer) -> None:
    status, hearing = await server.api(
        "POST",
        "/api/hearings",
        {"caseNumber": "S-1", "sealed": True, "invites": [{"role": "observer", "name": "旁听"}]},
    )
    assert status == 201 and hearing["sealed"] is True
    observer = HearingClient.from_invite(hearing["invites"][0]["url"])
    with pytest.raises(RuntimeError, match="sealed"):
        await observer.join()


async def test_a_dropped_link_keeps_the_place_for_the_grace_period(server: RunningServer) -> None:
    hearing = await server.create_hearing("judge:审判长", "party:甲", lobby=True)
    urls = [i["url"] for i in hearing["invites"]]
    judge = HearingClient.from_invite(urls[0])
    party = HearingClient.from_invite(urls[1])
    await judge.join()
    party_id = (await party.join())["participant"]["id"]
    await judge.send({"type": "admit", "participantId": party_id})
    await party.next_message("admitted")
    await party.close(leave=False)  # the link drops: no leave message
    await asyncio.sleep(1.0)
    seen = list(_drained(judge))
    assert not any(m["type"] == "participant-left" for m in seen), seen
    back = HearingClient.from_invite(urls[1])
    try:
        welcome = await back.join()
        assert welcome["admitted"] is True  # no second trip through the lobby
        left = await judge.next_message("participant-left")
        assert left["participantId"] == party_id and left["reason"] == "replaced"
    finally:
        await back.close()
        await judge.close()
    await server.api("POST", f"/api/hearings/{hearing['id']}/end")
    (folder,) = (server.settings.recordings_dir / hearing["id"]).iterdir()
    kinds = [json.loads(x)["kind"] for x in (folder / "events.jsonl").read_text().splitlines()]
    assert "disconnected" in kinds


async def test_judge_mute_and_meeting_floor_stop_forwarding_audio(server: RunningServer) -> None:
    hearing = await server.create_hearing(
        "judge:州中院", "party:石渠县法院", "party:色达县法院", kind="meeting"
    )
    urls = [i["url"] for i in hearing["invites"]]
    got: dict[str, Received] = defaultdict(Received)

    def on_track(pid, kind, track, transceiver) -> None:
        got[pid].tasks.append(asyncio.ensure_future(drain(track, got[pid])))

    from tests.media import ToneTrack

    chair = HearingClient.from_invite(urls[0], on_track=on_track)
    a = HearingClient.from_invite(urls[1], tracks={"audio": ToneTrack(300)})
    b = HearingClient.from_invite(urls[2], tracks={"audio": ToneTrack(600)})
    try:
        await chair.join()
        a_id = (await a.join())["participant"]["id"]
        b_id = (await b.join())["participant"]["id"]
        assert await _wait(lambda: got[a_id].audio_frames > 20 and got[b_id].audio_frames > 20, 15)

        await a.send({"type": "request-floor"})
        floor = await chair.next_message("floor")
        assert floor["requests"] == [a_id]
        await chair.send({"type": "give-floor", "participantId": a_id})
        floor = await b.next_message("floor")
        floor = floor if floor["holder"] else await b.next_message("floor")
        assert floor["holder"] == a_id and b_id in floor["silenced"]
        await asyncio.sleep(0.5)
        before = (got[a_id].audio_frames, got[b_id].audio_frames)
        await asyncio.sleep(1.5)
        after = (got[a_id].audio_frames, got[b_id].audio_frames)
        assert after[0] - before[0] > 40  # the holder is heard
        assert after[1] - before[1] < 5  # the others are not forwarded

        await chair.send({"type": "give-floor", "participantId": None})
        await chair.send({"type": "mute-participant", "participantId": a_id, "muted": True})
        await asyncio.sleep(0.5)
        before = (got[a_id].audio_frames, got[b_id].audio_frames)
        await asyncio.sleep(1.5)
        after = (got[a_id].audio_frames, got[b_id].audio_frames)
        assert after[0] - before[0] < 5 and after[1] - before[1] > 40
        await a.send({"type": "mute-participant", "participantId": b_id, "muted": True})
        assert (await a.next_message("error"))["code"] == "forbidden"
    finally:
        for client in (chair, a, b):
            await client.close()
        for received in got.values():
            for t in received.tasks:
                t.cancel()


async def test_observers_are_counted_for_the_court_not_shown(server: RunningServer) -> None:
    hearing = await server.create_hearing("judge:审判长", "observer:甲", "observer:乙")
    urls = [i["url"] for i in hearing["invites"]]
    judge = HearingClient.from_invite(urls[0])
    await judge.join()
    assert (await judge.next_message("observers"))["count"] == 0
    watchers = [HearingClient.from_invite(u) for u in urls[1:]]
    try:
        counts = []
        for watcher in watchers:
            await watcher.join()
            counts.append((await judge.next_message("observers"))["count"])
        assert counts == [1, 2]
        await watchers[0].close()
        assert (await judge.next_message("observers"))["count"] == 1
        assert all(m["type"] != "participant-joined" for m in _drained(judge))
    finally:
        await judge.close()
        await watchers[1].close()
