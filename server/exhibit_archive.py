"""Exhibits in the archive: which a recording holds, where their files are, their bundle names.

How this works: an exhibit registered during a hearing (:mod:`server.exhibits`) is one ``exhibit``
line in the recording's ``events.jsonl`` — name, SHA-256, size, who (name and role) and when — and
that file's own SHA-256 is signed into the manifest's ``end`` entry. So the signed timeline is the
one list of a recording's exhibits: :func:`read_exhibits` reads it, and the archive API, the export
bundle and the bundle's offline check all use that list, never a directory listing. The files stay
where registration put them, content-addressed under ``<data>/exhibits/<hearing>/<sha256>``
(:func:`stored_path`); in a bundle each distinct file appears once, as
``exhibits/<sha256>-<name>`` (:func:`bundle_member`), named after its first registration. The
backup (:mod:`server.backup`) follows a timeline still being written with :func:`scan_exhibits`,
which reads only the complete lines past where it stopped last time. No I/O here but reading the
events file (callers run it in a thread).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BUNDLE_FOLDER",
    "Exhibit",
    "TimelineScan",
    "bundle_member",
    "distinct",
    "exhibit_folder",
    "exhibits_root",
    "read_exhibits",
    "scan_exhibits",
    "stored_path",
]

EVENT_KIND = "exhibit"
BUNDLE_FOLDER = "exhibits"
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_LABEL_BYTES = 120  # of the name in a bundle member (file systems allow 255 bytes per name)
_MAX_EVENTS_BYTES = 1 << 30
# canonical JSON (sorted keys, no spaces) puts the kind at the top level exactly so: only lines
# holding it are parsed, the network samples and joins of a long hearing are skipped cheaply
_MARK = b'"kind":"exhibit"'
_LABEL_KEEP = set("._-+()[]（）【】，、")


@dataclass(frozen=True)
class Exhibit:
    """One registration of an exhibit, as the signed timeline holds it."""

    name: str
    sha256: str
    bytes: int
    by: str
    role: str
    at: str  # ISO 8601 UTC, as events.jsonl writes it
    seq: int  # its line in events.jsonl

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def exhibits_root(data: Path) -> Path:
    """The folder holding every hearing's exhibit folder."""
    return data / BUNDLE_FOLDER


def exhibit_folder(data: Path, hearing_id: str) -> Path:
    """Where the exhibits of one hearing are kept (content-addressed)."""
    return exhibits_root(data) / hearing_id


def stored_path(data: Path, hearing_id: str, sha256: str) -> Path:
    """The stored file of an exhibit (``sha256`` must already be checked as 64 hex digits)."""
    if not SHA256.fullmatch(sha256):
        raise ValueError(f"not a SHA-256: {sha256!r}")
    return exhibit_folder(data, hearing_id) / sha256


def read_exhibits(events: Path) -> tuple[list[Exhibit], list[str]]:
    """The exhibits on the timeline in ``events`` (in line order), and the problems of lines that
    claim to be exhibits but cannot be read (``"line N: ..."``). A missing file holds none."""
    exhibits: list[Exhibit] = []
    problems: list[str] = []
    try:
        handle = events.open("rb")
    except FileNotFoundError:
        return exhibits, problems
    with handle:
        read = 0
        for number, raw in enumerate(handle):
            read += len(raw)
            if read > _MAX_EVENTS_BYTES:
                problems.append(f"line {number}: events file past {_MAX_EVENTS_BYTES} bytes")
                break
            _parse_line(number, raw, exhibits, problems)
    return exhibits, problems


@dataclass
class TimelineScan:
    """What :func:`scan_exhibits` found, and where the next scan starts."""

    exhibits: list[Exhibit]
    problems: list[str]
    offset: int  # bytes of complete lines read so far (from the start of the file)
    lines: int  # complete lines read so far


def scan_exhibits(events: Path, offset: int = 0, lines: int = 0) -> TimelineScan:
    """The exhibits on the complete lines of ``events`` past byte ``offset`` (which is line
    ``lines``): for following a timeline the recorder is still appending to. A line without its
    newline yet is left for the next scan; at most ``_MAX_EVENTS_BYTES`` are read per call (the
    next call goes on). A missing file holds none."""
    scan = TimelineScan([], [], offset, lines)
    try:
        handle = events.open("rb")
    except FileNotFoundError:
        return scan
    with handle:
        handle.seek(offset)
        for raw in handle:
            if not raw.endswith(b"\n") or scan.offset - offset > _MAX_EVENTS_BYTES:
                break
            _parse_line(scan.lines, raw, scan.exhibits, scan.problems)
            scan.offset += len(raw)
            scan.lines += 1
    return scan


def _parse_line(number: int, raw: bytes, exhibits: list[Exhibit], problems: list[str]) -> None:
    if _MARK not in raw:
        return
    try:
        line = json.loads(raw)
    except ValueError:
        problems.append(f"line {number}: not JSON")
        return
    if not isinstance(line, dict) or line.get("kind") != EVENT_KIND:
        return
    exhibit = _exhibit(line)
    if exhibit is None:
        problems.append(f"line {number}: an exhibit without name, SHA-256 or size")
    else:
        exhibits.append(exhibit)


def _exhibit(line: dict[str, Any]) -> Exhibit | None:
    data = line.get("data")
    if not isinstance(data, dict):
        return None
    name, sha256, size = data.get("name"), data.get("sha256"), data.get("bytes")
    if not isinstance(name, str) or not name or not isinstance(sha256, str):
        return None
    if not SHA256.fullmatch(sha256) or not isinstance(size, int) or size < 0:
        return None
    seq = line.get("seq")
    return Exhibit(
        name=name,
        sha256=sha256,
        bytes=size,
        by=str(data.get("by") or ""),
        role=str(data.get("role") or ""),
        at=str(line.get("at") or ""),
        seq=seq if isinstance(seq, int) else -1,
    )


def distinct(exhibits: list[Exhibit]) -> list[Exhibit]:
    """One exhibit per file: the first registration of each SHA-256 (the same file shown twice,
    even under another name, is one file)."""
    seen: dict[str, Exhibit] = {}
    for exhibit in exhibits:
        seen.setdefault(exhibit.sha256, exhibit)
    return list(seen.values())


def _label(name: str) -> str:
    """``name`` as a portable file name: letters (any script), digits and a few marks; every
    other character (space, colon, quote, slash...) becomes ``_``; at most MAX_LABEL_BYTES bytes
    of UTF-8, keeping a short extension."""
    label = "".join(c if c.isalnum() or c in _LABEL_KEEP else "_" for c in name).strip("._")
    if len(label.encode()) <= MAX_LABEL_BYTES:
        return label
    stem, dot, suffix = label.rpartition(".")
    if not dot or len(suffix) > 16:
        stem, suffix = label, ""
    room = MAX_LABEL_BYTES - len(suffix.encode()) - (1 if suffix else 0)
    cut = stem.encode()[:room].decode(errors="ignore")
    return f"{cut}.{suffix}" if suffix else cut


def bundle_member(exhibit: Exhibit) -> str:
    """The exhibit's path in an export bundle: ``exhibits/<sha256>-<name>``."""
    label = _label(exhibit.name)
    return f"{BUNDLE_FOLDER}/{exhibit.sha256}" + (f"-{label}" if label else "")
