"""One segment file of one track: pre-encoded VP8 or Opus frames muxed into WebM, never transcoded.

How this works: a :class:`SegmentWriter` opens ``{track_id}/{index:06d}.webm.part`` with PyAV's
Matroska/WebM muxer and adds a stream *without an encoder*: VP8 through ``add_mux_stream`` with the
width and height read from the keyframe header, Opus through a never-opened codec-context template
carrying an ``OpusHead`` (browsers need it as the track's CodecPrivate). Each frame becomes one
``av.Packet`` whose pts/dts is its RTP timestamp minus the segment's first (time base 1/90000 or
1/48000; Matroska stores milliseconds). Clusters are closed every 100 ms and flushed to the kernel,
so a ``kill -9`` keeps everything up to the last cluster in the ``.part`` file. :meth:`close`
writes the trailer, fsyncs, hashes, renames the file to ``.webm`` and fsyncs the directory.
Segment-relative metadata (track, index, RTP start, estimated wall start) is written into the
file's tags so crash recovery can place a salvaged segment on the timeline.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
from av.container import OutputContainer
from av.stream import Stream
from av.video.stream import VideoStream

from .manifest import file_sha256, fsync_dir

logger = logging.getLogger(__name__)

SEGMENT_SUFFIX = ".webm"
PART_SUFFIX = ".webm.part"
VP8_START_CODE = b"\x9d\x01\x2a"
# Muxer options: close a cluster every 100 ms and flush it to the kernel, so a killed process
# loses at most that much of the open segment (the Matroska muxer buffers a whole cluster).
_MUXER_OPTIONS = {"cluster_time_limit": "100", "flush_packets": "1"}
_TAG_PREFIX = "TINGSHEN_"


def vp8_keyframe_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 §9.1), or None if not a keyframe.

    Layout: a 3-byte frame tag (bit 0 of byte 0 is 0 for a keyframe), the start code 9d 01 2a,
    then 16-bit little-endian width and height, each with a 2-bit scale in the top bits.
    """
    if len(data) < 10 or data[0] & 1 or data[3:6] != VP8_START_CODE:
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    if width == 0 or height == 0:
        return None
    return width, height


def opus_head(channels: int = 2, pre_skip: int = 0, input_rate: int = 48000) -> bytes:
    """An ``OpusHead`` identification header (RFC 7845 §5.1), mapping family 0.

    WebRTC Opus is negotiated as ``opus/48000/2``; a mono-coded stream decodes fine with a
    2-channel header. Pre-skip is 0: we start mid-stream, there is no encoder delay to hide.
    """
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, input_rate, 0, 0)


@dataclass(frozen=True)
class SegmentSpec:
    """What a segment file holds: which track, which index, and how to set up its stream."""

    track_id: str
    index: int
    kind: str  # "audio" | "video"
    codec: str  # "vp8" | "opus" (lower case)
    clock_rate: int
    rtp_start: int
    wall_start_estimate: float
    width: int = 0
    height: int = 0

    @property
    def file(self) -> str:
        """Path of the closed segment relative to the recording folder."""
        return f"{self.track_id}/{self.index:06d}{SEGMENT_SUFFIX}"

    @property
    def part_file(self) -> str:
        """Path of the open segment relative to the recording folder."""
        return f"{self.track_id}/{self.index:06d}{PART_SUFFIX}"


@dataclass(frozen=True)
class ClosedSegment:
    """A segment that is closed, fsync'd, hashed and renamed: ready for the manifest."""

    spec: SegmentSpec
    frames: int
    keyframes: int
    starts_with_keyframe: bool
    rtp_last: int
    size: int
    sha256: str
    close_seconds: float  # trailer + fsync + hash + rename, for the figures


def _add_opus_stream(container: OutputContainer) -> Stream:
    # PyAV's add_mux_stream() cannot carry extradata, and add_stream("libopus") would open an
    # encoder and write its own OpusHead (pre-skip 312). A stream made from a template is never
    # opened, so the OpusHead we set on its codec context is what lands in CodecPrivate.
    scratch = av.open(io.BytesIO(), "w", format="webm")
    try:
        template = scratch.add_stream("libopus", rate=48000, layout="stereo")
        stream = container.add_stream_from_template(template)
    finally:
        scratch.close()
    stream.codec_context.extradata = opus_head()
    stream.time_base = Fraction(1, 48000)
    return stream


class SegmentWriter:
    """Writes one segment file. Not thread-safe: owned by the recording worker."""

    def __init__(self, folder: Path, spec: SegmentSpec) -> None:
        self.spec = spec
        self.folder = folder
        self.part_path = folder / spec.part_file
        self.final_path = folder / spec.file
        track_dir = self.part_path.parent
        if not track_dir.exists():
            track_dir.mkdir(parents=True)
            fsync_dir(folder)
        self._time_base = Fraction(1, spec.clock_rate)
        self._container = av.open(
            str(self.part_path), "w", format="webm", options=dict(_MUXER_OPTIONS)
        )
        try:
            self._container.metadata.update(
                {
                    f"{_TAG_PREFIX}TRACK": spec.track_id,
                    f"{_TAG_PREFIX}INDEX": str(spec.index),
                    f"{_TAG_PREFIX}CODEC": spec.codec,
                    f"{_TAG_PREFIX}CLOCK_RATE": str(spec.clock_rate),
                    f"{_TAG_PREFIX}RTP_START": str(spec.rtp_start),
                    f"{_TAG_PREFIX}WALL_START": repr(spec.wall_start_estimate),
                }
            )
            if spec.codec == "vp8":
                self._stream: Stream = self._container.add_mux_stream(
                    "vp8", width=spec.width, height=spec.height, time_base=self._time_base
                )
            elif spec.codec == "opus":
                self._stream = _add_opus_stream(self._container)
            else:
                raise ValueError(f"no muxer set-up for codec {spec.codec!r}")
        except BaseException:
            self._container.close()
            raise
        self.frames = 0
        self.keyframes = 0
        self.bytes_in = 0
        self.starts_with_keyframe = False
        self.rtp_last = spec.rtp_start

    def write(self, rtp_timestamp: int, data: bytes, keyframe: bool) -> None:
        """Mux one encoded frame; ``rtp_timestamp`` must not go backwards within the segment."""
        pts = rtp_timestamp - self.spec.rtp_start
        packet = av.Packet(data)
        packet.stream = self._stream
        packet.time_base = self._time_base
        packet.pts = pts
        packet.dts = pts
        packet.is_keyframe = keyframe
        self._container.mux_one(packet)
        if self.frames == 0:
            self.starts_with_keyframe = keyframe
        self.frames += 1
        self.keyframes += keyframe
        self.bytes_in += len(data)
        self.rtp_last = rtp_timestamp

    def close(self) -> ClosedSegment:
        """Finish the file: trailer, fsync, SHA-256, rename ``.part`` → ``.webm``, fsync the dir."""
        t0 = time.perf_counter()
        self._container.close()
        fd = os.open(self.part_path, os.O_RDONLY)
        try:
            os.fsync(fd)  # fsync syncs the inode: it covers what PyAV wrote through its own fd
        finally:
            os.close(fd)
        sha256, size = file_sha256(self.part_path)
        os.rename(self.part_path, self.final_path)
        fsync_dir(self.final_path.parent)
        return ClosedSegment(
            spec=self.spec,
            frames=self.frames,
            keyframes=self.keyframes,
            starts_with_keyframe=self.starts_with_keyframe,
            rtp_last=self.rtp_last,
            size=size,
            sha256=sha256,
            close_seconds=time.perf_counter() - t0,
        )

    def abandon(self) -> None:
        """Stop writing after an error; the ``.part`` file stays for recovery to salvage."""
        try:
            self._container.close()
        except Exception:
            logger.exception("closing abandoned segment %s", self.part_path)


@dataclass(frozen=True)
class SegmentPacket:
    """One frame read back from a segment file, pts in the segment's RTP clock."""

    pts: int
    data: bytes
    keyframe: bool


@dataclass
class SegmentContents:
    """What could be read from a (possibly cut-off) segment file."""

    tags: dict[str, str]
    kind: str
    codec: str
    width: int
    height: int
    packets: list[SegmentPacket]
    error: str | None  # why reading stopped early, None when the file read to its end


def read_segment(path: Path, clock_rate: int) -> SegmentContents:
    """Demux every readable packet of a segment, stopping at the first error (a crash's cut).

    Raises ``av.error.FFmpegError`` (or ``ValueError`` for a file with no usable stream) when not
    even the header can be read.
    """
    with av.open(str(path), format="matroska") as container:
        if not container.streams:
            raise ValueError("no stream in segment file")
        stream = container.streams[0]
        tags = {k.upper(): v for k, v in container.metadata.items()}
        # Read everything needed from the stream now: it is freed when the container closes.
        kind = stream.type
        codec = stream.codec_context.name if stream.codec_context is not None else ""
        width = height = 0
        if isinstance(stream, VideoStream):
            width, height = stream.codec_context.width, stream.codec_context.height
        time_base = stream.time_base or Fraction(1, 1000)
        packets: list[SegmentPacket] = []
        error: str | None = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                pts = round(packet.pts * time_base * clock_rate)
                packets.append(SegmentPacket(pts, bytes(packet), bool(packet.is_keyframe)))
        except av.error.FFmpegError as exc:
            error = f"{type(exc).__name__}: {exc}"
    return SegmentContents(tags, kind, codec, width, height, packets, error)
