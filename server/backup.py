"""Backup (容灾备份): replicate each closed segment as soon as the manifest lists it, and check fixity.

How this works: a :class:`Replicator` owns one background task. Every ``interval`` seconds it
looks at each recording folder's manifest (a ``stat``; folders whose manifest did not change since
their last complete pass are skipped) and copies to every replica target each file the manifest
lists with a SHA-256 (segments, lost pieces, the composite) that the target does not hold yet,
then the small descriptive files (manifest, signature, public key, status, events). A segment is
therefore in the replica a few seconds after it closes, not only when the hearing ends. Only the
complete lines of the manifest are copied, and only when the replica's manifest is a prefix of
the primary's: a manifest that was rewritten instead of appended to is reported, never copied
over the good replica.

:meth:`Replicator.fixity` (scheduled every ``fixity_interval`` seconds, and on demand through the
API) re-hashes every listed file on the primary and on each target. A damaged or missing primary
file is restored from a target whose copy has the listed hash (the damaged file is moved to a
quarantine folder, not deleted); a missing or damaged replica copy is copied again from a good
primary. What could not be repaired is reported and logged as an error.

Exhibits (:mod:`server.exhibits`) are part of the record too. Their list is the recording's signed
timeline (``events.jsonl``, :mod:`server.exhibit_archive`), never a directory listing: each pass
reads the lines the recorder appended since the last pass (independently of the manifest, so an
exhibit shown during a recess is copied too) and copies each newly registered exhibit file from
``<exhibits_root>/<hearing>/<sha256>`` to every target as ``exhibits/<hearing>/<sha256>``. The
name is the content's hash, so the same file registered twice (or on two recordings of the
hearing) is one key, copied once. Fixity checks every exhibit on the timelines it visits like a
recording file — the SHA-256 is both the file's name and the timeline's entry — restores a bad
primary from a good replica, re-copies a bad replica, and reports each of those and each exhibit
with no good copy anywhere through ``on_event`` (``restore``, ``recopy``, ``unrecoverable``).

Targets (:class:`ReplicaTarget`): :class:`DirectoryTarget` (another disk, an NFS mount) here, and
``server.s3_replica.S3Target`` (S3-compatible object storage through aiobotocore). Keys are the
POSIX paths relative to the recordings root, ``<hearing>/<recording>/<file>``, and
``exhibits/<hearing>/<sha256>`` for exhibits (a hearing id is 16 hex digits, never ``exhibits``).
Hashing, file copies and reading timelines run in threads; the event loop only schedules them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from recorder.manifest import MANIFEST_NAME, file_sha256, fsync_dir
from recorder.session import EVENTS_NAME
from server.exhibit_archive import BUNDLE_FOLDER, distinct, read_exhibits, scan_exhibits
from server.playback import DESCRIPTIVE_FILES, folder_files, safe_relative

__all__ = [
    "DirectoryTarget",
    "FixityReport",
    "ReplicaTarget",
    "Replicator",
    "exhibit_key",
    "recording_folders",
]

logger = logging.getLogger(__name__)

_COPY_CHUNK = 1 << 20


class ReplicaTarget(Protocol):
    """Where copies go. Every method is a coroutine; keys are POSIX relative paths."""

    name: str

    async def size(self, key: str) -> int | None:
        """Stored size of ``key``, or None when absent."""

    async def put(self, key: str, source: Path, data: bytes | None = None) -> None:
        """Store ``source``'s bytes (or ``data``) as ``key``, replacing any earlier copy."""

    async def sha256(self, key: str) -> str | None:
        """Hex SHA-256 of the stored copy (read back in full), or None when absent."""

    async def read(self, key: str) -> bytes | None:
        """The bytes of a small stored file, or None when absent."""

    async def fetch(self, key: str, dest: Path) -> None:
        """Write the stored copy of ``key`` to ``dest``."""

    async def close(self) -> None:
        """Release connections."""


def _copy_durably(source: Path | None, data: bytes | None, dest: Path) -> None:
    """Write ``source``'s bytes (or ``data``) to ``dest`` through a temp file, fsync'd, renamed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".copying")
    with open(tmp, "wb") as out:
        if data is not None:
            out.write(data)
        else:
            assert source is not None
            with open(source, "rb") as f:
                shutil.copyfileobj(f, out, _COPY_CHUNK)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, dest)
    fsync_dir(dest.parent)


class DirectoryTarget:
    """A replica folder mirroring the recordings folder's layout."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"dir:{root}"

    def _path(self, key: str) -> Path:
        pure = safe_relative(key)
        if pure is None:
            raise ValueError(f"unsafe replica key {key!r}")
        return self.root.joinpath(*pure.parts)

    async def size(self, key: str) -> int | None:
        path = self._path(key)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def put(self, key: str, source: Path, data: bytes | None = None) -> None:
        await asyncio.to_thread(_copy_durably, source, data, self._path(key))

    async def sha256(self, key: str) -> str | None:
        path = self._path(key)
        try:
            digest, _ = await asyncio.to_thread(file_sha256, path)
        except FileNotFoundError:
            return None
        return digest

    async def read(self, key: str) -> bytes | None:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError:
            return None

    async def fetch(self, key: str, dest: Path) -> None:
        await asyncio.to_thread(shutil.copyfile, self._path(key), dest)

    async def close(self) -> None:
        return None


def exhibit_key(hearing_id: str, sha256: str) -> str:
    """The replica key of a hearing's exhibit file."""
    return f"{BUNDLE_FOLDER}/{hearing_id}/{sha256}"


def recording_folders(root: Path) -> list[Path]:
    """``<root>/<hearing>/<recording>`` folders holding a manifest (two levels, sorted)."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    for hearing in sorted(os.scandir(root), key=lambda e: e.name):
        if not hearing.is_dir(follow_symlinks=False) or hearing.name.startswith("."):
            continue
        for recording in sorted(os.scandir(hearing.path), key=lambda e: e.name):
            if recording.is_dir(follow_symlinks=False) and os.path.isfile(
                os.path.join(recording.path, MANIFEST_NAME)
            ):
                found.append(Path(recording.path))
    return found


@dataclass
class FixityReport:
    """What one fixity pass found and did."""

    recordings: int = 0
    files: int = 0
    ok: int = 0
    exhibits: int = 0  # distinct exhibit files checked (keys exhibits/<hearing>/<sha256>)
    exhibits_ok: int = 0
    restored: list[str] = field(default_factory=list)  # primary files restored from a replica
    recopied: list[str] = field(default_factory=list)  # "<target> <key>" copied again
    unrecoverable: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)  # every bad or missing copy found
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """Nothing was wrong."""
        return not (self.restored or self.recopied or self.unrecoverable or self.mismatches)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "recordings": self.recordings,
            "files": self.files,
            "ok": self.ok,
            "exhibits": self.exhibits,
            "exhibits_ok": self.exhibits_ok,
            "restored": self.restored,
            "recopied": self.recopied,
            "unrecoverable": self.unrecoverable,
            "mismatches": self.mismatches,
            "seconds": round(self.seconds, 3),
            "clean": self.clean,
        }


@dataclass
class _FolderState:
    stamp: tuple[int, int] | None = None  # manifest (size, mtime_ns) of the last complete pass
    descriptive: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (size, mtime)
    manifest_size: dict[str, int] = field(default_factory=dict)  # target -> replicated bytes
    events_offset: int = 0  # bytes of events.jsonl already read for exhibits
    events_lines: int = 0
    exhibits: dict[str, int] = field(default_factory=dict)  # sha256 -> bytes, not yet everywhere


class Replicator:
    """Copies closed recording files and exhibits to replica targets and checks fixity; see the
    module doc. Exhibits are left out when ``exhibits_root`` is None.

    ``on_event(action, detail)`` is called for each restore, each exhibit re-copied or lost, and
    each fixity pass (the server writes them to the audit log).
    """

    def __init__(
        self,
        recordings_root: Path,
        targets: list[ReplicaTarget],
        *,
        interval: float = 5.0,
        fixity_interval: float = 0.0,
        quarantine: Path | None = None,
        exhibits_root: Path | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.root = recordings_root
        self.exhibits_root = exhibits_root
        self.targets = targets
        self.interval = interval
        self.fixity_interval = fixity_interval
        self.quarantine = quarantine or recordings_root.parent / "quarantine"
        self.on_event = on_event
        self._done: dict[str, set[tuple[str, str]]] = {t.name: set() for t in targets}
        self._folders: dict[Path, _FolderState] = {}
        self._task: asyncio.Task[None] | None = None
        self._fixity_lock = asyncio.Lock()
        self.copied = 0
        self.exhibits_copied = 0
        self.last_scan: float | None = None
        self.last_fixity: FixityReport | None = None
        self.problems: list[str] = []

    # -- lifetime -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background task (replication every ``interval``, fixity on schedule)."""
        if self._task is None and self.targets:
            self._task = asyncio.create_task(self._run(), name="backup-replicator")

    async def stop(self) -> None:
        """Cancel and await the background task, then close the targets."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for target in self.targets:
            await target.close()

    async def _run(self) -> None:
        next_fixity = time.monotonic() + self.fixity_interval if self.fixity_interval else None
        while True:
            try:
                await self.replicate_once()
                if next_fixity is not None and time.monotonic() >= next_fixity:
                    await self.fixity()
                    next_fixity = time.monotonic() + self.fixity_interval
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("backup: replication pass failed")
            await asyncio.sleep(self.interval)

    def status(self) -> dict[str, Any]:
        """For the API: targets, counters and the last fixity report."""
        return {
            "targets": [t.name for t in self.targets],
            "interval": self.interval,
            "fixity_interval": self.fixity_interval,
            "copied": self.copied,
            "exhibits": self.exhibits_root is not None,
            "exhibits_copied": self.exhibits_copied,
            "last_scan": self.last_scan,
            "problems": self.problems[-20:],
            "last_fixity": self.last_fixity.as_dict() if self.last_fixity else None,
        }

    # -- replication ------------------------------------------------------------------------------

    def _key(self, folder: Path, name: str) -> str:
        return f"{folder.relative_to(self.root).as_posix()}/{name}"

    async def replicate_once(self) -> int:
        """One pass over every recording folder; returns the number of files copied."""
        folders = await asyncio.to_thread(recording_folders, self.root)
        copied = 0
        for folder in folders:
            try:
                copied += await self._replicate_folder(folder)
            except Exception as exc:
                self._problem(f"{folder}: {type(exc).__name__}: {exc}")
                logger.exception("backup: replicating %s failed", folder)
        self.copied += copied
        self.last_scan = time.time()
        return copied

    async def _replicate_folder(self, folder: Path) -> int:
        state = self._folders.setdefault(folder, _FolderState())
        copied = await self._replicate_recording(folder, state)
        return copied + await self._replicate_exhibits(folder, state)

    async def _replicate_recording(self, folder: Path, state: _FolderState) -> int:
        stat = (folder / MANIFEST_NAME).stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        if state.stamp == stamp:
            return 0
        files = await asyncio.to_thread(folder_files, folder, hash_descriptive=False)
        copied, complete = 0, True
        for info in files:
            if info.sha256 is None or info.name in DESCRIPTIVE_FILES:
                continue
            key = self._key(folder, info.name)
            path = folder / info.name
            for target in self.targets:
                done = self._done[target.name]
                if (key, info.sha256) in done:
                    continue
                if not path.is_file():
                    complete = False
                    continue
                if await target.size(key) != info.bytes:
                    await target.put(key, path)
                    copied += 1
                    logger.debug("backup: %s -> %s", key, target.name)
                done.add((key, info.sha256))
        for name in DESCRIPTIVE_FILES:
            copied += await self._replicate_descriptive(folder, name, state)
        if complete:
            state.stamp = stamp
        return copied

    async def _replicate_descriptive(self, folder: Path, name: str, state: _FolderState) -> int:
        path = folder / name
        try:
            stat = path.stat()
        except FileNotFoundError:
            return 0
        key = self._key(folder, name)
        stamp = (stat.st_size, stat.st_mtime_ns)
        if state.descriptive.get(key) == stamp:
            return 0
        data = await asyncio.to_thread(path.read_bytes)
        copied = 0
        for target in self.targets:
            payload = data
            if name == MANIFEST_NAME:
                payload = data[: data.rfind(b"\n") + 1]
                known = state.manifest_size.get(target.name)
                if known is None:
                    stored = await target.read(key)
                    known = 0 if stored is None else len(stored)
                    if stored is not None and not payload.startswith(stored):
                        self._problem(
                            f"{key}: the primary manifest is not an extension of the replica's "
                            f"on {target.name}: not copied (check both with verify)"
                        )
                        continue
                if len(payload) == known:
                    continue
                state.manifest_size[target.name] = len(payload)
            await target.put(key, path, payload)
            copied += 1
        state.descriptive[key] = stamp
        return copied

    async def _replicate_exhibits(self, folder: Path, state: _FolderState) -> int:
        """Copy the exhibits registered on ``folder``'s timeline that a target lacks."""
        if self.exhibits_root is None:
            return 0
        events = folder / EVENTS_NAME
        try:
            events_size = events.stat().st_size
        except FileNotFoundError:
            events_size = 0
        if events_size < state.events_offset:  # rewritten, not appended to: read it all again
            state.events_offset = state.events_lines = 0
        if events_size > state.events_offset:
            scan = await asyncio.to_thread(
                scan_exhibits, events, state.events_offset, state.events_lines
            )
            for problem in scan.problems:
                self._problem(f"{events}: {problem}")
            for exhibit in scan.exhibits:
                state.exhibits.setdefault(exhibit.sha256, exhibit.bytes)
            state.events_offset, state.events_lines = scan.offset, scan.lines
        hearing_id = folder.parent.name
        copied = 0
        for sha256, size in list(state.exhibits.items()):
            key = exhibit_key(hearing_id, sha256)
            path = self.exhibits_root / hearing_id / sha256
            complete = True
            for target in self.targets:
                done = self._done[target.name]
                if (key, sha256) in done:
                    continue
                if not path.is_file():  # gone from the primary: fixity's to report and restore
                    complete = False
                    continue
                if await target.size(key) != size:
                    await target.put(key, path)
                    copied += 1
                    logger.debug("backup: exhibit %s -> %s", key, target.name)
                done.add((key, sha256))
            if complete:
                del state.exhibits[sha256]
        self.exhibits_copied += copied
        return copied

    def _problem(self, text: str) -> None:
        if text not in self.problems[-20:]:
            logger.error("backup: %s", text)
        self.problems.append(text)
        del self.problems[:-100]

    # -- fixity -------------------------------------------------------------------------------------

    async def fixity(self, folders: list[Path] | None = None) -> FixityReport:
        """Re-hash primary and replicas, restore and re-copy; see the module docstring."""
        async with self._fixity_lock:
            started = time.monotonic()
            report = FixityReport()
            if folders is None:
                folders = await asyncio.to_thread(recording_folders, self.root)
            checked: set[str] = set()  # exhibit keys: a hearing's recordings may share exhibits
            for folder in folders:
                report.recordings += 1
                try:
                    await self._fixity_folder(folder, report)
                except Exception as exc:
                    report.unrecoverable.append(f"{folder.name}: {type(exc).__name__}: {exc}")
                    logger.exception("backup: fixity of %s failed", folder)
                if self.exhibits_root is None:
                    continue
                try:  # after _fixity_folder: it brings back a lost events.jsonl
                    await self._fixity_exhibits(folder, report, checked)
                except Exception as exc:
                    report.unrecoverable.append(
                        f"{folder.name} exhibits: {type(exc).__name__}: {exc}"
                    )
                    logger.exception("backup: fixity of the exhibits of %s failed", folder)
            report.seconds = time.monotonic() - started
            self.last_fixity = report
            level = logging.INFO if report.clean else logging.WARNING
            logger.log(level, "backup: fixity %s", report.as_dict())
            if self.on_event is not None:
                self.on_event("fixity", report.as_dict())
            return report

    async def _fixity_folder(self, folder: Path, report: FixityReport) -> None:
        files = await asyncio.to_thread(folder_files, folder, hash_descriptive=False)
        for info in files:
            if info.sha256 is None or info.name in DESCRIPTIVE_FILES:
                continue
            report.files += 1
            key = self._key(folder, info.name)
            path = folder / info.name
            primary_ok = await self._primary_ok(path, info.sha256)
            good: list[ReplicaTarget] = []
            bad: list[ReplicaTarget] = []
            for target in self.targets:
                digest = await target.sha256(key)
                if digest == info.sha256:
                    good.append(target)
                else:
                    state = "missing" if digest is None else "modified"
                    report.mismatches.append(f"{target.name} {key}: {state}")
                    bad.append(target)
            if not primary_ok:
                report.mismatches.append(f"primary {key}: damaged or missing")
                if not good:
                    report.unrecoverable.append(key)
                    logger.error("backup: %s is damaged and no replica holds a good copy", key)
                    continue
                await self._restore(path, key, info.sha256, good[0], self._context(folder))
                report.restored.append(key)
            for target in bad:
                self._done[target.name].discard((key, info.sha256))
                await target.put(key, path)
                self._done[target.name].add((key, info.sha256))
                report.recopied.append(f"{target.name} {key}")
            if primary_ok and not bad:
                report.ok += 1
        for name in DESCRIPTIVE_FILES:  # a lost descriptive file comes back from a replica
            path = folder / name
            if path.exists():
                continue
            for target in self.targets:
                key = self._key(folder, name)
                if await target.size(key) is not None:
                    await target.fetch(key, path)
                    report.restored.append(key)
                    break

    async def _fixity_exhibits(self, folder: Path, report: FixityReport, checked: set[str]) -> None:
        """Check each exhibit on ``folder``'s timeline, primary and replicas; see the module doc."""
        assert self.exhibits_root is not None
        exhibits, problems = await asyncio.to_thread(read_exhibits, folder / EVENTS_NAME)
        for problem in problems:
            logger.warning("backup: %s: %s", folder / EVENTS_NAME, problem)
        hearing_id = folder.parent.name
        for exhibit in distinct(exhibits):
            key = exhibit_key(hearing_id, exhibit.sha256)
            if key in checked:
                continue
            checked.add(key)
            report.exhibits += 1
            path = self.exhibits_root / hearing_id / exhibit.sha256
            what = f"exhibit {exhibit.name!r} ({exhibit.sha256}) of hearing {hearing_id}"
            context = {**self._context(folder), "kind": "exhibit", "name": exhibit.name}
            primary = await self._primary_state(path, exhibit.sha256)
            good: list[ReplicaTarget] = []
            bad: list[tuple[ReplicaTarget, str]] = []
            for target in self.targets:
                digest = await target.sha256(key)
                if digest == exhibit.sha256:
                    good.append(target)
                else:
                    state = "missing" if digest is None else "modified"
                    report.mismatches.append(f"{target.name} {key}: {state}")
                    bad.append((target, state))
            if primary != "ok":
                report.mismatches.append(f"primary {key}: {primary}")
                if not good:
                    report.unrecoverable.append(key)
                    replicas = ", ".join(f"{t.name} {state}" for t, state in bad) or "none"
                    message = (
                        f"{what}: the primary copy is {primary} and no replica holds a good copy "
                        f"(replicas: {replicas})"
                    )
                    logger.error("backup: %s", message)
                    self._event(
                        "unrecoverable",
                        {"key": key, "sha256": exhibit.sha256, **context, "message": message},
                    )
                    continue
                await self._restore(path, key, exhibit.sha256, good[0], context, what)
                report.restored.append(key)
            for target, state in bad:
                self._done[target.name].discard((key, exhibit.sha256))
                await target.put(key, path)
                self._done[target.name].add((key, exhibit.sha256))
                report.recopied.append(f"{target.name} {key}")
                message = f"{what}: the copy on {target.name} was {state}, copied again"
                logger.warning("backup: %s", message)
                self._event(
                    "recopy",
                    {
                        "key": key,
                        "sha256": exhibit.sha256,
                        "to": target.name,
                        **context,
                        "message": message,
                    },
                )
            if primary == "ok" and not bad:
                report.exhibits_ok += 1

    def _context(self, folder: Path) -> dict[str, Any]:
        """The audit fields of events about ``folder``'s files."""
        return {"kind": "recording", "hearing_id": folder.parent.name, "recording_id": folder.name}

    def _event(self, action: str, detail: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(action, detail)

    async def _primary_state(self, path: Path, sha256: str) -> str:
        """``ok``, ``missing`` or ``modified``."""
        try:
            digest, _ = await asyncio.to_thread(file_sha256, path)
        except (FileNotFoundError, IsADirectoryError):
            return "missing"
        return "ok" if digest == sha256 else "modified"

    async def _primary_ok(self, path: Path, sha256: str) -> bool:
        return await self._primary_state(path, sha256) == "ok"

    async def _restore(
        self,
        path: Path,
        key: str,
        sha256: str,
        source: ReplicaTarget,
        context: dict[str, Any] | None = None,
        what: str | None = None,
    ) -> None:
        tmp = path.with_name(path.name + ".restoring")
        path.parent.mkdir(parents=True, exist_ok=True)
        await source.fetch(key, tmp)
        digest, _ = await asyncio.to_thread(file_sha256, tmp)
        if digest != sha256:
            tmp.unlink(missing_ok=True)
            raise OSError(f"{source.name} copy of {key} changed while restoring")

        def swap() -> str | None:
            moved = None
            if path.exists():
                aside = self.quarantine / f"{key}.{int(time.time())}"
                aside.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, aside)
                moved = str(aside)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_dir(path.parent)
            return moved

        moved = await asyncio.to_thread(swap)
        message = (
            f"{what or key}: the primary copy was "
            + (f"damaged (kept as {moved})" if moved else "missing")
            + f", restored from {source.name}"
        )
        logger.warning("backup: %s", message)
        self._event(
            "restore",
            {
                "key": key,
                "sha256": sha256,
                "from": source.name,
                "quarantined": moved,
                **(context or {}),
                "message": message,
            },
        )
