"""The chain-of-custody audit log: who listed, played, downloaded, exported or verified what, when.

How this works: every archive access appends one row to ``audit_log`` (:class:`~server.db.AuditRow`).
Rows are numbered ``seq`` = 0, 1, 2... and hash-chained like the recording manifests: a row's
``hash`` is the SHA-256 of its canonical JSON (every field, ``seq`` and ``prev`` included) and its
``prev`` is the previous row's ``hash`` (``"0" * 64`` for row 0). :meth:`AuditLog.verify` walks the
rows in ``seq`` order and reports a changed row (its hash no longer recomputes), a deleted row (a
hole in ``seq``, or a ``prev`` that names no row), and a moved or re-inserted row (a broken
``prev``). Deleting the newest rows leaves a valid, shorter chain; to catch that, every append
also rewrites a small head file (``audit-head.json`` in the data folder) signed with the server's
Ed25519 recording key, and ``verify`` requires the chain to still hold the signed head row.

Appends are serialised: a process-wide lock, plus ``pg_advisory_xact_lock`` on PostgreSQL so that
several servers sharing one database never hand out the same ``seq`` (the primary key refuses a
duplicate anyway; the append is then retried). Everything here blocks: call it with
``asyncio.to_thread``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from recorder.manifest import (
    ManifestSigner,
    atomic_write,
    canonical_json,
    load_public_key,
    verify_signature,
)
from server.db import AuditRow, Database, utcnow

__all__ = ["GENESIS", "AuditEntry", "AuditLog", "AuditReport", "entry_hash"]

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
HEAD_FILE = "audit-head.json"
_HASH_CONTEXT = b"tingshen-audit-v1\n"
_HEAD_CONTEXT = b"tingshen-audit-head-v1\n"
_LOCK_KEY = 0x7473_6175_6469_7431  # pg_advisory_xact_lock key ("tsaudit1"), fits a signed bigint
_RETRIES = 8
_PAGE = 2000
_LIMITS = {"actor": 160, "role": 32, "action": 32, "recording_id": 64, "hearing_id": 32}
_MAX_TARGET = 1024
_MAX_DETAIL_BYTES = 16 * 1024


@dataclass(frozen=True)
class AuditEntry:
    """One audit row as plain values (``at`` in ISO 8601 UTC with milliseconds)."""

    seq: int
    at: str
    actor: str
    role: str
    action: str
    recording_id: str | None
    hearing_id: str | None
    target: str | None
    sha256: str | None
    detail: dict[str, Any]
    prev: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """The entry as JSON-able values (what the API and export bundles carry)."""
        return asdict(self)


@dataclass
class AuditReport:
    """What :meth:`AuditLog.verify` found: ``ok`` when ``faults`` is empty."""

    ok: bool
    entries: int
    head: str
    faults: list[str] = field(default_factory=list)
    head_checked: bool = False


def entry_hash(fields: dict[str, Any]) -> str:
    """The hash of an entry: SHA-256 over a context string and the canonical JSON of every field
    except ``hash`` itself. Anyone holding an exported ``audit.jsonl`` can recompute it."""
    body = {k: v for k, v in fields.items() if k != "hash"}
    return hashlib.sha256(_HASH_CONTEXT + canonical_json(body)).hexdigest()


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    stamp = value.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=int(row.seq),
        at=_iso(row.at),
        actor=row.actor,
        role=row.role,
        action=row.action,
        recording_id=row.recording_id,
        hearing_id=row.hearing_id,
        target=row.target,
        sha256=row.sha256,
        detail=dict(row.detail or {}),
        prev=row.prev,
        hash=row.hash,
    )


def _clip(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    return value.replace("\x00", "")[:limit]


class AuditLog:
    """Appends to and checks the ``audit_log`` table of ``db``.

    With ``head_file`` and ``signer``, each append also writes the signed head (see the module
    docstring), and :meth:`verify` checks it with ``signer``'s public key.
    """

    def __init__(
        self,
        db: Database,
        head_file: Path | None = None,
        signer: ManifestSigner | None = None,
    ) -> None:
        self.db = db
        self.head_file = head_file
        self.signer = signer
        self._lock = threading.Lock()

    # -- writing -----------------------------------------------------------------------------

    def append(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        recording_id: str | None = None,
        hearing_id: str | None = None,
        target: str | None = None,
        sha256: str | None = None,
        detail: dict[str, Any] | None = None,
        at: dt.datetime | None = None,
    ) -> AuditEntry:
        """Append one entry and return it (with its ``seq``, ``prev`` and ``hash``)."""
        moment = at or utcnow()
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        body = json.loads(json.dumps(detail or {}, ensure_ascii=False, default=str))
        if len(canonical_json(body)) > _MAX_DETAIL_BYTES:
            body = {"truncated": True}
        values: dict[str, Any] = {
            "at": _iso(moment),
            "actor": _clip(actor, _LIMITS["actor"]) or "?",
            "role": _clip(role, _LIMITS["role"]) or "?",
            "action": _clip(action, _LIMITS["action"]) or "?",
            "recording_id": _clip(recording_id, _LIMITS["recording_id"]),
            "hearing_id": _clip(hearing_id, _LIMITS["hearing_id"]),
            "target": _clip(target, _MAX_TARGET),
            "sha256": _clip(sha256, 64),
            "detail": body,
        }
        with self._lock:
            for attempt in range(_RETRIES):
                try:
                    entry = self._append_once(values, moment)
                except IntegrityError:
                    if attempt == _RETRIES - 1:
                        raise
                    logger.info("audit: seq taken by another writer, retrying")
                    continue
                self._write_head(entry)
                return entry
        raise AssertionError("unreachable")  # pragma: no cover

    def _append_once(self, values: dict[str, Any], moment: dt.datetime) -> AuditEntry:
        with self.db.session() as s:
            if s.get_bind().dialect.name == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            last = s.execute(
                select(AuditRow.seq, AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1)
            ).first()
            seq = 0 if last is None else int(last[0]) + 1
            prev = GENESIS if last is None else str(last[1])
            fields = {"seq": seq, **values, "prev": prev}
            digest = entry_hash(fields)
            row = AuditRow(
                seq=seq,
                at=moment,
                actor=values["actor"],
                role=values["role"],
                action=values["action"],
                recording_id=values["recording_id"],
                hearing_id=values["hearing_id"],
                target=values["target"],
                sha256=values["sha256"],
                detail=values["detail"],
                prev=prev,
                hash=digest,
            )
            s.add(row)
            s.flush()
        return AuditEntry(**fields, hash=digest)

    def _write_head(self, entry: AuditEntry) -> None:
        if self.head_file is None or self.signer is None:
            return
        fields = {"seq": entry.seq, "hash": entry.hash, "at": entry.at}
        signature = self.signer.sign(_HEAD_CONTEXT + canonical_json(fields))
        document = dict(fields, signature=base64.b64encode(signature).decode("ascii"))
        try:
            atomic_write(self.head_file, canonical_json(document))
        except OSError:
            logger.exception("audit: cannot write the signed head %s", self.head_file)

    # -- reading -----------------------------------------------------------------------------

    def entries(
        self,
        *,
        recording_id: str | None = None,
        action: str | None = None,
        after_seq: int = -1,
        limit: int = 1000,
    ) -> list[AuditEntry]:
        """Entries in chain order, optionally of one recording or one action."""
        stmt = select(AuditRow).where(AuditRow.seq > after_seq)
        if recording_id is not None:
            stmt = stmt.where(AuditRow.recording_id == recording_id)
        if action is not None:
            stmt = stmt.where(AuditRow.action == action)
        stmt = stmt.order_by(AuditRow.seq).limit(max(1, min(limit, 100_000)))
        with self.db.session() as s:
            return [_entry(row) for row in s.scalars(stmt)]

    def count(self) -> int:
        """Number of entries."""
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(AuditRow)) or 0)

    def _walk(self) -> Iterator[AuditEntry]:
        after = -1
        while True:
            page = self.entries(after_seq=after, limit=_PAGE)
            yield from page
            if len(page) < _PAGE:
                return
            after = page[-1].seq

    # -- checking ----------------------------------------------------------------------------

    def verify(self) -> AuditReport:
        """Walk the whole chain; see the module docstring for what is detected."""
        faults: list[str] = []
        expected_seq, prev, count = 0, GENESIS, 0
        hashes: dict[int, str] = {}
        for entry in self._walk():
            count += 1
            if entry.seq != expected_seq:
                missing = (
                    f"{expected_seq}"
                    if entry.seq == expected_seq + 1
                    else f"{expected_seq}..{entry.seq - 1}"
                )
                faults.append(f"entry-missing: seq {missing}: deleted from the log")
            if entry.prev != prev:
                faults.append(
                    f"chain-broken: seq {entry.seq}: prev is not the hash of the entry before it"
                    " (an entry was removed, inserted or moved)"
                )
            recomputed = entry_hash({k: v for k, v in entry.as_dict().items() if k != "hash"})
            if recomputed != entry.hash:
                faults.append(f"entry-altered: seq {entry.seq}: content does not match its hash")
            hashes[entry.seq] = entry.hash
            prev, expected_seq = entry.hash, entry.seq + 1
        report = AuditReport(ok=False, entries=count, head=prev, faults=faults)
        self._check_head(report, hashes)
        report.ok = not report.faults
        for fault in report.faults:
            logger.warning("audit verify: %s", fault)
        return report

    def _check_head(self, report: AuditReport, hashes: dict[int, str]) -> None:
        if self.head_file is None or not self.head_file.is_file():
            return
        try:
            document = json.loads(self.head_file.read_bytes())
            fields = {k: document[k] for k in ("seq", "hash", "at")}
            signature = base64.b64decode(document["signature"], validate=True)
        except (OSError, ValueError, KeyError, TypeError):
            report.faults.append(f"head-invalid: {self.head_file.name}: unreadable")
            return
        report.head_checked = True
        if self.signer is not None:
            key = load_public_key(self.signer.public_key_pem())
            if not verify_signature(key, signature, _HEAD_CONTEXT + canonical_json(fields)):
                report.faults.append(f"head-invalid: {self.head_file.name}: bad signature")
                return
        seq = fields["seq"]
        if not isinstance(seq, int) or hashes.get(seq) != fields["hash"]:
            report.faults.append(
                f"entries-truncated: the signed head (seq {seq}) is not in the log:"
                " its newest entries were deleted or replaced"
            )
