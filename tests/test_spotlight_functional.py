"""The spotlight through a real server: set, refused, late joiners, reconnect, leave, eject, timeline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from signaling.roles import Role, can_join
from terminal.client import HearingClient, ws_url_from_invite
from tests.conftest import RunningServer

pytestmark = pytest.mark.media


async def receive_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return dict(json.loads(msg.data))


async def next_of(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        message = await receive_json(ws)
        if message["type"] == kind:
            return message


@asynccontextmanager
async def hand_made(url: str) -> AsyncIterator[tuple[aiohttp.ClientWebSocketResponse, str]]:
    """A client written by hand: a bare WebSocket that joins and never answers an offer."""
    ws_url, token = ws_url_from_invite(url)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url) as ws:
            await ws.send_str(json.dumps({"type": "join", "token": token}))
            welcome = await next_of(ws, "welcome")
            yield ws, welcome["participant"]["id"]


def drained(client: HearingClient) -> list[dict[str, Any]]:
    out = []
    while not client.messages.empty():
        out.append(client.messages.get_nowait())
    return out


async def test_every_role_but_the_judge_is_refused(server: RunningServer) -> None:
    roles = [r for r in Role if can_join(r)]
    hearing = await server.create_hearing(*(f"{r.value}:{r.value}" for r in roles))
    urls = {i["role"]: i["url"] for i in hearing["invites"]}
    judge = HearingClient.from_invite(urls["judge"])
    judge_id = (await judge.join())["participant"]["id"]
    try:
        for role in roles:
            if role is Role.judge:
                continue
            async with hand_made(urls[role.value]) as (ws, _):
                for target in (judge_id, None):
                    await ws.send_str(json.dumps({"type": "spotlight", "participantId": target}))
                    error = await next_of(ws, "error")
                    assert error["code"] == "forbidden", (role, error)
                    assert error["fatal"] is False
        # the same frame from the judge is taken
        await judge.send({"type": "spotlight", "participantId": judge_id})
        assert (await judge.next_message("spotlight"))["participantId"] == judge_id
        assert not [m for m in drained(judge) if m["type"] == "error"]
    finally:
        await judge.close()


async def test_spotlight_reaches_everyone_follows_a_reconnect_and_goes_out(
    server: RunningServer,
) -> None:
    hearing = await server.create_hearing(
        "judge:审判长", "clerk:书记员", "witness:证人王某", "defendant:被告人张某",
        "observer:旁听", "interpreter:译员",
    )  # fmt: skip
    urls = {i["role"]: i["url"] for i in hearing["invites"]}
    judge = HearingClient.from_invite(urls["judge"])
    clerk = HearingClient.from_invite(urls["clerk"])
    witness = HearingClient.from_invite(urls["witness"])
    defendant = HearingClient.from_invite(urls["defendant"])
    observer = HearingClient.from_invite(urls["observer"])
    late: HearingClient | None = None
    back: HearingClient | None = None
    try:
        judge_id = (await judge.join())["participant"]["id"]
        await clerk.join()
        witness_id = (await witness.join())["participant"]["id"]
        defendant_id = (await defendant.join())["participant"]["id"]
        observer_id = (await observer.join())["participant"]["id"]

        # refusals, each with its own code; nothing changes for anyone
        refusals = [(observer_id, "forbidden"), ("abc123", "not-joined"), ("a b", "bad-message")]
        for target, code in refusals:
            await judge.send({"type": "spotlight", "participantId": target})
            assert (await judge.next_message("error"))["code"] == code
        await judge.send({"type": "spotlight"})
        assert (await judge.next_message("error"))["code"] == "bad-message"

        # the judge spotlights the witness: everyone is told, the observer too (it watches)
        watching = [judge, clerk, witness, defendant, observer]

        async def everyone_sees(participant_id: str | None) -> None:
            for client in watching:
                message = await client.next_message("spotlight")
                assert message == {"type": "spotlight", "participantId": participant_id}

        await judge.send({"type": "spotlight", "participantId": witness_id})
        await everyone_sees(witness_id)

        # a late joiner is told at once, with the judge's mutes (the floor) too
        mute = {"type": "mute-participant", "participantId": clerk.participant_id, "muted": True}
        await judge.send(mute)
        await defendant.next_message("floor")
        late = HearingClient.from_invite(urls["interpreter"])
        await late.join()
        first = [await asyncio.wait_for(late.messages.get(), 2) for _ in range(2)]
        assert first == [
            {"type": "floor", "holder": None, "requests": [], "silenced": [clerk.participant_id]},
            {"type": "spotlight", "participantId": witness_id},
        ]
        watching.append(late)

        # the witness's link drops; it comes back with the same invitation and keeps the spotlight
        await witness.close(leave=False)
        watching.remove(witness)
        back = HearingClient.from_invite(urls["witness"])
        new_witness_id = (await back.join())["participant"]["id"]
        assert (await back.next_message("spotlight", timeout=2))["participantId"] == new_witness_id
        await everyone_sees(new_witness_id)

        # the witness leaves: the spotlight goes out for everyone
        await back.close()
        back = None
        await everyone_sees(None)

        # the defendant, spotlighted, is ejected: out it goes again
        await judge.send({"type": "spotlight", "participantId": defendant_id})
        await everyone_sees(defendant_id)
        await judge.send({"type": "eject", "participantId": defendant_id})
        watching.remove(defendant)
        await everyone_sees(None)

        # and the judge clears a spotlight by hand
        await judge.send({"type": "spotlight", "participantId": judge_id})
        await everyone_sees(judge_id)
        await judge.send({"type": "spotlight", "participantId": None})
        await everyone_sees(None)
    finally:
        for client in (judge, clerk, witness, defendant, observer, late, back):
            if client is not None:
                await client.close()

    status, _ = await server.api("POST", f"/api/hearings/{hearing['id']}/end")
    assert status == 200
    (folder,) = (server.settings.recordings_dir / hearing["id"]).iterdir()
    events = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    spotlights = [e for e in events if e["kind"] == "spotlight"]
    data = [e["data"] for e in spotlights]
    assert data[0] == {
        "participant": witness_id,
        "name": "证人王某",
        "by": judge_id,
        "byName": "审判长",
    }
    assert {"participant": new_witness_id, "name": "证人王某", "by": None, "byName": None,
            "reason": "rejoined"} in data  # fmt: skip
    reasons = [d.get("reason") for d in data if d["participant"] is None]
    assert reasons == ["left", "ejected", None]
    assert all(str(e["at"]).endswith("Z") for e in spotlights), spotlights  # when: wall clock


async def test_the_lobby_sees_no_spotlight_until_admitted(server: RunningServer) -> None:
    hearing = await server.create_hearing("judge:审判长", "witness:证人", "party:甲", lobby=True)
    urls = {i["role"]: i["url"] for i in hearing["invites"]}
    judge = HearingClient.from_invite(urls["judge"])
    witness = HearingClient.from_invite(urls["witness"])
    party = HearingClient.from_invite(urls["party"])
    try:
        await judge.join()
        witness_id = (await witness.join())["participant"]["id"]
        await judge.send({"type": "admit", "participantId": witness_id})
        await witness.next_message("admitted")
        await judge.send({"type": "spotlight", "participantId": witness_id})
        await judge.next_message("spotlight")

        party_id = (await party.join())["participant"]["id"]
        await judge.next_message("participant-waiting")
        await judge.send({"type": "spotlight", "participantId": party_id})  # still waiting
        assert (await judge.next_message("error"))["code"] == "forbidden"
        assert not [m for m in drained(party) if m["type"] == "spotlight"]

        await judge.send({"type": "admit", "participantId": party_id})
        admitted = await asyncio.wait_for(party.messages.get(), 5)
        assert admitted["type"] == "admitted"
        spotlight = await asyncio.wait_for(party.messages.get(), 5)
        assert spotlight == {"type": "spotlight", "participantId": witness_id}
    finally:
        for client in (judge, witness, party):
            await client.close()
