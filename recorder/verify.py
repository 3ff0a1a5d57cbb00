"""Offline verification of a recording folder: chain, signature, key, and every segment's bytes.

How this works: the manifest is read line by line; each line must be canonical JSON, carry its own
line number as ``seq`` and the SHA-256 of the previous line as ``prev``. ``manifest.sig`` must be a
valid Ed25519 signature, by the trusted key when one is given, over the SHA-256 of the manifest
prefix it claims and the head hash of that prefix; lines after the signed prefix are a fault.
Each entry that names a file must find it with the listed size and SHA-256 (a file holding another
entry's bytes is reported as reordered). Per track, segment indices must be contiguous and start
times must not go backwards; every entry's end must not precede its start. Files in track folders
that no entry names are faults too. A ``derived`` entry (a file made from the recording, such as
the composite render; it may follow ``end``) must find its file with the listed size and SHA-256:
``derived-missing`` or ``derived-modified`` otherwise. Each fault is one string,
``"<kind>: <file>: <detail>"``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .manifest import (
    GENESIS,
    MANIFEST_NAME,
    PUBLIC_KEY_NAME,
    SIGNATURE_NAME,
    canonical_json,
    file_sha256,
    key_fingerprint,
    load_public_key,
    parse_iso_utc,
    sha256_hex,
    signature_fields,
    signed_message,
    verify_signature,
)
from .segment_writer import PART_SUFFIX, SEGMENT_SUFFIX
from .session import RECORDING_NAME

logger = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".partial"  # a crashed segment's original bytes, kept by recovery
# Entry types that stand for a piece of one track's media, in index order.
_MEDIA_TYPES = ("segment", "lost")


@dataclass
class VerifyReport:
    """The outcome of :func:`verify_recording`: ``ok`` is True only when ``faults`` is empty."""

    ok: bool
    faults: list[str]
    segments: int
    warnings: list[str] = field(default_factory=list)
    entries: int = 0
    status: str | None = None


@dataclass
class _Line:
    number: int
    raw: bytes
    entry: dict[str, Any]


class _Verifier:
    def __init__(self, folder: Path, trusted_public_key: bytes | None) -> None:
        self.folder = folder
        self.trusted = trusted_public_key
        self.faults: list[str] = []
        self.warnings: list[str] = []
        self.lines: list[_Line] = []
        self.raw = b""
        self.segments = 0
        self.status: str | None = None
        self.listed: set[str] = set()
        self.hash_to_file: dict[str, str] = {}

    def fault(self, kind: str, where: str, detail: str) -> None:
        self.faults.append(f"{kind}: {where}: {detail}")

    def run(self) -> VerifyReport:
        if self.read_manifest():
            self.check_chain()
            self.check_signature()
            self.check_entries()
            self.check_files()
            self.check_recording_json()
        ok = not self.faults
        return VerifyReport(
            ok, self.faults, self.segments, self.warnings, len(self.lines), self.status
        )

    # -- manifest ---------------------------------------------------------------------------------

    def read_manifest(self) -> bool:
        path = self.folder / MANIFEST_NAME
        if not path.is_file():
            self.fault("manifest-missing", MANIFEST_NAME, "no manifest in the folder")
            return False
        self.raw = path.read_bytes()
        keep = self.raw.rfind(b"\n") + 1
        if keep < len(self.raw):
            self.fault(
                "manifest-truncated",
                MANIFEST_NAME,
                f"{len(self.raw) - keep} bytes after the last complete line",
            )
        for number, raw in enumerate(self.raw[:keep].splitlines()):
            try:
                entry = json.loads(raw)
            except ValueError:
                self.fault("manifest-malformed", MANIFEST_NAME, f"line {number} is not JSON")
                entry = {}
            if not isinstance(entry, dict):
                self.fault("manifest-malformed", MANIFEST_NAME, f"line {number} is not an object")
                entry = {}
            elif entry and canonical_json(entry) != raw:
                self.fault("manifest-altered", MANIFEST_NAME, f"line {number} is not canonical")
            self.lines.append(_Line(number, raw, entry))
        if not self.lines:
            self.fault("manifest-malformed", MANIFEST_NAME, "empty")
            return False
        return True

    def check_chain(self) -> None:
        expected = GENESIS
        for line in self.lines:
            entry = line.entry
            seq = entry.get("seq")
            if seq != line.number:
                self.fault(
                    "entry-reordered", MANIFEST_NAME, f"line {line.number} holds entry seq {seq}"
                )
            if entry.get("prev") != expected:
                self.fault(
                    "chain-broken",
                    MANIFEST_NAME,
                    f"line {line.number}: prev is not the hash of line {line.number - 1}"
                    " (a line was changed, removed, inserted or moved)",
                )
            expected = sha256_hex(line.raw)
        header = self.lines[0].entry
        if header.get("type") != "recording":
            self.fault("chain-broken", MANIFEST_NAME, "line 0 is not the recording header")

    def check_signature(self) -> None:
        sig_path = self.folder / SIGNATURE_NAME
        pem_path = self.folder / PUBLIC_KEY_NAME
        if not sig_path.is_file():
            self.fault("signature-missing", SIGNATURE_NAME, "the manifest is not signed")
            return
        try:
            document = json.loads(sig_path.read_bytes())
            signature = base64.b64decode(document["signature"], validate=True)
            signed_bytes = int(document["bytes"])
            signed_entries = int(document["entries"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            self.fault("signature-invalid", SIGNATURE_NAME, "unreadable signature file")
            return
        included = None
        if pem_path.is_file():
            try:
                included = load_public_key(pem_path.read_bytes())
            except ValueError:
                self.fault("key-invalid", PUBLIC_KEY_NAME, "not an Ed25519 public key")
        trusted = None
        if self.trusted is not None:
            trusted = load_public_key(self.trusted)
            if included is not None and key_fingerprint(included) != key_fingerprint(trusted):
                self.fault(
                    "key-untrusted",
                    PUBLIC_KEY_NAME,
                    f"key {key_fingerprint(included)[:16]} is not the trusted key "
                    f"{key_fingerprint(trusted)[:16]}",
                )
        key = trusted or included
        if key is None:
            self.fault("key-missing", PUBLIC_KEY_NAME, "no public key to check the signature")
            return
        fields = signature_fields(document)
        prefix = self.raw[:signed_bytes]
        message = signed_message(fields)
        valid = verify_signature(key, signature, message)
        if not valid:
            if trusted is not None and included is not None:
                if verify_signature(included, signature, message):
                    self.fault(
                        "signed-by-other-key",
                        SIGNATURE_NAME,
                        "signed with public_key.pem's key, not with the trusted key",
                    )
                    return
            self.fault("signature-invalid", SIGNATURE_NAME, "signature does not verify")
            return
        if fields.get("public_key_sha256") != key_fingerprint(key):
            self.fault("key-mismatch", SIGNATURE_NAME, "names a different public key")
        if signed_bytes > len(self.raw) or sha256_hex(prefix) != fields.get("manifest_sha256"):
            self.fault(
                "manifest-replaced",
                MANIFEST_NAME,
                "the signed manifest bytes differ from the manifest on disk",
            )
            return
        signed_lines = prefix.count(b"\n")
        head = sha256_hex(self.lines[signed_lines - 1].raw) if signed_lines else GENESIS
        if signed_lines != signed_entries or head != fields.get("head"):
            self.fault("manifest-replaced", MANIFEST_NAME, "signed head does not match")
        if len(self.lines) > signed_lines:
            self.fault(
                "unsigned-entries",
                MANIFEST_NAME,
                f"lines {signed_lines}..{len(self.lines) - 1} are not covered by the signature"
                " (interrupted recording: run recovery)",
            )
        header = self.lines[0].entry
        if fields.get("recording_id") != header.get("recording_id"):
            self.fault("manifest-replaced", SIGNATURE_NAME, "signature is for another recording")

    # -- entries ----------------------------------------------------------------------------------

    def check_entries(self) -> None:
        for line in self.lines:
            for item in (line.entry, line.entry.get("salvaged_from")):
                if isinstance(item, dict) and "sha256" in item and "file" in item:
                    self.hash_to_file[str(item["sha256"])] = str(item["file"])
        last_index: dict[str, int] = {}
        last_start: dict[str, tuple[float, str]] = {}
        for line in self._in_seq_order():
            entry = line.entry
            kind = entry.get("type")
            where = str(entry.get("file") or f"{MANIFEST_NAME} line {line.number}")
            self.check_times(entry, where, line.number)
            if kind == "end":
                self.status = str(entry.get("status"))
                self.check_events(entry)
            if kind == "derived":
                self.check_derived_file(entry, where)
            if kind not in _MEDIA_TYPES:
                continue
            track = str(entry.get("track_id"))
            index = entry.get("index")
            previous = last_index.get(track, -1)
            if not isinstance(index, int) or index <= previous:
                self.fault(
                    "entry-reordered",
                    MANIFEST_NAME,
                    f"line {line.number}: {track} index {index} after index {previous}",
                )
            elif index != previous + 1:
                for gone in range(previous + 1, index):
                    self.fault(
                        "segment-missing",
                        f"{track}/{gone:06d}{SEGMENT_SUFFIX}",
                        f"index {gone} is not in the manifest (line {line.number} has {index})",
                    )
            if isinstance(index, int):
                last_index[track] = max(previous, index)
            start = entry.get("start")
            if kind == "segment" and isinstance(start, str):
                t = _parse_time(start)
                before = last_start.get(track)
                if t is not None and before is not None and t < before[0]:
                    self.fault(
                        "backdated",
                        where,
                        f"starts {start}, before the previous segment of {track} ({before[1]})",
                    )
                if t is not None:
                    last_start[track] = (t, start)
            self.segments += kind == "segment"
            if "file" in entry:
                self.check_media_file(entry, where)
            source = entry.get("salvaged_from")
            if isinstance(source, dict):
                self.check_media_file(source, str(source.get("file")))
        self.listed = set(self.hash_to_file.values())

    def _in_seq_order(self) -> list[_Line]:
        # Swapped manifest lines are reported by check_chain; judge the content in the order the
        # entries were written so one swap does not also read as a missing segment.
        seqs = [line.entry.get("seq") for line in self.lines]
        if sorted(s for s in seqs if isinstance(s, int)) == list(range(len(self.lines))):
            return sorted(self.lines, key=lambda line: int(line.entry["seq"]))
        return self.lines

    def check_times(self, entry: dict[str, Any], where: str, number: int) -> None:
        start, end = entry.get("start"), entry.get("end")
        if not isinstance(start, str) or not isinstance(end, str):
            return
        t0, t1 = _parse_time(start), _parse_time(end)
        if t0 is None or t1 is None:
            self.fault("manifest-malformed", MANIFEST_NAME, f"line {number}: bad time")
        elif t1 < t0:
            self.fault("end-before-start", where, f"ends {end}, before its start {start}")

    def check_media_file(self, entry: dict[str, Any], where: str) -> None:
        name = str(entry.get("file"))
        path = self._safe_path(name)
        if path is None:
            self.fault("bad-path", name, "file name leaves the recording folder")
            return
        if not path.is_file():
            self.fault("segment-missing", where, "file listed in the manifest is gone")
            return
        sha256, size = file_sha256(path)
        want_size, want_sha = entry.get("bytes"), entry.get("sha256")
        if sha256 == want_sha and size == want_size:
            return
        other = self.hash_to_file.get(sha256)
        if other is not None and other != name:
            self.fault("segment-reordered", where, f"holds the bytes listed for {other}")
        elif isinstance(want_size, int) and size < want_size:
            self.fault("segment-truncated", where, f"{size} bytes, manifest lists {want_size}")
        elif isinstance(want_size, int) and size > want_size:
            self.fault("segment-modified", where, f"{size} bytes, manifest lists {want_size}")
        else:
            self.fault("segment-modified", where, "SHA-256 differs from the manifest")

    def check_derived_file(self, entry: dict[str, Any], where: str) -> None:
        path = self._safe_path(str(entry.get("file")))
        if path is None:
            self.fault("bad-path", where, "file name leaves the recording folder")
        elif not path.is_file():
            self.fault("derived-missing", where, "derived file listed in the manifest is gone")
        elif file_sha256(path) != (entry.get("sha256"), entry.get("bytes")):
            size = path.stat().st_size
            self.fault(
                "derived-modified",
                where,
                f"SHA-256 differs from the manifest ({size} bytes, manifest lists "
                f"{entry.get('bytes')})",
            )

    def _safe_path(self, name: str) -> Path | None:
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            return None
        return self.folder.joinpath(*pure.parts)

    def check_events(self, end: dict[str, Any]) -> None:
        name = str(end.get("events_file", "events.jsonl"))
        path = self._safe_path(name)
        if path is None or not path.is_file():
            self.fault("events-missing", name, "the timeline events file is gone")
            return
        sha256, size = file_sha256(path)
        if sha256 != end.get("events_sha256") or size != end.get("events_bytes"):
            self.fault("events-modified", name, "SHA-256 differs from the manifest's end entry")

    # -- folder -----------------------------------------------------------------------------------

    def check_files(self) -> None:
        listed = self.listed
        for track_dir in sorted(p for p in self.folder.iterdir() if p.is_dir()):
            for path in sorted(track_dir.iterdir()):
                name = f"{track_dir.name}/{path.name}"
                if name in listed:
                    continue
                if path.name.endswith(PART_SUFFIX) or path.name.endswith(PARTIAL_SUFFIX):
                    self.fault(
                        "unrecovered-part",
                        name,
                        "an open segment left by a crash (run recovery)",
                    )
                elif path.name.endswith(SEGMENT_SUFFIX):
                    self.fault("unlisted-file", name, "segment file not in the manifest")

    def check_recording_json(self) -> None:
        path = self.folder / RECORDING_NAME
        header = self.lines[0].entry
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError):
            self.warnings.append(f"{RECORDING_NAME}: missing or unreadable")
            return
        if document.get("recording_id") != header.get("recording_id"):
            self.fault("manifest-replaced", MANIFEST_NAME, "header names another recording")
        if self.status is None:
            self.warnings.append(
                f"{RECORDING_NAME}: status {document.get('status')!r}, no end entry: unfinished"
            )
            self.status = str(document.get("status"))


def _parse_time(text: str) -> float | None:
    try:
        return parse_iso_utc(text)
    except ValueError:
        return None


def verify_recording(folder: Path, trusted_public_key: bytes | None = None) -> VerifyReport:
    """Verify a recording folder offline.

    ``trusted_public_key`` is the archive's copy of the server key (PEM or raw 32 bytes); without
    it the folder's own ``public_key.pem`` is used, which proves integrity but not origin.
    """
    report = _Verifier(folder, trusted_public_key).run()
    for fault in report.faults:
        logger.info("verify %s: %s", folder, fault)
    return report
