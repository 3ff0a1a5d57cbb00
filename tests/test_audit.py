"""The hash-chained audit log (server.audit) on SQLite, or PostgreSQL when configured."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from recorder.manifest import ManifestSigner
from server.audit import GENESIS, AuditLog, entry_hash
from server.db import AuditRow, Database
from tests.db_fixtures import database, database_url  # noqa: F401  (fixtures)


@pytest.fixture
def log(database: Database, tmp_path: Path) -> AuditLog:  # noqa: F811
    return AuditLog(database, tmp_path / "audit-head.json", ManifestSigner.generate())


def fill(log: AuditLog, n: int = 5) -> None:
    for i in range(n):
        log.append(
            actor="archivist:zhang",
            role="archivist",
            action="play",
            recording_id="rec1",
            hearing_id="h1",
            target=f"p1-video/{i:06d}.webm",
            sha256="ab" * 32,
            detail={"n": i, "名": "值"},
        )


def test_entries_chain_and_verify(log: AuditLog) -> None:
    fill(log)
    entries = log.entries()
    assert [e.seq for e in entries] == [0, 1, 2, 3, 4]
    assert entries[0].prev == GENESIS
    for before, after in itertools.pairwise(entries):
        assert after.prev == before.hash
    for entry in entries:
        assert entry_hash(entry.as_dict()) == entry.hash  # recomputable from the exported form
    report = log.verify()
    assert report.ok and report.entries == 5 and report.head == entries[-1].hash
    assert report.head_checked
    assert log.entries(recording_id="nope") == []
    assert len(log.entries(action="play", limit=2)) == 2


def test_a_tampered_row_is_detected(log: AuditLog, database: Database) -> None:  # noqa: F811
    fill(log)
    with database.session() as s:
        s.execute(update(AuditRow).where(AuditRow.seq == 2).values(actor="someone-else"))
    report = log.verify()
    assert not report.ok
    assert report.faults == ["entry-altered: seq 2: content does not match its hash"]


def test_a_deleted_row_is_detected(log: AuditLog, database: Database) -> None:  # noqa: F811
    fill(log)
    with database.session() as s:
        s.execute(delete(AuditRow).where(AuditRow.seq == 1))
    report = log.verify()
    assert not report.ok
    assert any(f.startswith("entry-missing: seq 1") for f in report.faults)
    assert any(f.startswith("chain-broken: seq 2") for f in report.faults)


def test_reordered_rows_are_detected(log: AuditLog, database: Database) -> None:  # noqa: F811
    fill(log)
    with database.session() as s:  # swap rows 1 and 3 (content, keeping the seq numbers)
        rows = {r.seq: r for r in s.query(AuditRow).filter(AuditRow.seq.in_([1, 3]))}
        one, three = rows[1], rows[3]
        fields = ("target", "detail", "prev", "hash")
        a = {f: getattr(one, f) for f in fields}
        b = {f: getattr(three, f) for f in fields}
        one.hash, three.hash = "x" * 64, "y" * 64  # the unique hash column, during the swap
        s.flush()
        for f in fields:
            setattr(one, f, b[f])
            setattr(three, f, a[f])
    report = log.verify()
    assert not report.ok
    assert {f.split(":")[0] for f in report.faults} >= {"chain-broken", "entry-altered"}


def test_deleting_the_newest_rows_is_caught_by_the_signed_head(
    log: AuditLog,
    database: Database,  # noqa: F811
) -> None:
    fill(log)
    with database.session() as s:
        s.execute(delete(AuditRow).where(AuditRow.seq >= 3))
    report = log.verify()
    assert not report.ok and report.entries == 3
    assert report.faults[0].startswith("entries-truncated")
    assert log.head_file is not None
    log.head_file.write_text(log.head_file.read_text().replace('"seq":4', '"seq":2'))
    assert "bad signature" in log.verify().faults[0]  # a forged head


def test_concurrent_appends_stay_one_chain(log: AuditLog) -> None:
    def work() -> None:
        fill(log, 10)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = log.verify()
    assert report.ok and report.entries == 40


def test_oversize_and_odd_values_are_kept_bounded(log: AuditLog) -> None:
    entry = log.append(
        actor="a" * 1000,
        role="archivist",
        action="search",
        target="t\x00" * 2000,
        detail={"query": "x" * 100_000},
    )
    assert len(entry.actor) == 160 and "\x00" not in (entry.target or "")
    assert entry.detail == {"truncated": True}
    assert log.verify().ok
