"""The application's long-lived services, reachable from handlers through one typed `web.AppKey`."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiortc import RTCIceServer
from aiortc.contrib.media import MediaRelay
from sqlalchemy import delete

from server import catalog
from server.db import AdmissionRow, Database, HearingRow, utcnow
from server.live import LiveHearing
from server.recording import HearingRecorder, load_signer, recover_interrupted
from server.settings import Court, Settings
from signaling import messages
from signaling.errors import ProtocolError
from signaling.hearing import (
    CONSULTATION_ROLES,
    Admission,
    Hearing,
    HearingKind,
    HearingState,
    RecordingPaused,
)
from signaling.hearing import Court as ShownCourt
from signaling.ratelimit import TokenBucket
from signaling.roles import Role
from signaling.tokens import TokenAuthority

logger = logging.getLogger(__name__)

Sender = Callable[[str], Awaitable[None]]
Closer = Callable[[str], Awaitable[None]]
LiveHearingT = LiveHearing

SECRET_FILE = "secret.key"
ADMIN_TOKEN_FILE = "admin.token"
ADMIN_TOKEN_TTL = 10 * 365 * 24 * 3600.0
#: A hearing's consultation room is `<hearing id>` + this: not hex, so never a hearing id.
CONSULTATION_SUFFIX = "consult"


def _write_private(path: Path, data: bytes) -> None:
    """Create a file readable by its owner only (never world-readable, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def load_or_create_secret(data: Path) -> bytes:
    path = data / SECRET_FILE
    if not path.exists():
        _write_private(path, secrets.token_bytes(32))
    secret = path.read_bytes()
    if len(secret) < 32:
        raise RuntimeError(f"{path} is damaged (shorter than 32 bytes)")
    return secret


def ensure_admin_token(data: Path, tokens: TokenAuthority) -> Path:
    """On first start: the operator's admin credential, a signed token in the data folder."""
    path = data / ADMIN_TOKEN_FILE
    if not path.exists():
        token = tokens.issue_admin("admin", time.time(), ADMIN_TOKEN_TTL, Role.admin)
        _write_private(path, token.encode())
        logger.info("created the admin credential %s", path)
    return path


class DatabaseHearingStore:
    """A running hearing's state, pause and admissions in the database (`live.HearingStore`).

    Never touches a closed hearing: `Services.end_hearing` marks it closed first, and a write that
    was on its way must not open it again or leave an admission behind.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def save_admission(self, hearing_id: str, key: str, admission: Admission | None) -> None:
        def store() -> None:
            with self.db.session() as s:
                hearing = s.get(HearingRow, hearing_id)
                row = s.get(AdmissionRow, (hearing_id, key))
                if admission is None or hearing is None or hearing.state == HearingState.closed:
                    if row is not None:
                        s.delete(row)
                elif row is None:
                    s.add(
                        AdmissionRow(
                            hearing_id=hearing_id,
                            participant_key=key,
                            admitted_at=utcnow(),
                            silenced=admission.silenced,
                        )
                    )
                else:
                    row.silenced = admission.silenced

        await asyncio.to_thread(store)

    async def save_state(
        self, hearing_id: str, state: HearingState, pause: RecordingPaused | None
    ) -> None:
        def store() -> None:
            with self.db.session() as s:
                row = s.get(HearingRow, hearing_id)
                if row is None or row.state == HearingState.closed:
                    return
                row.state = state.value
                row.pause_reason = pause.reason if pause is not None else None
                row.paused_by = pause.by if pause is not None else None
                row.paused_by_name = pause.by_name if pause is not None else None

        await asyncio.to_thread(store)


def _restored_pause(row: HearingRow) -> RecordingPaused | None:
    """The pause in force of a hearing that was paused when the server stopped."""
    if row.state != HearingState.paused:
        return None
    if row.pause_reason not in messages.PAUSE_REASONS:
        # Never written so by this server; stay paused (not recording) rather than guess open.
        logger.error("hearing %s: paused without a lawful reason in the database", row.id)
        return RecordingPaused("recess", row.paused_by or "?", row.paused_by_name or "?")
    return RecordingPaused(row.pause_reason, row.paused_by or "?", row.paused_by_name or "?")


class Services:
    """Settings, database, token authority and the hearings in progress."""

    def __init__(self, settings: Settings, courts: list[Court]) -> None:
        self.settings = settings
        self.courts = {c.code: c for c in courts}
        #: The same courts as a hearing shows them on participants (code and display names).
        self.court_names = {c.code: ShownCourt(c.code, c.name, c.name_en) for c in courts}
        self.default_court = next((c for c in courts if c.level == "intermediate"), courts[0]).code
        settings.data.mkdir(parents=True, exist_ok=True)
        settings.recordings_dir.mkdir(parents=True, exist_ok=True)
        self.tokens = TokenAuthority(load_or_create_secret(settings.data))
        self.admin_token_path = ensure_admin_token(settings.data, self.tokens)
        self.signer = load_signer(settings.data)
        self.db = Database(settings.db_url)
        self.store = DatabaseHearingStore(self.db)
        self.live: dict[str, LiveHearing] = {}
        self._index_tasks: set[asyncio.Task[None]] = set()
        self._revoked: set[str] = set()
        #: join-code attempts per client address (brute-force guard of POST /api/join-codes)
        self.code_buckets: dict[str, TokenBucket] = {}
        self._renders: asyncio.Queue[Path] = asyncio.Queue()
        self._render_task: asyncio.Task[None] | None = None
        self._live_lock = asyncio.Lock()
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self.ice_servers = [
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
            for s in settings.ice_servers
        ]
        self.wire_ice_servers = [
            messages.IceServer(tuple(s.urls), s.username, s.credential)
            for s in settings.ice_servers
        ]

    async def open(self) -> None:
        """Before serving: migrate the database, close recordings a crash left open, index them."""
        await asyncio.to_thread(self.db.migrate)
        recovered = await asyncio.to_thread(
            recover_interrupted, self.settings.recordings_dir, self.signer
        )
        if recovered:
            logger.warning("%d interrupted recording(s) closed after a crash", len(recovered))
        report = await asyncio.to_thread(catalog.reindex_all, self.db, self.settings.recordings_dir)
        logger.info("catalog: %s", report)

    def render_later(self, folder: Path) -> None:
        """Queue the composite render of a finished recording (one at a time, niced subprocess).

        A subprocess, not a thread: decoding and encoding a whole hearing must not hold the GIL
        (or a core at normal priority) while other hearings' media run on this event loop.
        """
        if not self.settings.render_after_hearing:
            return
        self._renders.put_nowait(folder)
        if self._render_task is None or self._render_task.done():
            self._render_task = asyncio.create_task(self._render_worker())

    async def _render_worker(self) -> None:
        while not self._renders.empty():
            folder = self._renders.get_nowait()
            cmd = [
                sys.executable,
                "-m",
                "server.cli",
                "archive",
                "render",
                str(folder),
                "--data",
                str(self.settings.data),
                "--quiet",
            ]
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                preexec_fn=lambda: os.nice(10),
            )
            try:
                out, err = await proc.communicate()
            except asyncio.CancelledError:
                proc.kill()
                await proc.wait()
                raise
            if proc.returncode == 0:
                logger.info("composite rendered: %s", out.decode(errors="replace").strip())
            else:
                logger.error("composite render of %s failed: %s", folder, err.decode()[-2000:])

    def index_later(self, folder: Path) -> None:
        """Re-index one recording folder in a thread (after a start, a stop, or every 10 s)."""

        async def run() -> None:
            try:
                await asyncio.to_thread(
                    catalog.index_recording, self.db, self.settings.recordings_dir, folder
                )
            except Exception:
                logger.exception("catalog: indexing %s failed", folder)

        task = asyncio.create_task(run())
        self._index_tasks.add(task)
        task.add_done_callback(self._index_tasks.discard)

    async def live_hearing(self, hearing_id: str) -> LiveHearing:
        """The running hearing, brought up from the database on its first join."""
        async with self._live_lock:
            live = self.live.get(hearing_id)
            if live is not None:
                return live
            if hearing_id.endswith(CONSULTATION_SUFFIX):
                return await self._consultation_room(hearing_id)
            row: HearingRow | None = await asyncio.to_thread(self.db.get_hearing, hearing_id)
            if row is None:
                raise ProtocolError("hearing-not-found", "no such hearing", fatal=True)
            if row.state == HearingState.closed:
                raise ProtocolError("hearing-ended", "this hearing has ended", fatal=True)
            hearing = Hearing(
                row.id,
                row.court,
                row.case_number,
                HearingKind(row.kind),
                HearingState(row.state),
            )
            hearing.auto_admit = frozenset(Role(r) for r in row.auto_admit.split(",") if r)
            hearing.courts = self.court_names
            hearing.sealed = bool(row.sealed)
            # After a restart: who was in, and whether the hearing was paused (not a new start).
            admissions = await asyncio.to_thread(self.db.admissions_of, hearing_id)
            pause = _restored_pause(row)
            hearing.restore(
                [Admission(a.participant_key, a.silenced) for a in admissions], pause=pause
            )
            relay = MediaRelay() if self.settings.relay_mode == "mediarelay" else None
            # Recording starts before anyone is admitted: no media can arrive unrecorded.
            recorder = HearingRecorder(
                self.settings.recordings_dir, hearing_id, self.signer, on_change=self.index_later
            )
            try:
                await recorder.start()
            except OSError:
                logger.exception("hearing %s: recording cannot start", hearing_id)
                raise ProtocolError(
                    "internal", "the recording cannot start; the hearing cannot open", fatal=True
                ) from None
            if hearing.state is not HearingState.scheduled:
                # The server stopped (crashed) while the hearing was open: this recording goes on
                # from there, and a pause for a non-public part is still in force.
                restart: dict[str, object] = {
                    "state": hearing.state.value,
                    "admitted": len(admissions),
                }
                if pause is not None:
                    restart["pauseReason"] = pause.reason
                recorder.event("server-restart", restart)
                if pause is not None:
                    recorder.pause(pause.reason, f"{pause.by_name} ({pause.by})")
            live = LiveHearing(
                hearing,
                self.ice_servers,
                self.wire_ice_servers,
                self.settings.keyframe_interval,
                relay=relay,
                recorder=recorder,
                sample_interval=self.settings.network_sample_seconds,
                reconnect_grace=self.settings.reconnect_grace_seconds,
            )
            live.audio_redundancy = self.settings.audio_redundancy
            live.on_revoke = self.revoke
            live.store = self.store
            if self.settings.turn_secret and self.settings.turn_urls:
                live.turn = (
                    self.settings.turn_secret.encode(),
                    tuple(self.settings.turn_urls),
                    float(self.settings.turn_ttl_seconds),
                )
            self.live[hearing_id] = live
            return live

    async def revoke(self, key: str) -> None:
        """An ejected invitation: its token and code stop working now and after a restart."""
        self._revoked.add(key)

        def store() -> None:
            from server.db import InviteRow, utcnow

            with self.db.session() as s:
                invite = s.get(InviteRow, key)
                if invite is not None and invite.revoked_at is None:
                    invite.revoked_at = utcnow()

        await asyncio.to_thread(store)

    async def is_revoked(self, key: str) -> bool:
        if key in self._revoked:
            return True

        def load() -> bool:
            from server.db import InviteRow

            with self.db.session() as s:
                invite = s.get(InviteRow, key)
                return invite is not None and invite.revoked_at is not None

        if await asyncio.to_thread(load):
            self._revoked.add(key)
            return True
        return False

    async def _consultation_room(self, room_id: str) -> LiveHearing:
        """The private room linked to a hearing: no recorder, only defence and defendant.

        Both are true by construction: this is the only place such a room is made, it is given no
        recorder, and the hearing core refuses every other role at `join`.
        """
        parent_id = room_id.removesuffix(CONSULTATION_SUFFIX)
        row = await asyncio.to_thread(self.db.get_hearing, parent_id)
        if row is None or row.state == HearingState.closed:
            raise ProtocolError("hearing-not-found", "no such hearing", fatal=True)
        hearing = Hearing(room_id, row.court, row.case_number, HearingKind.consultation)
        hearing.auto_admit = CONSULTATION_ROLES  # nobody is there to admit them
        hearing.courts = self.court_names
        live = LiveHearing(
            hearing,
            self.ice_servers,
            self.wire_ice_servers,
            self.settings.keyframe_interval,
            recorder=None,
            reconnect_grace=self.settings.reconnect_grace_seconds,
        )
        live.audio_redundancy = self.settings.audio_redundancy
        self.live[room_id] = live
        return live

    def consultation_event(self, room_id: str, kind: str, name: str, role: str) -> None:
        """Only that a consultation happened, who and when, goes on the hearing's timeline."""
        parent = self.live.get(room_id.removesuffix(CONSULTATION_SUFFIX))
        if parent is not None and parent.recorder is not None:
            parent.recorder.event(kind, {"name": name, "role": role})

    def consultation_url(
        self, hearing_id: str, role: Role, name: str, key: str, court: str | None = None
    ) -> str:
        token = self.tokens.issue_join(
            hearing_id + CONSULTATION_SUFFIX,
            role,
            name,
            time.time(),
            3600.0,
            participant_key=key,
            court=court,
        )
        return f"{self.settings.base_url}/hearing?token={token}"

    async def end_hearing(self, hearing_id: str) -> bool:
        # Closed in the database first: no new join can slip in while the room empties.
        found = await asyncio.to_thread(self._mark_closed, hearing_id)
        room = self.live.pop(hearing_id + CONSULTATION_SUFFIX, None)
        if room is not None:
            await room.end()
        live = self.live.pop(hearing_id, None)
        if live is not None:
            await live.end()
            if live.recorder is not None:
                self.render_later(live.recorder.folder)
        return found

    def _mark_closed(self, hearing_id: str) -> bool:
        with self.db.session() as s:
            row = s.get(HearingRow, hearing_id)
            if row is None:
                return False
            row.state = HearingState.closed.value
            row.ended_at = utcnow()
            row.pause_reason = row.paused_by = row.paused_by_name = None
            s.execute(delete(AdmissionRow).where(AdmissionRow.hearing_id == hearing_id))
            return True

    async def close(self) -> None:
        for live in list(self.live.values()):
            await live.close()
        self.live.clear()
        if self._index_tasks:
            await asyncio.gather(*self._index_tasks, return_exceptions=True)
        if self._render_task is not None:
            self._render_task.cancel()  # the render is redone by `tingshen archive render`
        self.db.dispose()


SERVICES = web.AppKey("services", Services)
