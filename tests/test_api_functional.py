"""HTTP API against a real server: auth, validation, join codes, health."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import aiohttp
import jwt

from tests.conftest import RunningServer


async def test_health(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(server.base_url + "/livez") as r:
            assert r.status == 200
        async with s.get(server.base_url + "/readyz") as r:
            assert r.status == 200 and (await r.json())["status"] == "ready"


async def test_hearing_api_requires_the_admin_token(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(server.base_url + "/api/hearings") as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "unauthorized"
        hearing = await server.create_hearing("party:甲")
        join_token = hearing["invites"][0]["url"].split("token=")[1]
        # a join token is not an admin credential
        status, body = await server.api("GET", "/api/hearings", token=join_token)
        assert status == 401 and body["error"]["code"] == "bad-token"


async def test_bad_bodies(server: RunningServer) -> None:
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.post(server.base_url + "/api/hearings", data=b"{nope") as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "bad-json"
        async with s.post(server.base_url + "/api/hearings", data=b"x" * 200_000) as r:
            assert r.status == 413
        async with s.post(server.base_url + "/api/hearings", json={"caseNumber": ""}) as r:
            assert r.status == 400
        body = {"caseNumber": "A", "invites": [{"role": "party", "name": "x" * 65}]}
        async with s.post(server.base_url + "/api/hearings", json=body) as r:
            assert r.status == 400
        body = {"caseNumber": "A", "kind": "wedding"}
        async with s.post(server.base_url + "/api/hearings", json=body) as r:
            assert r.status == 400
        async with s.post(server.base_url + "/api/hearings/..%2F..%2Fetc/end") as r:
            assert r.status == 404
    status, body = await server.api("POST", "/api/hearings/deadbeef/end")
    assert status == 404 and body["error"]["code"] == "hearing-not-found"


async def test_join_code_is_single_use_and_rate_limited(server: RunningServer) -> None:
    hearing = await server.create_hearing("defendant:张某")
    code = hearing["invites"][0]["code"]
    url = server.base_url + "/api/join-codes/exchange"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json={"code": code.lower().replace("-", " ")}) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
            assert body["hearingId"] == hearing["id"]
            assert body["url"].startswith(server.base_url + "/hearing?token=")
        async with s.post(url, json={"code": code}) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "bad-code"
        statuses = []
        for _ in range(8):
            async with s.post(url, json={"code": "ABCD-EFGH"}) as r:
                statuses.append(r.status)
        assert 429 in statuses


async def test_pages_are_served(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as s:
        for path in ("/", "/hearing?token=x", "/static/js/hearing.js"):
            async with s.get(server.base_url + path) as r:
                assert r.status == 200, path
                assert r.headers["X-Content-Type-Options"] == "nosniff"
        async with s.get(server.base_url + "/static/../server/settings.py") as r:
            assert r.status in (403, 404)


async def test_metrics_need_the_admin_token(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(server.base_url + "/metrics") as r:
            assert r.status == 401
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        async with s.get(server.base_url + "/metrics", headers=headers) as r:
            assert r.status == 200
            text = await r.text()
            assert "tingshen_hearings_live 0.0" in text
            assert "tingshen_rtp_forwarded_packets_total" in text


def token_payload(url: str) -> dict[str, object]:
    """The claims of an invitation link's join token (unverified: only to read them)."""
    token = unquote(url.split("token=", 1)[1])
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def test_each_invitation_may_name_its_court(server: RunningServer) -> None:
    body = {
        "caseNumber": "（2026）川33刑初2号",
        "kind": "cross-court",
        "invites": [
            {"role": "judge", "name": "审判长"},
            {"role": "defendant", "name": "张某", "court": "shiqu"},
            {"role": "witness", "name": "证人", "court": "gz-zy"},
        ],
    }
    status, hearing = await server.api("POST", "/api/hearings", body)
    assert status == 201, hearing
    assert hearing["court"] == "gz-zy"
    assert [i["court"] for i in hearing["invites"]] == ["gz-zy", "shiqu", "gz-zy"]
    claims = [token_payload(i["url"]) for i in hearing["invites"]]
    # Only an invitation that names its court says so in its token; without the claim the
    # participant is at the hearing's court.
    assert [c.get("court") for c in claims] == [None, "shiqu", "gz-zy"]

    # the join code gives the same claim
    async with aiohttp.ClientSession() as s:
        exchange = server.base_url + "/api/join-codes/exchange"
        async with s.post(exchange, json={"code": hearing["invites"][1]["code"]}) as r:
            assert r.status == 200
            assert token_payload((await r.json())["url"])["court"] == "shiqu"

    status, detail = await server.api("GET", f"/api/hearings/{hearing['id']}")
    assert [i["court"] for i in detail["invites"]] == ["gz-zy", "shiqu", "gz-zy"]


async def test_an_unknown_court_of_an_invitation_is_refused(server: RunningServer) -> None:
    body: dict[str, Any] = {}
    for court in ("atlantis", "", "SHIQU", "石渠"):
        body = {
            "caseNumber": "（2026）川33刑初3号",
            "invites": [
                {"role": "judge", "name": "审判长"},
                {"role": "defendant", "name": "张某", "court": court},
            ],
        }
        status, error = await server.api("POST", "/api/hearings", body)
        assert status == 400 and error["error"]["code"] == "unknown-court", (court, error)
        assert "invites[1]" in error["error"]["message"]
    body["invites"][1]["court"] = "x" * 33
    status, error = await server.api("POST", "/api/hearings", body)
    assert status == 400 and error["error"]["code"] == "bad-request"
    status, hearings = await server.api("GET", "/api/hearings")
    assert hearings == []  # nothing half-made


async def test_a_cross_court_hearing_needs_two_courts(server: RunningServer) -> None:
    def cross_court(*invites: dict[str, str]) -> dict[str, object]:
        return {"caseNumber": "（2026）川33刑初4号", "kind": "cross-court", "invites": invites}

    one_court = [
        cross_court(),
        cross_court({"role": "judge", "name": "审判长"}, {"role": "defendant", "name": "张某"}),
        # named, but the same court as the hearing's
        cross_court(
            {"role": "judge", "name": "审判长"},
            {"role": "defendant", "name": "张某", "court": "gz-zy"},
        ),
        # an observer elsewhere is no courtroom endpoint
        cross_court(
            {"role": "judge", "name": "审判长"},
            {"role": "observer", "name": "旁听", "court": "shiqu"},
        ),
    ]
    for body in one_court:
        status, error = await server.api("POST", "/api/hearings", body)
        assert status == 400, (body, error)
        assert error["error"]["code"] == "cross-court-needs-two-courts", error
    status, hearing = await server.api(
        "POST",
        "/api/hearings",
        {**cross_court({"role": "judge", "name": "审判长", "court": "shiqu"}), "court": "dege"},
    )
    assert status == 400 and hearing["error"]["code"] == "cross-court-needs-two-courts"
    # the same invitations make an ordinary hearing or a meeting
    for kind in ("hearing", "meeting"):
        status, hearing = await server.api("POST", "/api/hearings", {**one_court[1], "kind": kind})
        assert status == 201, hearing
    status, hearing = await server.api(
        "POST",
        "/api/hearings",
        cross_court(
            {"role": "judge", "name": "审判长"},
            {"role": "defendant", "name": "张某", "court": "shiqu"},
        ),
    )
    assert status == 201 and hearing["kind"] == "cross-court"
