"""Export bundles: one zip holding everything needed to check a recording offline, and the check.

How this works: :func:`write_bundle` copies the recording folder's servable files (every file the
signed manifest lists with its hash, and the manifest, signature, public key, status and events
files) under ``recording/``, adds ``timeline.json`` (the catalog's tracks, segments and events),
``audit.jsonl`` (this recording's chain-of-custody entries, each with its hash), ``server_key.pem``
(the key of the server that exported it), every exhibit the recording's signed timeline registers
under ``exhibits/<sha256>-<name>`` (:mod:`server.exhibit_archive`; a stored file that is gone or
no longer has its registered hash is left out and named in ``bundle.json``, so the bundle does not
verify), a ``README.txt`` on verifying it offline, ``SHA256SUMS`` (``sha256sum -c`` format) and
``bundle.json`` (an index with each file's SHA-256). Media go in uncompressed (already
compressed), text deflated. Files are streamed from disk into the zip, never held in memory.

:func:`verify_bundle` opens a bundle without trusting it: it refuses member names that leave the
folder, links, duplicate names and sizes past a limit, extracts into a temporary folder (nothing
else on disk changes), checks every file against ``bundle.json``, runs the recording verifier on
``recording/`` (the manifest chain, its Ed25519 signature, every segment's hash) and recomputes
each audit entry's hash. Each exhibit on the timeline (``recording/events.jsonl``, whose hash
the signed manifest holds) must be in ``exhibits/`` with the SHA-256 and size registered there, and
``exhibits/`` must hold nothing else: ``bundle.json`` is not signed, so it is not what exhibits
are checked against. ``tingshen archive verify BUNDLE.zip`` calls it.
"""

from __future__ import annotations

import hashlib
import json
import stat
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recorder.manifest import (
    MANIFEST_NAME,
    canonical_json,
    file_sha256,
    iso_utc,
    key_fingerprint,
    load_public_key,
)
from recorder.session import EVENTS_NAME
from recorder.verify import verify_recording
from server.audit import entry_hash
from server.exhibit_archive import BUNDLE_FOLDER, Exhibit, bundle_member, distinct, read_exhibits
from server.playback import folder_files, safe_relative

__all__ = [
    "BUNDLE_FORMAT",
    "BundleError",
    "BundleReport",
    "BundleResult",
    "verify_bundle",
    "write_bundle",
]

BUNDLE_FORMAT = "tingshen-export/1"
INDEX_NAME = "bundle.json"
MAX_MEMBERS = 200_000
MAX_TOTAL_BYTES = 1 << 40  # 1 TiB uncompressed: far beyond any hearing, short of a zip bomb's claim
_STORED_SUFFIXES = (".webm", ".mp4", ".part", ".partial")
# exhibits already compressed: stored as they are (deflating them only costs time)
_EXHIBIT_STORED = (
    *_STORED_SUFFIXES,
    *(".jpg .jpeg .png .gif .webp .heic .mp3 .m4a .aac .ogg .opus .mov .mkv .avi".split()),
    *(".zip .gz .bz2 .xz .7z .rar .docx .xlsx .pptx".split()),
)

README = """\
Tingshen (庭审) recording export — how to verify it offline
============================================================

Recording {recording_id} of hearing {hearing_id}
Court: {court}    Case number: {case_number}
Exported {created} by {created_by}; server key SHA-256 {key_sha256}

What is in this bundle
  recording/        the recording folder as kept by the server: manifest.jsonl (a hash chain of
                    JSON lines, one per segment, track, pause, end...), manifest.sig (an Ed25519
                    signature over the manifest), public_key.pem, recording.json, events.jsonl,
                    one folder per track with its segment files (WebM), and composite.mp4 (the
                    "what the court saw" render) when it was made
  exhibits/         every exhibit shown during the hearing, as registered: <sha256>-<name>
                    (each one's name, SHA-256, size, who and when are an "exhibit" line of
                    recording/events.jsonl)
  timeline.json     the catalog's view of tracks, segments and timeline events
  audit.jsonl       the chain-of-custody entries of this recording (who listed, played,
                    downloaded, exported or verified it, when, and which file hash)
  server_key.pem    the public key of the server that exported the bundle
  SHA256SUMS        the SHA-256 of every other file
  bundle.json       an index of the bundle (same hashes, machine readable)

1. Check that nothing in the bundle changed (any Unix shell, after unzipping):
       sha256sum -c SHA256SUMS

2. Check the recording itself with Tingshen (no server needed):
       tingshen archive verify tingshen-{recording_id}.zip --key COURT_KEY.pem
   COURT_KEY.pem is the court's published recording key (`tingshen archive public-key` on the
   court's server). Without --key the bundle's own public_key.pem is used: that proves the files
   are intact and consistent, but not who signed them. It exits 0 and prints OK when the manifest
   chain is unbroken, its signature verifies, and every segment has the size and SHA-256 the
   manifest lists; otherwise it exits 1 and names each fault.

3. Or check it by hand:
   a. Every line of recording/manifest.jsonl has "prev" = SHA-256 (hex) of the line before it
      (the first: 64 zeros) and "seq" = its line number.
   b. recording/manifest.sig holds "signature" (base64 Ed25519) over the bytes
      "tingshen-manifest-v1\\n" followed by the canonical JSON (sorted keys, no spaces, UTF-8)
      of every other field of manifest.sig. Its "manifest_sha256" is the SHA-256 of the first
      "bytes" bytes of manifest.jsonl and "head" the SHA-256 of the last line they hold.
   c. Each "segment", "lost" and "derived" line names a "file" with its "bytes" and "sha256".
   d. Each line of audit.jsonl has "hash" = SHA-256 of "tingshen-audit-v1\\n" followed by the
      canonical JSON of the entry without "hash"; "prev" links it to the server's full log.
   e. The manifest's "end" entry holds "events_sha256", the SHA-256 of recording/events.jsonl.
      Each line of it with "kind":"exhibit" names an exhibit's "sha256" and "bytes": the file
      exhibits/<sha256>-... must have exactly those (sha256sum exhibits/*).
"""


class BundleError(Exception):
    """The file is not a Tingshen export bundle, or one that cannot be opened safely."""


@dataclass(frozen=True)
class BundleResult:
    """What :func:`write_bundle` wrote."""

    path: Path
    sha256: str
    bytes: int
    files: int
    exhibits: int = 0
    #: exhibits on the timeline whose stored file could not go in (gone, or changed): the bundle
    #: names them in bundle.json and does not verify
    missing_exhibits: tuple[str, ...] = ()


@dataclass
class BundleReport:
    """What :func:`verify_bundle` found: ``ok`` when ``faults`` is empty."""

    ok: bool
    recording_id: str | None
    faults: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    segments: int = 0
    audit_entries: int = 0
    exhibits: int = 0
    status: str | None = None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(
    folder: Path,
    out: Path,
    *,
    detail: dict[str, Any],
    audit_entries: list[dict[str, Any]],
    created_by: str,
    server_key_pem: bytes,
    exhibits_dir: Path | None = None,
) -> BundleResult:
    """Write the bundle of the recording in ``folder`` to ``out`` (blocking; see module doc).

    ``exhibits_dir`` is where the hearing's exhibit files are kept
    (:func:`server.exhibit_archive.exhibit_folder`); None: there are none to include.
    """
    created = iso_utc(time.time())
    key_sha256 = key_fingerprint(load_public_key(server_key_pem))
    sums: dict[str, tuple[str, int]] = {}
    with zipfile.ZipFile(out, "w", allowZip64=True) as bundle:

        def add_bytes(name: str, data: bytes) -> None:
            bundle.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
            sums[name] = (_sha256(data), len(data))

        for info in folder_files(folder, hash_descriptive=False):
            source = folder / info.name
            if not source.is_file() or source.is_symlink():
                continue
            name = f"recording/{info.name}"
            method = (
                zipfile.ZIP_STORED if info.name.endswith(_STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
            )
            bundle.write(source, name, compress_type=method)
            sums[name] = file_sha256(source)
        exhibits, missing = _add_exhibits(bundle, folder / EVENTS_NAME, exhibits_dir, sums)
        timeline = {k: detail.get(k) for k in ("tracks", "segments", "events")}
        summary = {k: v for k, v in detail.items() if k not in ("tracks", "segments", "events")}
        add_bytes(
            "timeline.json",
            json.dumps({"recording": summary, **timeline}, ensure_ascii=False, indent=1).encode(),
        )
        add_bytes("audit.jsonl", b"".join(canonical_json(e) + b"\n" for e in audit_entries))
        add_bytes("server_key.pem", server_key_pem)
        readme = README.format(
            recording_id=detail.get("id"),
            hearing_id=detail.get("hearing_id"),
            court=detail.get("court"),
            case_number=detail.get("case_number"),
            created=created,
            created_by=created_by,
            key_sha256=key_sha256,
        )
        add_bytes("README.txt", readme.encode())
        listing = "".join(f"{digest}  {name}\n" for name, (digest, _) in sorted(sums.items()))
        add_bytes("SHA256SUMS", listing.encode())
        index = {
            "format": BUNDLE_FORMAT,
            "recording_id": detail.get("id"),
            "hearing_id": detail.get("hearing_id"),
            "court": detail.get("court"),
            "case_number": detail.get("case_number"),
            "created": created,
            "created_by": created_by,
            "server_key_sha256": key_sha256,
            "files": [{"name": n, "sha256": d, "bytes": b} for n, (d, b) in sorted(sums.items())],
            "exhibits": exhibits,
        }
        bundle.writestr(
            INDEX_NAME,
            json.dumps(index, ensure_ascii=False, indent=1).encode(),
            compress_type=zipfile.ZIP_DEFLATED,
        )
    sha256, size = file_sha256(out)
    return BundleResult(out, sha256, size, len(sums) + 1, len(exhibits), tuple(missing))


def _add_exhibits(
    bundle: zipfile.ZipFile,
    events: Path,
    exhibits_dir: Path | None,
    sums: dict[str, tuple[str, int]],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Copy each distinct exhibit of the timeline into ``bundle``; its index entries and the
    problems of those left out. A stored file is hashed before it goes in: one that no longer has
    its registered hash is not passed off as the exhibit."""
    registered, _ = read_exhibits(events)
    index: list[dict[str, Any]] = []
    missing: list[str] = []
    for exhibit in distinct(registered):
        member = bundle_member(exhibit)
        problem = _stored_problem(exhibit, exhibits_dir)
        if problem is None:
            assert exhibits_dir is not None
            source = exhibits_dir / exhibit.sha256
            method = (
                zipfile.ZIP_STORED
                if exhibit.name.lower().endswith(_EXHIBIT_STORED)
                else zipfile.ZIP_DEFLATED
            )
            bundle.write(source, member, compress_type=method)
            sums[member] = (exhibit.sha256, exhibit.bytes)
        else:
            missing.append(f"{member}: {problem}")
        index.append(
            {**exhibit.as_dict(), "file": member, "included": problem is None, "problem": problem}
        )
    return index, missing


def _stored_problem(exhibit: Exhibit, exhibits_dir: Path | None) -> str | None:
    if exhibits_dir is None:
        return "no exhibit store was given to the export"
    source = exhibits_dir / exhibit.sha256
    if source.is_symlink() or not source.is_file():
        return "the stored file is gone"
    if file_sha256(source) != (exhibit.sha256, exhibit.bytes):
        return "the stored file no longer has its registered SHA-256"
    return None


def _safe_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise BundleError(f"more than {MAX_MEMBERS} members")
    seen: set[str] = set()
    total = 0
    for member in members:
        name = member.filename
        if member.is_dir():
            continue
        mode = member.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise BundleError(f"member {name!r} is a link")
        if safe_relative(name) is None:
            raise BundleError(f"member name {name!r} leaves the bundle folder")
        if name in seen:
            raise BundleError(f"member {name!r} appears twice")
        seen.add(name)
        total += member.file_size
        if total > MAX_TOTAL_BYTES:
            raise BundleError("the bundle claims more than 1 TiB of content")
    return [m for m in members if not m.is_dir()]


def verify_bundle(path: Path, trusted_public_key: bytes | None = None) -> BundleReport:
    """Verify an export bundle offline (see the module docstring). Raises :class:`BundleError`
    when ``path`` is not a bundle that can be opened safely; every other problem is a fault."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"{path} is not a zip file: {exc}") from None
    with archive, tempfile.TemporaryDirectory(prefix="tingshen-bundle-") as tmp:
        members = _safe_members(archive)
        names = {m.filename for m in members}
        if INDEX_NAME not in names or "recording/manifest.jsonl" not in names:
            raise BundleError(
                f"{path} is not a Tingshen export bundle (no {INDEX_NAME} or manifest)"
            )
        root = Path(tmp)
        for member in members:
            pure = safe_relative(member.filename)
            assert pure is not None
            target = root.joinpath(*pure.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as src, open(target, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise BundleError(f"member {member.filename!r} cannot be read: {exc}") from None
        return _check_extracted(root, names, trusted_public_key)


def _check_extracted(root: Path, names: set[str], trusted: bytes | None) -> BundleReport:
    try:
        index = json.loads((root / INDEX_NAME).read_bytes())
        listed = {f["name"]: (f["sha256"], f["bytes"]) for f in index["files"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{INDEX_NAME} is unreadable: {exc}") from None
    report = BundleReport(ok=False, recording_id=index.get("recording_id"))
    if index.get("format") != BUNDLE_FORMAT:
        report.warnings.append(f"bundle format {index.get('format')!r}, expected {BUNDLE_FORMAT}")
    for name, (sha256, size) in sorted(listed.items()):
        pure = safe_relative(name)
        if pure is None or name not in names:
            report.faults.append(
                f"bundle-file-missing: {name}: listed in {INDEX_NAME}, not in the bundle"
            )
            continue
        if file_sha256(root.joinpath(*pure.parts)) != (sha256, size):
            report.faults.append(f"bundle-file-modified: {name}: SHA-256 differs from {INDEX_NAME}")
    for name in sorted(names - set(listed) - {INDEX_NAME}):
        if not name.startswith(("recording/", f"{BUNDLE_FOLDER}/")):
            report.warnings.append(f"unlisted file {name}")
    recording = verify_recording(root / "recording", trusted)
    report.faults.extend(recording.faults)
    report.warnings.extend(recording.warnings)
    _check_exhibits(root, names, report)
    report.segments, report.status = recording.segments, recording.status
    if trusted is None:
        report.warnings.append("no trusted key given: checked against the bundle's own public key")
    audit = root / "audit.jsonl"
    if audit.is_file():
        for number, raw in enumerate(audit.read_bytes().splitlines()):
            try:
                entry = json.loads(raw)
                good = entry_hash(entry) == entry["hash"]
            except (ValueError, KeyError, TypeError):
                good = False
            report.audit_entries += 1
            if not good:
                report.faults.append(
                    f"audit-altered: audit.jsonl line {number}: hash does not match"
                )
            elif entry.get("recording_id") != report.recording_id:
                report.faults.append(f"audit-foreign: audit.jsonl line {number}: another recording")
    report.ok = not report.faults
    return report


def _check_exhibits(root: Path, names: set[str], report: BundleReport) -> None:
    """Each exhibit of the signed timeline against its file in ``exhibits/`` (see module doc)."""
    events = f"recording/{EVENTS_NAME}"
    registered, problems = read_exhibits(root / "recording" / EVENTS_NAME)
    for problem in problems:
        report.faults.append(f"exhibit-malformed: {events}: {problem}")
    expected: dict[str, Exhibit] = {}
    for exhibit in distinct(registered):
        expected[bundle_member(exhibit)] = exhibit
    report.exhibits = len(expected)
    for member, exhibit in expected.items():
        what = (
            f"exhibit {exhibit.name!r} (registered by {exhibit.by or '?'} at {exhibit.at}, "
            f"SHA-256 {exhibit.sha256})"
        )
        if member not in names:
            report.faults.append(f"exhibit-missing: {member}: {what} is not in the bundle")
            continue
        pure = safe_relative(member)
        assert pure is not None  # every member name was checked on opening
        sha256, size = file_sha256(root.joinpath(*pure.parts))
        if (sha256, size) != (exhibit.sha256, exhibit.bytes):
            report.faults.append(
                f"exhibit-modified: {member}: {size} bytes with SHA-256 {sha256}, but the signed "
                f"timeline registers {what} with {exhibit.bytes} bytes"
            )
    for name in sorted(n for n in names if n.startswith(f"{BUNDLE_FOLDER}/")):
        if name not in expected:
            report.faults.append(
                f"exhibit-unlisted: {name}: no exhibit on the signed timeline is this file"
            )
    if expected and not _events_signed(root / "recording" / MANIFEST_NAME):
        report.warnings.append(
            f"exhibits checked against {events}, which no end entry of the manifest signs"
        )


def _events_signed(manifest: Path) -> bool:
    """Whether the manifest has an ``end`` entry holding the events file's hash (the recording
    finished, or was closed by recovery): only then is the timeline covered by the signature."""
    with manifest.open("rb") as lines:
        for raw in lines:
            if b'"type":"end"' in raw:
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("events_sha256"):
                    return True
    return False
