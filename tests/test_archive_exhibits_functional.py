"""Exhibits in the archive: listed and downloaded like the recording's media, carried in the
export bundle, and checked offline against the signed timeline (not against bundle.json)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from recorder.manifest import iso_utc
from server import state
from server.archive_api import ARCHIVE
from server.bundle import verify_bundle
from tests.archive_fixtures import (
    CONTRACT,
    PHOTO,
    Shown,
    fetch,
    hearing_with_exhibits,
    issue_token,
    recorded_hearing,
)
from tests.conftest import RunningServer

CONTRACT_SHA = hashlib.sha256(CONTRACT).hexdigest()
PHOTO_SHA = hashlib.sha256(PHOTO).hexdigest()
CONTRACT_MEMBER = f"exhibits/{CONTRACT_SHA}-证据1_合同.pdf"
PHOTO_MEMBER = f"exhibits/{PHOTO_SHA}-证据2__现场_照片.jpg"


@pytest.fixture
async def shown(server: RunningServer) -> Shown:
    return await hearing_with_exhibits(server)


async def get_json(server: RunningServer, path: str, token: str | None) -> tuple[int, Any]:
    status, _, body = await fetch(server, path, token)
    return status, json.loads(body)


def tingshen(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def rewrite(
    source: Path, target: Path, change: Callable[[dict[str, bytes]], object], *, reindex: bool
) -> Path:
    """A copy of the bundle with ``change`` applied to its members; with ``reindex`` bundle.json
    and SHA256SUMS are made to match, as a careful forger would (they are not signed)."""
    with zipfile.ZipFile(source) as z:
        members = {name: z.read(name) for name in z.namelist()}
    change(members)
    if reindex:
        index = json.loads(members["bundle.json"])
        sums = {
            n: (hashlib.sha256(d).hexdigest(), len(d))
            for n, d in members.items()
            if n not in ("bundle.json", "SHA256SUMS")
        }
        index["files"] = [
            {"name": n, "sha256": d, "bytes": b} for n, (d, b) in sorted(sums.items())
        ]
        members["SHA256SUMS"] = "".join(
            f"{d}  {n}\n" for n, (d, _) in sorted(sums.items())
        ).encode()
        members["bundle.json"] = json.dumps(index).encode()
    with zipfile.ZipFile(target, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return target


async def test_exhibits_are_listed_and_downloaded_like_the_media(
    server: RunningServer, shown: Shown
) -> None:
    archivist = await issue_token(server, "archivist", subject="wang")
    base = f"/api/archive/recordings/{shown.recording_id}"
    status, listed = await get_json(server, base + "/exhibits", archivist)
    assert status == 200, listed
    items = listed["exhibits"]
    assert [(e["name"], e["sha256"], e["bytes"], e["by"], e["role"]) for e in items] == [
        ("证据1 合同.pdf", CONTRACT_SHA, len(CONTRACT), "公诉人", "prosecutor"),
        ("证据2: 现场_照片.jpg", PHOTO_SHA, len(PHOTO), "辩护人", "defence"),
        ("证据1 合同（副本）.pdf", CONTRACT_SHA, len(CONTRACT), "公诉人", "prosecutor"),
    ]
    assert [e["at"] for e in items] == [iso_utc(r["at"]) for r in shown.registered]
    _, detail = await get_json(server, base, archivist)
    assert [e["sha256"] for e in detail["exhibits"]] == [e["sha256"] for e in items]
    assert [e["kind"] for e in detail["events"]].count("exhibit") == 3

    url = items[1]["url"]  # carries the media ticket: no Authorization header needed
    assert url.startswith(f"{base}/exhibits/{PHOTO_SHA}?ticket=")
    status, headers, body = await fetch(server, url)
    assert status == 200 and body == PHOTO
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Tingshen-SHA256"] == PHOTO_SHA
    disposition = headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="')
    assert f"filename*=UTF-8''{quote('证据2: 现场_照片.jpg', safe='')}" in disposition
    status, _, part = await fetch(server, url, headers={"Range": "bytes=100-199"})
    assert status == 206 and part == PHOTO[100:200]
    status, _, body = await fetch(server, f"{base}/exhibits/{CONTRACT_SHA}", archivist)
    assert status == 200 and body == CONTRACT  # the bearer header works as well

    # 401: no token, a bad token, a forged ticket, another recording's ticket
    assert (await fetch(server, base + "/exhibits"))[0] == 401
    assert (await fetch(server, base + "/exhibits", "not-a-token"))[0] == 401
    assert (await fetch(server, f"{base}/exhibits/{PHOTO_SHA}"))[0] == 401
    assert (await fetch(server, url.replace("ticket=", "ticket=x")))[0] == 401
    other = await recorded_hearing(server, court="kangding", recording_id="rec0002", case="B-2")
    _, other_detail = await get_json(
        server, f"/api/archive/recordings/{other.recording_id}", archivist
    )
    foreign = f"{base}/exhibits/{PHOTO_SHA}?ticket={quote(other_detail['ticket'])}"
    assert (await fetch(server, foreign))[0] == 401

    # 403: a participant who is no judge; a judge of another court
    observer = next(i["url"] for i in shown.hearing["invites"] if i["role"] == "observer")
    observer_token = observer.split("token=", 1)[1]
    assert (await fetch(server, base + "/exhibits", observer_token))[0] == 403
    judge = await issue_token(server, "judge", hearing=other.hearing_id, subject="李法官")
    assert (await fetch(server, base + "/exhibits", judge))[0] == 403
    assert (await fetch(server, f"{base}/exhibits/{PHOTO_SHA}", judge))[0] == 403

    # 404: a hash the timeline does not register (even a file stored for this hearing), no hash
    planted = b"never shown in court"
    planted_sha = hashlib.sha256(planted).hexdigest()
    (shown.stored(server.data, CONTRACT).parent / planted_sha).write_bytes(planted)
    for path in (
        f"{base}/exhibits/{planted_sha}",
        f"{base}/exhibits/{'0' * 64}",
        f"{base}/exhibits/{PHOTO_SHA.upper()}",
        f"{base}/exhibits/..%2F..%2Frecording-signing.key",
        f"{base}/exhibits/{PHOTO_SHA}%2F..",
        "/api/archive/recordings/nosuch/exhibits",
        f"/api/archive/recordings/nosuch/exhibits/{PHOTO_SHA}",
    ):
        status, _, body = await fetch(server, path, archivist)
        assert status == 404, path
        assert b"PRIVATE KEY" not in body
    # the stored file damaged or gone: refused, never served as the exhibit
    stored = shown.stored(server.data, PHOTO)
    stored.write_bytes(PHOTO + b"x")
    status, _, body = await fetch(server, url)
    assert status == 409 and json.loads(body)["error"]["code"] == "exhibit-damaged"
    stored.unlink()
    status, _, body = await fetch(server, url)
    assert status == 404 and json.loads(body)["error"]["code"] == "exhibit-missing"

    audit = server.app[ARCHIVE].audit.entries(recording_id=shown.recording_id)
    downloads = [(e.actor, e.target, e.sha256) for e in audit if e.action == "download"]
    assert ("archivist:wang", "exhibit 证据2: 现场_照片.jpg", PHOTO_SHA) in downloads
    assert ("archivist:wang", "exhibit 证据1 合同.pdf", CONTRACT_SHA) in downloads

    # sealed: the exhibits go with the recording
    status, _ = await server.api(
        "POST", f"/api/archive/hearings/{shown.hearing_id}/seal", {"sealed": True}
    )
    assert status == 200
    status, _, body = await fetch(server, base + "/exhibits", archivist)
    assert status == 403 and json.loads(body)["error"]["code"] == "sealed"
    assert (await fetch(server, items[0]["url"]))[0] == 403  # the ticket too


async def test_the_bundle_carries_the_exhibits_and_verifies_offline(
    server: RunningServer, shown: Shown, tmp_path: Path
) -> None:
    archivist = await issue_token(server, "archivist")
    _, detail = await get_json(server, f"/api/archive/recordings/{shown.recording_id}", archivist)
    status, headers, data = await fetch(server, detail["export_url"])
    assert status == 200
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(data)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        exhibits = sorted(n for n in z.namelist() if n.startswith("exhibits/"))
        # the contract shown twice is one file, named after its first registration
        assert exhibits == sorted([CONTRACT_MEMBER, PHOTO_MEMBER])
        assert z.read(CONTRACT_MEMBER) == CONTRACT and z.read(PHOTO_MEMBER) == PHOTO
        index = json.loads(z.read("bundle.json"))
        sums = z.read("SHA256SUMS").decode()
        assert "exhibits/" in z.read("README.txt").decode()
    assert f"{PHOTO_SHA}  {PHOTO_MEMBER}\n" in sums
    assert [(e["file"], e["included"], e["by"]) for e in index["exhibits"]] == [
        (CONTRACT_MEMBER, True, "公诉人"),
        (PHOTO_MEMBER, True, "辩护人"),
    ]
    export = server.app[ARCHIVE].audit.entries(action="export")[-1]
    assert export.sha256 == headers["X-Tingshen-SHA256"] and export.detail["exhibits"] == 2

    key = tmp_path / "court.pem"
    key.write_bytes(server.app[state.SERVICES].signer.public_key_pem())
    offline = {"TINGSHEN_DATA": str(tmp_path / "nothing-here"), "TINGSHEN_SERVER": ""}
    ok = await asyncio.to_thread(
        tingshen, "archive", "verify", str(bundle), "--key", str(key), env=offline
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK") and "2 exhibits" in ok.stdout
    trusted = key.read_bytes()
    report = verify_bundle(bundle, trusted)
    assert report.ok and report.exhibits == 2, report.faults

    # removed, and bundle.json and SHA256SUMS made to agree: the signed timeline still names it
    gone = rewrite(bundle, tmp_path / "gone.zip", lambda m: m.pop(PHOTO_MEMBER), reindex=True)
    failed = await asyncio.to_thread(
        tingshen, "archive", "verify", str(gone), "--key", str(key), env=offline
    )
    assert failed.returncode == 1
    assert f"exhibit-missing: {PHOTO_MEMBER}: exhibit '证据2: 现场_照片.jpg'" in failed.stdout
    assert "辩护人" in failed.stdout

    def alter(members: dict[str, bytes]) -> None:
        members[CONTRACT_MEMBER] = CONTRACT.replace(b"page 1", b"page 2", 1)

    for reindex in (False, True):
        altered = rewrite(bundle, tmp_path / "altered.zip", alter, reindex=reindex)
        report = verify_bundle(altered, trusted)
        assert not report.ok
        faults = [f for f in report.faults if f.startswith("exhibit-modified")]
        assert len(faults) == 1 and CONTRACT_MEMBER in faults[0] and "证据1 合同.pdf" in faults[0]
        assert any("bundle-file-modified" in f for f in report.faults) is not reindex

    def swap(members: dict[str, bytes]) -> None:  # the photograph's place holds the contract
        members[PHOTO_MEMBER] = members[CONTRACT_MEMBER]

    report = verify_bundle(rewrite(bundle, tmp_path / "swap.zip", swap, reindex=True), trusted)
    assert [f.split(":")[0] for f in report.faults] == ["exhibit-modified"]
    assert PHOTO_MEMBER in report.faults[0]

    def rename(members: dict[str, bytes]) -> None:  # under another name: missing and unlisted
        members[PHOTO_MEMBER.replace(".jpg", ".png")] = members.pop(PHOTO_MEMBER)

    report = verify_bundle(rewrite(bundle, tmp_path / "rename.zip", rename, reindex=True), trusted)
    assert sorted(f.split(":")[0] for f in report.faults) == ["exhibit-missing", "exhibit-unlisted"]

    def plant(members: dict[str, bytes]) -> None:
        members[f"exhibits/{'0' * 64}-证据9.pdf"] = b"never shown"

    report = verify_bundle(rewrite(bundle, tmp_path / "plant.zip", plant, reindex=True), trusted)
    assert [f.split(":")[0] for f in report.faults] == ["exhibit-unlisted"]

    def relabel(members: dict[str, bytes]) -> None:  # the timeline edited to fit a new file
        new = CONTRACT.replace(b"page 1", b"page 2", 1)
        sha = hashlib.sha256(new).hexdigest()
        members[CONTRACT_MEMBER.replace(CONTRACT_SHA, sha)] = new
        del members[CONTRACT_MEMBER]
        events = members["recording/events.jsonl"].replace(CONTRACT_SHA.encode(), sha.encode())
        members["recording/events.jsonl"] = events

    report = verify_bundle(rewrite(bundle, tmp_path / "edit.zip", relabel, reindex=True), trusted)
    assert [f.split(":")[0] for f in report.faults] == ["events-modified"]


async def test_exports_without_a_stored_exhibit_do_not_verify(
    server: RunningServer, shown: Shown, tmp_path: Path
) -> None:
    shown.stored(server.data, PHOTO).unlink()  # lost from the server's exhibit store
    out = tmp_path / "local.zip"
    local = {"TINGSHEN_DATA": str(server.data), "TINGSHEN_SERVER": ""}
    made = await asyncio.to_thread(
        tingshen, "archive", "export", shown.recording_id, "--to", str(out), env=local
    )
    assert made.returncode == 0, made.stderr
    assert f"exhibit left out: {PHOTO_MEMBER}: the stored file is gone" in made.stderr
    with zipfile.ZipFile(out) as z:
        assert CONTRACT_MEMBER in z.namelist() and PHOTO_MEMBER not in z.namelist()
        index = json.loads(z.read("bundle.json"))
    assert [e["included"] for e in index["exhibits"]] == [True, False]
    trusted = server.app[state.SERVICES].signer.public_key_pem()
    report = verify_bundle(out, trusted)
    assert [f.split(":")[0] for f in report.faults] == ["exhibit-missing"]
    assert PHOTO_MEMBER in report.faults[0]
