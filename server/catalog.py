"""The recordings catalog: the recording folders, indexed in the database so archivists can search.

How this works: a recording folder (see :mod:`recorder.session`) is the evidence; the catalog is a
rebuildable index of it. :func:`index_recording` reads ``recording.json`` (status, times) and the
manifest's header line, then only what was appended to ``manifest.jsonl`` and ``events.jsonl``
since its last call: :class:`~server.db.RecordingRow` remembers the byte offset and line count
reached in each file, and the hash of the last manifest line read. Only complete lines are read;
a line being written, or cut by a crash, waits for the next call. The first new manifest line must
chain onto the remembered hash (its ``prev``); if it does not, or the file shrank, the manifest was
replaced or truncated and the recording's manifest rows are rebuilt from line 0 (``events.jsonl``
likewise when it shrank). Rows are written with ``INSERT .. ON CONFLICT`` upserts keyed by where
they came from (track id, segment index, file and line number), so indexing twice changes nothing.

A damaged folder never raises: unreadable files and lines are skipped, logged, returned in
:class:`IndexResult` and kept in ``RecordingRow.problems``. Database errors do raise.

Every function here blocks on disk and on the database: the server calls them with
``asyncio.to_thread`` (at recording start, every ~10 s while recording, at stop and recovery, and
:func:`reindex_all` once at startup).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, exists, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from recorder.manifest import MANIFEST_NAME
from recorder.session import EVENTS_NAME, RECORDING_NAME
from server.db import (
    Base,
    Database,
    HearingRow,
    RecordingRow,
    SegmentRow,
    TimelineEventRow,
    TrackRow,
    utcnow,
)

__all__ = [
    "IndexResult",
    "ReindexReport",
    "index_recording",
    "list_recordings",
    "record_verification",
    "recording_detail",
    "recording_summary",
    "reindex_all",
]

logger = logging.getLogger(__name__)

SOURCE_EVENTS = "events"
SOURCE_MANIFEST = "manifest"
MAX_LIMIT = 10_000
_MAX_STATUS_BYTES = 1 << 20  # recording.json is ~400 bytes; anything this big is not ours
_MAX_HEADER_BYTES = 64 * 1024
_MAX_PROBLEMS = 50  # kept in RecordingRow.problems, newest last
_MAX_DEPTH = 4  # folders below the root searched by reindex_all (<root>/<hearing>/<recording>)
_INT32 = (1 << 31) - 1
_INT64 = (1 << 63) - 1
_UPSERT_CHUNK = 500


@dataclass(frozen=True)
class IndexResult:
    """What :func:`index_recording` did with one folder."""

    folder: Path
    recording_id: str | None
    hearing_id: str | None
    status: str | None
    path: str | None  # relative to the recordings root
    indexed: bool  # False: nothing written (unknown hearing, no ids, folder outside the root)
    segments: int = 0
    bytes: int = 0
    new_manifest_lines: int = 0
    new_events: int = 0
    rebuilt: bool = False
    problems: tuple[str, ...] = ()


@dataclass
class ReindexReport:
    """What :func:`reindex_all` found under the recordings root."""

    indexed: list[str] = field(default_factory=list)  # recording ids
    skipped: list[Path] = field(default_factory=list)  # folders not indexed (see the log)
    missing: list[str] = field(default_factory=list)  # catalogued ids whose folder is gone


# -- indexing -------------------------------------------------------------------------------------


def index_recording(db: Database, recordings_root: Path, folder: Path) -> IndexResult:
    """Bring the catalog rows of the recording in ``folder`` up to date with its files.

    Incremental and idempotent (see the module docstring); never raises on a damaged folder.
    ``folder`` must lie under ``recordings_root``; the row stores the path relative to it.
    """
    with _folder_lock(folder):
        return _index(db, recordings_root, folder)


def reindex_all(db: Database, recordings_root: Path) -> ReindexReport:
    """Index every recording folder under ``recordings_root`` (startup, after recovery).

    Cheap for folders already indexed (only appended lines are read). Catalogued recordings whose
    folder is gone are reported and logged, not deleted: the catalog remembers they existed.
    """
    report = ReindexReport()
    for folder in _recording_folders(recordings_root):
        try:
            result = index_recording(db, recordings_root, folder)
        except Exception:
            logger.exception("catalog: indexing %s failed", folder)
            report.skipped.append(folder)
            continue
        if result.indexed and result.recording_id is not None:
            report.indexed.append(result.recording_id)
        else:
            report.skipped.append(folder)
    with db.session() as s:
        rows = s.execute(select(RecordingRow.id, RecordingRow.path)).all()
    root = recordings_root.resolve()
    for recording_id, path in rows:
        if not (root / path).is_dir():
            logger.warning("catalog: recording %s: folder %s is gone", recording_id, root / path)
            report.missing.append(recording_id)
    logger.info(
        "catalog: %d recordings indexed, %d folders skipped, %d missing",
        len(report.indexed),
        len(report.skipped),
        len(report.missing),
    )
    return report


def record_verification(
    db: Database, recording_id: str, ok: bool, at: dt.datetime | None = None
) -> bool:
    """Store the outcome of a ``verify`` run; False if the recording is not catalogued."""
    with db.session() as s:
        row = s.get(RecordingRow, recording_id)
        if row is None:
            return False
        row.verify_ok = ok
        row.verified_at = _utc(at or utcnow())
        return True


# -- queries --------------------------------------------------------------------------------------


def list_recordings(
    db: Database,
    recordings_root: Path,
    *,
    hearing_id: str | None = None,
    court: str | None = None,
    case_number: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    participant: str | None = None,
    include_sealed: bool = True,
    limit: int = 200,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Search the catalog; newest first. Every filter given must match.

    ``court``, ``kind``, ``status`` and ``hearing_id`` match exactly; ``case_number`` matches a
    part of the case number; ``participant`` a part of a participant's name (tracks and timeline),
    or a participant id exactly. ``since``/``until`` select the recordings that overlap that span
    (a naive datetime is UTC; a recording still running overlaps everything after its start).
    ``include_sealed=False`` leaves out the recordings of sealed hearings.
    ``limit`` is clamped to 1..10000. Each dict: ``id``, ``hearing_id``, ``status``, ``path``
    (absolute folder), ``court``, ``case_number``, ``kind``, ``sealed``, ``started_at``, ``ended_at``,
    ``interrupted_at`` (ISO 8601 UTC or None), ``segments``, ``bytes``, ``participants``,
    ``verified_at``, ``verify_ok``, ``problems``.
    """
    stmt = select(RecordingRow, HearingRow).join(
        HearingRow, RecordingRow.hearing_id == HearingRow.id
    )
    if hearing_id is not None:
        stmt = stmt.where(RecordingRow.hearing_id == hearing_id)
    if court is not None:
        stmt = stmt.where(HearingRow.court == court)
    if case_number:
        stmt = stmt.where(HearingRow.case_number.contains(case_number, autoescape=True))
    if kind is not None:
        stmt = stmt.where(HearingRow.kind == kind)
    if status is not None:
        stmt = stmt.where(RecordingRow.status == status)
    if not include_sealed:
        stmt = stmt.where(HearingRow.sealed.is_(False))
    if since is not None:
        start = _utc(since)
        stmt = stmt.where(or_(RecordingRow.ended_at.is_(None), RecordingRow.ended_at >= start))
    if until is not None:
        stmt = stmt.where(RecordingRow.started_at <= _utc(until))
    name = (participant or "").strip()
    if name:
        stmt = stmt.where(
            or_(
                exists().where(
                    TrackRow.recording_id == RecordingRow.id,
                    or_(
                        TrackRow.participant_name.icontains(name, autoescape=True),
                        TrackRow.participant_id == name,
                    ),
                ),
                exists().where(
                    TimelineEventRow.recording_id == RecordingRow.id,
                    or_(
                        TimelineEventRow.participant_name.icontains(name, autoescape=True),
                        TimelineEventRow.participant_id == name,
                    ),
                ),
            )
        )
    stmt = (
        stmt.order_by(
            RecordingRow.started_at.is_(None), RecordingRow.started_at.desc(), RecordingRow.id
        )
        .limit(max(1, min(limit, MAX_LIMIT)))
        .offset(max(0, offset))
    )
    root = recordings_root.resolve()
    with db.session() as s:
        found = s.execute(stmt).all()
        names = _participant_names(s, [row.id for row, _ in found])
    return [_summary(row, hearing, root, names.get(row.id, [])) for row, hearing in found]


def _recording_with_hearing(
    s: Session, recording_id: str
) -> tuple[RecordingRow, HearingRow] | None:
    found = s.execute(
        select(RecordingRow, HearingRow)
        .join(HearingRow, RecordingRow.hearing_id == HearingRow.id)
        .where(RecordingRow.id == recording_id)
    ).first()
    return None if found is None else (found[0], found[1])


def recording_summary(
    db: Database, recordings_root: Path, recording_id: str
) -> dict[str, Any] | None:
    """One recording's :func:`list_recordings` fields (no tracks, segments or events: cheap
    enough for every media request); None if not catalogued."""
    root = recordings_root.resolve()
    with db.session() as s:
        found = _recording_with_hearing(s, recording_id)
        if found is None:
            return None
        row, hearing = found
        return _summary(row, hearing, root, [])


def recording_detail(
    db: Database, recordings_root: Path, recording_id: str
) -> dict[str, Any] | None:
    """One recording: the :func:`list_recordings` fields plus ``tracks``, ``segments`` (file paths
    relative to the folder) and ``events`` (the timeline, in time order); None if not catalogued."""
    root = recordings_root.resolve()
    with db.session() as s:
        found = _recording_with_hearing(s, recording_id)
        if found is None:
            return None
        row, hearing = found
        tracks = s.scalars(
            select(TrackRow)
            .where(TrackRow.recording_id == recording_id)
            .order_by(TrackRow.track_id)
        ).all()
        segments = s.scalars(
            select(SegmentRow)
            .where(SegmentRow.recording_id == recording_id)
            .order_by(SegmentRow.start, SegmentRow.track_id, SegmentRow.index)
        ).all()
        events = s.scalars(
            select(TimelineEventRow)
            .where(TimelineEventRow.recording_id == recording_id)
            .order_by(TimelineEventRow.at, TimelineEventRow.source, TimelineEventRow.seq)
        ).all()
    detail = _summary(row, hearing, root, sorted({t.participant_name for t in tracks}))
    detail["tracks"] = [
        {
            "track_id": t.track_id,
            "participant_id": t.participant_id,
            "participant_name": t.participant_name,
            "kind": t.kind,
            "codec": t.codec,
            "clock_rate": t.clock_rate,
        }
        for t in tracks
    ]
    detail["segments"] = [
        {
            "track_id": g.track_id,
            "index": g.index,
            "file": g.file,
            "start": _iso(g.start),
            "end": _iso(g.end),
            "frames": g.frames,
            "bytes": g.bytes,
            "sha256": g.sha256,
            "recovered": g.recovered,
        }
        for g in segments
    ]
    detail["events"] = [
        {
            "at": _iso(e.at),
            "kind": e.kind,
            "source": e.source,
            "seq": e.seq,
            "participant_id": e.participant_id,
            "participant_name": e.participant_name,
            "data": e.data,
        }
        for e in events
    ]
    return detail


def _summary(
    row: RecordingRow, hearing: HearingRow, root: Path, participants: list[str]
) -> dict[str, Any]:
    return {
        "id": row.id,
        "hearing_id": row.hearing_id,
        "status": row.status,
        "path": str(root / row.path),
        "court": hearing.court,
        "case_number": hearing.case_number,
        "kind": hearing.kind,
        "sealed": bool(hearing.sealed),
        "started_at": _iso(row.started_at),
        "ended_at": _iso(row.ended_at),
        "interrupted_at": _iso(row.interrupted_at),
        "segments": row.segments,
        "bytes": row.bytes,
        "participants": participants,
        "verified_at": _iso(row.verified_at),
        "verify_ok": row.verify_ok,
        "problems": row.problems.splitlines() if row.problems else [],
    }


def _participant_names(s: Session, recording_ids: list[str]) -> dict[str, list[str]]:
    names: dict[str, set[str]] = {}
    for start in range(0, len(recording_ids), _UPSERT_CHUNK):
        chunk = recording_ids[start : start + _UPSERT_CHUNK]
        rows = s.execute(
            select(TrackRow.recording_id, TrackRow.participant_name)
            .where(TrackRow.recording_id.in_(chunk))
            .distinct()
        ).all()
        for recording_id, name in rows:
            names.setdefault(recording_id, set()).add(name)
    return {k: sorted(v) for k, v in names.items()}


# -- one folder -----------------------------------------------------------------------------------


@dataclass
class _Header:
    """What is known of a recording before touching the database."""

    recording_id: str | None = None
    hearing_id: str | None = None
    status: str | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    interrupted_at: dt.datetime | None = None


@dataclass
class _Pass:
    """One indexing pass over one folder: what was read and what went wrong."""

    folder: Path
    recording_id: str = ""
    problems: list[str] = field(default_factory=list)  # this call, for the result and the log
    line_problems: list[str] = field(default_factory=list)  # lines read once: kept in the row
    participants: dict[str, str] = field(default_factory=dict)  # participant id -> name
    track_owner: dict[str, str] = field(default_factory=dict)  # track id -> participant id
    end_status: str | None = None
    end_at: dt.datetime | None = None
    manifest_lines: int = 0
    events: int = 0
    rebuilt: bool = False
    changed: bool = False  # anything written to the recording's rows
    participants_loaded: bool = False

    def problem(self, text: str, *, line: bool = False) -> None:
        self.problems.append(text)
        if line:
            self.line_problems.append(text)


def _index(db: Database, recordings_root: Path, folder: Path) -> IndexResult:
    p = _Pass(folder)
    header = _read_header(folder, p)

    def skipped(path: str | None = None) -> IndexResult:
        _log_problems(p)
        return IndexResult(
            folder,
            header.recording_id,
            header.hearing_id,
            header.status,
            path,
            indexed=False,
            problems=tuple(p.problems),
        )

    try:
        path = folder.resolve().relative_to(recordings_root.resolve()).as_posix()
    except (OSError, ValueError):
        p.problem(f"folder is not under the recordings root {recordings_root}")
        return skipped()
    if header.recording_id is None or header.hearing_id is None:
        p.problem("no recording id and hearing id (recording.json and manifest unreadable)")
        return skipped(path)
    p.recording_id = header.recording_id

    with db.session() as s:
        if s.get(HearingRow, header.hearing_id) is None:
            p.problem(f"hearing {header.hearing_id} is not in the database")
            return skipped(path)
        row = s.scalars(
            select(RecordingRow).where(RecordingRow.id == header.recording_id).with_for_update()
        ).one_or_none()
        if row is None:  # DO NOTHING: another process may be inserting it right now
            _upsert(s, "recordings", [_new_recording(header, path)], ["id"], update=False)
            row = s.scalars(
                select(RecordingRow).where(RecordingRow.id == header.recording_id).with_for_update()
            ).one()
            p.changed = True
        if row.hearing_id != header.hearing_id:
            p.problem(f"recording id already catalogued for hearing {row.hearing_id}")
            return skipped(path)
        if row.path != path:
            if (recordings_root / row.path / RECORDING_NAME).is_file():
                p.problem(f"recording id already catalogued at {row.path}")
                return skipped(path)
            logger.info("catalog: recording %s moved %s -> %s", row.id, row.path, path)
            _set(row, "path", path, p)
        _index_manifest(s, row, p)
        _index_events(s, row, p)
        _set(row, "status", header.status or p.end_status or row.status, p)
        _set(row, "started_at", header.started_at or row.started_at, p)
        _set(row, "ended_at", header.ended_at or p.end_at or row.ended_at, p)
        _set(row, "interrupted_at", header.interrupted_at or row.interrupted_at, p)
        if p.rebuilt or p.line_problems:
            kept = [] if p.rebuilt or not row.problems else row.problems.splitlines()
            _set(row, "problems", "\n".join((kept + p.line_problems)[-_MAX_PROBLEMS:]) or None, p)
        if p.changed:  # an idle recording's periodic re-index writes nothing
            row.indexed_at = utcnow()
        result = IndexResult(
            folder,
            row.id,
            row.hearing_id,
            row.status,
            path,
            indexed=True,
            segments=row.segments,
            bytes=row.bytes,
            new_manifest_lines=p.manifest_lines,
            new_events=p.events,
            rebuilt=p.rebuilt,
            problems=tuple(p.problems),
        )
    _log_problems(p)
    return result


def _new_recording(header: _Header, path: str) -> dict[str, Any]:
    return {
        "id": header.recording_id,
        "hearing_id": header.hearing_id,
        "status": header.status or "unknown",
        "path": path,
        "segments": 0,
        "bytes": 0,
        "manifest_offset": 0,
        "manifest_lines": 0,
        "events_offset": 0,
        "events_lines": 0,
    }


def _set(row: RecordingRow, name: str, value: Any, p: _Pass) -> None:
    """Assign if different (datetimes compared in UTC: SQLite hands back naive ones)."""
    old = getattr(row, name)
    if isinstance(old, dt.datetime) and isinstance(value, dt.datetime):
        if _utc(old) == _utc(value):
            return
    elif old == value:
        return
    setattr(row, name, value)
    p.changed = True


def _read_header(folder: Path, p: _Pass) -> _Header:
    """Ids, status and times from recording.json, checked against the manifest's first line."""
    header = _Header()
    document: dict[str, Any] = {}
    status_path = folder / RECORDING_NAME
    try:
        if status_path.stat().st_size > _MAX_STATUS_BYTES:
            raise ValueError("too large")
        loaded = json.loads(status_path.read_bytes())
        if not isinstance(loaded, dict):
            raise ValueError("not a JSON object")
        document = loaded
    except FileNotFoundError:
        p.problem(f"no {RECORDING_NAME}")
    except (OSError, ValueError) as exc:
        p.problem(f"unreadable {RECORDING_NAME}: {exc}")
    first: dict[str, Any] = {}
    try:
        with open(folder / MANIFEST_NAME, "rb") as f:
            line = f.readline(_MAX_HEADER_BYTES)
        if line.endswith(b"\n"):
            loaded = json.loads(line)
            if isinstance(loaded, dict) and loaded.get("type") == "recording":
                first = loaded
    except FileNotFoundError:
        pass  # said below, by _index_manifest
    except (OSError, ValueError):
        pass  # the manifest pass names the bad line
    header.recording_id = _text(document.get("recording_id"), 64) or _text(
        first.get("recording_id"), 64
    )
    header.hearing_id = _text(document.get("hearing_id"), 32) or _text(first.get("hearing_id"), 32)
    for key in ("recording_id", "hearing_id"):
        if first and document and first.get(key) != document.get(key):
            p.problem(
                f"{key} differs: {RECORDING_NAME} {document.get(key)!r}, manifest {first.get(key)!r}"
            )
    header.status = _text(document.get("status"), 16)
    header.started_at = _time(document.get("started_at")) or _time(first.get("start"))
    header.ended_at = _time(document.get("ended_at"))
    header.interrupted_at = _time(document.get("interrupted_at"))
    if header.ended_at is None and header.status == "interrupted":
        header.ended_at = header.interrupted_at
    return header


def _load_participants(s: Session, p: _Pass) -> None:
    """Names already catalogued for this recording, to name the participant of later events."""
    if p.participants_loaded:
        return
    p.participants_loaded = True
    rows = s.execute(
        select(TrackRow.track_id, TrackRow.participant_id, TrackRow.participant_name).where(
            TrackRow.recording_id == p.recording_id
        )
    ).all()
    for track_id, participant_id, name in rows:
        p.track_owner[track_id] = participant_id
        p.participants[participant_id] = name
    named = s.execute(
        select(TimelineEventRow.participant_id, TimelineEventRow.participant_name)
        .where(
            TimelineEventRow.recording_id == p.recording_id,
            TimelineEventRow.participant_id.is_not(None),
            TimelineEventRow.participant_name.is_not(None),
        )
        .distinct()
    ).all()
    for named_id, named_as in named:
        if named_id is not None and named_as is not None:
            p.participants.setdefault(named_id, named_as)


def _index_manifest(s: Session, row: RecordingRow, p: _Pass) -> None:
    path = p.folder / MANIFEST_NAME
    read = _read_lines(path, row.manifest_offset, p)
    if read is None:
        return
    data, size = read
    lines = data.splitlines()
    rebuild = size < row.manifest_offset
    if not rebuild and lines and row.manifest_lines > 0:
        try:
            first = json.loads(lines[0])
        except ValueError:
            first = None
        prev = first.get("prev") if isinstance(first, dict) else None
        rebuild = isinstance(prev, str) and prev != row.manifest_head
    if rebuild:
        logger.warning(
            "catalog: recording %s: manifest replaced or truncated, re-indexing it", row.id
        )
        p.problem("manifest was replaced or truncated since the last indexing")
        for model in (TrackRow, SegmentRow):
            s.execute(delete(model).where(model.recording_id == row.id))
        s.execute(
            delete(TimelineEventRow).where(
                TimelineEventRow.recording_id == row.id,
                TimelineEventRow.source == SOURCE_MANIFEST,
            )
        )
        p.participants.clear()
        p.track_owner.clear()
        p.participants_loaded = False  # reloaded below: what the events file named
        row.manifest_offset, row.manifest_lines, row.manifest_head = 0, 0, None
        row.segments, row.bytes = 0, 0
        p.rebuilt = p.changed = True
        read = _read_lines(path, 0, p)
        if read is None:
            return
        data, size = read
        lines = data.splitlines()
    if not lines:
        return
    _load_participants(s, p)
    tracks: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    head = row.manifest_head
    for number, raw in enumerate(lines, start=row.manifest_lines):
        digest = hashlib.sha256(raw).hexdigest()
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            p.problem(f"manifest line {number}: not a JSON object", line=True)
            head = digest
            continue
        if number > 0 and entry.get("prev") != head:
            p.problem(f"manifest line {number}: hash chain broken", line=True)
        head = digest
        try:
            _manifest_entry(entry, number, p, tracks, segments, events)
        except (KeyError, TypeError, ValueError) as exc:
            p.problem(f"manifest line {number} ({entry.get('type')}): {exc}", line=True)
    added, added_bytes = _segments_delta(s, p.recording_id, segments)
    for rows, table, keys in (
        (tracks, "tracks", ["recording_id", "track_id"]),
        (segments, "segments", ["recording_id", "track_id", "index"]),
        (events, "timeline_events", ["recording_id", "source", "seq"]),
    ):
        _upsert(s, table, rows, keys)
    row.segments += added
    row.bytes += added_bytes
    p.changed = True
    p.manifest_lines = len(lines)
    row.manifest_offset += len(data)
    row.manifest_lines += len(lines)
    row.manifest_head = head


def _segments_delta(
    s: Session, recording_id: str, segments: list[dict[str, Any]]
) -> tuple[int, int]:
    """How the recording's segment count and bytes change when ``segments`` are upserted.

    O(batch), not O(recording): only the batch's own keys are looked up (a segment listed twice
    replaces the first), so the 10 s re-index of a long hearing stays cheap.
    """
    batch = {(g["track_id"], g["index"]): int(g["bytes"]) for g in segments}
    count, total = len(batch), sum(batch.values())
    keys = list(batch)
    for start in range(0, len(keys), _UPSERT_CHUNK):
        existing = s.execute(
            select(SegmentRow.bytes).where(
                SegmentRow.recording_id == recording_id,
                tuple_(SegmentRow.track_id, SegmentRow.index).in_(
                    keys[start : start + _UPSERT_CHUNK]
                ),
            )
        ).scalars()
        for size in existing:
            count -= 1
            total -= size
    return count, total


def _manifest_entry(
    entry: dict[str, Any],
    number: int,
    p: _Pass,
    tracks: list[dict[str, Any]],
    segments: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> None:
    kind = _text(entry.get("type"), 64) or "unknown"
    if kind == "recording":
        return
    if kind == "track":
        track_id = _required(entry, "track_id", 64)
        participant_id = _required(entry, "participant_id", 64)
        name = _text(entry.get("participant_name"), 128) or participant_id
        tracks.append(
            {
                "recording_id": p.recording_id,
                "track_id": track_id,
                "participant_id": participant_id,
                "participant_name": name,
                "kind": _text(entry.get("kind"), 16) or "",
                "codec": _text(entry.get("codec"), 32) or "",
                "clock_rate": _int(entry.get("clock_rate"), _INT32),
            }
        )
        p.track_owner[track_id] = participant_id
        p.participants[participant_id] = name
        return
    if kind == "segment":
        index = _int(entry.get("index"), _INT32)
        if index is None or index < 0:
            raise ValueError("no segment index")
        segments.append(
            {
                "recording_id": p.recording_id,
                "track_id": _required(entry, "track_id", 64),
                "index": index,
                "file": _required(entry, "file", 255),
                "start": _time(entry.get("start")),
                "end": _time(entry.get("end")),
                "frames": _int(entry.get("frames"), _INT32),
                "bytes": _int(entry.get("bytes"), _INT64) or 0,
                "sha256": _text(entry.get("sha256"), 64) or "",
                "recovered": _text(entry.get("recovered"), 16),
            }
        )
        return
    # gap, drop, lost, error, track-removed, end, and kinds added later: timeline events
    at = _time(entry.get("at")) or _time(entry.get("start"))
    if kind == "end":
        p.end_status = _text(entry.get("status"), 16)
        p.end_at = at
    data = {k: v for k, v in entry.items() if k not in ("seq", "prev", "type")}
    track = entry.get("track_id")
    owner = p.track_owner.get(track) if isinstance(track, str) else None
    events.append(_event_row(p, SOURCE_MANIFEST, number, at, kind, owner, None, data))


def _index_events(s: Session, row: RecordingRow, p: _Pass) -> None:
    path = p.folder / EVENTS_NAME
    read = _read_lines(path, row.events_offset, p, required=False)
    if read is None:
        return
    data, size = read
    if size < row.events_offset:
        logger.warning("catalog: recording %s: events file shrank, re-indexing it", row.id)
        p.problem("events file was replaced or truncated since the last indexing")
        s.execute(
            delete(TimelineEventRow).where(
                TimelineEventRow.recording_id == row.id,
                TimelineEventRow.source == SOURCE_EVENTS,
            )
        )
        row.events_offset, row.events_lines = 0, 0
        p.changed = True
        read = _read_lines(path, 0, p, required=False)
        if read is None:
            return
        data, size = read
    lines = data.splitlines()
    if not lines:
        return
    _load_participants(s, p)
    events: list[dict[str, Any]] = []
    for number, raw in enumerate(lines, start=row.events_lines):
        try:
            line = json.loads(raw)
            if not isinstance(line, dict):
                raise ValueError("not a JSON object")
            kind = _text(line.get("kind"), 64)
            if not kind:
                raise ValueError("no kind")
        except ValueError as exc:
            p.problem(f"events line {number}: {exc}", line=True)
            continue
        payload = line.get("data")
        body: dict[str, Any] = payload if isinstance(payload, dict) else {"value": payload}
        at = _time(line.get("t")) or _time(line.get("at"))
        participant_id = _text(body.get("participant_id"), 64) or _text(body.get("participant"), 64)
        name = None
        if participant_id is not None:
            name = _text(body.get("participant_name"), 128) or _text(body.get("name"), 128)
        else:
            who = _text(body.get("who"), 64)  # pause / resume: the judge, if a participant
            if who is not None and who in p.participants:
                participant_id = who
        events.append(_event_row(p, SOURCE_EVENTS, number, at, kind, participant_id, name, body))
    _upsert(s, "timeline_events", events, ["recording_id", "source", "seq"])
    p.changed = True
    p.events = len(lines)
    row.events_offset += len(data)
    row.events_lines += len(lines)


def _event_row(
    p: _Pass,
    source: str,
    seq: int,
    at: dt.datetime | None,
    kind: str,
    participant_id: str | None,
    name: str | None,
    data: dict[str, Any],
) -> dict[str, Any]:
    if participant_id is not None:
        if name is not None:
            p.participants[participant_id] = name
        else:
            name = p.participants.get(participant_id)
    return {
        "recording_id": p.recording_id,
        "source": source,
        "seq": seq,
        "at": at,
        "kind": kind,
        "participant_id": participant_id,
        "participant_name": name,
        "data": data,
    }


def _read_lines(
    path: Path, offset: int, p: _Pass, *, required: bool = True
) -> tuple[bytes, int] | None:
    """The complete lines of ``path`` from ``offset`` (or from 0 if the file shrank), with the
    file's size; None if the file cannot be read."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < offset:
                return b"", size
            f.seek(offset)
            data = f.read(size - offset)
    except FileNotFoundError:
        if required:
            p.problem(f"no {path.name}")
        return None
    except OSError as exc:
        p.problem(f"unreadable {path.name}: {exc}")
        return None
    keep = data.rfind(b"\n") + 1  # a partial last line is being written, or was cut by a crash
    return data[:keep], size


def _upsert(
    s: Session,
    table_name: str,
    rows: Sequence[dict[str, Any]],
    keys: list[str],
    update: bool = True,
) -> None:
    """INSERT .. ON CONFLICT (keys) DO UPDATE (or NOTHING), on SQLite and PostgreSQL."""
    if not rows:
        return
    unique = list({tuple(r[k] for k in keys): r for r in rows}.values())  # last one wins
    table: Table = Base.metadata.tables[table_name]
    columns = [c for c in unique[0] if c not in keys]
    dialect = s.get_bind().dialect.name
    stmt: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        pg = postgresql.insert(table)
        stmt = (
            pg.on_conflict_do_update(index_elements=keys, set_={c: pg.excluded[c] for c in columns})
            if update and columns
            else pg.on_conflict_do_nothing(index_elements=keys)
        )
    elif dialect == "sqlite":
        lite = sqlite.insert(table)
        stmt = (
            lite.on_conflict_do_update(
                index_elements=keys, set_={c: lite.excluded[c] for c in columns}
            )
            if update and columns
            else lite.on_conflict_do_nothing(index_elements=keys)
        )
    else:  # pragma: no cover - the catalog runs on the two databases the project supports
        raise NotImplementedError(f"no upsert for {dialect}")
    for start in range(0, len(unique), _UPSERT_CHUNK):
        s.execute(stmt, list(unique[start : start + _UPSERT_CHUNK]))


def _log_problems(p: _Pass) -> None:
    if p.problems:
        shown = "; ".join(p.problems[:5])
        more = f" (+{len(p.problems) - 5} more)" if len(p.problems) > 5 else ""
        logger.warning("catalog: %s: %s%s", p.folder, shown, more)


# -- folders, locks, values -----------------------------------------------------------------------


def _recording_folders(root: Path) -> Iterator[Path]:
    """Folders under ``root`` holding a recording (not descending into them: segments live there)."""
    if not root.is_dir():
        return

    def report(error: OSError) -> None:
        logger.warning("catalog: cannot list %s: %s", error.filename, error.strerror)

    for dirpath, dirnames, filenames in os.walk(root, onerror=report):
        here = Path(dirpath)
        if RECORDING_NAME in filenames or MANIFEST_NAME in filenames:
            dirnames[:] = []
            yield here
            continue
        depth = len(here.relative_to(root).parts)
        dirnames[:] = (
            [] if depth >= _MAX_DEPTH else sorted(d for d in dirnames if not d.startswith("."))
        )


class _Lock:
    """A lock that can sit in a WeakValueDictionary (``threading.Lock`` cannot)."""

    __slots__ = ("__weakref__", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()


_locks: weakref.WeakValueDictionary[str, _Lock] = weakref.WeakValueDictionary()
_locks_guard = threading.Lock()


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Serialise the indexing of one folder within this process (the 10 s tick can meet a stop)."""
    key = os.path.abspath(folder)
    with _locks_guard:
        held = _locks.get(key)
        if held is None:
            held = _locks[key] = _Lock()
    with held.lock:  # `held` stays referenced (and in the dictionary) while the lock is in use
        yield


def _text(value: Any, limit: int) -> str | None:
    """A string for a String(limit) column: ints allowed, NULs removed, cut at ``limit``."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).replace("\x00", "")
    return text[:limit] or None


def _required(entry: dict[str, Any], key: str, limit: int) -> str:
    value = _text(entry.get(key), limit)
    if value is None:
        raise ValueError(f"no {key}")
    return value


def _int(value: Any, limit: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not -limit <= value <= limit:
        return None
    return value


def _time(value: Any) -> dt.datetime | None:
    """An ISO 8601 string or epoch seconds as an aware UTC datetime; None if it is neither."""
    try:
        if isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return _utc(parsed)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value, dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC (a naive value is taken as UTC: SQLite hands back naive datetimes)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return _utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")
