"""The consultation room: defence counsel and defendant in private, never recorded, by construction."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict

import pytest

from server import state
from signaling.roles import Role
from terminal.client import HearingClient
from tests.conftest import RunningServer
from tests.media import ColourTrack, Received, close_to, drain

pytestmark = pytest.mark.media

BLUE = (20, 40, 220)


async def test_consultation_is_private_and_unrecorded(server: RunningServer) -> None:
    hearing = await server.create_hearing(
        "judge:审判长", "defence:王律师", "defendant:张某", "observer:旁听"
    )
    urls = {i["role"]: i["url"] for i in hearing["invites"]}
    judge = HearingClient.from_invite(urls["judge"])
    lawyer = HearingClient.from_invite(urls["defence"])
    defendant = HearingClient.from_invite(urls["defendant"])
    await judge.join()
    await lawyer.join()
    await defendant.join()
    got: dict[str, Received] = defaultdict(Received)

    def on_track(pid, kind, track, transceiver) -> None:
        got[pid].tasks.append(asyncio.ensure_future(drain(track, got[pid])))

    room_clients: list[HearingClient] = []
    try:
        # the judge cannot ask for it
        await judge.send({"type": "consult"})
        assert (await judge.next_message("error"))["code"] == "forbidden"
        await lawyer.send({"type": "consult"})
        lawyer_url = (await lawyer.next_message("consultation"))["url"]
        await defendant.send({"type": "consult"})
        defendant_url = (await defendant.next_message("consultation"))["url"]

        in_room_lawyer = HearingClient.from_invite(lawyer_url, tracks={"video": ColourTrack(BLUE)})
        in_room_defendant = HearingClient.from_invite(defendant_url, on_track=on_track)
        room_clients += [in_room_lawyer, in_room_defendant]
        lawyer_id = (await in_room_lawyer.join())["participant"]["id"]
        welcome = await in_room_defendant.join()
        assert welcome["admitted"] is True and welcome["hearing"]["kind"] == "consultation"
        assert await _wait(lambda: close_to(got[lawyer_id].last_rgb, BLUE), 15)

        # no judge, observer or any other role gets in, even with a genuine server token
        tokens = server.app[state.SERVICES].tokens
        room_id = hearing["id"] + "consult"
        for role in (Role.judge, Role.observer, Role.clerk, Role.party):
            token = tokens.issue_join(room_id, role, "x", time.time(), 600)
            intruder = HearingClient(server.ws_url, token)
            with pytest.raises(RuntimeError, match="consultation"):
                await intruder.join()
        # the hearing's own tokens do not open the room
        judge_in_room = HearingClient.from_invite(urls["judge"])
        await judge_in_room.join()  # joins the hearing, not the room
        assert judge_in_room.welcome is not None
        assert judge_in_room.welcome["hearing"]["id"] == hearing["id"]
        await judge_in_room.close()
    finally:
        for client in (*room_clients, judge, lawyer, defendant):
            await client.close()
        for received in got.values():
            for t in received.tasks:
                t.cancel()

    await server.api("POST", f"/api/hearings/{hearing['id']}/end")
    recordings = server.settings.recordings_dir
    assert not (recordings / (hearing["id"] + "consult")).exists()  # never recorded
    (folder,) = (recordings / hearing["id"]).iterdir()
    events = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    kinds = [e["kind"] for e in events]
    assert kinds.count("consultation-join") == 2 and kinds.count("consultation-leave") == 2
    manifest = (folder / "manifest.jsonl").read_text()
    assert lawyer_id not in manifest  # not one frame of the room in the hearing's recording


async def _wait(predicate, timeout: float) -> bool:
    for _ in range(int(timeout * 10)):
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return predicate()


def test_a_room_id_can_never_be_a_hearing_id() -> None:
    # hearing ids are hex (server/db.py new_id): a suffix with a non-hex letter cannot collide
    from server.db import new_id
    from server.state import CONSULTATION_SUFFIX

    assert set(CONSULTATION_SUFFIX) - set("0123456789abcdef")
    assert all(not new_id().endswith(CONSULTATION_SUFFIX) for _ in range(1000))
