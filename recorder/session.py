"""One recording of one hearing: the API the server feeds, and the worker thread that writes it.

How this works: the server calls :meth:`RecordingSession.push_frame` on its event loop for every
complete encoded frame it already holds (it never decodes). ``push_frame`` only checks a few
fields and puts a tuple on a queue, O(1) and never blocking; when more than ``max_queued_frames``
frames or ``max_queued_bytes`` bytes are waiting it counts the frame as dropped instead, and the
drop is written to the manifest. Every other call (tracks, sender reports, events, pause, resume,
stop) goes through the same queue, so the worker sees them in the order the loop made them. ONE
worker thread owns everything on disk: the per-track :class:`~recorder.track.TrackRecorder`
objects that mux segments, the manifest hash chain and its signature, ``events.jsonl`` and
``recording.json``. A pause closes every open segment and appends a ``gap`` entry on resume; frames
pushed while paused are counted, not recorded. ``stop()`` closes everything, appends an ``end``
entry, signs, and joins the thread. Errors inside the worker are logged with their traceback,
counted, written to the manifest, and exposed through :meth:`RecordingSession.stats`; the
recording goes on with the next segment.

Folder layout::

    recording.json  manifest.jsonl  manifest.sig  public_key.pem  events.jsonl
    {track_id}/{index:06d}.webm        (closed segments; .webm.part while open)
"""

from __future__ import annotations

import enum
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .manifest import (
    ManifestSigner,
    ManifestWriter,
    atomic_write,
    canonical_json,
    file_sha256,
    iso_utc,
)
from .track import DropTally, SenderClock, TrackInfo, TrackRecorder, UnsupportedCodec

__all__ = [
    "LAWFUL_PAUSE_REASONS",
    "RecorderFailure",
    "RecordingSession",
    "RecordingStateError",
    "SessionState",
    "SessionStats",
    "TrackInfo",
    "UnsupportedCodec",
]

logger = logging.getLogger(__name__)

RECORDING_FORMAT = "tingshen-recording/1"
RECORDING_NAME = "recording.json"
EVENTS_NAME = "events.jsonl"
LAWFUL_PAUSE_REASONS = frozenset({"recess", "non-public-evidence", "mediation"})
# "interrupted": the server stopped while the hearing was still going on (shutdown, restart).
STOP_STATUSES = frozenset({"complete", "failed", "interrupted"})
_TICK = 0.25  # seconds between housekeeping passes of the worker (idle close, drops, fsync)

# Queue item tags (first element of each tuple).
_FRAME, _ADD, _REMOVE, _SR, _EVENT, _PAUSE, _RESUME, _STOP = range(8)


class RecordingStateError(RuntimeError):
    """A call that the session's state does not allow (e.g. resume while not paused)."""


class RecorderFailure(RuntimeError):
    """The worker thread died; the recording on disk is unfinished (recover it)."""


class SessionState(enum.StrEnum):
    """Lifecycle of a :class:`RecordingSession`, as seen from the caller's thread."""

    IDLE = "idle"
    RECORDING = "recording"
    PAUSED = "paused"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True)
class SessionStats:
    """A snapshot for health pages and /metrics."""

    state: str
    queued_frames: int
    queued_bytes: int
    frames_recorded: int
    bytes_recorded: int
    frames_dropped: int
    frames_paused: int
    frames_late: int  # pushed after the track was removed or the recording stopped
    segments_closed: int
    errors: int
    last_error: str | None
    worker_alive: bool


class RecordingSession:
    """Records every track of one hearing into ``folder``; see the module docstring.

    ``start()`` and ``stop()`` do file I/O and join a thread: call them off the event loop
    (``asyncio.to_thread``). All other methods are O(1) and safe to call on the loop; they must
    all be called from one thread. ``request_keyframe(track_id)``, if given, is called from the
    worker thread when a video track needs a keyframe (segment due, after a pause or a drop):
    hand it to the loop with ``loop.call_soon_threadsafe``.
    """

    def __init__(
        self,
        folder: Path,
        recording_id: str,
        hearing_id: str,
        signer: ManifestSigner,
        segment_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
        *,
        request_keyframe: Callable[[str], None] | None = None,
        max_queued_frames: int = 4096,
        max_queued_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if not recording_id or not hearing_id:
            raise ValueError("recording_id and hearing_id are required")
        if not 0.2 <= segment_seconds <= 60:
            raise ValueError("segment_seconds must be within 0.2..60")
        self.folder = folder
        self.recording_id = recording_id
        self.hearing_id = hearing_id
        self.segment_seconds = segment_seconds
        self._signer = signer
        self._clock = clock
        self._request_keyframe = request_keyframe
        self._max_frames = max_queued_frames
        self._max_bytes = max_queued_bytes
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._state = SessionState.IDLE
        self._started_at = 0.0
        # caller-thread bookkeeping
        self._infos: dict[str, TrackInfo] = {}
        self._active: set[str] = set()
        self._paused_frames: dict[str, int] = {}
        self._frames_paused = 0
        self._late_frames = 0
        # shared with the worker, under _lock
        self._lock = threading.Lock()
        self._queued_frames = 0
        self._queued_bytes = 0
        self._drops: dict[str, DropTally] = {}
        self._frames_dropped = 0
        # worker-owned
        self._manifest: ManifestWriter | None = None
        self._events: BinaryIO | None = None
        self._events_seq = 0
        self._events_dirty = False
        self._recorders: dict[str, TrackRecorder] = {}
        self._next_index: dict[str, int] = {}
        self._clocks: dict[str, SenderClock] = {}
        self._pause: tuple[float, str, str] | None = None
        self._segments_closed = 0
        self._frames_recorded = 0
        self._bytes_recorded = 0
        self._errors = 0
        self._last_error: str | None = None
        self._logged_errors: set[tuple[str, str]] = set()
        self._fatal: BaseException | None = None

    # -- public API, caller's thread ------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """Current lifecycle state."""
        return self._state

    def start(self) -> None:
        """Create the recording (header entry, key, ``recording.json``) and start the worker.

        Raises ``OSError`` if the folder is not writable: then nothing is being recorded.
        """
        if self._state is not SessionState.IDLE:
            raise RecordingStateError(f"start() in state {self._state}")
        self.folder.mkdir(parents=True, exist_ok=True)
        now = self._clock()
        self._started_at = now
        header = {
            "type": "recording",
            "format": RECORDING_FORMAT,
            "recording_id": self.recording_id,
            "hearing_id": self.hearing_id,
            "start": iso_utc(now),
            "segment_seconds": self.segment_seconds,
            "public_key_sha256": self._signer.fingerprint(),
        }
        self._manifest = ManifestWriter.create(self.folder, self._signer, header)
        try:
            self._events = open(self.folder / EVENTS_NAME, "xb")  # closed by the worker
            self._write_status("recording")
        except BaseException:
            self._manifest.close()
            if self._events is not None:
                self._events.close()
            raise
        self._set_state(SessionState.RECORDING)
        self._thread = threading.Thread(
            target=self._run, name=f"recorder-{self.recording_id}", daemon=True
        )
        self._thread.start()

    def add_track(self, info: TrackInfo) -> None:
        """Start recording a track; its frames may be pushed right after this returns."""
        self._require_running()
        if info.track_id in self._active:
            raise ValueError(f"track {info.track_id} is already being recorded")
        known = self._infos.get(info.track_id)
        if known is not None and (known.kind, known.codec_name) != (info.kind, info.codec_name):
            raise ValueError(f"track {info.track_id} was recorded as {known.kind}/{known.codec}")
        self._infos[info.track_id] = info
        self._active.add(info.track_id)
        self._queue.put((_ADD, info, self._clock()))

    def push_frame(
        self, track_id: str, rtp_timestamp: int, data: bytes, keyframe: bool, arrival: float
    ) -> None:
        """Hand one complete encoded frame to the recorder. O(1), never blocks.

        ``rtp_timestamp`` is unwrapped (starts at 0 for the track's first frame); ``arrival`` is
        wall-clock seconds, the same clock as the session's ``clock``.
        """
        state = self._state
        if state is not SessionState.RECORDING:
            if state is SessionState.PAUSED and track_id in self._active:
                self._paused_frames[track_id] = self._paused_frames.get(track_id, 0) + 1
                self._frames_paused += 1
            elif state is SessionState.IDLE:
                raise RecordingStateError("push_frame() before start()")
            else:
                self._late_frames += 1
            return
        if track_id not in self._active:
            if track_id in self._infos:  # removed a moment ago; the server's tap lags
                self._late_frames += 1
                return
            raise KeyError(f"unknown track {track_id!r}: add_track() first")
        size = len(data)
        with self._lock:
            if self._queued_frames >= self._max_frames or (
                self._queued_bytes + size > self._max_bytes
            ):
                tally = self._drops.get(track_id)
                if tally is None:
                    tally = self._drops[track_id] = DropTally("queue-full")
                tally.add(rtp_timestamp, size, arrival)
                self._frames_dropped += 1
                return
            self._queued_frames += 1
            self._queued_bytes += size
        self._queue.put((_FRAME, track_id, rtp_timestamp, data, keyframe, arrival))

    def set_sender_report(self, track_id: str, ntp_time: float, rtp_timestamp: int) -> None:
        """An RTCP sender report for a track: ``ntp_time`` (wall seconds) ↔ unwrapped RTP time."""
        self._require_running()
        info = self._infos.get(track_id)
        if info is None:
            raise KeyError(f"unknown track {track_id!r}")
        self._queue.put(
            (
                _SR,
                track_id,
                info.participant_id,
                info.clock_rate,
                float(ntp_time),
                int(rtp_timestamp),
            )
        )

    def event(self, kind: str, data: dict[str, Any], at: float | None = None) -> None:
        """Append a timeline event (join, leave, mute, network, note...) to ``events.jsonl``."""
        self._require_running()
        if not kind or not isinstance(kind, str):
            raise ValueError("event kind must be a non-empty string")
        copy = json.loads(json.dumps(data))  # fails here, on the caller, if not JSON-able
        self._queue.put((_EVENT, kind, copy, self._clock() if at is None else at))

    def pause(self, reason: str, who: str) -> None:
        """Pause recording for a lawful ``reason`` (recess, non-public-evidence, mediation)."""
        if reason not in LAWFUL_PAUSE_REASONS:
            raise ValueError(
                f"pause reason {reason!r} is not lawful; allowed: {sorted(LAWFUL_PAUSE_REASONS)}"
            )
        if not who:
            raise ValueError("pause needs who")
        if self._state is not SessionState.RECORDING:
            raise RecordingStateError(f"pause() in state {self._state}")
        self._paused_frames = {}
        self._set_state(SessionState.PAUSED)
        self._queue.put((_PAUSE, reason, who, self._clock()))

    def resume(self, who: str) -> None:
        """Resume after :meth:`pause`; the pause becomes a ``gap`` entry in the manifest."""
        if not who:
            raise ValueError("resume needs who")
        if self._state is not SessionState.PAUSED:
            raise RecordingStateError(f"resume() in state {self._state}")
        self._set_state(SessionState.RECORDING)
        self._queue.put((_RESUME, who, self._clock(), dict(self._paused_frames)))

    def remove_track(self, track_id: str) -> None:
        """Stop recording a track and close its open segment."""
        self._require_running()
        if track_id not in self._active:
            raise KeyError(f"track {track_id!r} is not being recorded")
        self._active.discard(track_id)
        self._queue.put((_REMOVE, track_id, self._clock()))

    def stop(self, status: str = "complete") -> None:
        """Close every segment, append the ``end`` entry, sign, and join the worker.

        Blocking: call off the event loop. Raises :class:`RecorderFailure` if the worker had died
        (the folder then stays "recording" for :func:`recorder.recovery.recover_recording`).
        """
        if status not in STOP_STATUSES:
            raise ValueError(f"stop status must be one of {sorted(STOP_STATUSES)}")
        if self._state in (SessionState.STOPPING, SessionState.STOPPED):
            return
        if self._state is SessionState.IDLE:
            raise RecordingStateError("stop() before start()")
        self._set_state(SessionState.STOPPING)
        self._queue.put((_STOP, status, self._clock()))
        assert self._thread is not None
        self._thread.join()
        while True:  # frames that raced the stop item into the queue: counted, not lost silently
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            self._late_frames += item[0] == _FRAME
        self._set_state(SessionState.STOPPED)
        if self._fatal is not None:
            raise RecorderFailure(f"recording {self.recording_id} worker died") from self._fatal

    def stats(self) -> SessionStats:
        """Counters for health and metrics (a consistent-enough snapshot, no locking)."""
        return SessionStats(
            state=str(self._state),
            queued_frames=self._queued_frames,
            queued_bytes=self._queued_bytes,
            frames_recorded=self._frames_recorded,
            bytes_recorded=self._bytes_recorded,
            frames_dropped=self._frames_dropped,
            frames_paused=self._frames_paused,
            frames_late=self._late_frames,
            segments_closed=self._segments_closed,
            errors=self._errors,
            last_error=self._last_error,
            worker_alive=self._thread is not None and self._thread.is_alive(),
        )

    def _require_running(self) -> None:
        if self._state not in (SessionState.RECORDING, SessionState.PAUSED):
            raise RecordingStateError(f"recording is {self._state}")

    def _set_state(self, new: SessionState) -> None:
        logger.info("recording %s: %s -> %s", self.recording_id, self._state, new)
        self._state = new

    # -- worker thread --------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # logged and re-raised to the caller by stop()
            self._fatal = exc
            logger.critical("recording %s: worker died", self.recording_id, exc_info=True)

    def _loop(self) -> None:
        next_tick = time.monotonic() + _TICK
        get = self._queue.get
        while True:
            try:
                item = get(timeout=_TICK)
            except queue.Empty:
                item = None
            if item is not None:
                tag = item[0]
                if tag == _STOP:
                    self._finish(item[1], item[2])
                    return
                try:
                    if tag == _FRAME:
                        self._handle_frame(item)
                    else:
                        self._handle_control(item)
                except Exception as exc:
                    self._record_error(exc, None)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + _TICK
                try:
                    self._housekeeping()
                except Exception as exc:
                    self._record_error(exc, None)

    def _handle_frame(self, item: tuple[Any, ...]) -> None:
        _, track_id, rtp_timestamp, data, keyframe, arrival = item
        with self._lock:
            self._queued_frames -= 1
            self._queued_bytes -= len(data)
        recorder = self._recorders[track_id]
        written = recorder.frames_written
        for attempt in (1, 2):
            failure: Exception | None = None
            try:
                recorder.handle_frame(rtp_timestamp, data, keyframe, arrival)
            except Exception as exc:
                failure = exc
            if recorder.closed:  # before any lost entry: the manifest lists a track in order
                self._append_segments(recorder.take_closed())
            if failure is None:
                break
            self._record_error(failure, recorder)  # abandons the open segment
            if recorder.frames_written != written:
                break
            if attempt == 2:  # a fresh segment failed too: the frame is lost, and counted
                recorder.write_failures.add(rtp_timestamp, len(data), arrival)
        if recorder.frames_written != written:
            self._frames_recorded += 1
            self._bytes_recorded += len(data)

    def _handle_control(self, item: tuple[Any, ...]) -> None:
        tag = item[0]
        if tag == _SR:
            _, track_id, participant_id, rate, ntp_time, rtp_timestamp = item
            clock = self._clocks.setdefault(participant_id, SenderClock())
            clock.sender_reports[track_id] = (ntp_time, rtp_timestamp, rate)
        elif tag == _EVENT:
            self._write_event(item[1], item[2], item[3])
        elif tag == _ADD:
            self._add_recorder(item[1], item[2])
        elif tag == _REMOVE:
            _, track_id, at = item
            recorder = self._recorders[track_id]
            try:
                entry = recorder.close_segment()
            except Exception as exc:
                self._record_error(exc, recorder)
            else:
                if entry is not None:
                    self._append_segments([entry])
            self._flush_drops()  # including this track's own tallies
            del self._recorders[track_id]
            self._next_index[track_id] = recorder.next_index
            self._append({"type": "track-removed", "track_id": track_id, "at": iso_utc(at)})
        elif tag == _PAUSE:
            _, reason, who, at = item
            self._close_all_segments()
            self._flush_drops()
            self._pause = (at, reason, who)
            self._write_event("recording-paused", {"reason": reason, "who": who}, at)
        elif tag == _RESUME:
            _, who, at, not_recorded = item
            self._append_gap(at, resumed_by=who, not_recorded=not_recorded)
            self._write_event("recording-resumed", {"who": who}, at)
            for recorder in self._recorders.values():
                recorder.request_keyframe()
        else:  # pragma: no cover - a programming error
            raise ValueError(f"unknown queue item {tag}")
        self._sign()

    def _add_recorder(self, info: TrackInfo, at: float) -> None:
        clock = self._clocks.setdefault(info.participant_id, SenderClock())
        clock.sender_reports.pop(info.track_id, None)  # a re-added track is a new RTP stream
        self._recorders[info.track_id] = TrackRecorder(
            info,
            self.folder,
            clock,
            self.segment_seconds,
            first_index=self._next_index.get(info.track_id, 0),
            request_keyframe=self._request_keyframe,
        )
        self._append({"type": "track", **info.as_entry(), "at": iso_utc(at)})

    def _append(self, entry: dict[str, Any]) -> None:
        assert self._manifest is not None
        self._manifest.append(entry)

    def _sign(self) -> None:
        assert self._manifest is not None
        if self._manifest.unsigned:
            self._manifest.sign()

    def _append_segments(self, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            self._append(entry)
            self._segments_closed += 1
        self._sync_events()
        self._sign()

    def _close_all_segments(self) -> None:
        for recorder in list(self._recorders.values()):
            try:
                entry = recorder.close_segment()
            except Exception as exc:
                self._record_error(exc, recorder)
                continue
            if entry is not None:
                self._append_segments([entry])

    def _append_gap(self, end: float, resumed_by: str | None, not_recorded: dict[str, int]) -> None:
        if self._pause is None:
            return
        start, reason, who = self._pause
        self._pause = None
        self._append(
            {
                "type": "gap",
                "reason": reason,
                "paused_by": who,
                "resumed_by": resumed_by,
                "start": iso_utc(start),
                "end": iso_utc(max(end, start)),
                "frames_not_recorded": not_recorded,
            }
        )

    def _flush_drops(self) -> None:
        with self._lock:
            drops, self._drops = self._drops, {}
        tallies = [(track_id, tally) for track_id, tally in drops.items()]
        for recorder in self._recorders.values():
            tallies.extend((recorder.info.track_id, t) for t in recorder.take_drops())
        for track_id, tally in tallies:
            self._append(tally.as_entry(track_id))
            logger.warning(
                "recording %s: %s: %d frames not recorded (%s)",
                self.recording_id,
                track_id,
                tally.frames,
                tally.reason,
            )
            owner = self._recorders.get(track_id)
            if owner is not None and tally.reason == "queue-full":
                owner.request_keyframe()  # the picture is broken until the next keyframe
        if tallies:
            self._sign()

    def _housekeeping(self) -> None:
        idle_after = max(self.segment_seconds, 1.0)
        for recorder in list(self._recorders.values()):
            recorder.flush_keyframe_request()
            if recorder.is_open and recorder.idle_for() > idle_after:
                entry = recorder.close_segment()
                if entry is not None:
                    self._append_segments([entry])
        self._flush_drops()
        self._sync_events()

    def _write_event(self, kind: str, data: dict[str, Any], at: float) -> None:
        assert self._events is not None
        line = {"seq": self._events_seq, "at": iso_utc(at), "t": at, "kind": kind, "data": data}
        self._events.write(canonical_json(line) + b"\n")
        self._events.flush()  # to the kernel now: survives kill -9; fsync'd with the segments
        self._events_seq += 1
        self._events_dirty = True

    def _sync_events(self) -> None:
        if self._events_dirty and self._events is not None:
            os.fsync(self._events.fileno())
            self._events_dirty = False

    def _record_error(self, exc: Exception, recorder: TrackRecorder | None) -> None:
        """Log (traceback once per place and kind), count, and enter an error in the manifest;
        a track's open segment is abandoned and entered as lost (its .part file stays)."""
        self._errors += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        where = recorder.info.track_id if recorder else "session"
        key = (where, type(exc).__name__)
        if key not in self._logged_errors:  # traceback once per place and kind; counted always
            self._logged_errors.add(key)
            logger.error("recording %s: error in %s", self.recording_id, where, exc_info=exc)
        try:
            self._append(
                {
                    "type": "error",
                    "where": where,
                    "error": self._last_error,
                    "at": iso_utc(self._clock()),
                }
            )
            if recorder is not None:
                spec = recorder.abandon_segment()
                if spec is not None:
                    sha256, size = file_sha256(self.folder / spec.part_file)
                    self._append(
                        {
                            "type": "lost",
                            "track_id": spec.track_id,
                            "index": spec.index,
                            "file": spec.part_file,
                            "bytes": size,
                            "sha256": sha256,
                            "reason": f"write error: {self._last_error}",
                        }
                    )
            self._sign()
        except Exception:
            logger.exception(
                "recording %s: cannot record the error in the manifest", self.recording_id
            )

    def _finish(self, status: str, at: float) -> None:
        if self._pause is not None:
            self._append_gap(at, resumed_by=None, not_recorded=dict(self._paused_frames))
        self._close_all_segments()
        self._flush_drops()
        assert self._events is not None and self._manifest is not None
        self._events.flush()
        self._sync_events()
        self._events.close()
        events_sha256, events_bytes = file_sha256(self.folder / EVENTS_NAME)
        stats = self.stats()
        self._append(
            {
                "type": "end",
                "status": status,
                "at": iso_utc(at),
                "segments": self._segments_closed,
                "frames_recorded": stats.frames_recorded,
                "frames_dropped": stats.frames_dropped,
                "frames_paused": stats.frames_paused,
                "errors": self._errors,
                "events_file": EVENTS_NAME,
                "events_sha256": events_sha256,
                "events_bytes": events_bytes,
                "events_lines": self._events_seq,
            }
        )
        self._sign()
        self._manifest.close()
        self._write_status(status, ended_at=iso_utc(at))
        logger.info(
            "recording %s: %s, %d segments, %d frames, %d dropped",
            self.recording_id,
            status,
            self._segments_closed,
            stats.frames_recorded,
            stats.frames_dropped,
        )

    def _write_status(self, status: str, **extra: Any) -> None:
        document = {
            "format": RECORDING_FORMAT,
            "recording_id": self.recording_id,
            "hearing_id": self.hearing_id,
            "status": status,
            "started_at": iso_utc(self._started_at),
            "segment_seconds": self.segment_seconds,
            "public_key_sha256": self._signer.fingerprint(),
            **extra,
        }
        atomic_write(self.folder / RECORDING_NAME, json.dumps(document, indent=2).encode() + b"\n")
