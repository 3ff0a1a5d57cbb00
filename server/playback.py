"""What of a recording folder may be served, and how a browser plays it with seeking.

How this works: :func:`folder_files` reads the manifest (cached per manifest size and mtime) and
lists every file the recording stands behind: each segment, each ``lost`` piece and each
``derived`` file (the composite) with the SHA-256 and size the manifest gives, plus the small
files that describe the recording (manifest, signature, public key, status, events). Only those
names are ever served (:func:`resolve_file`): a name that is not listed, that leaves the folder,
or that reaches a symbolic link is refused before the disk is touched.

A segment is a few seconds of one track; a ``<video>`` seeks within one file. So
:func:`track_playable` remuxes (no decoding) one track's segments, in wall-clock order, into one
WebM whose timestamps are seconds since the recording's first media (:func:`media_origin`), kept
in a cache folder outside the recording (the evidence folder is never written to). Its name
carries a hash of the segment list, so a growing recording gets a new file. The composite render
replaces each pause with a short title card; :func:`composite_map` gives the pieces that map a
wall-clock instant to a time in the composite, so the page can seek to a timeline event.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any

import av

from recorder.manifest import (
    MANIFEST_NAME,
    PUBLIC_KEY_NAME,
    SIGNATURE_NAME,
    atomic_write,
    file_sha256,
    parse_iso_utc,
)
from recorder.session import EVENTS_NAME, RECORDING_NAME

__all__ = [
    "DESCRIPTIVE_FILES",
    "RecordingFile",
    "composite_map",
    "folder_files",
    "media_origin",
    "resolve_file",
    "safe_relative",
    "track_playable",
]

logger = logging.getLogger(__name__)

DESCRIPTIVE_FILES = (RECORDING_NAME, MANIFEST_NAME, SIGNATURE_NAME, PUBLIC_KEY_NAME, EVENTS_NAME)
PAUSE_CARD_SECONDS = 3.0  # as recorder.composite renders a pause
_MAX_NAME = 512
_MAX_MANIFEST_BYTES = 256 * 1024 * 1024
_remux_locks: dict[Path, threading.Lock] = {}
_remux_guard = threading.Lock()


@dataclass(frozen=True)
class RecordingFile:
    """One servable file of a recording (``name`` relative to the folder, POSIX form)."""

    name: str
    kind: str  # segment, lost, derived, manifest, signature, public-key, status, events
    sha256: str | None
    bytes: int | None
    track_id: str | None = None
    index: int | None = None
    start: str | None = None
    end: str | None = None
    signed: bool = True  # listed with its hash in the signed manifest

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


@dataclass(frozen=True)
class _Manifest:
    files: dict[str, RecordingFile]
    entries: list[dict[str, Any]]


def safe_relative(name: str) -> PurePosixPath | None:
    """``name`` as a relative POSIX path inside a folder, or None if it could leave it."""
    if not name or len(name) > _MAX_NAME or "\x00" in name or "\\" in name:
        return None
    pure = PurePosixPath(name)
    if pure.is_absolute() or any(part in ("", ".", "..") for part in pure.parts):
        return None
    return pure


def _read_manifest(folder: Path) -> _Manifest:
    path = folder / MANIFEST_NAME
    stat = path.stat()
    return _parse_manifest(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _parse_manifest(path: str, size: int, mtime_ns: int) -> _Manifest:
    if size > _MAX_MANIFEST_BYTES:
        raise ValueError(f"{path}: manifest larger than {_MAX_MANIFEST_BYTES} bytes")
    with open(path, "rb") as f:
        data = f.read(size)
    data = data[: data.rfind(b"\n") + 1]
    files: dict[str, RecordingFile] = {}
    entries: list[dict[str, Any]] = []
    for raw in data.splitlines():
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        entries.append(entry)
        for item, kind in ((entry, entry.get("type")), (entry.get("salvaged_from"), "lost")):
            if not isinstance(item, dict) or kind not in ("segment", "lost", "derived"):
                continue
            name = item.get("file")
            if not isinstance(name, str) or safe_relative(name) is None:
                continue
            files[name] = RecordingFile(
                name=name,
                kind=str(kind),
                sha256=item.get("sha256") if isinstance(item.get("sha256"), str) else None,
                bytes=item.get("bytes") if isinstance(item.get("bytes"), int) else None,
                track_id=entry.get("track_id") if isinstance(entry.get("track_id"), str) else None,
                index=entry.get("index") if isinstance(entry.get("index"), int) else None,
                start=entry.get("start") if isinstance(entry.get("start"), str) else None,
                end=entry.get("end") if isinstance(entry.get("end"), str) else None,
            )
    return _Manifest(files, entries)


def manifest_entries(folder: Path) -> list[dict[str, Any]]:
    """The manifest's complete lines as dicts (cached; unparsable lines left out)."""
    return list(_read_manifest(folder).entries)


def folder_files(folder: Path, *, hash_descriptive: bool = True) -> list[RecordingFile]:
    """Every servable file of the recording in ``folder`` (see the module docstring).

    The descriptive files (manifest, signature...) are hashed here when ``hash_descriptive``; they
    are small, and the manifest's own hash is what its signature covers.
    """
    listed = _read_manifest(folder).files
    kinds = {
        RECORDING_NAME: "status",
        MANIFEST_NAME: "manifest",
        SIGNATURE_NAME: "signature",
        PUBLIC_KEY_NAME: "public-key",
        EVENTS_NAME: "events",
    }
    out: list[RecordingFile] = []
    for name in DESCRIPTIVE_FILES:
        path = folder / name
        if not path.is_file() or path.is_symlink():
            continue
        sha256, size = file_sha256(path) if hash_descriptive else (None, path.stat().st_size)
        out.append(RecordingFile(name, kinds[name], sha256, size, signed=False))
    out.extend(listed.values())
    return out


def resolve_file(folder: Path, name: str) -> tuple[Path, RecordingFile]:
    """The path of a servable file ``name`` of the recording in ``folder``.

    Raises ``FileNotFoundError`` for anything else (unlisted, outside the folder, a symlink).
    """
    pure = safe_relative(name)
    if pure is None:
        raise FileNotFoundError(name)
    if name in DESCRIPTIVE_FILES:
        info = RecordingFile(name, "descriptive", None, None, signed=False)
    else:
        found = _read_manifest(folder).files.get(name)
        if found is None:
            raise FileNotFoundError(name)
        info = found
    root = folder.resolve()
    path = root.joinpath(*pure.parts)
    current = root
    for part in pure.parts:  # no symbolic link anywhere on the way
        current = current / part
        if current.is_symlink():
            raise FileNotFoundError(name)
    if not path.is_file() or not path.resolve().is_relative_to(root):
        raise FileNotFoundError(name)
    return path, info


# -- timing ----------------------------------------------------------------------------------------


def _spans(entries: list[dict[str, Any]]) -> tuple[list[tuple[float, float]], list[dict[str, Any]]]:
    segments: list[tuple[float, float]] = []
    gaps: list[dict[str, Any]] = []
    for entry in entries:
        try:
            if entry.get("type") == "segment":
                start = parse_iso_utc(entry["start"])
                segments.append((start, max(start, parse_iso_utc(entry["end"]))))
            elif entry.get("type") == "gap":
                start = parse_iso_utc(entry["start"])
                end = max(start, parse_iso_utc(entry["end"]))
                gaps.append({"start": start, "end": end, "reason": entry.get("reason")})
        except (KeyError, TypeError, ValueError):
            continue
    return segments, sorted(gaps, key=lambda g: g["start"])


def media_origin(folder: Path) -> float | None:
    """Wall-clock seconds of the recording's first media (time 0 of every playable file)."""
    segments, gaps = _spans(_read_manifest(folder).entries)
    times = [s for s, _ in segments] + [g["start"] for g in gaps]
    return min(times) if times else None


def composite_map(folder: Path) -> list[dict[str, Any]]:
    """Pieces ``{"wall", "until", "media", "card"}``: wall-clock ``wall``..``until`` plays from
    composite time ``media`` (a pause card plays ``card`` seconds and then holds)."""
    segments, gaps = _spans(_read_manifest(folder).entries)
    times = [t for span in segments for t in span] + [
        t for g in gaps for t in (g["start"], g["end"])
    ]
    if not times:
        return []
    cursor, end, media = min(times), max(times), 0.0
    pieces: list[dict[str, Any]] = []
    for gap in gaps:
        if gap["end"] <= cursor:
            continue
        if gap["start"] > cursor:
            pieces.append({"wall": cursor, "until": gap["start"], "media": media, "card": None})
            media += gap["start"] - cursor
        card = min(PAUSE_CARD_SECONDS, gap["end"] - max(gap["start"], cursor))
        pieces.append({"wall": gap["start"], "until": gap["end"], "media": media, "card": card})
        media += card
        cursor = max(cursor, gap["end"])
    if end > cursor:
        pieces.append({"wall": cursor, "until": end, "media": media, "card": None})
    return pieces


# -- per-track playable file ------------------------------------------------------------------------


def _track_segments(folder: Path, track_id: str) -> list[tuple[float, str, str]]:
    found = []
    for entry in _read_manifest(folder).entries:
        if entry.get("type") != "segment" or entry.get("track_id") != track_id:
            continue
        try:
            found.append((parse_iso_utc(entry["start"]), str(entry["file"]), str(entry["sha256"])))
        except (KeyError, TypeError, ValueError):
            continue
    return sorted(found)


def track_playable(folder: Path, track_id: str, cache: Path) -> tuple[Path, str] | None:
    """One WebM of the whole track (see the module docstring) and its SHA-256; None if the track
    has no segment. Blocking (call it in a thread); concurrent calls for one file wait for one
    remux."""
    segments = _track_segments(folder, track_id)
    origin = media_origin(folder)
    if not segments or origin is None:
        return None
    key = hashlib.sha256("\n".join(f"{f} {h}" for _, f, h in segments).encode()).hexdigest()
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"{track_id}-{key[:16]}.webm"
    digest_file = out.with_name(out.name + ".sha256")
    with _remux_guard:
        lock = _remux_locks.setdefault(out, threading.Lock())
    with lock:
        if out.is_file() and digest_file.is_file():
            return out, digest_file.read_text().strip()
        for stale in cache.glob(f"{track_id}-*.webm*"):
            stale.unlink(missing_ok=True)
        part = out.with_name(out.name + ".part")
        try:
            _remux(folder, segments, origin, part)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, out)
        sha256, _ = file_sha256(out)
        atomic_write(digest_file, sha256.encode())
        return out, sha256


def _remux(folder: Path, segments: list[tuple[float, str, str]], origin: float, out: Path) -> None:
    ms = Fraction(1, 1000)
    with av.open(str(out), "w", format="webm") as output:
        stream = None
        last = -1
        for start, name, _ in segments:
            path = folder / name
            if not path.is_file():
                logger.warning("playback: %s is missing, left out of the playable file", path)
                continue
            offset = round((start - origin) * 1000)
            try:
                source = av.open(str(path), format="matroska")
            except av.error.FFmpegError:
                logger.warning("playback: %s is unreadable, left out", path)
                continue
            with source:
                if not source.streams:
                    continue
                in_stream = source.streams[0]
                if stream is None:
                    stream = output.add_stream_from_template(in_stream)
                    stream.time_base = ms
                time_base = in_stream.time_base or ms
                for packet in source.demux(in_stream):
                    if packet.size == 0 or packet.pts is None:
                        continue
                    pts = max(offset + round(packet.pts * time_base * 1000), last + 1)
                    packet.stream = stream
                    packet.time_base = ms
                    packet.pts = packet.dts = pts
                    output.mux(packet)
                    last = pts
        if stream is None:
            raise FileNotFoundError("no readable segment")
