"""A recorded track: its description, its clock, and the policy that cuts it into segments.

How this works: :class:`TrackRecorder` lives on the recording worker thread and receives one
track's frames in order. It decides where segments start and end (video: at the first keyframe
once ``segment_seconds`` have passed, forced at three times that; audio: on time) and turns each
closed :class:`~recorder.segment_writer.ClosedSegment` into a manifest entry placed on the wall
clock. Wall-clock placement comes from :class:`SenderClock`: with RTCP sender reports, the sender's
NTP time of a frame plus the sender-to-server offset, estimated once per participant so the
participant's audio and video share it (lip sync from the SRs, one timeline from the server's
clock); without them, the frame's RTP time plus an offset estimated from arrival times. Offsets
are the minimum of (arrival - sender time) over the last ~10 s: the least-delayed frames.
"""

from __future__ import annotations

import collections
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .manifest import iso_utc
from .segment_writer import ClosedSegment, SegmentSpec, SegmentWriter, vp8_keyframe_size

logger = logging.getLogger(__name__)

# codec (lower case) -> (kind, clock rate). Everything else is refused at add_track time, so the
# server can refuse it at negotiation with the same error.
RECORDABLE_CODECS: dict[str, tuple[str, int]] = {"vp8": ("video", 90000), "opus": ("audio", 48000)}
_TRACK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Without a keyframe, a video segment is cut anyway after this many times segment_seconds.
FORCE_ROTATE_FACTOR = 3.0
KEYFRAME_REQUEST_INTERVAL = 0.5  # seconds between two keyframe requests for one track
_OFFSET_WINDOW = 2.0  # seconds per window of the minimum-offset estimate
_OFFSET_WINDOWS = 5  # windows kept: the estimate is the minimum over the last ~10 s


class UnsupportedCodec(ValueError):
    """The track's codec cannot be recorded without transcoding; refuse it at negotiation."""


@dataclass(frozen=True)
class TrackInfo:
    """One participant track as the server negotiated it."""

    track_id: str
    participant_id: str
    participant_name: str
    kind: str
    codec: str
    clock_rate: int

    def __post_init__(self) -> None:
        if not _TRACK_ID.fullmatch(self.track_id):
            raise ValueError(f"track_id {self.track_id!r}: use 1-64 of [A-Za-z0-9_-]")
        expected = RECORDABLE_CODECS.get(self.codec.lower())
        if expected is None:
            raise UnsupportedCodec(
                f"codec {self.codec!r} cannot be recorded; recordable: "
                + ", ".join(sorted(RECORDABLE_CODECS))
            )
        kind, rate = expected
        if self.kind != kind:
            raise ValueError(f"codec {self.codec} is {kind}, track says {self.kind!r}")
        if self.clock_rate != rate:
            raise ValueError(f"codec {self.codec} clock rate is {rate}, got {self.clock_rate}")

    @property
    def codec_name(self) -> str:
        """The codec in lower case, as the muxer and the manifest name it."""
        return self.codec.lower()

    def as_entry(self) -> dict[str, Any]:
        """The manifest's ``track`` entry fields."""
        return {
            "track_id": self.track_id,
            "participant_id": self.participant_id,
            "participant_name": self.participant_name,
            "kind": self.kind,
            "codec": self.codec_name,
            "clock_rate": self.clock_rate,
        }


class OffsetEstimate:
    """Minimum of samples over the last few windows: the delay floor between two clocks."""

    def __init__(self) -> None:
        self._windows: collections.deque[float] = collections.deque(maxlen=_OFFSET_WINDOWS)
        self._current: float | None = None
        self._window_start = 0.0

    def add(self, sample: float, at: float) -> None:
        """Add ``sample`` (arrival minus sender time) observed at wall time ``at``."""
        if self._current is None:
            self._current, self._window_start = sample, at
        elif at - self._window_start >= _OFFSET_WINDOW:
            self._windows.append(self._current)
            self._current, self._window_start = sample, at
        elif sample < self._current:
            self._current = sample

    @property
    def value(self) -> float | None:
        """Current estimate, or None before the first sample."""
        if self._current is None:
            return None
        return min(self._current, *self._windows) if self._windows else self._current


class SenderClock:
    """One participant's clock: RTCP SR mappings of its tracks and its offset to our clock."""

    def __init__(self) -> None:
        self.sender_reports: dict[str, tuple[float, int, int]] = {}  # track -> (ntp, rtp, rate)
        self.offset = OffsetEstimate()

    def sender_time(self, track_id: str, rtp_timestamp: int) -> float | None:
        """The sender's wall time of a frame, from the track's last SR, or None without one."""
        report = self.sender_reports.get(track_id)
        if report is None:
            return None
        ntp, rtp, rate = report
        return ntp + (rtp_timestamp - rtp) / rate


@dataclass
class DropTally:
    """Frames of one track that were not recorded, for one manifest ``drop`` entry."""

    reason: str
    frames: int = 0
    bytes: int = 0
    rtp_first: int = 0
    rtp_last: int = 0
    first_arrival: float = 0.0
    last_arrival: float = 0.0

    def add(self, rtp_timestamp: int, size: int, arrival: float) -> None:
        """Count one frame."""
        if self.frames == 0:
            self.rtp_first, self.first_arrival = rtp_timestamp, arrival
        self.frames += 1
        self.bytes += size
        self.rtp_last, self.last_arrival = rtp_timestamp, arrival

    def as_entry(self, track_id: str) -> dict[str, Any]:
        """The manifest's ``drop`` entry."""
        return {
            "type": "drop",
            "track_id": track_id,
            "reason": self.reason,
            "frames": self.frames,
            "bytes": self.bytes,
            "rtp_first": self.rtp_first,
            "rtp_last": self.rtp_last,
            "start": iso_utc(self.first_arrival),
            "end": iso_utc(max(self.last_arrival, self.first_arrival)),
        }


@dataclass
class _TrackTimes:
    last_ts: int | None = None
    last_delta: int = 0
    last_seen: float = 0.0  # time.monotonic() of the last frame, for idle closing
    last_start: float | None = None  # wall start of the previous segment: never go back
    last_keyframe_request: float = field(default=-1e9)


class TrackRecorder:
    """Cuts one track into segments. Owned by the recording worker thread."""

    def __init__(
        self,
        info: TrackInfo,
        folder: Path,
        clock: SenderClock,
        segment_seconds: float,
        first_index: int = 0,
        request_keyframe: Callable[[str], None] | None = None,
    ) -> None:
        self.info = info
        self.folder = folder
        self.clock = clock
        self.next_index = first_index
        self._rate = info.clock_rate
        self._segment_ticks = round(segment_seconds * self._rate)
        self._force_ticks = round(segment_seconds * FORCE_ROTATE_FACTOR * self._rate)
        self._is_video = info.kind == "video"
        self._default_delta = 3000 if self._is_video else 960
        self._request_keyframe = request_keyframe
        self._arrival_offset = OffsetEstimate()
        self._writer: SegmentWriter | None = None
        self._size: tuple[int, int] | None = None
        self._due_requested = False
        self._keyframe_pending = False
        self._t = _TrackTimes()
        self.skipped = DropTally("before-first-keyframe")
        self.misordered = DropTally("timestamp-not-increasing")
        self.write_failures = DropTally("write-error")
        self.closed: list[dict[str, Any]] = []
        self.frames_written = 0
        self.bytes_written = 0
        self.last_close_seconds = 0.0  # trailer + fsync + hash + rename of the last segment

    # -- frames ---------------------------------------------------------------------------------

    def handle_frame(self, rtp_timestamp: int, data: bytes, keyframe: bool, arrival: float) -> None:
        """Write one frame, rotating segments as needed.

        Entries of segments closed on the way land in :attr:`closed`, even when the frame itself
        then fails to be written: the caller takes them with :meth:`take_closed` in a finally.
        """
        t = self._t
        if t.last_ts is not None and rtp_timestamp <= t.last_ts:
            self.misordered.add(rtp_timestamp, len(data), arrival)
            return
        self._observe(rtp_timestamp, arrival)
        closed = self.closed
        size = vp8_keyframe_size(data) if (self._is_video and keyframe) else None
        if self._is_video and keyframe and size is None:
            logger.warning(
                "%s: frame flagged keyframe has no VP8 keyframe header", self.info.track_id
            )
            keyframe = False
        if keyframe:
            self._keyframe_pending = False
        elif self._keyframe_pending:
            self.flush_keyframe_request()
        if not self._is_video:
            keyframe = True  # every Opus packet stands alone
        writer = self._writer
        if writer is not None:
            elapsed = rtp_timestamp - writer.spec.rtp_start
            if self._is_video:
                rotate = (keyframe and (elapsed >= self._segment_ticks or size != self._size)) or (
                    elapsed >= self._force_ticks
                )
                if not rotate and elapsed >= self._segment_ticks and not self._due_requested:
                    self._due_requested = True
                    self.request_keyframe()
            else:
                rotate = elapsed >= self._segment_ticks
            if rotate:
                closed.append(self._close(end_ts=rtp_timestamp))
        if self._writer is None:
            if size is not None:
                self._size = size
            if self._is_video and self._size is None:  # no keyframe yet: nothing decodable
                self.skipped.add(rtp_timestamp, len(data), arrival)
                self.request_keyframe()
                self._remember(rtp_timestamp)
                return
            self._open(rtp_timestamp)
            if self._is_video and not keyframe:
                self.request_keyframe()
        assert self._writer is not None
        self._writer.write(rtp_timestamp, data, keyframe)
        self.frames_written += 1
        self.bytes_written += len(data)
        self._remember(rtp_timestamp)

    def take_closed(self) -> list[dict[str, Any]]:
        """Manifest entries of the segments closed since the last call."""
        closed, self.closed = self.closed, []
        return closed

    def _remember(self, rtp_timestamp: int) -> None:
        t = self._t
        if t.last_ts is not None:
            t.last_delta = rtp_timestamp - t.last_ts
        t.last_ts = rtp_timestamp
        t.last_seen = time.monotonic()

    def _observe(self, rtp_timestamp: int, arrival: float) -> None:
        sender = self.clock.sender_time(self.info.track_id, rtp_timestamp)
        if sender is not None:
            self.clock.offset.add(arrival - sender, arrival)
        self._arrival_offset.add(arrival - rtp_timestamp / self._rate, arrival)

    def wall_time(self, rtp_timestamp: int) -> tuple[float, str, float]:
        """(wall-clock seconds, clock source "sr" | "arrival", offset used) of an RTP timestamp."""
        sender = self.clock.sender_time(self.info.track_id, rtp_timestamp)
        offset = self.clock.offset.value
        if sender is not None and offset is not None:
            return sender + offset, "sr", offset
        arrival_offset = self._arrival_offset.value or 0.0
        return rtp_timestamp / self._rate + arrival_offset, "arrival", arrival_offset

    def request_keyframe(self) -> None:
        """Ask the server (through the callback) for a keyframe, at most every 0.5 s.

        Coalesced, never dropped: a request inside the interval is sent when it has passed
        (from :meth:`handle_frame` or :meth:`flush_keyframe_request`), unless a keyframe came.
        """
        if not self._is_video or self._request_keyframe is None:
            return
        now = time.monotonic()
        if now - self._t.last_keyframe_request < KEYFRAME_REQUEST_INTERVAL:
            self._keyframe_pending = True
            return
        self._keyframe_pending = False
        self._t.last_keyframe_request = now
        try:
            self._request_keyframe(self.info.track_id)
        except Exception:
            logger.exception("%s: keyframe request callback failed", self.info.track_id)

    def flush_keyframe_request(self) -> None:
        """Send a request that was held back by the interval, once the interval has passed."""
        if self._keyframe_pending:
            self.request_keyframe()

    # -- segments -------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Whether a segment is being written."""
        return self._writer is not None

    def idle_for(self) -> float:
        """Seconds since this track's last frame was handled."""
        return time.monotonic() - self._t.last_seen

    def _open(self, rtp_timestamp: int) -> None:
        width, height = self._size or (0, 0)
        spec = SegmentSpec(
            track_id=self.info.track_id,
            index=self.next_index,
            kind=self.info.kind,
            codec=self.info.codec_name,
            clock_rate=self._rate,
            rtp_start=rtp_timestamp,
            wall_start_estimate=self.wall_time(rtp_timestamp)[0],
            width=width if self._is_video else 0,
            height=height if self._is_video else 0,
        )
        self._writer = SegmentWriter(self.folder, spec)
        self.next_index += 1
        self._due_requested = False

    def close_segment(self) -> dict[str, Any] | None:
        """Close the open segment (pause, idle, removal, stop); its entry, or None if none open."""
        if self._writer is None:
            return None
        delta = self._t.last_delta if 0 < self._t.last_delta < self._rate else self._default_delta
        return self._close(end_ts=self._writer.rtp_last + delta)

    def _close(self, end_ts: int) -> dict[str, Any]:
        writer = self._writer
        assert writer is not None
        closed = writer.close()  # on failure the writer stays, for abandon_segment()
        self._writer = None
        return self._segment_entry(closed, end_ts)

    def abandon_segment(self) -> SegmentSpec | None:
        """After a write error: drop the writer, keep its ``.part`` file; the abandoned segment."""
        writer, self._writer = self._writer, None
        if writer is None:
            return None
        writer.abandon()
        return writer.spec

    def _segment_entry(self, closed: ClosedSegment, end_ts: int) -> dict[str, Any]:
        spec = closed.spec
        start, source, offset = self.wall_time(spec.rtp_start)
        end = self.wall_time(end_ts)[0]
        # A sender clock correction must not make a later segment start before an earlier one.
        if self._t.last_start is not None and start < self._t.last_start:
            logger.info(
                "%s: clamping segment %d start by %.3f s",
                spec.track_id,
                spec.index,
                self._t.last_start - start,
            )
            start = self._t.last_start
        end = max(end, start)
        self._t.last_start = start
        entry: dict[str, Any] = {
            "type": "segment",
            "track_id": spec.track_id,
            "index": spec.index,
            "kind": spec.kind,
            "codec": spec.codec,
            "file": spec.file,
            "start": iso_utc(start),
            "end": iso_utc(end),
            "clock": source,
            "clock_offset": round(offset, 6),
            "rtp_start": spec.rtp_start,
            "rtp_end": end_ts,
            "frames": closed.frames,
            "keyframes": closed.keyframes,
            "starts_with_keyframe": closed.starts_with_keyframe,
            "bytes": closed.size,
            "sha256": closed.sha256,
        }
        if spec.kind == "video":
            entry["width"], entry["height"] = spec.width, spec.height
        self.last_close_seconds = closed.close_seconds
        return entry

    def take_drops(self) -> list[DropTally]:
        """Tallies of frames skipped by this track's own rules since the last call (then reset)."""
        out = [t for t in (self.skipped, self.misordered, self.write_failures) if t.frames]
        if self.skipped.frames:
            self.skipped = DropTally(self.skipped.reason)
        if self.misordered.frames:
            self.misordered = DropTally(self.misordered.reason)
        if self.write_failures.frames:
            self.write_failures = DropTally(self.write_failures.reason)
        return out
