"""Real recordings for archive tests, made quickly with the recorder library (no WebRTC).

``make_recording`` writes a recording folder with the given signer: the judge's VP8 video and
Opus audio, a note one second in, and a recess at the end. ``recorded_hearing`` creates a hearing
through a running server's API, records into its recordings folder with the server's own key, and
indexes it in the server's catalog. ``hearing_with_exhibits`` holds a real hearing on a running
server (a judge joins over WebSocket) in which counsel register exhibits, ends it, and waits until
the catalog has the completed recording.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from multidict import CIMultiDict

from recorder.manifest import ManifestSigner
from recorder.session import RecordingSession
from recorder.synthetic import EncodedFrame, encode_audio, encode_video, interleave
from recorder.track import TrackInfo
from server import catalog, state
from terminal.client import HearingClient, ws_url_from_invite
from tests.conftest import RunningServer

JUDGE = "审判长 张三"
VIDEO = TrackInfo("p1-video", "p1", JUDGE, "video", "VP8", 90000)
AUDIO = TrackInfo("p1-audio", "p1", JUDGE, "audio", "opus", 48000)
SECONDS = 3.0
NOTE_AT = 1.0
NOTE_TEXT = "被告人到庭"


@functools.cache
def media() -> dict[str, list[EncodedFrame]]:
    """Three seconds of real VP8 and Opus (made once per test process)."""
    return {
        VIDEO.track_id: encode_video(SECONDS, width=160, height=120, keyframe_interval=15),
        AUDIO.track_id: encode_audio(SECONDS),
    }


def make_recording(
    folder: Path,
    signer: ManifestSigner,
    recording_id: str,
    hearing_id: str,
    start: float | None = None,
    *,
    finish: bool = True,
) -> RecordingSession:
    """Record the synthetic hearing into ``folder`` (blocking, well under a second)."""
    start = time.time() - 60 if start is None else start
    now = [start]
    session = RecordingSession(
        folder, recording_id, hearing_id, signer, segment_seconds=1.0, clock=lambda: now[0]
    )
    session.start()
    session.add_track(VIDEO)
    session.add_track(AUDIO)
    session.event("join", {"participant": "p1", "name": JUDGE, "role": "judge"}, at=start)
    session.event("note", {"author": "p2", "name": "书记员", "text": NOTE_TEXT}, at=start + NOTE_AT)
    rates = {VIDEO.track_id: VIDEO.clock_rate, AUDIO.track_id: AUDIO.clock_rate}
    for track_id, frame, seconds in interleave(media(), rates):
        now[0] = start + seconds
        session.push_frame(
            track_id, frame.rtp_timestamp, frame.data, frame.keyframe, start + seconds
        )
    if finish:
        now[0] = start + SECONDS + 0.1
        session.pause("recess", "p1")
        now[0] = start + SECONDS + 4.0
        session.resume("p1")
        session.stop()
    return session


@dataclass
class Recorded:
    """A recording made on a running server."""

    hearing: dict[str, Any]
    recording_id: str
    folder: Path

    @property
    def hearing_id(self) -> str:
        return str(self.hearing["id"])


async def recorded_hearing(
    server: RunningServer,
    *,
    case: str = "（2026）川33刑初5号",
    court: str | None = None,
    recording_id: str = "rec0001",
    start: float | None = None,
) -> Recorded:
    """Create a hearing through the API, record it with the server's key, index it."""
    body: dict[str, Any] = {
        "caseNumber": case,
        "kind": "hearing",
        "invites": [{"role": "judge", "name": JUDGE}, {"role": "observer", "name": "旁听"}],
    }
    if court is not None:
        body["court"] = court
    status, hearing = await server.api("POST", "/api/hearings", body)
    assert status == 201, hearing
    services = server.app[state.SERVICES]
    folder = server.settings.recordings_dir / hearing["id"] / recording_id
    await asyncio.to_thread(
        make_recording, folder, services.signer, recording_id, hearing["id"], start
    )
    result = await asyncio.to_thread(
        catalog.index_recording, services.db, server.settings.recordings_dir, folder
    )
    assert result.indexed, result
    return Recorded(hearing, recording_id, folder)


async def issue_token(
    server: RunningServer, role: str, hearing: str | None = None, subject: str | None = None
) -> str:
    """A bearer token from ``POST /api/tokens`` (as the server's admin)."""
    body: dict[str, Any] = {"role": role}
    if hearing is not None:
        body["hearing"] = hearing
    if subject is not None:
        body["subject"] = subject
    status, result = await server.api("POST", "/api/tokens", body)
    assert status == 201, result
    return str(result["token"])


async def fetch(
    server: RunningServer,
    path: str,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    json_body: Any = None,
) -> tuple[int, CIMultiDict[str], bytes]:
    """(status, headers, body) of one request (``token`` None: anonymous)."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, server.base_url + path, headers=sent, json=json_body
        ) as response:
            return response.status, CIMultiDict(response.headers), await response.read()


CONTRACT = b"%PDF-1.4 sale contract, page 1 of 1 " * 300
PHOTO = bytes(range(256)) * 40  # a photograph, as far as anyone checks
EXHIBIT_CASE = "（2026）川33民初7号"  # RunningServer.create_hearing's case number


@dataclass
class Shown:
    """A completed recording of a hearing in which exhibits were registered."""

    hearing: dict[str, Any]
    recording_id: str
    folder: Path
    registered: list[dict[str, Any]]  # the registration answers, in order

    @property
    def hearing_id(self) -> str:
        return str(self.hearing["id"])

    def stored(self, data: Path, content: bytes) -> Path:
        return data / "exhibits" / self.hearing_id / hashlib.sha256(content).hexdigest()


async def register_exhibit(
    server: RunningServer, hearing_id: str, token: str, body: bytes, name: str
) -> dict[str, Any]:
    """``POST /api/hearings/{id}/exhibits`` as a presenter; the 201 answer."""
    headers = {"Authorization": f"Bearer {token}", "X-Exhibit-Name": name}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{server.base_url}/api/hearings/{hearing_id}/exhibits", data=body, headers=headers
        ) as response:
            answer = await response.json()
            assert response.status == 201, answer
            return dict(answer)


async def hearing_with_exhibits(server: RunningServer) -> Shown:
    """The prosecutor shows a contract (twice, under two names), the defence a photograph."""
    hearing = await server.create_hearing(
        "judge:审判长", "prosecutor:公诉人", "defence:辩护人", "observer:旁听"
    )
    hid = hearing["id"]
    tokens = {i["role"]: ws_url_from_invite(i["url"])[1] for i in hearing["invites"]}
    judge = HearingClient.from_invite(hearing["invites"][0]["url"])
    await judge.join()
    try:
        registered = [
            await register_exhibit(server, hid, tokens["prosecutor"], CONTRACT, "证据1 合同.pdf"),
            await register_exhibit(server, hid, tokens["defence"], PHOTO, "证据2: 现场/照片.jpg"),
            await register_exhibit(
                server, hid, tokens["prosecutor"], CONTRACT, "证据1 合同（副本）.pdf"
            ),
        ]
    finally:
        await judge.close()
    status, _ = await server.api("POST", f"/api/hearings/{hid}/end")
    assert status == 200
    (folder,) = (server.settings.recordings_dir / hid).iterdir()
    services = server.app[state.SERVICES]
    deadline = time.monotonic() + 15
    while True:  # the server indexes the ended recording in the background
        found = await asyncio.to_thread(
            catalog.recording_detail, services.db, server.settings.recordings_dir, folder.name
        )
        kinds = [e["kind"] for e in found["events"]] if found else []
        if found and found["status"] == "complete" and kinds.count("exhibit") == 3:
            break
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.1)
    return Shown(hearing, folder.name, folder, registered)
