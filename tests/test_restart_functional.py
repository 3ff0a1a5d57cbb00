"""A server restart mid-hearing changes nothing the court set up: `kill -9`, start again on the
same data folder and database, and the admitted defendant is back in without the judge admitting
again (still muted by the judge), the refused party waits in the lobby, the non-public part is
still paused and still not recorded."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from terminal.client import HearingClient, JoinRefused
from tests.conftest import free_port
from tests.db_fixtures import database_url  # noqa: F401  (fixture)
from tests.media import ColourTrack, Received, close_to, drain

pytestmark = pytest.mark.media

ROOT = Path(__file__).resolve().parents[1]
GREEN = (20, 200, 40)


class Server:
    """`tingshen serve` as a subprocess that can be killed and started again on the same data."""

    def __init__(self, data: Path, db_url: str, log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data = data
        self.env = {**os.environ, "TINGSHEN_DATABASE_URL": db_url}
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "server.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--data",
                    str(self.data),
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{self.base}/livez", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise AssertionError(f"server did not start: {self.log.read_text()[-3000:]}")

    def kill_9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": "Bearer " + (self.data / "admin.token").read_text().strip(),
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Any:  # noqa: F811
    running = Server(tmp_path / "data", database_url, tmp_path / "server.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


async def _wait(predicate: Any, timeout: float) -> bool:
    for _ in range(int(timeout * 10)):
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return bool(predicate())


async def test_kill_9_keeps_admissions_the_judges_mute_and_the_pause(server: Server) -> None:
    hearing = await asyncio.to_thread(
        server.api,
        "POST",
        "/api/hearings",
        {
            "caseNumber": "（2026）川3332刑初9号",
            "kind": "arraignment",
            "invites": [
                {"role": "judge", "name": "审判长"},
                {"role": "defendant", "name": "张某"},
                {"role": "party", "name": "甲"},
            ],
            "autoAdmit": [],  # everyone but the judge waits in the lobby
        },
    )
    urls = {i["role"]: i["url"] for i in hearing["invites"]}
    clients: list[HearingClient] = []
    got: dict[str, Received] = defaultdict(Received)

    def on_track(pid: str, kind: str, track: Any, transceiver: Any) -> None:
        got[pid].tasks.append(asyncio.ensure_future(drain(track, got[pid])))

    def client(role: str, **kwargs: Any) -> HearingClient:
        made = HearingClient.from_invite(urls[role], ice_addresses=["127.0.0.1"], **kwargs)
        clients.append(made)
        return made

    try:
        # -- before: the judge admits the defendant, mutes it, refuses the party, pauses --------
        judge = client("judge", tracks={"video": ColourTrack(GREEN)})
        assert (await judge.join())["admitted"] is True
        defendant = client("defendant")
        welcome = await defendant.join()
        defendant_id = welcome["participant"]["id"]
        assert welcome["admitted"] is False
        await judge.next_message("participant-waiting")
        await judge.send({"type": "admit", "participantId": defendant_id})
        await defendant.next_message("admitted")
        # participant-joined goes out after the admission is stored
        assert (await judge.next_message("participant-joined"))["participant"]["id"] == (
            defendant_id
        )
        await judge.send({"type": "mute-participant", "participantId": defendant_id, "muted": True})
        assert (await judge.next_message("floor"))["silenced"] == [defendant_id]

        party = client("party")
        party_id = (await party.join())["participant"]["id"]
        assert (await judge.next_message("participant-waiting"))["participant"]["id"] == party_id
        await judge.send({"type": "refuse", "participantId": party_id})
        assert (await party.next_message("bye"))["reason"] == "refused"

        await judge.send({"type": "pause", "reason": "non-public-evidence"})
        paused = await judge.next_message("hearing-state")
        assert paused == {
            "type": "hearing-state",
            "state": "paused",
            "pauseReason": "non-public-evidence",
        }

        # -- the crash --------------------------------------------------------------------------
        server.kill_9()
        for c in list(clients):
            await c.close(leave=False)
        clients.clear()
        server.start()
        status = await asyncio.to_thread(server.api, "GET", f"/api/hearings/{hearing['id']}")
        assert status["state"] == "paused", status  # not "scheduled", not silently open

        # -- after: nobody admits anyone ------------------------------------------------------
        judge = client("judge", tracks={"video": ColourTrack(GREEN)})
        welcome = await judge.join()
        judge_id = welcome["participant"]["id"]
        assert welcome["hearing"]["state"] == "paused"
        assert (await judge.next_message("hearing-state"))["pauseReason"] == "non-public-evidence"

        defendant = client("defendant", on_track=on_track)
        welcome = await defendant.join()
        defendant_id = welcome["participant"]["id"]
        assert welcome["admitted"] is True, welcome  # straight in: no lobby, no admit
        assert [p["id"] for p in welcome["participants"]] == [judge_id]
        assert welcome["hearing"]["state"] == "paused"
        assert (await defendant.next_message("floor"))["silenced"] == [defendant_id]
        state = await defendant.next_message("hearing-state")
        assert (state["state"], state["pauseReason"]) == ("paused", "non-public-evidence")
        joined = await judge.next_message("participant-joined")
        assert joined["participant"]["id"] == defendant_id
        assert (await judge.next_message("floor"))["silenced"] == [defendant_id]
        # in the hearing: it sees the judge (media flows during a pause; only recording stops)
        assert await _wait(lambda: close_to(got[judge_id].last_rgb, GREEN), 20), dict(got)

        party = client("party")
        welcome = await party.join()
        assert welcome["admitted"] is False and welcome["participants"] == []
        waiting = await judge.next_message("participant-waiting")
        assert waiting["participant"]["id"] == welcome["participant"]["id"]
        await asyncio.sleep(0.5)
        assert party.offers == 0  # no media in the lobby

        await judge.send({"type": "resume"})
        resumed = await defendant.next_message("hearing-state")
        assert (resumed["state"], resumed["pauseReason"]) == ("open", None)
        assert all(c.errors == [] for c in (judge, defendant, party)), [c.errors for c in clients]
    finally:
        for c in clients:
            await c.close()
        for received in got.values():
            for task in received.tasks:
                task.cancel()

    await asyncio.to_thread(server.api, "POST", f"/api/hearings/{hearing['id']}/end")
    server.stop()

    # -- the record: the recording after the restart started paused, and says who came back how
    folders = sorted((server.data / "recordings" / hearing["id"]).iterdir())
    assert len(folders) == 2
    after = next(f for f in folders if '"server-restart"' in (f / "events.jsonl").read_text())
    events = [json.loads(x) for x in (after / "events.jsonl").read_text().splitlines()]
    by_kind = defaultdict(list)
    for event in events:
        by_kind[event["kind"]].append(event)
    (restart,) = by_kind["server-restart"]
    assert restart["data"] == {
        "state": "paused",
        "admitted": 2,  # the judge and the defendant; the refused party held no place
        "pauseReason": "non-public-evidence",
    }
    (readmitted,) = [e for e in by_kind["admit"] if e["data"].get("reason") == "server-restart"]
    assert readmitted["data"]["participant"] == defendant_id
    assert readmitted["data"]["by"] is None
    assert len(by_kind["admit"]) == 1  # nobody admitted anybody after the restart
    assert [e["data"]["reason"] for e in by_kind["recording-paused"]] == ["non-public-evidence"]
    manifest = [json.loads(x) for x in (after / "manifest.jsonl").read_text().splitlines()]
    (gap,) = [e for e in manifest if e.get("type") == "gap"]
    assert gap["reason"] == "non-public-evidence" and gap["paused_by"].startswith("审判长 (")
    start = next(e for e in manifest if e.get("type") == "recording")["start"]
    assert gap["start"][:19] == start[:19]  # paused from the recording's first moment


async def test_an_ejected_invitation_stays_out_after_a_restart(server: Server) -> None:
    hearing = await asyncio.to_thread(
        server.api,
        "POST",
        "/api/hearings",
        {
            "caseNumber": "（2026）川3332刑初10号",
            "invites": [{"role": "judge", "name": "审判长"}, {"role": "party", "name": "甲"}],
            "autoAdmit": ["party"],
        },
    )
    judge_url, party_url = (i["url"] for i in hearing["invites"])
    judge = HearingClient.from_invite(judge_url, ice_addresses=["127.0.0.1"])
    party = HearingClient.from_invite(party_url, ice_addresses=["127.0.0.1"])
    try:
        await judge.join()
        party_id = (await party.join())["participant"]["id"]
        # the client reads nothing while it answers an offer: let it answer before the bye comes
        assert await _wait(lambda: party.offers >= 1, 10)
        await judge.send({"type": "eject", "participantId": party_id})
        assert (await party.next_message("bye"))["reason"] == "ejected"
        await judge.next_message("participant-left")
    finally:
        await judge.close(leave=False)
        await party.close()
    server.kill_9()
    server.start()
    again = HearingClient.from_invite(party_url, ice_addresses=["127.0.0.1"])
    try:
        with pytest.raises(JoinRefused, match="revoked"):
            await again.join()
    finally:
        await again.close()
