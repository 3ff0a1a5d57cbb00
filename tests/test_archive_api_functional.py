"""The archive API on a real server: search, detail, media with Range, access, audit, export."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import av
import pytest

from recorder.manifest import file_sha256
from server import state
from server.archive_api import ARCHIVE
from server.openapi import full_spec
from tests.archive_fixtures import (
    JUDGE,
    NOTE_TEXT,
    Recorded,
    fetch,
    issue_token,
    recorded_hearing,
)
from tests.conftest import RunningServer


@pytest.fixture
async def recorded(server: RunningServer) -> Recorded:
    return await recorded_hearing(server)


async def get_json(server: RunningServer, path: str, token: str | None) -> tuple[int, Any]:
    status, _, body = await fetch(server, path, token)
    return status, json.loads(body)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and mtime: proof that nothing changed."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def tingshen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


async def test_openapi_describes_every_archive_route(server: RunningServer) -> None:
    status, spec = await get_json(server, "/api/openapi.json", None)
    assert status == 200 and spec == json.loads(json.dumps(full_spec()))
    routed = {
        r.resource.canonical
        for r in server.app.router.routes()
        if r.resource is not None
        and r.resource.canonical.startswith(
            ("/api/archive", "/api/tokens", "/api/hearings", "/api/courts")
        )
    }
    described = {p.replace("{name}", "{name:.+}") for p in spec["paths"]}
    assert routed <= {p for p in described} | {
        "/api/archive/recordings/{recording_id}/files/{name}"
    }
    assert {p.replace("{name:.+}", "{name}") for p in routed} == set(spec["paths"])


async def test_search_and_detail(server: RunningServer, recorded: Recorded) -> None:
    archivist = await issue_token(server, "archivist", subject="zhang")
    status, found = await get_json(server, "/api/archive/recordings?case=川33刑初", archivist)
    assert status == 200
    (item,) = found["items"]
    assert item["id"] == recorded.recording_id and item["participants"] == [JUDGE]
    assert "path" not in item and item["sealed"] is False
    for query, hits in [
        ("court=gz-zy", 1),
        ("court=kangding", 0),
        (f"participant={quote('张三')}", 1),
        ("participant=nobody", 0),
        ("since=2000-01-01&until=2100-01-01", 1),
        ("since=2100-01-01", 0),
        ("kind=hearing&limit=1", 1),
        ("offset=1", 0),
    ]:
        status, found = await get_json(server, f"/api/archive/recordings?{query}", archivist)
        assert status == 200 and len(found["items"]) == hits, query

    status, detail = await get_json(
        server, f"/api/archive/recordings/{recorded.recording_id}", archivist
    )
    assert status == 200
    assert [n["data"]["text"] for n in detail["notes"]] == [NOTE_TEXT]
    assert [p["data"]["reason"] for p in detail["pauses"]] == ["recess"]
    kinds = {f["kind"] for f in detail["files"]}
    assert {"segment", "manifest", "signature", "public-key", "events", "status"} <= kinds
    for f in detail["files"]:
        assert f["url"].startswith(f"/api/archive/recordings/{recorded.recording_id}/files/")
        assert len(f["sha256"]) == 64
        if f["kind"] == "segment":
            assert (f["sha256"], f["bytes"]) == file_sha256(recorded.folder / f["name"])
    playback = detail["playback"]
    assert playback["origin"] is not None and len(playback["tracks"]) == 2
    assert playback["composite"] is None  # not rendered in this test
    # the composite's wall-to-media map: the media, then the recess as a 3 s title card
    assert [p["card"] for p in playback["composite_map"]] == [None, 3.0]
    assert playback["composite_map"][0]["wall"] == playback["origin"]
    assert detail["integrity"]["verify_ok"] is None


async def test_media_with_range(server: RunningServer, recorded: Recorded) -> None:
    archivist = await issue_token(server, "archivist")
    _, detail = await get_json(
        server, f"/api/archive/recordings/{recorded.recording_id}", archivist
    )
    segment = next(f for f in detail["files"] if f["kind"] == "segment")
    data = (recorded.folder / segment["name"]).read_bytes()
    url = segment["url"]  # carries a media ticket: no Authorization header needed

    status, headers, body = await fetch(server, url)
    assert status == 200 and body == data
    assert headers["Content-Type"] == "video/webm"
    assert headers["X-Tingshen-SHA256"] == segment["sha256"]
    assert headers["Accept-Ranges"] == "bytes"

    status, headers, body = await fetch(server, url, headers={"Range": "bytes=10-109"})
    assert status == 206 and body == data[10:110]
    assert headers["Content-Range"] == f"bytes 10-109/{len(data)}"
    status, _, body = await fetch(server, url, headers={"Range": "bytes=-50"})
    assert status == 206 and body == data[-50:]
    status, headers, _ = await fetch(server, url, headers={"Range": f"bytes={len(data) + 10}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"

    etag = (await fetch(server, url))[1]["ETag"]
    status, _, body = await fetch(server, url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert status == 206 and body == data[:10]
    stale = {"Range": "bytes=0-9", "If-Range": '"stale"'}
    status, _, body = await fetch(server, url, headers=stale)
    assert status == 200 and body == data  # the file changed since: the whole of it

    status, headers, _ = await fetch(server, url + "&download=1")
    assert status == 200 and headers["Content-Disposition"].startswith("attachment")

    # a ticket opens only its recording's files, and only until it is tampered with
    forged = url.replace("ticket=", "ticket=x")
    assert (await fetch(server, forged))[0] == 401
    other = url.replace(f"/recordings/{recorded.recording_id}/", "/recordings/other1/")
    assert (await fetch(server, other))[0] in (401, 404)


async def test_playable_track_is_one_seekable_file(
    server: RunningServer, recorded: Recorded, tmp_path: Path
) -> None:
    archivist = await issue_token(server, "archivist")
    _, detail = await get_json(
        server, f"/api/archive/recordings/{recorded.recording_id}", archivist
    )
    video = next(t for t in detail["playback"]["tracks"] if t["kind"] == "video")
    status, headers, body = await fetch(server, video["url"])
    assert status == 200 and headers["Content-Type"] == "video/webm"
    path = tmp_path / "video.webm"
    path.write_bytes(body)
    with av.open(str(path)) as container:
        assert container.duration is not None and 2.5 < container.duration / 1e6 < 3.5
        frames = sum(1 for _ in container.demux(video=0))
    assert frames >= 80  # three seconds at 30 fps, every segment
    status, _, part = await fetch(server, video["url"], headers={"Range": "bytes=100-199"})
    assert status == 206 and part == body[100:200]
    assert not list(recorded.folder.rglob("*playable*"))  # the evidence folder is untouched


async def test_access_control(server: RunningServer, recorded: Recorded) -> None:
    other = await recorded_hearing(server, court="kangding", recording_id="rec0002", case="B-2")
    detail = f"/api/archive/recordings/{recorded.recording_id}"
    paths = [
        ("GET", "/api/archive/recordings"),
        ("GET", detail),
        ("GET", detail + "/files/manifest.jsonl"),
        ("GET", detail + "/tracks/p1-video/playable.webm"),
        ("POST", detail + "/verify"),
        ("GET", detail + "/export"),
        ("GET", detail + "/audit"),
        ("GET", "/api/archive/audit/verify"),
        ("GET", "/api/archive/backup"),
    ]
    for method, path in paths:
        assert (await fetch(server, path, method=method))[0] == 401, path
        assert (await fetch(server, path, "not-a-token", method=method))[0] == 401, path

    observer_url = next(i["url"] for i in recorded.hearing["invites"] if i["role"] == "observer")
    observer = observer_url.split("token=", 1)[1]
    assert (await fetch(server, detail, observer))[0] == 403

    judge = await issue_token(server, "judge", hearing=recorded.hearing_id, subject="王法官")
    status, found = await get_json(server, "/api/archive/recordings", judge)
    assert status == 200 and [r["id"] for r in found["items"]] == [recorded.recording_id]
    assert (await fetch(server, detail, judge))[0] == 200
    other_detail = f"/api/archive/recordings/{other.recording_id}"
    assert (await fetch(server, other_detail, judge))[0] == 403  # another court's hearing

    archivist = await issue_token(server, "archivist")
    assert (await fetch(server, other_detail, archivist))[0] == 200
    assert (
        await fetch(server, "/api/tokens", archivist, method="POST", json_body={"role": "admin"})
    )[0] == 403

    _, before = await get_json(server, detail, archivist)
    seal = f"/api/archive/hearings/{recorded.hearing_id}/seal"
    assert (await fetch(server, seal, archivist, method="POST", json_body={"sealed": True}))[
        0
    ] == 403
    status, _ = await server.api("POST", seal, {"sealed": True, "reason": "未成年人"})
    assert status == 200
    for token in (archivist, judge):
        status, _, body = await fetch(server, detail, token)
        assert status == 403 and json.loads(body)["error"]["code"] == "sealed"
        assert (await fetch(server, before["files"][0]["url"]))[0] == 403  # tickets too
        _, found = await get_json(server, "/api/archive/recordings", token)
        assert recorded.recording_id not in [r["id"] for r in found["items"]]
    status, _ = await server.api("GET", detail)
    assert status == 200  # the admin still sees it
    _, found = await server.api("GET", "/api/archive/recordings")
    assert recorded.recording_id in [r["id"] for r in found["items"]]


async def test_bad_input_is_refused_and_changes_nothing(
    server: RunningServer, recorded: Recorded
) -> None:
    archivist = await issue_token(server, "archivist")
    (recorded.folder / "p1-video" / "planted.webm").write_bytes(b"not listed")
    before = snapshot(server.data)
    base = f"/api/archive/recordings/{recorded.recording_id}"
    for path in [
        "/api/archive/recordings/..%2F..%2Fsecret.key",
        "/api/archive/recordings/%2e%2e",
        base + "/files/..%2F..%2F..%2Fsecret.key",
        base + "/files/%2e%2e/%2e%2e/%2e%2e/secret.key",
        base + "/files/%2Fetc%2Fpasswd",
        base + "/files/p1-video/..%2F..%2F..%2Frecording-signing.key",
        base + "/files/p1-video/planted.webm",
        base + "/files/p1-video/000000.webm%00.txt",
        base + "/tracks/..%2F..%2Fx/playable.webm",
        base + "/tracks/nosuch/playable.webm",
    ]:
        status, _, body = await fetch(server, path, archivist)
        assert status in (400, 404), path
        assert b"PRIVATE KEY" not in body and b"root:" not in body
    for query in [
        "limit=0",
        "limit=-1",
        "limit=abc",
        "limit=99999999999999999999999",
        "offset=-5",
        "since=yesterday",
        "until=2026-13-45",
        "case=" + "x" * 200,
        "participant=" + "名" * 300,
    ]:
        status, _, body = await fetch(server, f"/api/archive/recordings?{query}", archivist)
        assert status == 400, query
        assert json.loads(body)["error"]["code"] == "bad-query"
    status, _, _ = await fetch(server, "/api/archive/recordings?case=" + "x" * 100_000, archivist)
    assert status in (400, 414, 431)
    seal = f"/api/archive/hearings/{recorded.hearing_id}/seal"
    for body_text in (b"{", b"[]", b'{"sealed": "maybe"}', b"x" * 100_000):
        status, _ = await server_post_raw(server, seal, body_text)
        assert status in (400, 413)
    assert snapshot(server.data) == before


async def server_post_raw(server: RunningServer, path: str, body: bytes) -> tuple[int, bytes]:
    import aiohttp

    headers = {"Authorization": f"Bearer {server.admin_token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        async with session.post(server.base_url + path, data=body, headers=headers) as response:
            return response.status, await response.read()


async def test_verify_on_demand(server: RunningServer, recorded: Recorded) -> None:
    archivist = await issue_token(server, "archivist")
    path = f"/api/archive/recordings/{recorded.recording_id}/verify"
    status, _, body = await fetch(server, path, archivist, method="POST")
    report = json.loads(body)
    assert status == 200 and report["ok"] and report["faults"] == [], report
    segment = sorted(recorded.folder.glob("p1-video/*.webm"))[1]
    raw = bytearray(segment.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    segment.write_bytes(bytes(raw))
    status, _, body = await fetch(server, path, archivist, method="POST")
    report = json.loads(body)
    assert status == 200 and not report["ok"]
    assert any("segment-modified" in f and segment.name in f for f in report["faults"])
    _, detail = await get_json(
        server, f"/api/archive/recordings/{recorded.recording_id}", archivist
    )
    assert detail["integrity"]["verify_ok"] is False


async def test_every_access_is_audited(server: RunningServer, recorded: Recorded) -> None:
    archivist = await issue_token(server, "archivist", subject="li")
    rid = recorded.recording_id
    await fetch(server, "/api/archive/recordings?case=5", archivist)
    _, detail = await get_json(server, f"/api/archive/recordings/{rid}", archivist)
    segment = next(f for f in detail["files"] if f["kind"] == "segment")
    for _ in range(3):  # seeking: many requests, one playback entry
        await fetch(server, segment["url"], headers={"Range": "bytes=0-10"})
    await fetch(server, segment["url"] + "&download=1")
    status, headers, _ = await fetch(server, detail["export_url"])
    assert status == 200
    status, audit = await get_json(server, f"/api/archive/recordings/{rid}/audit", archivist)
    mine = [
        (e["action"], e["target"], e["sha256"])
        for e in audit["entries"]
        if e["actor"] == "archivist:li"
    ]
    assert mine == [
        ("view", None, None),
        ("play", segment["name"], segment["sha256"]),
        ("download", segment["name"], segment["sha256"]),
        ("export", f"tingshen-{rid}.zip", headers["X-Tingshen-SHA256"]),
    ]
    entries = server.app[ARCHIVE].audit.entries(action="search")
    assert entries[-1].actor == "archivist:li" and entries[-1].detail["query"] == {"case": "5"}
    status, report = await get_json(server, "/api/archive/audit/verify", archivist)
    assert status == 200 and report["ok"] and report["entries"] >= 6 and report["head_checked"]


async def test_export_bundle_verifies_offline(
    server: RunningServer, recorded: Recorded, tmp_path: Path
) -> None:
    archivist = await issue_token(server, "archivist")
    _, detail = await get_json(
        server, f"/api/archive/recordings/{recorded.recording_id}", archivist
    )
    status, headers, data = await fetch(server, detail["export_url"])
    assert status == 200 and headers["Content-Type"] == "application/zip"
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(data)
    key = tmp_path / "court.pem"
    key.write_bytes(server.app[state.SERVICES].signer.public_key_pem())
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = set(z.namelist())
        readme = z.read("README.txt").decode()
    assert {"README.txt", "bundle.json", "SHA256SUMS", "timeline.json", "audit.jsonl"} <= names
    assert {
        "recording/manifest.jsonl",
        "recording/manifest.sig",
        "recording/public_key.pem",
    } <= names
    assert "tingshen archive verify" in readme and "sha256sum -c SHA256SUMS" in readme

    offline = {"TINGSHEN_DATA": str(tmp_path / "nothing-here"), "TINGSHEN_SERVER": ""}
    await asyncio.sleep(0)
    ok = await asyncio.to_thread(
        tingshen, "archive", "verify", str(bundle), "--key", str(key), env=offline
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK")

    # a bad signature: the bundle's manifest.sig rewritten
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename == "recording/manifest.sig":
                sig = json.loads(content)
                sig["signature"] = "A" * 86 + "=="
                content = json.dumps(sig).encode()
            dst.writestr(info, content)
    failed = await asyncio.to_thread(
        tingshen, "archive", "verify", str(bad), "--key", str(key), env=offline
    )
    assert failed.returncode == 1
    assert "signature-invalid" in failed.stdout and "bundle-file-modified" in failed.stdout
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 this is no zip")
    refused = await asyncio.to_thread(tingshen, "archive", "verify", str(junk), env=offline)
    assert refused.returncode == 2 and "not a zip file" in refused.stderr
    assert not (tmp_path / "nothing-here").exists()  # nothing was written anywhere
