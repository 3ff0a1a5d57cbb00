"""The recordings catalog: real recording folders indexed and searched (server.catalog).

Runs on PostgreSQL when TINGSHEN_TEST_DATABASE_URL is set, on SQLite otherwise (tests/db_fixtures).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select

from recorder.manifest import ManifestSigner
from recorder.recovery import recover_recording
from recorder.session import RecordingSession
from recorder.synthetic import EncodedFrame, encode_audio, encode_video, interleave
from recorder.track import TrackInfo
from server.catalog import (
    index_recording,
    list_recordings,
    record_verification,
    recording_detail,
    reindex_all,
)
from server.db import (
    Database,
    HearingRow,
    RecordingRow,
    SegmentRow,
    TimelineEventRow,
    TrackRow,
)
from tests.db_fixtures import database, database_url  # noqa: F401  (fixtures)

BASE = 1_760_000_000.0  # 2025-10-09T08:53:20Z
DAY = 86400.0
JUDGE_VIDEO = TrackInfo("p1-video", "p1", "审判长 张三", "video", "VP8", 90000)
JUDGE_AUDIO = TrackInfo("p1-audio", "p1", "审判长 张三", "audio", "opus", 48000)
DEFENDANT_AUDIO = TrackInfo("p3-audio", "p3", "Wang Wu", "audio", "opus", 48000)
CASE_A = "（2026）川33民初7号"
CASE_B = "（2026）川3301刑初12号"

Media = dict[str, list[EncodedFrame]]


@pytest.fixture(scope="module")
def media() -> Media:
    video = encode_video(3.0, width=160, height=120, keyframe_interval=30)
    audio = encode_audio(3.0)
    return {"video": video, "audio": audio}


@pytest.fixture(scope="module")
def signer() -> ManifestSigner:
    return ManifestSigner.generate()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "recordings"
    path.mkdir()
    return path


@pytest.fixture
def hearings(database: Database) -> Database:  # noqa: F811
    with database.session() as s:
        s.add(HearingRow(id="h1", court="zhou", case_number=CASE_A, kind="hearing"))
        s.add(HearingRow(id="h2", court="xian-a", case_number=CASE_B, kind="arraignment"))
    return database


def shifted_clock(start: float) -> Callable[[], float]:
    origin = time.monotonic()
    return lambda: start + (time.monotonic() - origin)


def tracks_media(media: Media, tracks: list[TrackInfo]) -> Media:
    return {t.track_id: media[t.kind] for t in tracks}


def push(
    session: RecordingSession,
    media: Media,
    tracks: list[TrackInfo],
    start: float,
    since: float = 0.0,
    until: float = 1e9,
) -> None:
    rates = {t.track_id: t.clock_rate for t in tracks}
    for track_id, frame, seconds in interleave(tracks_media(media, tracks), rates):
        if since <= seconds < until:
            session.push_frame(
                track_id, frame.rtp_timestamp, frame.data, frame.keyframe, start + seconds
            )


def start_session(
    root: Path,
    signer: ManifestSigner,
    hearing_id: str,
    recording_id: str,
    start: float,
    tracks: list[TrackInfo],
) -> tuple[Path, RecordingSession]:
    folder = root / hearing_id / recording_id
    session = RecordingSession(folder, recording_id, hearing_id, signer, clock=shifted_clock(start))
    session.start()
    for track in tracks:
        session.add_track(track)
    return folder, session


def record_a(root: Path, signer: ManifestSigner, media: Media) -> Path:
    """Hearing h1: the judge on camera, a party who joins without media, a recess."""
    tracks = [JUDGE_VIDEO, JUDGE_AUDIO]
    folder, session = start_session(root, signer, "h1", "rec-a", BASE, tracks)
    session.event("join", {"participant": "p1", "name": "审判长 张三", "role": "judge"})
    session.event("join", {"participant": "p2", "name": "Li Si", "role": "party"})
    push(session, media, tracks, BASE)
    session.pause("recess", "p1")
    session.resume("p1")
    session.event("leave", {"participant": "p2", "reason": "left"})
    session.stop()
    return folder


def record_b(root: Path, signer: ManifestSigner, media: Media) -> Path:
    """Hearing h2, two days later: a defendant's audio only."""
    tracks = [DEFENDANT_AUDIO]
    folder, session = start_session(root, signer, "h2", "rec-b", BASE + 2 * DAY, tracks)
    session.event("join", {"participant": "p3", "name": "Wang Wu", "role": "defendant"})
    push(session, media, tracks, BASE + 2 * DAY)
    session.stop()
    return folder


def manifest(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_bytes().splitlines()]


def wait_for_segments(folder: Path, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(e["type"] == "segment" for e in manifest(folder)) < count:
        assert time.monotonic() < deadline, "the recorder closed no segment"
        time.sleep(0.02)


def row_counts(db: Database, recording_id: str) -> tuple[int, int, int]:
    with db.session() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(
                select(func.count()).select_from(model).where(model.recording_id == recording_id)
            )
            for model in (TrackRow, SegmentRow, TimelineEventRow)
        )


def utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


@pytest.fixture
def two_recordings(
    hearings: Database, root: Path, signer: ManifestSigner, media: Media
) -> tuple[Path, Path]:
    folder_a = record_a(root, signer, media)
    folder_b = record_b(root, signer, media)
    for folder in (folder_a, folder_b):
        result = index_recording(hearings, root, folder)
        assert result.indexed and not result.problems, result
    return folder_a, folder_b


# -- indexing and listing ------------------------------------------------------------------------


def test_index_lists_what_the_folder_holds(
    hearings: Database, root: Path, two_recordings: tuple[Path, Path]
) -> None:
    folder_a, _ = two_recordings
    rows = list_recordings(hearings, root)
    assert ids(rows) == ["rec-b", "rec-a"]  # newest first
    a = rows[1]
    entries = [e for e in manifest(folder_a) if e["type"] == "segment"]
    assert a["hearing_id"] == "h1" and a["status"] == "complete"
    assert a["path"] == str(folder_a.resolve()) and Path(a["path"]).is_dir()
    assert (a["court"], a["case_number"], a["kind"]) == ("zhou", CASE_A, "hearing")
    assert a["segments"] == len(entries) >= 4
    assert a["bytes"] == sum(e["bytes"] for e in entries)
    assert a["participants"] == ["审判长 张三"]
    assert a["started_at"].startswith("2025-10-09T08:53:2") and a["started_at"].endswith("Z")
    assert a["ended_at"] is not None and a["ended_at"] >= a["started_at"]
    assert a["interrupted_at"] is None and a["problems"] == []
    assert rows[0]["started_at"].startswith("2025-10-11T08:53:2")


def test_list_filters(hearings: Database, root: Path, two_recordings: tuple[Path, Path]) -> None:
    def found(**filters: Any) -> list[str]:
        return ids(list_recordings(hearings, root, **filters))

    assert found(hearing_id="h1") == ["rec-a"]
    assert found(hearing_id="nope") == []
    assert found(court="xian-a") == ["rec-b"]
    assert found(court="xian") == []  # courts match exactly
    assert found(case_number=CASE_A) == ["rec-a"]
    assert found(case_number="川3301") == ["rec-b"]  # a part of the case number
    assert found(case_number="%") == []  # LIKE wildcards are literal
    assert found(kind="arraignment") == ["rec-b"]
    assert found(status="complete") == ["rec-b", "rec-a"]
    assert found(since=utc(BASE + DAY)) == ["rec-b"]
    assert found(until=utc(BASE + DAY)) == ["rec-a"]
    assert found(since=utc(BASE - DAY), until=utc(BASE + 3 * DAY)) == ["rec-b", "rec-a"]
    assert found(since=utc(BASE + 3 * DAY)) == []
    naive = dt.datetime(2025, 10, 10)  # taken as UTC
    assert found(since=naive) == ["rec-b"]
    assert found(participant="张三") == ["rec-a"]  # a track's participant
    assert found(participant="li si") == ["rec-a"]  # joined without media: the timeline names them
    assert found(participant="p3") == ["rec-b"]  # an id matches exactly
    assert found(participant="Wang") == ["rec-b"]
    assert found(participant="nobody") == []
    assert found(participant="  ") == ["rec-b", "rec-a"]  # blank: no filter
    assert found(court="zhou", participant="Wang") == []  # filters combine
    assert found(limit=1) == ["rec-b"]
    assert found(limit=1, offset=1) == ["rec-a"]


def test_reindex_is_idempotent(
    hearings: Database, root: Path, two_recordings: tuple[Path, Path]
) -> None:
    folder_a, _ = two_recordings
    before = recording_detail(hearings, root, "rec-a")
    counts = row_counts(hearings, "rec-a")
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    event.listen(hearings.engine, "before_cursor_execute", seen)
    try:
        again = index_recording(hearings, root, folder_a)
    finally:
        event.remove(hearings.engine, "before_cursor_execute", seen)
    assert statements and not {"INSERT", "UPDATE", "DELETE"} & set(statements)  # read only
    assert again.indexed and again.new_manifest_lines == 0 and again.new_events == 0
    assert not again.rebuilt
    after = recording_detail(hearings, root, "rec-a")
    assert row_counts(hearings, "rec-a") == counts
    assert before == after


def test_detail_has_tracks_segments_and_timeline(
    hearings: Database, root: Path, two_recordings: tuple[Path, Path]
) -> None:
    folder_a, _ = two_recordings
    detail = recording_detail(hearings, root, "rec-a")
    assert detail is not None
    assert [(t["track_id"], t["participant_name"], t["codec"]) for t in detail["tracks"]] == [
        ("p1-audio", "审判长 张三", "opus"),
        ("p1-video", "审判长 张三", "vp8"),
    ]
    segments = detail["segments"]
    assert len(segments) == sum(e["type"] == "segment" for e in manifest(folder_a))
    for segment in segments:
        assert (folder_a / segment["file"]).is_file()
        assert len(segment["sha256"]) == 64 and segment["bytes"] > 0
        assert segment["start"] <= segment["end"]
    kinds = [(e["source"], e["kind"]) for e in detail["events"]]
    for expected in [
        ("events", "join"),
        ("events", "recording-paused"),
        ("events", "recording-resumed"),
        ("events", "leave"),
        ("manifest", "gap"),
        ("manifest", "end"),
    ]:
        assert expected in kinds
    by_kind = {e["kind"]: e for e in detail["events"]}
    leave = by_kind["leave"]
    assert (leave["participant_id"], leave["participant_name"]) == ("p2", "Li Si")  # from the join
    paused = by_kind["recording-paused"]
    assert paused["data"] == {"reason": "recess", "who": "p1"}
    assert paused["participant_name"] == "审判长 张三"
    gap = by_kind["gap"]
    assert gap["data"]["reason"] == "recess" and gap["data"]["paused_by"] == "p1"
    times = [e["at"] for e in detail["events"]]
    assert times == sorted(times)
    assert recording_detail(hearings, root, "nope") is None


def test_incremental_index_while_recording(
    hearings: Database, root: Path, signer: ManifestSigner, media: Media
) -> None:
    tracks = [JUDGE_VIDEO, JUDGE_AUDIO]
    folder, session = start_session(root, signer, "h1", "rec-live", BASE, tracks)
    try:
        session.event("join", {"participant": "p1", "name": "审判长 张三"})
        first = index_recording(hearings, root, folder)  # the server indexes at start
        assert first.indexed and first.status == "recording" and first.segments == 0
        push(session, media, tracks, BASE, until=2.5)
        wait_for_segments(folder, 2)
        second = index_recording(hearings, root, folder)
        assert second.status == "recording" and second.segments >= 2
        assert second.new_manifest_lines > 0 and not second.rebuilt
        live = list_recordings(hearings, root, hearing_id="h1")[0]
        assert live["ended_at"] is None
        push(session, media, tracks, BASE, since=2.5)
        session.event("leave", {"participant": "p1", "reason": "closed"})
    finally:
        session.stop()
    read_before = first.new_manifest_lines + second.new_manifest_lines
    third = index_recording(hearings, root, folder)
    entries = manifest(folder)
    assert third.new_manifest_lines == len(entries) - read_before  # only the new lines
    assert third.status == "complete" and not third.rebuilt
    assert third.segments == sum(e["type"] == "segment" for e in entries) > second.segments
    detail = recording_detail(hearings, root, "rec-live")
    assert detail is not None and detail["ended_at"] is not None
    assert [e["kind"] for e in detail["events"] if e["source"] == "events"] == ["join", "leave"]


def test_concurrent_indexing_of_one_folder(
    hearings: Database, root: Path, signer: ManifestSigner, media: Media
) -> None:
    folder = record_a(root, signer, media)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            index_recording(hearings, root, folder)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    segments = sum(e["type"] == "segment" for e in manifest(folder))
    assert row_counts(hearings, "rec-a")[1] == segments


# -- crashes and damage --------------------------------------------------------------------------


def as_crashed(folder: Path, target: Path, cut: int = 20) -> Path:
    """A copy of a finished recording as a crash leaves it: the last manifest line (the end entry)
    half written, a half-written event, status still "recording"."""
    shutil.copytree(folder, target)
    path = target / "manifest.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    with open(target / "events.jsonl", "ab") as f:
        f.write(b'{"seq": 99, "kind": "jo')
    status = json.loads((target / "recording.json").read_bytes())
    status["status"] = "recording"
    del status["ended_at"]
    (target / "recording.json").write_text(json.dumps(status))
    return target


def test_crashed_folder_indexes_then_recovers_as_interrupted(
    hearings: Database, root: Path, tmp_path: Path, signer: ManifestSigner, media: Media
) -> None:
    finished = record_a(tmp_path / "elsewhere", signer, media)
    folder = as_crashed(finished, root / "h1" / "rec-a")
    lines = manifest(finished)
    result = index_recording(hearings, root, folder)
    assert result.indexed and result.problems == ()  # a partial last line is not damage
    assert result.status == "recording"
    assert result.new_manifest_lines == len(lines) - 1  # the end entry waits
    before = list_recordings(hearings, root)[0]
    assert before["ended_at"] is None

    recovered = recover_recording(folder, signer)
    assert recovered.status == "interrupted"
    result = index_recording(hearings, root, folder)
    assert result.status == "interrupted" and not result.rebuilt and not result.problems
    after = list_recordings(hearings, root, status="interrupted")[0]
    assert after["interrupted_at"] is not None and after["ended_at"] == after["interrupted_at"]
    assert after["segments"] == before["segments"]
    detail = recording_detail(hearings, root, "rec-a")
    assert detail is not None
    end = [e for e in detail["events"] if e["kind"] == "end"]
    assert len(end) == 1 and end[0]["data"]["status"] == "interrupted"


def test_damaged_lines_are_skipped_and_remembered(
    hearings: Database, root: Path, tmp_path: Path, signer: ManifestSigner, media: Media
) -> None:
    finished = record_a(tmp_path / "elsewhere", signer, media)
    folder = root / "h1" / "rec-a"
    shutil.copytree(finished, folder)
    lines = (folder / "manifest.jsonl").read_bytes().splitlines(keepends=True)
    victim = next(i for i, line in enumerate(lines) if b'"type":"segment"' in line)
    lines[victim] = b"\x00\xffnot json at all\n"
    lines.insert(victim + 1, b'{"type": "segment", "index": "x"}\n')
    lines.insert(victim + 2, b"[1, 2]\n")
    (folder / "manifest.jsonl").write_bytes(b"".join(lines))
    with open(folder / "events.jsonl", "ab") as f:
        f.write(b"garbage\n" + b'{"kind": "note", "t": 1760000009.5, "data": "hi"}\n')

    result = index_recording(hearings, root, folder)
    assert result.indexed
    text = "\n".join(result.problems)
    assert f"manifest line {victim}: not a JSON object" in text
    assert "no segment index" in text and "hash chain broken" in text
    assert "events line" in text
    segments = sum(e["type"] == "segment" for e in manifest(finished))
    assert result.segments == segments - 1  # all but the one destroyed
    row = list_recordings(hearings, root)[0]
    assert len(row["problems"]) >= 4  # kept for the archivist
    detail = recording_detail(hearings, root, "rec-a")
    assert detail is not None
    note = next(e for e in detail["events"] if e["kind"] == "note")
    assert note["data"] == {"value": "hi"} and note["at"] == "2025-10-09T08:53:29.500Z"
    again = index_recording(hearings, root, folder)
    assert (
        again.problems == () and list_recordings(hearings, root)[0]["problems"] == row["problems"]
    )


@pytest.mark.parametrize(
    "files",
    [
        {},
        {"recording.json": b"{not json"},
        {"recording.json": b"[]", "manifest.jsonl": b"\x00\x01\x02" * 100},
        {"recording.json": b'{"recording_id": 5}', "manifest.jsonl": b"{}\n{}\n"},
        {"recording.json": b"\xff" * 10, "manifest.jsonl": b'{"type":"recording"'},
    ],
)
def test_garbage_folders_never_raise(
    hearings: Database, root: Path, files: dict[str, bytes]
) -> None:
    folder = root / "h1" / "junk"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    result = index_recording(hearings, root, folder)
    assert not result.indexed and result.problems
    assert list_recordings(hearings, root) == []


def test_garbage_inside_a_known_recording(hearings: Database, root: Path) -> None:
    folder = root / "h1" / "odd"
    folder.mkdir(parents=True)
    status = {"recording_id": "odd", "hearing_id": "h1", "status": "x" * 40, "started_at": 5}
    (folder / "recording.json").write_text(json.dumps(status))
    (folder / "manifest.jsonl").write_bytes(
        b'{"type":"track","track_id":"t\\u0000","participant_id":"' + b"p" * 500 + b'"}\n'
        b'{"type":"segment","track_id":"t","index":99999999999,"file":"f"}\n'
        b'{"type":"gap","at":"yesterday","data":{"deep":[1,{"x":null}]}}\n'
        b'{"type":"segment","track_id":"t","index":0,"file":"t/000000.webm","bytes":-1,'
        b'"start":"2025-10-09T08:53:20.000Z","end":"9999-99-99"}\n'
    )
    (folder / "events.jsonl").write_bytes(b'{"kind":"join","data":{"participant":7}}\n')
    result = index_recording(hearings, root, folder)
    assert result.indexed and result.status == "x" * 16 and result.segments == 1
    detail = recording_detail(hearings, root, "odd")
    assert detail is not None
    assert (
        detail["tracks"][0]["track_id"] == "t" and len(detail["tracks"][0]["participant_id"]) == 64
    )
    assert detail["segments"][0]["end"] is None
    assert {e["kind"] for e in detail["events"]} == {"gap", "join"}


def test_segment_totals_stay_exact_when_a_segment_is_listed_twice(
    hearings: Database, root: Path
) -> None:
    folder = root / "h1" / "dup"
    folder.mkdir(parents=True)
    (folder / "recording.json").write_text(
        json.dumps({"recording_id": "dup", "hearing_id": "h1", "status": "recording"})
    )

    def segment(index: int, size: int) -> bytes:
        entry = {"type": "segment", "track_id": "t", "index": index, "file": "f", "bytes": size}
        return json.dumps(entry).encode() + b"\n"

    path = folder / "manifest.jsonl"
    path.write_bytes(segment(0, 10) + segment(1, 20))
    assert index_recording(hearings, root, folder).bytes == 30
    with open(path, "ab") as f:
        f.write(segment(1, 25) + segment(2, 5) + segment(2, 7))
    result = index_recording(hearings, root, folder)
    assert (result.segments, result.bytes) == (3, 10 + 25 + 7)  # the later listing wins
    with hearings.session() as s:
        count, total = s.execute(
            select(func.count(), func.sum(SegmentRow.bytes)).where(SegmentRow.recording_id == "dup")
        ).one()
    assert (count, total) == (result.segments, result.bytes)


def test_unknown_hearing_and_foreign_folder_are_not_indexed(
    hearings: Database, root: Path, tmp_path: Path, signer: ManifestSigner, media: Media
) -> None:
    folder, session = start_session(root, signer, "h9", "rec-9", BASE, [DEFENDANT_AUDIO])
    session.stop()
    result = index_recording(hearings, root, folder)
    assert not result.indexed and "hearing h9 is not in the database" in result.problems
    outside = record_b(tmp_path / "outside", signer, media)
    result = index_recording(hearings, root, outside)
    assert not result.indexed and "not under the recordings root" in result.problems[0]
    assert list_recordings(hearings, root) == []


def test_replaced_manifest_is_reindexed_from_the_start(
    hearings: Database, root: Path, two_recordings: tuple[Path, Path]
) -> None:
    folder_a, _ = two_recordings
    path = folder_a / "manifest.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    keep = next(i for i, line in enumerate(lines) if b'"type":"segment"' in line) + 1
    path.write_bytes(b"".join(lines[:keep]))  # shorter than what was indexed
    result = index_recording(hearings, root, folder_a)
    assert result.rebuilt and result.segments == 1
    assert "replaced or truncated" in result.problems[0]
    # lines appended that do not continue the hash chain: the file was replaced
    kept = b"".join(lines[:keep])
    stranger = b'{"type":"drop","prev":"' + b"1" * 64 + b'","seq":1}\n'
    path.write_bytes(kept + stranger)
    result = index_recording(hearings, root, folder_a)
    assert result.rebuilt and result.segments == 1 and result.new_manifest_lines == keep + 1
    # lines that do continue it are read on their own
    follower = json.dumps({"type": "drop", "prev": hashlib.sha256(stranger[:-1]).hexdigest()})
    path.write_bytes(kept + stranger + follower.encode() + b"\n")
    result = index_recording(hearings, root, folder_a)
    assert not result.rebuilt and result.new_manifest_lines == 1
    assert row_counts(hearings, "rec-a")[1] == 1


def test_reindex_all_finds_every_recording(
    hearings: Database, root: Path, signer: ManifestSigner, media: Media
) -> None:
    folder_a = record_a(root, signer, media)
    record_b(root, signer, media)
    (root / "h1" / "junk").mkdir()
    (root / "h1" / "junk" / "recording.json").write_bytes(b"junk")
    (root / "stray.txt").write_text("not a recording")
    report = reindex_all(hearings, root)
    assert sorted(report.indexed) == ["rec-a", "rec-b"]
    assert report.skipped == [root / "h1" / "junk"] and report.missing == []
    assert ids(list_recordings(hearings, root)) == ["rec-b", "rec-a"]
    shutil.rmtree(folder_a)
    report = reindex_all(hearings, root)
    assert report.indexed == ["rec-b"] and report.missing == ["rec-a"]
    assert ids(list_recordings(hearings, root)) == ["rec-b", "rec-a"]  # remembered, not dropped
    assert reindex_all(hearings, root / "absent").indexed == []


def test_moved_folder_updates_the_path(
    hearings: Database, root: Path, two_recordings: tuple[Path, Path]
) -> None:
    folder_a, _ = two_recordings
    moved = root / "archive-2025" / "rec-a"
    moved.parent.mkdir()
    folder_a.rename(moved)
    result = index_recording(hearings, root, moved)
    assert result.indexed and result.path == "archive-2025/rec-a"
    copy = root / "h1" / "rec-a-copy"
    shutil.copytree(moved, copy)
    result = index_recording(hearings, root, copy)  # same id, the original is still there
    assert not result.indexed and "already catalogued" in result.problems[0]
    assert list_recordings(hearings, root, hearing_id="h1")[0]["path"] == str(moved.resolve())


def test_record_verification(
    hearings: Database, root: Path, two_recordings: tuple[Path, Path]
) -> None:
    assert record_verification(hearings, "rec-a", True, at=utc(BASE + 3 * DAY))
    assert not record_verification(hearings, "nope", False)
    row = list_recordings(hearings, root, hearing_id="h1")[0]
    assert row["verify_ok"] is True and row["verified_at"] == "2025-10-12T08:53:20.000Z"
    with hearings.session() as s:
        stored = s.get(RecordingRow, "rec-a")
        assert stored is not None and stored.manifest_lines > 0
