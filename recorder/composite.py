"""Composite render: "what the court saw" as one playable file, with a burned-in wall clock.

How this works: the manifest gives every track's segments with their wall-clock (UTC) start and
end, and every pause (``gap`` entry). The render covers the recorded media, from the first
segment's start to the last segment's (or pause's) end; it walks ONE output timeline, frame by
frame at ``fps``, and maps each output frame to a wall-clock instant. Every video track has a cursor that
decodes its segments lazily, in wall-clock order, through one persistent decoder (so a segment
that does not start with a keyframe continues the picture of the one before): for an instant it
gives the latest frame at or before it, or nothing when the track has no segment there (black tile
with the participant's name). Every audio track has a cursor that decodes Opus to 48 kHz stereo and
places each segment's samples at its wall-clock start; the cursors are read in 1/fps blocks, summed
and soft-clipped. Only the current segment of each track is open and only one frame (or a few
audio frames) per track is held, so memory does not grow with the hearing.

OpenCV and numpy draw the picture (text and layout: :mod:`recorder.overlay`): a banner with the
court and case number (left) and the wall-clock time in China Standard Time,
``2026-11-28 14:03:05 UTC+8`` (right, 叠加同步录制时间), over a grid of one tile per video track;
a participant without video gets one black tile with their name, and so does a track at moments
it has no picture.

The spotlight: the ``spotlight`` events of ``events.jsonl`` (the presiding judge's, and the
server's when it moves or clears it) say whom the court saw large. From each event's instant on,
the spotlighted participant's tiles are the main tiles across the top, ringed in gold, and the
others a band of small tiles beneath (as on the hearing page); when it is cleared, or names no
one with a tile here, the grid comes back. Each layout's static parts are drawn once and kept.

Pauses: nothing was recorded, so a pause is not played out in real time. It is replaced by a title
card of at most ``PAUSE_CARD_SECONDS`` ("休庭 recess", from–to in UTC+8, who paused and resumed);
the banner clock shows the pause's range. Output time is therefore wall time minus the pauses plus
the cards; the burned-in clock always shows the true wall time.

Output: H.264 (libx264) + AAC in MP4 with the index up front (plays in browsers and seeks), else
VP8 + Opus in WebM. The file is written as ``.part``, fsync'd and renamed; its SHA-256 then goes in
the manifest as a ``derived`` entry, after ``end``, and the manifest is re-signed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from bisect import bisect_right
from collections.abc import Callable, Generator
from dataclasses import astuple, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import cv2
import numpy as np
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream

from .manifest import (
    MANIFEST_NAME,
    ManifestSigner,
    ManifestWriter,
    file_sha256,
    fsync_dir,
    iso_utc,
    parse_iso_utc,
)
from .overlay import (
    BANNER_BGR,
    CST,
    Layout,
    Rect,
    TextPainter,
    clock_text,
    draw_clock,
    grid_layout,
    spotlight_layout,
)
from .session import EVENTS_NAME
from .verify import verify_recording

logger = logging.getLogger(__name__)

AUDIO_RATE = 48000
PAUSE_CARD_SECONDS = 3.0  # a longer pause is shown as a card of this length
RENDERER = "tingshen-composite/2"  # 2: follows the spotlight; Tibetan names
ENCODER_THREADS = 2  # x264 frame threads: faster than slice threads, and leaves the live SFU room
_HOLD = 0.3  # seconds a track's last picture stays after its segment's end (boundary jitter)
_SNAP = 0.04  # seconds: audio this close to where its track left off is joined without a gap
CARD_BGR = (56, 40, 30)
SPOTLIGHT_BGR = (44, 167, 212)  # the hearing page's spotlight outline, #d4a72c
_RING = 3  # pixels of that outline, in the 4-pixel gap around the tile
_REASONS = {
    "recess": "休庭 recess",
    "non-public-evidence": "不公开质证 non-public evidence examination",
    "mediation": "调解 mediation",
}


class CompositeError(Exception):
    """The recording cannot be rendered (does not verify, nothing recorded, already rendered)."""


@dataclass(frozen=True)
class CompositeResult:
    """What :func:`render_composite` wrote."""

    path: Path
    sha256: str
    bytes: int
    duration_s: float
    frames: int
    tracks_used: list[str]


@dataclass(frozen=True)
class _Encoding:
    suffix: str
    container: str
    video: str
    audio: str
    options: dict[str, str]


# In order of preference; the first whose encoders PyAV has is used.
ENCODINGS = (
    _Encoding(".mp4", "mp4", "libx264", "aac", {"preset": "veryfast", "crf": "23"}),
    _Encoding(".webm", "webm", "libvpx", "libopus", {"deadline": "realtime", "cpu-used": "8"}),
)


def _encoding() -> _Encoding:
    for encoding in ENCODINGS:
        if {encoding.video, encoding.audio} <= av.codecs_available:
            return encoding
    raise CompositeError("no usable video encoder in this PyAV build (need libx264 or libvpx)")


def _hms(wall: float) -> str:
    return dt.datetime.fromtimestamp(wall, CST).strftime("%H:%M:%S")


# -- the manifest as a timeline -----------------------------------------------------------------


@dataclass(frozen=True)
class _SegmentRef:
    file: str
    index: int
    start: float
    end: float


@dataclass
class _TrackRef:
    track_id: str
    participant_id: str
    name: str
    kind: str
    codec: str
    segments: list[_SegmentRef] = field(default_factory=list)


@dataclass(frozen=True)
class Pause:
    """A ``gap`` entry: recording paused for a lawful reason."""

    start: float
    end: float
    reason: str
    paused_by: str
    resumed_by: str | None


@dataclass
class _Timeline:
    tracks: list[_TrackRef]
    pauses: list[Pause]
    finished: bool
    derived_files: set[str]

    @property
    def span(self) -> tuple[float, float]:
        times = [t for tr in self.tracks for s in tr.segments for t in (s.start, s.end)]
        times += [t for p in self.pauses for t in (p.start, p.end)]
        return min(times), max(times)


def _read_timeline(folder: Path) -> _Timeline:
    lines = (folder / MANIFEST_NAME).read_bytes().splitlines()
    entries = [json.loads(line) for line in lines]
    tracks: dict[str, _TrackRef] = {}
    pauses: list[Pause] = []
    finished, derived = False, set()
    for entry in entries:
        kind = entry.get("type")
        if kind == "track" and entry["track_id"] not in tracks:
            tracks[entry["track_id"]] = _TrackRef(
                entry["track_id"],
                str(entry.get("participant_id", entry["track_id"])),
                str(entry.get("participant_name") or entry.get("participant_id") or "?"),
                entry["kind"],
                entry["codec"],
            )
        elif kind == "segment" and entry.get("track_id") in tracks:
            start, end = parse_iso_utc(entry["start"]), parse_iso_utc(entry["end"])
            ref = _SegmentRef(entry["file"], int(entry["index"]), start, max(start, end))
            tracks[entry["track_id"]].segments.append(ref)
        elif kind == "gap":
            start, end = parse_iso_utc(entry["start"]), parse_iso_utc(entry["end"])
            reason, who = str(entry.get("reason")), str(entry.get("paused_by"))
            resumed = entry.get("resumed_by")
            pauses.append(Pause(start, max(start, end), reason, who, resumed))
        elif kind == "end":
            finished = True
        elif kind == "derived":
            derived.add(str(entry.get("file")))
    for track in tracks.values():  # placed by wall clock, not by file order
        track.segments.sort(key=lambda s: (s.start, s.index))
    pauses.sort(key=lambda p: p.start)
    return _Timeline(list(tracks.values()), pauses, finished, derived)


class Spotlight:
    """Whom the court saw large at each instant: the ``spotlight`` events of ``events.jsonl``."""

    def __init__(self, changes: list[tuple[float, str | None]]) -> None:
        ordered = sorted(changes, key=lambda change: change[0])  # stable: file order on ties
        self._times = [at for at, _ in ordered]
        self._whom = [whom for _, whom in ordered]

    @classmethod
    def read(cls, folder: Path) -> Spotlight:
        """The spotlight changes recorded in ``folder`` (none when it has no events file).

        A line that is not a whole JSON object (the last one of a recording cut off by a crash)
        is skipped; so is a spotlight event of a shape this code does not know, with a warning.
        """
        changes: list[tuple[float, str | None]] = []
        try:
            lines = (folder / EVENTS_NAME).read_bytes().splitlines()
        except FileNotFoundError:
            return cls(changes)
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict) or event.get("kind") != "spotlight":
                continue
            data, at = event.get("data"), event.get("t")
            whom = data.get("participant", 0) if isinstance(data, dict) else 0  # null: cleared
            try:
                at = float(at) if isinstance(at, int | float) else parse_iso_utc(event["at"])
            except (KeyError, TypeError, ValueError):
                at = None
            if at is None or not isinstance(whom, str | None):
                logger.warning("composite: %s: spotlight event not understood: %r", folder, event)
                continue
            changes.append((at, whom))
        return cls(changes)

    def __len__(self) -> int:
        return len(self._times)

    def at(self, wall: float) -> str | None:
        """The participant spotlighted at ``wall`` (by the last change at or before it), or None."""
        n = bisect_right(self._times, wall)
        return self._whom[n - 1] if n else None


@dataclass(frozen=True)
class _Piece:
    """A run of output frames: live media from ``wall`` on, or the card of ``pause``."""

    first_frame: int
    frames: int
    wall: float
    pause: Pause | None


def _pieces(start: float, end: float, pauses: list[Pause], fps: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    cursor, frame = start, 0

    def add(frames: int, wall: float, pause: Pause | None) -> None:
        nonlocal frame
        if frames > 0:
            pieces.append(_Piece(frame, frames, wall, pause))
            frame += frames

    for pause in pauses:
        if pause.end <= cursor:
            continue
        add(round((pause.start - cursor) * fps), cursor, None)
        card = min(PAUSE_CARD_SECONDS, pause.end - max(pause.start, cursor))
        add(max(1, round(card * fps)), pause.start, pause)
        cursor = max(cursor, pause.end)
    add(round((end - cursor) * fps), cursor, None)
    return pieces


# -- decoding cursors ---------------------------------------------------------------------------


def _decode_track(folder: Path, track: _TrackRef) -> Generator[tuple[_SegmentRef, float, Any]]:
    """(segment, seconds into it, decoded frame) for a track's segments in wall-clock order.

    One decoder for the whole track, made from the first segment's stream: a segment that does
    not start with a keyframe continues the picture of the one before, and Opus keeps its state.
    Unreadable segments and undecodable packets are logged and skipped: the rest still renders.
    """
    decoder: Any = None
    errors = 0
    for segment in track.segments:
        try:
            container = av.open(str(folder / segment.file), format="matroska")
        except (av.error.FFmpegError, OSError) as exc:
            logger.warning("composite: %s unreadable: %s", segment.file, exc)
            continue
        with container:
            stream = container.streams[0]
            base = stream.time_base or Fraction(1, 1000)
            if decoder is None:
                decoder = av.CodecContext.create(stream.codec_context.name, "r")
                decoder.extradata = stream.codec_context.extradata
            try:
                for packet in container.demux(stream):
                    if packet.pts is None or packet.size == 0:
                        continue
                    offset = float(packet.pts * base)
                    try:
                        frames = decoder.decode(packet)
                    except av.error.FFmpegError as exc:
                        errors += 1
                        if errors == 1:
                            logger.warning("composite: %s: %s", segment.file, exc)
                        continue
                    for frame in frames:
                        yield segment, offset, frame
            except av.error.FFmpegError as exc:  # a cut-off file: keep what was read
                logger.warning("composite: %s: %s", segment.file, exc)


class _VideoCursor:
    """One video track's picture at any wall-clock instant, decoded lazily in time order."""

    def __init__(self, folder: Path, track: _TrackRef) -> None:
        self.track = track
        self.used = False
        self._frames = _decode_track(folder, track)
        self._current: tuple[float, float, av.VideoFrame] | None = None
        self._next = self._pull()
        self._image: tuple[av.VideoFrame, int, int, np.ndarray] | None = None

    def _pull(self) -> tuple[float, float, av.VideoFrame] | None:
        for segment, offset, frame in self._frames:
            if isinstance(frame, av.VideoFrame):
                return segment.start + offset, segment.end, frame
        return None

    def image(self, wall: float, tile: Rect) -> np.ndarray | None:
        """The picture at ``wall`` fitted inside ``tile`` (aspect kept), or None when none."""
        while self._next is not None and self._next[0] <= wall:
            self._current, self._next = self._next, self._pull()
        current = self._current
        if current is None or wall > current[1] + _HOLD:
            return None
        frame = current[2]
        image = self._image  # kept while the frame and the tile's size stay (the spotlight)
        if image is not None and image[0] is frame and image[1:3] == (tile.w, tile.h):
            return image[3]
        scale = min(tile.w / frame.width, tile.h / frame.height)
        w, h = max(2, round(frame.width * scale)) & ~1, max(2, round(frame.height * scale)) & ~1
        if frame.format.name == "yuv420p":
            bgr = cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
        else:
            bgr = frame.to_ndarray(format="bgr24")
        area = w * 2 <= frame.width  # INTER_AREA only where it matters: it is 6x slower
        interpolation = cv2.INTER_AREA if area else cv2.INTER_LINEAR
        fitted = cv2.resize(bgr, (w, h), interpolation=interpolation)
        self._image = (frame, tile.w, tile.h, fitted)
        self.used = True
        return fitted

    def close(self) -> None:
        self._frames.close()


class _AudioCursor:
    """One audio track as 48 kHz stereo float samples, indexed from the timeline's start."""

    def __init__(self, folder: Path, track: _TrackRef, origin: float) -> None:
        self.track = track
        self.used = False
        self._origin = origin
        self._chunks: list[tuple[int, np.ndarray]] = []  # (first sample, (2, n) float32)
        self._end: int | None = None  # sample after the last one buffered
        self._frames = self._samples(folder)

    def _samples(self, folder: Path) -> Generator[tuple[int, np.ndarray]]:
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
        segment: _SegmentRef | None = None
        position = 0
        for seg, _, frame in _decode_track(folder, self.track):
            if seg is not segment:  # each segment starts where the wall clock puts it
                segment, position = seg, round((seg.start - self._origin) * AUDIO_RATE)
            for out in resampler.resample(frame):
                pcm = out.to_ndarray().astype(np.float32, copy=False)
                yield position, pcm
                position += pcm.shape[1]

    def _pull(self) -> bool:
        item = next(self._frames, None)
        if item is None:
            return False
        position, pcm = item
        if self._end is not None and abs(position - self._end) <= _SNAP * AUDIO_RATE:
            position = self._end  # the next segment continues this one: no click, no gap
        elif self._end is not None and position < self._end:  # overlaps: drop the overlap
            pcm, position = pcm[:, self._end - position :], self._end
        if pcm.shape[1]:
            self._chunks.append((position, pcm))
            self._end = position + pcm.shape[1]
        return True

    def add_into(self, out: np.ndarray, start: int) -> None:
        """Add this track's samples ``start .. start + len(out)`` into ``out`` (2, n)."""
        stop = start + out.shape[1]
        while (self._end is None or self._end < stop) and self._pull():
            pass
        keep: list[tuple[int, np.ndarray]] = []
        for first, pcm in self._chunks:
            last = first + pcm.shape[1]
            lo, hi = max(first, start), min(last, stop)
            if hi > lo:
                out[:, lo - start : hi - start] += pcm[:, lo - first : hi - first]
                self.used = True
            if last > stop:
                keep.append((first, pcm))
        self._chunks = keep

    def close(self) -> None:
        self._frames.close()


def _soft_clip(mix: np.ndarray) -> np.ndarray:
    """Leave |x| <= 0.8 alone, bend louder sums smoothly towards 1.0: no wrap, no hard edge."""
    magnitude = np.abs(mix)
    loud = magnitude > 0.8
    if loud.any():
        mix[loud] = np.sign(mix[loud]) * (0.8 + 0.2 * np.tanh((magnitude[loud] - 0.8) / 0.2))
    return mix


# -- drawing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _View:
    """One layout of the tiles and its static base: banner, tiles, names, the spotlight's ring."""

    layout: Layout
    base: np.ndarray


class _Compositor:
    """Draws output frames: the static base of the current view plus pictures and the clock."""

    def __init__(
        self,
        width: int,
        height: int,
        painter: TextPainter,
        labels: list[str],
        owners: list[str],
        court: str,
        case_number: str,
    ) -> None:
        self.painter = painter
        self.labels = labels
        self.owners = owners  # the participant each tile belongs to
        self.layout = grid_layout(width, height, len(labels))  # also the banner of the cards
        self.title = "  ".join(
            x for x in (painter.label(court, "court"), painter.label(case_number)) if x
        )
        self._views: dict[tuple[int, ...], _View] = {}
        self._canvas = np.zeros((height, width, 3), np.uint8)

    def view(self, spotlighted: str | None) -> _View:
        """The grid, or the spotlight's layout when ``spotlighted`` has tiles here."""
        main = tuple(i for i, owner in enumerate(self.owners) if owner == spotlighted)
        view = self._views.get(main)
        if view is None:
            layout = self.layout
            if main:
                layout = spotlight_layout(layout.width, layout.height, len(self.labels), main)
            base = self._chrome(np.zeros_like(self._canvas))
            for i in layout.main:  # in the gap around the tile: no picture covers it
                x, y, w, h = astuple(layout.tiles[i])
                base[y - _RING : y + h + _RING, x - _RING : x + w + _RING] = SPOTLIGHT_BGR
            for tile, label in zip(layout.tiles, self.labels, strict=True):
                tile.view(base)[:] = (16, 16, 16)
                self._name(base, tile, label)
            view = self._views[main] = _View(layout, base)
        return view

    def _chrome(self, canvas: np.ndarray) -> np.ndarray:
        banner, size = self.layout.banner, self.layout.text_size
        banner.view(canvas)[:] = BANNER_BGR
        y = (banner.h - self.painter.mask(self.title, size).shape[0]) // 2
        self.painter.draw(canvas, self.title, self.layout.title.x, y, size)
        return canvas

    def _name(self, canvas: np.ndarray, tile: Rect, label: str) -> None:
        """The name at the tile's bottom left, cut at the tile's edge (a small tile's too)."""
        size = max(12, min(28, round(tile.h * 0.07)))
        y = tile.h - self.painter.mask(label, size).shape[0] - size // 3
        self.painter.draw(tile.view(canvas), label, size // 2, y, size, box=True)

    def frame(self, view: _View, wall: float, pictures: list[np.ndarray | None]) -> np.ndarray:
        """The output frame at ``wall`` in ``view`` with each tile's picture (None: black)."""
        canvas = self._canvas
        np.copyto(canvas, view.base)
        for tile, label, picture in zip(view.layout.tiles, self.labels, pictures, strict=True):
            if picture is None:
                continue
            h, w = picture.shape[:2]
            x, y = tile.x + (tile.w - w) // 2, tile.y + (tile.h - h) // 2
            canvas[y : y + h, x : x + w] = picture
            self._name(canvas, tile, label)
        draw_clock(canvas, self.layout, self.painter, clock_text(wall))
        return canvas

    def card(self, pause: Pause) -> np.ndarray:
        """The title card that stands for ``pause``."""
        canvas = np.empty_like(self._canvas)
        canvas[:] = CARD_BGR
        self._chrome(canvas)
        day = dt.datetime.fromtimestamp(pause.start, CST).strftime("%Y-%m-%d")
        span = f"{day} {_hms(pause.start)}–{_hms(pause.end)} UTC+8"
        draw_clock(canvas, self.layout, self.painter, span)
        minutes, seconds = divmod(round(pause.end - pause.start), 60)
        who = f"暂停 paused by {pause.paused_by}"
        if pause.resumed_by:
            who += f" · 恢复 resumed by {pause.resumed_by}"
        lines = [
            (_REASONS.get(pause.reason, pause.reason), 2.0),
            (f"{_hms(pause.start)}–{_hms(pause.end)} UTC+8", 1.2),
            (f"未录制 not recorded ({minutes} min {seconds} s)", 1.0),
            (who, 0.8),
        ]
        base = self.layout.text_size
        y = self.layout.height // 2 - round(base * 2.5)
        for text, scale in lines:
            text, size = self.painter.label(text, pause.reason), round(base * scale)
            width = self.painter.mask(text, size).shape[1]
            self.painter.draw(canvas, text, (self.layout.width - width) // 2, y, size)
            y += round(size * 1.5)
        return canvas


# -- the render ---------------------------------------------------------------------------------


def render_composite(
    folder: Path,
    out: Path | None = None,
    *,
    court: str,
    case_number: str,
    signer: ManifestSigner | None = None,
    fps: int = 15,
    width: int = 1280,
    height: int = 720,
    progress: Callable[[float], None] | None = None,
    font: Path | None = None,
) -> CompositeResult:
    """Render the recording in ``folder`` into one playable file; see the module docstring.

    Runs in the calling thread (minutes for a long hearing: call it from a worker thread or a
    background job, never on the event loop). ``out`` defaults to ``folder/composite.mp4`` (or
    ``.webm`` without libx264). With ``signer`` (the key that signed the recording) the file's
    SHA-256 is appended to the manifest as a ``derived`` entry and the manifest is re-signed;
    ``out`` must then lie inside ``folder`` and the recording must be finished. ``progress`` is
    called with the fraction done (0..1) about once per second of output; an exception raised in
    it cancels the render and leaves nothing behind. ``font`` overrides the CJK font lookup.
    Raises :class:`CompositeError` when the recording does not verify, holds no media, or already
    lists ``out`` as a derived file.
    """
    if not 1 <= fps <= 60:
        raise ValueError("fps must be within 1..60")
    if width < 320 or height < 180:
        raise ValueError("width and height must be at least 320x180")
    width, height = width & ~1, height & ~1
    encoding = _encoding()
    out = out if out is not None else folder / f"composite{encoding.suffix}"
    relative: str | None = None
    if signer is not None:
        try:
            relative = out.resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            raise ValueError(f"{out} is outside the recording folder: cannot list it") from None
    trusted = signer.public_key_pem() if signer is not None else None
    report = verify_recording(folder, trusted_public_key=trusted)
    if not report.ok:
        raise CompositeError(f"{folder} does not verify: " + "; ".join(report.faults[:5]))
    try:
        timeline = _read_timeline(folder)
    except (KeyError, TypeError, ValueError) as exc:  # verified, yet not what this code knows
        raise CompositeError(f"{folder}: unexpected manifest entry: {exc!r}") from exc
    if signer is not None:
        if not timeline.finished:
            raise CompositeError("the recording is still open: render after it has ended")
        if relative in timeline.derived_files:
            raise CompositeError(f"{relative} is already listed as derived: render to a new name")
    if not any(t.segments for t in timeline.tracks):
        raise CompositeError(f"{folder}: no recorded media")

    started = time.perf_counter()
    painter = TextPainter.create(font)
    result = _render(
        folder, out, timeline, encoding, court, case_number, fps, width, height, progress, painter
    )
    if signer is not None and relative is not None:
        _append_derived(folder, signer, relative, result, court, case_number, encoding)
    elapsed = time.perf_counter() - started
    logger.info(
        "composite %s: %.1f s of video in %.1f s (%.1fx), %d bytes",
        out,
        result.duration_s,
        elapsed,
        result.duration_s / elapsed if elapsed else 0.0,
        result.bytes,
    )
    return result


def _render(
    folder: Path,
    out: Path,
    timeline: _Timeline,
    encoding: _Encoding,
    court: str,
    case_number: str,
    fps: int,
    width: int,
    height: int,
    progress: Callable[[float], None] | None,
    painter: TextPainter,
) -> CompositeResult:
    origin, end = timeline.span
    pieces = _pieces(origin, end, timeline.pauses, fps)
    total = sum(p.frames for p in pieces)
    video_tracks = [t for t in timeline.tracks if t.kind == "video"]
    with_video = {t.participant_id for t in video_tracks}
    audio_only = {
        t.participant_id: t for t in timeline.tracks if t.participant_id not in with_video
    }
    per_person = {p: sum(t.participant_id == p for t in video_tracks) for p in with_video}
    labels = [
        painter.label(t.name, t.participant_id)
        + (f" ({t.track_id})" if per_person[t.participant_id] > 1 else "")
        for t in video_tracks
    ] + [painter.label(t.name, t.participant_id) for t in audio_only.values()]
    owners = [t.participant_id for t in video_tracks] + list(audio_only)
    compositor = _Compositor(width, height, painter, labels, owners, court, case_number)
    silent: list[np.ndarray | None] = [None] * len(audio_only)
    spotlight = Spotlight.read(folder)

    part = out.with_name(out.name + ".part")
    videos: list[_VideoCursor] = []
    audios: list[_AudioCursor] = []
    muxer_options = {"movflags": "+faststart"} if encoding.container == "mp4" else {}
    container = av.open(str(part), "w", format=encoding.container, options=muxer_options)
    try:
        videos += [_VideoCursor(folder, t) for t in video_tracks]
        audios += [_AudioCursor(folder, t, origin) for t in timeline.tracks if t.kind == "audio"]
        vstream, astream = _add_streams(container, encoding, fps, width, height)
        for n_piece, piece in enumerate(pieces):
            card = compositor.card(piece.pause) if piece.pause is not None else None
            first_sample = piece.first_frame * AUDIO_RATE // fps
            wall_sample = round((piece.wall - origin) * AUDIO_RATE)
            for k in range(piece.frames):
                n = piece.first_frame + k
                if card is None:
                    wall = piece.wall + k / fps
                    view = compositor.view(spotlight.at(wall))
                    tiles = view.layout.tiles[: len(videos)]
                    pictures = [v.image(wall, t) for v, t in zip(videos, tiles, strict=True)]
                    image = compositor.frame(view, wall, pictures + silent)
                else:
                    image = card
                yuv = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
                frame = av.VideoFrame.from_ndarray(np.asarray(yuv, np.uint8), format="yuv420p")
                frame.pts = n
                container.mux(vstream.encode(frame))
                a0, a1 = n * AUDIO_RATE // fps, (n + 1) * AUDIO_RATE // fps
                mix = np.zeros((2, a1 - a0), np.float32)
                if card is None:
                    for cursor in audios:
                        cursor.add_into(mix, wall_sample + a0 - first_sample)
                sound = av.AudioFrame.from_ndarray(_soft_clip(mix), format="fltp", layout="stereo")
                sound.sample_rate, sound.pts = AUDIO_RATE, a0
                container.mux(astream.encode(sound))
                if progress is not None and n % fps == 0:
                    progress(n / total)
            logger.debug("composite %s: piece %d of %d done", out, n_piece + 1, len(pieces))
        container.mux(vstream.encode(None))
        container.mux(astream.encode(None))
        container.close()
    except BaseException:
        container.close()
        part.unlink(missing_ok=True)
        raise
    finally:
        for video in videos:
            video.close()
        for audio in audios:
            audio.close()
    with open(part, "rb") as f:
        os.fsync(f.fileno())
    os.replace(part, out)
    fsync_dir(out.parent)
    sha256, size = file_sha256(out)
    if progress is not None:
        progress(1.0)
    used = sorted(
        [v.track.track_id for v in videos if v.used] + [a.track.track_id for a in audios if a.used]
    )
    return CompositeResult(out, sha256, size, total / fps, total, used)


def _add_streams(
    container: OutputContainer, encoding: _Encoding, fps: int, width: int, height: int
) -> tuple[VideoStream, AudioStream]:
    vstream = container.add_stream(encoding.video, rate=fps)
    astream = container.add_stream(encoding.audio, rate=AUDIO_RATE, layout="stereo")
    assert isinstance(vstream, VideoStream) and isinstance(astream, AudioStream)
    vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
    vcodec = vstream.codec_context
    vcodec.gop_size = 2 * fps  # a keyframe every 2 s: archivists seek
    vcodec.thread_type, vcodec.thread_count = "FRAME", ENCODER_THREADS
    vcodec.options = dict(encoding.options)
    if encoding.video == "libx264":  # OpenCV's I420 is BT.601 limited range (SMPTE 170M): say so
        vcodec.colorspace, vcodec.color_range = 6, 1
        vcodec.color_primaries, vcodec.color_trc = 6, 6
    else:
        vcodec.bit_rate = 1_500_000
    return vstream, astream


def _append_derived(
    folder: Path,
    signer: ManifestSigner,
    relative: str,
    result: CompositeResult,
    court: str,
    case_number: str,
    encoding: _Encoding,
) -> None:
    """Chain the composite's hash into the manifest (after ``end``) and re-sign."""
    writer, _ = ManifestWriter.open_existing(folder, signer)
    try:
        writer.append(
            {
                "type": "derived",
                "kind": "composite",
                "file": relative,
                "sha256": result.sha256,
                "bytes": result.bytes,
                "created": iso_utc(time.time()),
                "renderer": RENDERER,
                "video_codec": encoding.video,
                "audio_codec": encoding.audio,
                "duration_s": round(result.duration_s, 3),
                "frames": result.frames,
                "tracks": result.tracks_used,
                "court": court,
                "case_number": case_number,
            }
        )
        writer.sign()
    finally:
        writer.close()
