"""Closing a recording whose process died (``kill -9``, power cut): salvage, account, re-sign.

How this works: a folder whose ``recording.json`` still says ``"recording"`` was not stopped. The
manifest is reopened (a half-written last line is cut off; a broken chain stops recovery rather
than signing over tampering). Then every track folder is scanned for what the manifest does not
list yet: a ``.webm`` that was closed and renamed but not yet entered (the crash fell between the
rename and the append) is adopted as it is; an open ``.webm.part`` is renamed ``.webm.partial``
(kept as evidence, its hash recorded) and its readable packets, up to the cut, are remuxed with
PyAV into a clean ``.webm`` segment; if nothing is readable the segment is entered as ``lost`` with
the partial file's size and hash. An ``end`` entry with status ``interrupted`` closes the chain,
the manifest is re-signed and ``recording.json`` says ``interrupted`` with the time of the last
write before the crash. Everything closed before the crash verifies unchanged. Recovery can be
re-run if it is itself interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av.error

from .manifest import (
    PUBLIC_KEY_NAME,
    ManifestSigner,
    ManifestWriter,
    atomic_write,
    file_sha256,
    fsync_dir,
    iso_utc,
    key_fingerprint,
    load_public_key,
    parse_iso_utc,
    read_manifest_lines,
)
from .segment_writer import (
    PART_SUFFIX,
    SEGMENT_SUFFIX,
    SegmentContents,
    SegmentSpec,
    SegmentWriter,
    read_segment,
)
from .session import EVENTS_NAME, RECORDING_NAME
from .track import RECORDABLE_CODECS
from .verify import PARTIAL_SUFFIX

logger = logging.getLogger(__name__)


class RecoveryError(Exception):
    """The folder cannot be recovered safely (tampered manifest, foreign key, unreadable)."""


@dataclass
class RecoveryResult:
    """What :func:`recover_recording` did. ``recovered`` is False when there was nothing to do."""

    recording_id: str
    recovered: bool
    status: str
    interrupted_at: str | None = None
    salvaged: list[str] = field(default_factory=list)  # new segment files remuxed from .part
    lost: list[str] = field(default_factory=list)  # partial files nothing could be read from
    adopted: list[str] = field(default_factory=list)  # closed segments the manifest missed
    frames_salvaged: int = 0
    entries_added: int = 0
    manifest_bytes_dropped: int = 0
    events_bytes_dropped: int = 0


@dataclass
class _TrackState:
    kind: str = ""
    codec: str = ""
    clock_rate: int = 0
    listed: set[str] = field(default_factory=set)
    last_start: float | None = None


def recover_recording(
    folder: Path, signer: ManifestSigner, clock: Callable[[], float] = time.time
) -> RecoveryResult:
    """Close an interrupted recording in ``folder`` (see the module docstring).

    ``signer`` must hold the key the recording was signed with. Blocking file I/O and remuxing:
    run it off the event loop, before the server takes new hearings.
    """
    try:
        document = json.loads((folder / RECORDING_NAME).read_bytes())
    except (OSError, ValueError) as exc:
        raise RecoveryError(f"{folder}: unreadable {RECORDING_NAME}") from exc
    recording_id = str(document.get("recording_id", ""))
    status = str(document.get("status", ""))
    if status != "recording":
        return RecoveryResult(recording_id, recovered=False, status=status)
    pem = folder / PUBLIC_KEY_NAME
    if pem.is_file() and key_fingerprint(load_public_key(pem.read_bytes())) != signer.fingerprint():
        raise RecoveryError(f"{folder}: recorded with another key than the signer's")
    lines, _ = read_manifest_lines(folder / "manifest.jsonl")
    last_write = _last_write_time(folder)
    try:
        writer, dropped = ManifestWriter.open_existing(folder, signer)
    except Exception as exc:
        raise RecoveryError(f"{folder}: manifest cannot be continued: {exc}") from exc
    result = RecoveryResult(recording_id, recovered=True, status="interrupted")
    result.manifest_bytes_dropped = dropped
    try:
        tracks = _tracks_from(lines)
        for track_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            state = tracks.setdefault(track_dir.name, _TrackState())
            for index in _indices(track_dir):
                entry = _recover_index(folder, track_dir, index, state, result)
                if entry is not None:
                    writer.append(entry)
                    result.entries_added += 1
                    writer.sign()
        result.events_bytes_dropped = _cut_partial_line(folder / EVENTS_NAME)
        events_sha256, events_bytes = file_sha256(folder / EVENTS_NAME)
        events_lines = (folder / EVENTS_NAME).read_bytes().count(b"\n")
        now = clock()
        result.interrupted_at = iso_utc(last_write)
        writer.append(
            {
                "type": "end",
                "status": "interrupted",
                "at": result.interrupted_at,
                "recovered_at": iso_utc(now),
                "salvaged": result.salvaged,
                "lost": result.lost,
                "adopted": result.adopted,
                "manifest_bytes_dropped": dropped,
                "events_file": EVENTS_NAME,
                "events_sha256": events_sha256,
                "events_bytes": events_bytes,
                "events_lines": events_lines,
                "note": "frames still queued in memory at the interruption are not accounted for",
            }
        )
        result.entries_added += 1
        writer.sign()
    finally:
        writer.close()
    if not pem.is_file():
        atomic_write(pem, signer.public_key_pem())
    document.update(
        status="interrupted", interrupted_at=result.interrupted_at, recovered_at=iso_utc(now)
    )
    atomic_write(folder / RECORDING_NAME, json.dumps(document, indent=2).encode() + b"\n")
    logger.warning(
        "recording %s recovered as interrupted (last write %s): salvaged %s, lost %s, adopted %s",
        recording_id,
        result.interrupted_at,
        result.salvaged,
        result.lost,
        result.adopted,
    )
    return result


def _tracks_from(lines: list[bytes]) -> dict[str, _TrackState]:
    tracks: dict[str, _TrackState] = {}
    for raw in lines:
        entry = json.loads(raw)
        track_id = entry.get("track_id")
        if not isinstance(track_id, str):
            continue
        state = tracks.setdefault(track_id, _TrackState())
        if entry.get("type") == "track":
            state.kind, state.codec = entry["kind"], entry["codec"]
            state.clock_rate = int(entry["clock_rate"])
        for item in (entry, entry.get("salvaged_from")):
            if isinstance(item, dict) and "file" in item:
                state.listed.add(str(item["file"]).rsplit("/", 1)[-1])
        if entry.get("type") == "segment":
            state.last_start = parse_iso_utc(entry["start"])
    return tracks


def _indices(track_dir: Path) -> list[int]:
    found: set[int] = set()
    for path in track_dir.iterdir():
        stem = path.name.split(".", 1)[0]
        if stem.isdigit() and len(stem) == 6:
            found.add(int(stem))
    return sorted(found)


def _recover_index(
    folder: Path, track_dir: Path, index: int, state: _TrackState, result: RecoveryResult
) -> dict[str, Any] | None:
    name = f"{index:06d}"
    webm = track_dir / f"{name}{SEGMENT_SUFFIX}"
    part = track_dir / f"{name}{PART_SUFFIX}"
    partial = track_dir / f"{name}{SEGMENT_SUFFIX}{PARTIAL_SUFFIX}"
    if webm.name in state.listed:
        return None
    if partial.exists() and partial.name not in state.listed:
        # An earlier recovery got this far: whatever it wrote from the partial file is redone.
        for leftover in (webm, part):
            if leftover.exists():
                leftover.unlink()
    elif part.exists():
        os.rename(part, partial)
        fsync_dir(track_dir)
    elif webm.exists():
        return _adopt(folder, track_dir.name, index, webm, state, result)
    else:
        return None
    return _salvage(folder, track_dir.name, index, partial, state, result)


def _clock_rate(state: _TrackState, contents: SegmentContents | None) -> int:
    if state.clock_rate:
        return state.clock_rate
    codec = state.codec or (contents.codec if contents else "")
    return RECORDABLE_CODECS.get(codec, ("", 90000))[1]


def _read(path: Path, rate: int) -> tuple[SegmentContents | None, str | None]:
    try:
        return read_segment(path, rate), None
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _adopt(
    folder: Path,
    track_id: str,
    index: int,
    path: Path,
    state: _TrackState,
    result: RecoveryResult,
) -> dict[str, Any]:
    contents, error = _read(path, _clock_rate(state, None))
    sha256, size = file_sha256(path)
    rel = f"{track_id}/{path.name}"
    if contents is None or not contents.packets:
        result.lost.append(rel)
        return _lost_entry(track_id, index, rel, size, sha256, error or "no packets")
    result.adopted.append(rel)
    entry = _segment_entry(track_id, index, rel, contents, state, size, sha256)
    entry["recovered"] = "adopted"
    return entry


def _salvage(
    folder: Path,
    track_id: str,
    index: int,
    partial: Path,
    state: _TrackState,
    result: RecoveryResult,
) -> dict[str, Any]:
    rate = _clock_rate(state, None)
    contents, error = _read(partial, rate)
    sha256, size = file_sha256(partial)
    rel_partial = f"{track_id}/{partial.name}"
    if contents is None or not contents.packets:
        result.lost.append(rel_partial)
        return _lost_entry(track_id, index, rel_partial, size, sha256, error or "no packets")
    tags = contents.tags
    codec = state.codec or contents.codec
    spec = SegmentSpec(
        track_id=track_id,
        index=index,
        kind=state.kind or contents.kind,
        codec=codec,
        clock_rate=rate,
        rtp_start=int(tags.get("TINGSHEN_RTP_START", "0")),
        wall_start_estimate=float(tags.get("TINGSHEN_WALL_START", "0") or 0),
        width=contents.width,
        height=contents.height,
    )
    segment = SegmentWriter(folder, spec)
    try:
        for packet in contents.packets:
            segment.write(spec.rtp_start + packet.pts, packet.data, packet.keyframe)
    except BaseException:
        segment.abandon()
        raise
    closed = segment.close()
    rel = spec.file
    result.salvaged.append(rel)
    result.frames_salvaged += closed.frames
    entry = _segment_entry(track_id, index, rel, contents, state, closed.size, closed.sha256)
    entry["recovered"] = "salvaged"
    entry["salvaged_from"] = {
        "file": rel_partial,
        "bytes": size,
        "sha256": sha256,
        "cut": error or "read to the end",
    }
    return entry


def _segment_entry(
    track_id: str,
    index: int,
    rel: str,
    contents: SegmentContents,
    state: _TrackState,
    size: int,
    sha256: str,
) -> dict[str, Any]:
    tags = contents.tags
    rate = _clock_rate(state, contents)
    rtp_start = int(tags.get("TINGSHEN_RTP_START", "0"))
    packets = contents.packets
    last = packets[-1].pts
    delta = last - packets[-2].pts if len(packets) > 1 else (3000 if rate == 90000 else 960)
    start = float(tags.get("TINGSHEN_WALL_START", "nan"))
    if start != start:  # tag missing: place it at the last listed start, or the epoch
        start = state.last_start or 0.0
    if state.last_start is not None and start < state.last_start:
        start = state.last_start  # the estimate must not backdate past the listed segments
    end = start + (last + delta) / rate
    state.last_start = start
    entry: dict[str, Any] = {
        "type": "segment",
        "track_id": track_id,
        "index": index,
        "kind": state.kind or contents.kind,
        "codec": state.codec or contents.codec,
        "file": rel,
        "start": iso_utc(start),
        "end": iso_utc(end),
        "clock": "estimate",
        "rtp_start": rtp_start,
        "rtp_end": rtp_start + last + delta,
        "frames": len(packets),
        "keyframes": sum(p.keyframe for p in packets),
        "starts_with_keyframe": packets[0].keyframe,
        "bytes": size,
        "sha256": sha256,
    }
    if contents.kind == "video":
        entry["width"], entry["height"] = contents.width, contents.height
    return entry


def _lost_entry(
    track_id: str, index: int, rel: str, size: int, sha256: str, reason: str
) -> dict[str, Any]:
    return {
        "type": "lost",
        "track_id": track_id,
        "index": index,
        "file": rel,
        "bytes": size,
        "byte_range": [0, size],
        "sha256": sha256,
        "reason": f"unreadable after interruption: {reason}",
    }


def _cut_partial_line(path: Path) -> int:
    if not path.exists():
        path.touch()
        return 0
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    if keep == len(data):
        return 0
    with open(path, "r+b") as f:
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return len(data) - keep


def _last_write_time(folder: Path) -> float:
    latest = 0.0
    for path in folder.rglob("*"):
        if path.is_file() and path.name != RECORDING_NAME:
            latest = max(latest, path.stat().st_mtime)
    return latest
