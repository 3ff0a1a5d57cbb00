"""Scheduling API for the courts' case systems: read, update, invite, cancel; OpenAPI described."""

from __future__ import annotations

import aiohttp

from terminal.client import HearingClient
from tests.conftest import RunningServer


async def test_read_update_invite_cancel(server: RunningServer) -> None:
    hearing = await server.create_hearing("judge:审判长")
    hid = hearing["id"]
    status, detail = await server.api("GET", f"/api/hearings/{hid}")
    assert status == 200 and [i["role"] for i in detail["invites"]] == ["judge"]

    status, updated = await server.api(
        "PATCH",
        f"/api/hearings/{hid}",
        {
            "caseNumber": "（2026）川3332刑初9号",
            "court": "shiqu",
            "sealed": True,
            "autoAdmit": ["defendant"],
        },
    )
    assert status == 200, updated
    assert (updated["court"], updated["caseNumber"], updated["sealed"]) == (
        "shiqu",
        "（2026）川3332刑初9号",
        True,
    )
    assert updated["autoAdmit"] == ["defendant"]
    for bad, code in (
        ({"court": "atlantis"}, "unknown-court"),
        ({"kind": "party"}, "bad-request"),
        ({"wat": 1}, "bad-request"),
        ({"autoAdmit": ["emperor"]}, "bad-message"),
    ):
        status, body = await server.api("PATCH", f"/api/hearings/{hid}", bad)
        assert status == 400 and body["error"]["code"] == code, (bad, body)

    status, added = await server.api(
        "POST", f"/api/hearings/{hid}/invites", {"invites": [{"role": "witness", "name": "证人"}]}
    )
    assert status == 201 and added["invites"][0]["role"] == "witness"

    # once someone joins, the hearing is part of the record: no more changes, no cancelling
    judge = HearingClient.from_invite(detail["invites"][0]["url"])
    await judge.join()
    try:
        status, body = await server.api("PATCH", f"/api/hearings/{hid}", {"caseNumber": "X"})
        assert status == 409 and body["error"]["code"] == "hearing-opened"
        status, body = await server.api("POST", f"/api/hearings/{hid}/cancel")
        assert status == 409
    finally:
        await judge.close()

    other = await server.create_hearing("party:甲")
    status, body = await server.api("POST", f"/api/hearings/{other['id']}/cancel")
    assert status == 200 and body["cancelled"] is True
    status, body = await server.api(
        "POST",
        f"/api/hearings/{other['id']}/invites",
        {"invites": [{"role": "party", "name": "乙"}]},
    )
    assert status == 409
    status, _ = await server.api("GET", "/api/hearings/nope")
    assert status == 404


async def test_scheduling_needs_the_admin_token_and_is_described(server: RunningServer) -> None:
    hearing = await server.create_hearing("party:甲")
    async with aiohttp.ClientSession() as s:
        async with s.patch(f"{server.base_url}/api/hearings/{hearing['id']}", json={}) as r:
            assert r.status == 401
        async with s.get(f"{server.base_url}/api/openapi.json") as r:
            spec = await r.json()
    for path in (
        "/api/hearings",
        "/api/hearings/{hearing_id}",
        "/api/hearings/{hearing_id}/invites",
        "/api/hearings/{hearing_id}/cancel",
    ):
        assert path in spec["paths"], path
    assert "caseNumber" in str(spec["paths"]["/api/hearings"]["post"]["requestBody"])
    # an invitation's court, with the errors it can bring
    create = spec["paths"]["/api/hearings"]["post"]
    invite = create["requestBody"]["content"]["application/json"]["schema"]["$defs"]["InviteIn"]
    assert "court" in invite["properties"] and invite["required"] == ["role", "name"]
    assert "cross-court-needs-two-courts" in create["description"]
    assert (
        "unknown-court"
        in spec["paths"]["/api/hearings/{hearing_id}/invites"]["post"]["description"]
    )
    assert "/api/courts" in spec["paths"]


async def test_invitations_with_courts_and_a_cross_court_hearing_kept_so(
    server: RunningServer,
) -> None:
    hearing = await server.create_hearing("judge:审判长", "defendant:张某")
    hid = hearing["id"]
    # not across two courts yet: it cannot become a cross-court hearing
    status, body = await server.api("PATCH", f"/api/hearings/{hid}", {"kind": "cross-court"})
    assert status == 400 and body["error"]["code"] == "cross-court-needs-two-courts", body

    status, body = await server.api(
        "POST",
        f"/api/hearings/{hid}/invites",
        {"invites": [{"role": "witness", "name": "证人", "court": "nowhere"}]},
    )
    assert status == 400 and body["error"]["code"] == "unknown-court", body
    status, added = await server.api(
        "POST",
        f"/api/hearings/{hid}/invites",
        {"invites": [{"role": "witness", "name": "证人", "court": "shiqu"}]},
    )
    assert status == 201 and added["invites"][0]["court"] == "shiqu", added

    status, body = await server.api("PATCH", f"/api/hearings/{hid}", {"kind": "cross-court"})
    assert status == 200 and body["kind"] == "cross-court", body
    # moved to Shiqu, every invitation would be at one court
    status, body = await server.api("PATCH", f"/api/hearings/{hid}", {"court": "shiqu"})
    assert status == 400 and body["error"]["code"] == "cross-court-needs-two-courts", body
    status, body = await server.api("PATCH", f"/api/hearings/{hid}", {"court": "dege"})
    assert status == 200, body
    # invitations without a court of their own follow the hearing's
    assert sorted((i["role"], i["court"]) for i in body["invites"]) == [
        ("defendant", "dege"),
        ("judge", "dege"),
        ("witness", "shiqu"),
    ]
