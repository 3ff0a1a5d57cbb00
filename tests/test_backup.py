"""Backup replication and fixity (server.backup, server.s3_replica): directory, S3, and the API;
recordings and their exhibits."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from recorder.manifest import ManifestSigner, file_sha256
from recorder.session import RecordingSession
from recorder.verify import verify_recording
from server.app import create_app
from server.archive_api import ARCHIVE
from server.backup import DirectoryTarget, Replicator
from server.exhibit_archive import scan_exhibits
from server.settings import Settings
from tests import archive_fixtures
from tests.archive_fixtures import hearing_with_exhibits, make_recording, recorded_hearing
from tests.conftest import RunningServer, free_port


@pytest.fixture(scope="module")
def signer() -> ManifestSigner:
    return ManifestSigner.generate()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    return path


def segments(folder: Path) -> list[dict[str, object]]:
    lines = (folder / "manifest.jsonl").read_bytes().splitlines()
    return [e for e in map(json.loads, lines) if e["type"] == "segment"]


def flip(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x40
    path.write_bytes(bytes(raw))


async def test_segments_reach_the_replica_while_recording(
    root: Path, tmp_path: Path, signer: ManifestSigner
) -> None:
    replica = tmp_path / "replica"
    replicator = Replicator(root, [DirectoryTarget(replica)])
    folder = root / "h1" / "r1"
    session = await asyncio.to_thread(make_recording, folder, signer, "r1", "h1", finish=False)
    try:
        deadline = time.monotonic() + 10
        while len(closed := segments(folder)) < 2:  # the worker thread writes them
            assert time.monotonic() < deadline, "the recorder closed no segment"
            await asyncio.sleep(0.02)
        assert await replicator.replicate_once() >= len(closed)
        for entry in closed:  # before the hearing ends
            copy = replica / "h1" / "r1" / str(entry["file"])
            assert file_sha256(copy)[0] == entry["sha256"]
    finally:
        await asyncio.to_thread(session.stop)
    assert await replicator.replicate_once() > 0  # the rest, at the end
    assert await replicator.replicate_once() == 0  # nothing new: nothing copied
    report = verify_recording(replica / "h1" / "r1", signer.public_key_pem())
    assert report.ok, report.faults


async def test_the_background_task_replicates_new_recordings(
    root: Path, tmp_path: Path, signer: ManifestSigner
) -> None:
    replica = tmp_path / "replica"
    replicator = Replicator(root, [DirectoryTarget(replica)], interval=0.05)
    replicator.start()
    try:
        await asyncio.to_thread(make_recording, root / "h2" / "r2", signer, "r2", "h2")
        deadline = time.monotonic() + 10
        while (
            not (replica / "h2" / "r2" / "manifest.sig").exists()
            or not verify_recording(replica / "h2" / "r2", signer.public_key_pem()).ok
        ):
            assert time.monotonic() < deadline, "not replicated"
            await asyncio.sleep(0.05)
    finally:
        await replicator.stop()


async def test_fixity_restores_a_damaged_primary_and_recopies_a_missing_replica(
    root: Path, tmp_path: Path, signer: ManifestSigner
) -> None:
    replica = tmp_path / "replica"
    events: list[tuple[str, dict[str, object]]] = []
    replicator = Replicator(
        root, [DirectoryTarget(replica)], on_event=lambda a, d: events.append((a, d))
    )
    folder = root / "h1" / "r1"
    await asyncio.to_thread(make_recording, folder, signer, "r1", "h1")
    await replicator.replicate_once()
    assert (await replicator.fixity()).clean

    first, second = (str(e["file"]) for e in segments(folder)[:2])
    flip(folder / first)
    (replica / "h1" / "r1" / second).unlink()
    assert not verify_recording(folder, signer.public_key_pem()).ok
    report = await replicator.fixity()
    assert report.restored == [f"h1/r1/{first}"]
    assert report.recopied == [f"dir:{replica} h1/r1/{second}"]
    assert report.unrecoverable == []
    assert verify_recording(folder, signer.public_key_pem()).ok
    assert verify_recording(replica / "h1" / "r1", signer.public_key_pem()).ok
    quarantined = list((root.parent / "quarantine").rglob("*.webm.*"))
    assert len(quarantined) == 1  # the damaged copy is kept aside, not deleted
    assert [a for a, _ in events] == ["fixity", "restore", "fixity"]
    assert (await replicator.fixity()).clean


async def test_damage_on_both_sides_is_reported_not_hidden(
    root: Path, tmp_path: Path, signer: ManifestSigner
) -> None:
    replica = tmp_path / "replica"
    replicator = Replicator(root, [DirectoryTarget(replica)])
    folder = root / "h1" / "r1"
    await asyncio.to_thread(make_recording, folder, signer, "r1", "h1")
    await replicator.replicate_once()
    name = str(segments(folder)[0]["file"])
    flip(folder / name)
    flip(replica / "h1" / "r1" / name)
    damaged = (folder / name).read_bytes()
    report = await replicator.fixity()
    assert report.unrecoverable == [f"h1/r1/{name}"] and report.restored == []
    assert (folder / name).read_bytes() == damaged  # left for a person to look at


async def test_a_rewritten_manifest_is_never_copied_over_the_replica(
    root: Path, tmp_path: Path, signer: ManifestSigner
) -> None:
    replica = tmp_path / "replica"
    replicator = Replicator(root, [DirectoryTarget(replica)])
    folder = root / "h1" / "r1"
    await asyncio.to_thread(make_recording, folder, signer, "r1", "h1")
    await replicator.replicate_once()
    good = (replica / "h1" / "r1" / "manifest.jsonl").read_bytes()
    manifest = folder / "manifest.jsonl"
    manifest.write_bytes(manifest.read_bytes().replace(b'"recess"', b'"xxxxxx"'))
    fresh = Replicator(root, [DirectoryTarget(replica)])  # a restarted server: no memory
    await fresh.replicate_once()
    assert (replica / "h1" / "r1" / "manifest.jsonl").read_bytes() == good
    assert any("not an extension" in p for p in fresh.problems)


# -- S3 (moto's server on loopback) -----------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    pytest.importorskip("aiobotocore")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def s3_bucket(endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An S3 target on the moto server, its bucket created (no proxy between them)."""
    from server.s3_replica import S3Settings, S3Target

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    settings = S3Settings(
        bucket,
        prefix="court",
        endpoint_url=endpoint,
        access_key_id="test",
        secret_access_key="test",
    )
    target = S3Target(settings)
    s3 = await target._s3()
    await s3.create_bucket(Bucket=bucket)
    return target, s3


async def test_s3_replica_and_fixity(
    root: Path, signer: ManifestSigner, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, s3 = await s3_bucket(s3_endpoint, "archive", monkeypatch)
    replicator = Replicator(root, [target])
    try:
        folder = root / "h1" / "r1"
        await asyncio.to_thread(make_recording, folder, signer, "r1", "h1")
        copied = await replicator.replicate_once()
        listed = await s3.list_objects_v2(Bucket="archive", Prefix="court/h1/r1/")
        assert copied == len(listed["Contents"]) >= 8
        first, second = (str(e["file"]) for e in segments(folder)[:2])
        head = await s3.head_object(Bucket="archive", Key=f"court/h1/r1/{first}")
        assert head["Metadata"]["sha256"] == segments(folder)[0]["sha256"]
        flip(folder / first)
        await s3.delete_object(Bucket="archive", Key=f"court/h1/r1/{second}")
        report = await replicator.fixity()
        assert report.restored == [f"h1/r1/{first}"]
        assert report.recopied == [f"{target.name} h1/r1/{second}"]
        assert verify_recording(folder, signer.public_key_pem()).ok
    finally:
        await replicator.stop()


# -- through the server -------------------------------------------------------------------------


@pytest.fixture
async def backed_up_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    port = free_port()
    settings = Settings(
        host="127.0.0.1",
        port=port,
        data=tmp_path / "data",
        render_after_hearing=False,
        backup_dir=tmp_path / "replica",
        backup_interval=0.1,
    )
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", settings.data, settings, app)
    finally:
        await runner.cleanup()


async def test_server_replicates_and_repairs_on_demand(
    backed_up_server: RunningServer, tmp_path: Path
) -> None:
    server = backed_up_server
    recorded = await recorded_hearing(server)
    replica = tmp_path / "replica" / recorded.hearing_id / recorded.recording_id
    name = str(segments(recorded.folder)[0]["file"])
    deadline = time.monotonic() + 10
    # the segment itself must have reached the replica before it is damaged (the manifest's
    # signature alone does not say every file was copied yet)
    while not ((replica / "manifest.sig").exists() and (replica / name).exists()):
        assert time.monotonic() < deadline, "the server did not replicate"
        await asyncio.sleep(0.05)
    flip(recorded.folder / name)
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with aiohttp.ClientSession() as session:
        url = f"{server.base_url}/api/archive/backup/fixity?recording={recorded.recording_id}"
        async with session.post(url, headers=headers) as response:
            assert response.status == 200
            report = await response.json()
        async with session.get(f"{server.base_url}/api/archive/backup", headers=headers) as r:
            status = await r.json()
    key = f"{recorded.hearing_id}/{recorded.recording_id}/{name}"
    assert report["restored"] == [key] and report["recordings"] == 1
    assert status["targets"] == [f"dir:{tmp_path / 'replica'}"] and status["copied"] > 0
    await asyncio.sleep(0.1)  # the restore's audit entry is written in the background
    audit = server.app[ARCHIVE].audit
    assert [e.target for e in audit.entries(action="restore")] == [key]
    assert audit.verify().ok


# -- exhibits -----------------------------------------------------------------------------------

CONTRACT = b"%PDF-1.4 sale contract " * 500
PHOTO = bytes(range(256)) * 30
CONTRACT_SHA = hashlib.sha256(CONTRACT).hexdigest()
PHOTO_SHA = hashlib.sha256(PHOTO).hexdigest()


def show(session: RecordingSession, exhibits: Path, name: str, content: bytes) -> str:
    """Store ``content`` as the server does and register it on the session's timeline."""
    sha256 = hashlib.sha256(content).hexdigest()
    stored = exhibits / session.hearing_id / sha256
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(content)
    data = {"name": name, "sha256": sha256, "bytes": len(content), "by": "公诉人", "role": "x"}
    session.event("exhibit", data)
    return sha256


def record_with_exhibits(folder: Path, signer: ManifestSigner, exhibits: Path) -> None:
    """A finished recording on whose timeline the contract is shown twice, the photo once."""
    session = make_recording(folder, signer, folder.name, folder.parent.name, finish=False)
    show(session, exhibits, "证据1 合同.pdf", CONTRACT)
    show(session, exhibits, "证据2 照片.jpg", PHOTO)
    show(session, exhibits, "证据1 合同（副本）.pdf", CONTRACT)
    session.stop()


@pytest.fixture
def exhibits(tmp_path: Path) -> Path:
    return tmp_path / "exhibits"


async def test_an_exhibit_reaches_the_replica_while_the_hearing_is_in_recess(
    root: Path, tmp_path: Path, signer: ManifestSigner, exhibits: Path
) -> None:
    replica = tmp_path / "replica"
    replicator = Replicator(root, [DirectoryTarget(replica)], exhibits_root=exhibits)
    folder = root / "h1" / "r1"
    session = await asyncio.to_thread(make_recording, folder, signer, "r1", "h1", finish=False)

    async def written(mark: bytes) -> None:  # the worker thread writes events after the frames
        deadline = time.monotonic() + 10
        while mark not in (folder / "events.jsonl").read_bytes():
            assert time.monotonic() < deadline, f"the recorder did not write {mark!r}"
            await asyncio.sleep(0.02)

    try:
        session.event("note", {"author": "p2", "name": "书记员", "text": "休庭"})
        await written("休庭".encode())
        await replicator.replicate_once()
        manifest = (folder / "manifest.jsonl").read_bytes()
        sha256 = await asyncio.to_thread(show, session, exhibits, "证据1 合同.pdf", CONTRACT)
        await written(sha256.encode())
        assert (folder / "manifest.jsonl").read_bytes() == manifest  # no segment closed since
        assert await replicator.replicate_once() == 1
        assert (replica / "exhibits" / "h1" / sha256).read_bytes() == CONTRACT
        assert replicator.status()["exhibits_copied"] == 1
    finally:
        await asyncio.to_thread(session.stop)


async def test_each_exhibit_file_is_replicated_once(
    root: Path, tmp_path: Path, signer: ManifestSigner, exhibits: Path
) -> None:
    replica = tmp_path / "replica"
    replicator = Replicator(root, [DirectoryTarget(replica)], exhibits_root=exhibits)
    await asyncio.to_thread(record_with_exhibits, root / "h1" / "r1", signer, exhibits)
    await replicator.replicate_once()
    copies = sorted(p.name for p in (replica / "exhibits" / "h1").iterdir())
    assert copies == sorted([CONTRACT_SHA, PHOTO_SHA])
    assert (replica / "exhibits" / "h1" / PHOTO_SHA).read_bytes() == PHOTO
    assert replicator.exhibits_copied == 2
    # a second recording of the same hearing shows the contract again: nothing new to copy
    await asyncio.to_thread(record_with_exhibits, root / "h1" / "r2", signer, exhibits)
    await replicator.replicate_once()
    assert replicator.exhibits_copied == 2
    assert await replicator.replicate_once() == 0
    # a restarted server asks the replica before copying again
    fresh = Replicator(root, [DirectoryTarget(replica)], exhibits_root=exhibits)
    await fresh.replicate_once()
    assert fresh.exhibits_copied == 0
    report = await fresh.fixity()
    assert report.clean and report.exhibits == report.exhibits_ok == 2


async def replicated_exhibits(
    root: Path, replica: Path, signer: ManifestSigner, exhibits: Path
) -> tuple[Replicator, list[tuple[str, dict[str, object]]]]:
    """A recording with two exhibits, replicated once to a folder; the audit events it reports."""
    events: list[tuple[str, dict[str, object]]] = []
    replicator = Replicator(
        root,
        [DirectoryTarget(replica)],
        exhibits_root=exhibits,
        on_event=lambda a, d: events.append((a, d)),
    )
    await asyncio.to_thread(record_with_exhibits, root / "h1" / "r1", signer, exhibits)
    await replicator.replicate_once()
    return replicator, events


async def test_fixity_restores_a_damaged_exhibit_and_recopies_a_missing_one(
    root: Path, tmp_path: Path, signer: ManifestSigner, exhibits: Path
) -> None:
    replica = tmp_path / "replica"
    replicator, events = await replicated_exhibits(root, replica, signer, exhibits)
    flip(exhibits / "h1" / CONTRACT_SHA)
    (replica / "exhibits" / "h1" / PHOTO_SHA).unlink()
    report = await replicator.fixity()
    assert report.restored == [f"exhibits/h1/{CONTRACT_SHA}"]
    assert report.recopied == [f"dir:{replica} exhibits/h1/{PHOTO_SHA}"]
    assert report.unrecoverable == [] and report.exhibits == 2 and report.exhibits_ok == 0
    assert f"primary exhibits/h1/{CONTRACT_SHA}: modified" in report.mismatches
    assert (exhibits / "h1" / CONTRACT_SHA).read_bytes() == CONTRACT
    assert (replica / "exhibits" / "h1" / PHOTO_SHA).read_bytes() == PHOTO
    (aside,) = (root.parent / "quarantine" / "exhibits" / "h1").iterdir()
    assert aside.name.startswith(CONTRACT_SHA) and aside.read_bytes() != CONTRACT
    actions = {a: d for a, d in events}
    assert [a for a, _ in events] == ["restore", "recopy", "fixity"]
    restore, recopy = actions["restore"], actions["recopy"]
    assert restore["kind"] == "exhibit" and restore["key"] == f"exhibits/h1/{CONTRACT_SHA}"
    assert restore["recording_id"] == "r1" and restore["hearing_id"] == "h1"
    assert "证据1 合同.pdf" in str(restore["message"]) and "damaged" in str(restore["message"])
    assert recopy["to"] == f"dir:{replica}" and "missing" in str(recopy["message"])
    # a deleted primary comes back too
    (exhibits / "h1" / PHOTO_SHA).unlink()
    report = await replicator.fixity()
    assert report.restored == [f"exhibits/h1/{PHOTO_SHA}"]
    assert (exhibits / "h1" / PHOTO_SHA).read_bytes() == PHOTO
    assert (await replicator.fixity()).clean


async def test_an_exhibit_with_no_good_copy_is_reported_and_audited(
    root: Path, tmp_path: Path, signer: ManifestSigner, exhibits: Path
) -> None:
    replica = tmp_path / "replica"
    replicator, events = await replicated_exhibits(root, replica, signer, exhibits)
    flip(exhibits / "h1" / CONTRACT_SHA)
    damaged = (exhibits / "h1" / CONTRACT_SHA).read_bytes()
    (replica / "exhibits" / "h1" / CONTRACT_SHA).unlink()
    report = await replicator.fixity()
    key = f"exhibits/h1/{CONTRACT_SHA}"
    assert report.unrecoverable == [key] and report.restored == [] and report.recopied == []
    assert (exhibits / "h1" / CONTRACT_SHA).read_bytes() == damaged  # left for a person
    assert not (replica / "exhibits" / "h1" / CONTRACT_SHA).exists()  # never a bad copy
    lost = [d for a, d in events if a == "unrecoverable"]
    assert len(lost) == 1 and lost[0]["key"] == key and lost[0]["kind"] == "exhibit"
    message = str(lost[0]["message"])
    assert "证据1 合同.pdf" in message and "modified" in message and "missing" in message
    fixity = next(d for a, d in events if a == "fixity")
    assert fixity["unrecoverable"] == [key] and not fixity["clean"]


async def test_exhibits_in_s3(
    root: Path,
    signer: ManifestSigner,
    exhibits: Path,
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target, s3 = await s3_bucket(s3_endpoint, "evidence", monkeypatch)
    replicator = Replicator(root, [target], exhibits_root=exhibits)
    try:
        await asyncio.to_thread(record_with_exhibits, root / "h1" / "r1", signer, exhibits)
        await replicator.replicate_once()
        listed = await s3.list_objects_v2(Bucket="evidence", Prefix="court/exhibits/")
        keys = sorted(o["Key"] for o in listed["Contents"])
        assert keys == sorted(f"court/exhibits/h1/{s}" for s in (CONTRACT_SHA, PHOTO_SHA))
        head = await s3.head_object(Bucket="evidence", Key=f"court/exhibits/h1/{CONTRACT_SHA}")
        assert head["Metadata"]["sha256"] == CONTRACT_SHA
        assert head["ContentLength"] == len(CONTRACT)
        flip(exhibits / "h1" / CONTRACT_SHA)
        await s3.delete_object(Bucket="evidence", Key=f"court/exhibits/h1/{PHOTO_SHA}")
        report = await replicator.fixity()
        assert report.restored == [f"exhibits/h1/{CONTRACT_SHA}"]
        assert report.recopied == [f"{target.name} exhibits/h1/{PHOTO_SHA}"]
        assert (exhibits / "h1" / CONTRACT_SHA).read_bytes() == CONTRACT
        assert await target.sha256(f"exhibits/h1/{PHOTO_SHA}") == PHOTO_SHA
        assert (await replicator.fixity()).clean
    finally:
        await replicator.stop()


def test_scan_exhibits_follows_a_timeline_being_written(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    line = b'{"data":{"bytes":3,"name":"a","sha256":"%s"},"kind":"exhibit","seq":%d}\n'
    events.write_bytes(b'{"kind":"join","seq":0}\n' + line % (CONTRACT_SHA.encode(), 1))
    first = scan_exhibits(events)
    assert [e.sha256 for e in first.exhibits] == [CONTRACT_SHA] and first.lines == 2
    torn = line % (PHOTO_SHA.encode(), 2)
    with events.open("ab") as f:
        f.write(torn[:40])  # the recorder is half-way through the line
    second = scan_exhibits(events, first.offset, first.lines)
    assert second.exhibits == [] and second.offset == first.offset
    with events.open("ab") as f:
        f.write(torn[40:])
    third = scan_exhibits(events, second.offset, second.lines)
    assert [e.sha256 for e in third.exhibits] == [PHOTO_SHA] and third.problems == []
    assert third.offset == events.stat().st_size and third.lines == 3


async def test_server_replicates_exhibits_and_restores_them_on_demand(
    backed_up_server: RunningServer, tmp_path: Path
) -> None:
    server = backed_up_server
    shown = await hearing_with_exhibits(server)
    contract = hashlib.sha256(archive_fixtures.CONTRACT).hexdigest()
    replica = tmp_path / "replica" / "exhibits" / shown.hearing_id
    deadline = time.monotonic() + 10
    while not (replica / contract).exists() or len(list(replica.iterdir())) < 2:
        assert time.monotonic() < deadline, "the server did not replicate the exhibits"
        await asyncio.sleep(0.05)
    stored = shown.stored(server.data, archive_fixtures.CONTRACT)
    stored.unlink()
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    async with aiohttp.ClientSession() as session:
        url = f"{server.base_url}/api/archive/backup/fixity?recording={shown.recording_id}"
        async with session.post(url, headers=headers) as response:
            assert response.status == 200
            report = await response.json()
        async with session.get(f"{server.base_url}/api/archive/backup", headers=headers) as r:
            status = await r.json()
    key = f"exhibits/{shown.hearing_id}/{contract}"
    assert report["restored"] == [key] and report["exhibits"] == 2
    assert status["exhibits"] is True and status["exhibits_copied"] == 2
    assert stored.read_bytes() == archive_fixtures.CONTRACT
    await asyncio.sleep(0.1)  # the restore's audit entry is written in the background
    audit = server.app[ARCHIVE].audit
    (entry,) = audit.entries(action="restore")
    assert entry.target == key and entry.sha256 == contract
    assert entry.recording_id == shown.recording_id and entry.hearing_id == shown.hearing_id
    assert "missing" in entry.detail["message"] and audit.verify().ok
