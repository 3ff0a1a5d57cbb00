"""The court an invitation is at, through a real server: what the others are told, and the timeline.

A cross-court hearing of the intermediate court (gz-zy) with the defendant's courtroom endpoint in
Shiqu: the judge's page must be able to say where the defendant is, and the recording must say where
everyone was when they joined (a network failure at a county court and a refusal to appear look the
same otherwise).
"""

from __future__ import annotations

import json

import pytest

from terminal.client import HearingClient
from tests.conftest import RunningServer

pytestmark = pytest.mark.media

SHIQU = {
    "court": "shiqu",
    "courtName": "石渠县人民法院",
    "courtNameEn": "Shiqu County People's Court",
}
GZ_ZY = {
    "court": "gz-zy",
    "courtName": "甘孜藏族自治州中级人民法院",
    "courtNameEn": "Ganzi Tibetan Autonomous Prefecture Intermediate People's Court (Kangding)",
}


def court_of(participant: dict[str, object]) -> dict[str, object]:
    return {k: participant.get(k) for k in ("court", "courtName", "courtNameEn")}


async def test_participants_and_the_timeline_carry_the_court(server: RunningServer) -> None:
    hearing = await server.create_hearing(
        "judge:审判长", "defendant:张某@shiqu", kind="cross-court", lobby=True
    )
    assert [i["court"] for i in hearing["invites"]] == ["gz-zy", "shiqu"]
    judge = HearingClient.from_invite(hearing["invites"][0]["url"])
    defendant = HearingClient.from_invite(hearing["invites"][1]["url"])
    try:
        welcome = await judge.join()
        assert court_of(welcome["participant"]) == GZ_ZY
        assert court_of(welcome["hearing"]) == GZ_ZY  # the header names the court

        waiting = await defendant.join()
        assert court_of(waiting["participant"]) == SHIQU
        told = await judge.next_message("participant-waiting")
        assert told["participant"]["name"] == "张某"
        assert court_of(told["participant"]) == SHIQU

        await judge.send({"type": "admit", "participantId": defendant.participant_id})
        joined = await judge.next_message("participant-joined")
        assert court_of(joined["participant"]) == SHIQU
        admitted = await defendant.next_message("admitted")
        [seen_judge] = admitted["participants"]
        assert court_of(seen_judge) == GZ_ZY

        # a reconnect with the same invitation is at the same court
        again = HearingClient.from_invite(hearing["invites"][1]["url"])
        await again.join()
        rejoined = await judge.next_message("participant-joined")
        assert court_of(rejoined["participant"]) == SHIQU
        await defendant.close(leave=False)
        defendant = again
    finally:
        await judge.close()
        await defendant.close()

    status, _ = await server.api("POST", f"/api/hearings/{hearing['id']}/end")
    assert status == 200
    (folder,) = (server.settings.recordings_dir / hearing["id"]).iterdir()
    events = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    where = [
        (e["kind"], e["data"]["name"], e["data"]["court"], e["data"]["courtName"])
        for e in events
        if e["kind"] in ("join", "waiting")
    ]
    assert where == [
        ("join", "审判长", "gz-zy", "甘孜藏族自治州中级人民法院"),
        ("waiting", "张某", "shiqu", "石渠县人民法院"),
        ("join", "张某", "shiqu", "石渠县人民法院"),
        ("join", "张某", "shiqu", "石渠县人民法院"),
    ]


async def test_an_invitation_without_a_court_is_at_the_hearings(server: RunningServer) -> None:
    status, hearing = await server.api(
        "POST",
        "/api/hearings",
        {
            "caseNumber": "（2026）川3332刑初5号",
            "court": "shiqu",
            "invites": [{"role": "judge", "name": "审判长"}],
        },
    )
    assert status == 201, hearing
    judge = HearingClient.from_invite(hearing["invites"][0]["url"])
    try:
        welcome = await judge.join()
        assert court_of(welcome["participant"]) == SHIQU
    finally:
        await judge.close()
