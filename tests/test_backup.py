"""Backup replication and fixity (server.backup, server.s3_replica): directory, S3, and the API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from recorder.manifest import ManifestSigner, file_sha256
from recorder.verify import verify_recording
from server.app import create_app
from server.archive_api import ARCHIVE
from server.backup import DirectoryTarget, Replicator
from server.settings import Settings
from tests.archive_fixtures import make_recording, recorded_hearing
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


async def test_s3_replica_and_fixity(
    root: Path, signer: ManifestSigner, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.s3_replica import S3Settings, S3Target

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    settings = S3Settings(
        "archive",
        prefix="court",
        endpoint_url=s3_endpoint,
        access_key_id="test",
        secret_access_key="test",
    )
    target = S3Target(settings)
    s3 = await target._s3()
    await s3.create_bucket(Bucket="archive")
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
    deadline = time.monotonic() + 10
    while not (replica / "manifest.sig").exists():
        assert time.monotonic() < deadline, "the server did not replicate"
        await asyncio.sleep(0.05)
    name = str(segments(recorded.folder)[0]["file"])
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
