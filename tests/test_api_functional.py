"""HTTP API against a real server: auth, validation, join codes, health."""

from __future__ import annotations

import aiohttp

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
