"""Exhibits: registered during the hearing by a presenter, hashed, on the recording's timeline."""

from __future__ import annotations

import hashlib
import json

import aiohttp

from terminal.client import HearingClient, ws_url_from_invite
from tests.conftest import RunningServer


async def post(
    server: RunningServer,
    hearing_id: str,
    token: str | None,
    body: bytes,
    name: str = "证据3 合同.pdf",
) -> tuple[int, dict]:
    headers = {"X-Exhibit-Name": name}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as s:
        async with s.post(
            f"{server.base_url}/api/hearings/{hearing_id}/exhibits", data=body, headers=headers
        ) as r:
            return r.status, await r.json()


async def test_a_presenter_registers_an_exhibit(server: RunningServer) -> None:
    server.settings.exhibit_max_bytes = 64 * 1024
    hearing = await server.create_hearing("judge:审判长", "prosecutor:公诉人", "witness:证人")
    hid = hearing["id"]
    tokens = {i["role"]: ws_url_from_invite(i["url"])[1] for i in hearing["invites"]}
    content = b"%PDF-1.4 exhibit " * 1000

    status, body = await post(server, hid, tokens["prosecutor"], content)
    assert status == 409  # nobody has opened the hearing: not in session yet

    judge = HearingClient.from_invite(hearing["invites"][0]["url"])
    await judge.join()
    try:
        status, body = await post(server, hid, tokens["prosecutor"], content)
        assert status == 201, body
        assert body["sha256"] == hashlib.sha256(content).hexdigest()
        assert body["bytes"] == len(content) and body["by"] == "公诉人"
        stored = server.settings.data / "exhibits" / hid / body["sha256"]
        assert stored.read_bytes() == content

        for token, data, code in (
            (None, content, 401),
            ("garbage", content, 401),
            (tokens["witness"], content, 403),  # a witness speaks but does not present
            (tokens["prosecutor"], b"", 400),
            (tokens["prosecutor"], b"x" * (65 * 1024), 413),
        ):
            status, _ = await post(server, hid, token, data)
            assert status == code, (token, len(data), status)
        status, _ = await post(server, hid, tokens["prosecutor"], content, name="   ")
        assert status == 400
        # a name is only a label: a path in it goes nowhere
        status, body = await post(server, hid, tokens["prosecutor"], b"other", name="../../etc")
        assert status == 201 and "/" not in body["name"]
        assert not (server.settings.data / "etc").exists()
        leftovers = [p for p in stored.parent.iterdir() if p.name.startswith(".upload-")]
        assert leftovers == []
    finally:
        await judge.close()
    await server.api("POST", f"/api/hearings/{hid}/end")
    (folder,) = (server.settings.recordings_dir / hid).iterdir()
    events = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    exhibits = [e["data"] for e in events if e["kind"] == "exhibit"]
    assert exhibits[0]["sha256"] == hashlib.sha256(content).hexdigest()
    assert exhibits[0]["name"] == "证据3 合同.pdf" and exhibits[0]["role"] == "prosecutor"
