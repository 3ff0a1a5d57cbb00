"""Bad input on the WebSocket: each gets a clear error and the hearing goes on for everyone else."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import Any

import aiohttp
import jwt
import pytest

from server import state
from signaling.roles import Role
from terminal.client import HearingClient, ws_url_from_invite
from tests.conftest import RunningServer
from tests.media import ColourTrack, Received, drain

pytestmark = pytest.mark.media


async def receive_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return dict(json.loads(msg.data))


async def expect_error(ws: aiohttp.ClientWebSocketResponse, code: str) -> dict[str, Any]:
    while True:
        message = await receive_json(ws)
        if message["type"] == "error":
            assert message["code"] == code, message
            assert message["message"]
            return message


@pytest.fixture
async def live_media(server: RunningServer):
    """A judge publishing and a party watching, so each test can check the hearing goes on."""
    hearing = await server.create_hearing("judge:审判长", "party:甲", "party:乙")
    urls = [i["url"] for i in hearing["invites"]]
    got: dict[str, Received] = defaultdict(Received)

    def on_track(pid, kind, track, transceiver) -> None:
        got[pid].tasks.append(asyncio.ensure_future(drain(track, got[pid])))

    judge = HearingClient.from_invite(urls[0], tracks={"video": ColourTrack((0, 200, 0))})
    await judge.join()
    party = HearingClient.from_invite(urls[1], on_track=on_track)
    await party.join()
    judge_id = judge.participant_id
    assert judge_id is not None
    for _ in range(100):
        if got[judge_id].video_frames > 5:
            break
        await asyncio.sleep(0.1)
    assert got[judge_id].video_frames > 5

    async def still_flowing() -> None:
        before = got[judge_id].video_frames
        await asyncio.sleep(1.0)
        assert got[judge_id].video_frames - before >= 10, "media stopped for the others"

    yield hearing, urls, still_flowing
    await judge.close()
    await party.close()
    for r in got.values():
        for t in r.tasks:
            t.cancel()


async def test_bad_messages_each_get_a_clear_error(server: RunningServer, live_media) -> None:
    _, urls, still_flowing = live_media
    ws_url, token = ws_url_from_invite(urls[2])
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url) as ws:
            # before join
            await ws.send_str(json.dumps({"type": "answer", "sdp": "v=0\r\n", "offerId": 1}))
            await expect_error(ws, "not-joined")
            await ws.send_str(json.dumps({"type": "offer", "sdp": "v=0\r\n"}))
            await expect_error(ws, "unknown-type")
            await ws.send_str("this is not json {")
            await expect_error(ws, "bad-json")
            await ws.send_str(json.dumps([1, 2, 3]))
            await expect_error(ws, "bad-message")
            await ws.send_bytes(b"\x00\x01")
            await expect_error(ws, "bad-message")
            # join, then garbage SDP
            await ws.send_str(json.dumps({"type": "join", "token": token}))
            welcome = await receive_json(ws)
            assert welcome["type"] == "welcome"
            offer = await receive_json(ws)
            assert offer["type"] == "offer"
            await ws.send_str(
                json.dumps({"type": "answer", "sdp": "v=0\r\nthis is not sdp\r\n", "offerId": 1})
            )
            await expect_error(ws, "bad-sdp")
            await ws.send_str(json.dumps({"type": "answer", "sdp": "v=0\r\n", "offerId": 99}))
            await expect_error(ws, "stale-answer")
            await ws.send_str(json.dumps({"type": "join", "token": token}))
            await expect_error(ws, "already-joined")
            await ws.send_str(json.dumps({"type": "mute", "kind": "smell", "muted": True}))
            await expect_error(ws, "bad-message")
            await ws.send_str(
                json.dumps({"type": "candidate", "candidate": "garbage", "sdpMid": "0"})
            )
            await expect_error(ws, "bad-message")
            await still_flowing()


async def test_oversize_message_is_refused(server: RunningServer, live_media) -> None:
    _, urls, still_flowing = live_media
    ws_url, token = ws_url_from_invite(urls[2])
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url) as ws:
            await ws.send_str(json.dumps({"type": "join", "token": "x" * 300_000}))
            message = await receive_json(ws)
            assert message["type"] == "error" and message["code"] == "too-large"
            assert not message["fatal"]
            # still usable: a real join now works
            await ws.send_str(json.dumps({"type": "join", "token": token}))
            assert (await receive_json(ws))["type"] == "welcome"
        async with session.ws_connect(ws_url) as ws:
            # beyond the frame limit the WebSocket layer closes with 1009 (message too big)
            await ws.send_str("x" * (2 * 1024 * 1024))
            closed = await ws.receive(timeout=5)
            assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1009
    await still_flowing()


@pytest.mark.parametrize("kind", ["missing", "expired", "forged", "garbage", "other-hearing"])
async def test_bad_tokens_are_refused(server: RunningServer, live_media, kind: str) -> None:
    hearing, urls, still_flowing = live_media
    tokens = server.app[state.SERVICES].tokens
    now = time.time()
    token: Any
    if kind == "missing":
        token = None
    elif kind == "expired":
        token = tokens.issue_join(hearing["id"], Role.party, "X", now - 7200, 60)
    elif kind == "forged":
        token = jwt.encode(
            {
                "aud": "tingshen-join",
                "hid": hearing["id"],
                "role": "judge",
                "name": "x",
                "pk": "abc",
                "iat": now,
                "exp": now + 600,
            },
            b"not-the-server-secret-not-the-server-secret",
            algorithm="HS256",
        )
    elif kind == "garbage":
        token = "a.b.c"
    else:
        token = tokens.issue_join("0123456789abcdef", Role.party, "X", now, 600)
    ws_url, _ = ws_url_from_invite(urls[2])
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url) as ws:
            body: dict[str, Any] = {"type": "join"}
            if token is not None:
                body["token"] = token
            await ws.send_str(json.dumps(body))
            message = await receive_json(ws)
            assert message["type"] == "error", message
            expected = {
                "missing": "bad-message",
                "expired": "token-expired",
                "forged": "bad-token",
                "garbage": "bad-token",
                "other-hearing": "hearing-not-found",
            }[kind]
            assert message["code"] == expected, message
            if kind != "missing":
                assert message["fatal"] is True
                closed = await ws.receive(timeout=5)
                assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await still_flowing()


async def test_message_flood_is_rate_limited(server: RunningServer, live_media) -> None:
    _, urls, still_flowing = live_media
    ws_url, token = ws_url_from_invite(urls[2])
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(ws_url) as ws:
            await ws.send_str(json.dumps({"type": "join", "token": token}))
            assert (await receive_json(ws))["type"] == "welcome"
            flood = json.dumps({"type": "mute", "kind": "audio", "muted": True})
            for _ in range(400):
                await ws.send_str(flood)
            codes = []
            while True:
                msg = await ws.receive(timeout=5)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                message = json.loads(msg.data)
                if message["type"] == "error":
                    codes.append(message["code"])
                    if message["fatal"]:
                        break
            assert "rate-limited" in codes
    await still_flowing()


async def test_silent_socket_is_dropped_after_join_timeout(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server import ws as ws_module

    monkeypatch.setattr(ws_module, "JOIN_TIMEOUT", 0.3)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.ws_url) as ws:
            message = await receive_json(ws)
            assert message["code"] == "not-joined" and message["fatal"]
