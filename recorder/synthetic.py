"""Synthetic hearing media: real VP8 and Opus frames, as a browser would send them.

For tests and benchmarks of the recorder (and, later, the server's A/V sync check): a solid colour
picture that flashes white for the first frame of every second, and a silent track with a 1 kHz
beep for the first 100 ms of every second. Frames come with the RTP timestamps a sender would
stamp (90 kHz video, 48 kHz audio, starting at 0), so they can be pushed straight into a
:class:`~recorder.session.RecordingSession`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

VIDEO_RATE = 90000
AUDIO_RATE = 48000
OPUS_FRAME = 960  # 20 ms at 48 kHz
BEEP_HZ = 1000.0
BEEP_SECONDS = 0.1


@dataclass(frozen=True)
class EncodedFrame:
    """One encoded frame with its (unwrapped) RTP timestamp."""

    rtp_timestamp: int
    data: bytes
    keyframe: bool


def encode_video(
    seconds: float,
    fps: int = 30,
    width: int = 320,
    height: int = 240,
    color: tuple[int, int, int] = (200, 30, 30),
    flash: bool = True,
    keyframe_interval: int | None = None,
    bit_rate: int = 300_000,
) -> list[EncodedFrame]:
    """Encode ``seconds`` of a solid ``color`` (RGB) picture with libvpx (realtime settings).

    ``keyframe_interval`` is in frames (None: libvpx's default, one every 128 frames); with
    ``flash`` the first frame of each second is white.
    """
    encoder = av.CodecContext.create("libvpx", "w")
    assert isinstance(encoder, av.VideoCodecContext)
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, fps)
    encoder.framerate = Fraction(fps)
    encoder.bit_rate = bit_rate
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    encoder.thread_count = 1  # faster than libvpx's threads at this size, and kinder to CI
    if keyframe_interval is not None:
        encoder.gop_size = keyframe_interval
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:, :] = color
    plain = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    rgb[:, :] = 255
    white = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    out: list[EncodedFrame] = []
    step = VIDEO_RATE // fps
    count = round(seconds * fps)
    for i in range(count + 1):
        frame = None
        if i < count:
            frame = white if flash and i % fps == 0 else plain
            frame.pts = i  # libvpx copies the picture in encode(): reusing the frame is safe
        for packet in encoder.encode(frame):
            assert packet.pts is not None
            data = bytes(packet)
            out.append(EncodedFrame(packet.pts * step, data, data[0] & 1 == 0))
    return out


def encode_audio(seconds: float, beep: bool = True, channels: int = 2) -> list[EncodedFrame]:
    """Encode ``seconds`` of silence (with a beep each second) as 20 ms Opus frames."""
    encoder = av.CodecContext.create("libopus", "w")
    assert isinstance(encoder, av.AudioCodecContext)
    encoder.sample_rate = AUDIO_RATE
    encoder.layout = "stereo" if channels == 2 else "mono"
    encoder.format = "s16"
    encoder.bit_rate = 32000
    count = round(seconds * AUDIO_RATE / OPUS_FRAME)
    packets: list[av.Packet] = []
    for i in range(count):
        t = (np.arange(OPUS_FRAME) + i * OPUS_FRAME) / AUDIO_RATE
        wave = np.zeros(OPUS_FRAME)
        if beep:
            wave = np.where(t % 1.0 < BEEP_SECONDS, np.sin(2 * np.pi * BEEP_HZ * t) * 0.5, 0.0)
        pcm = (wave * 32767).astype(np.int16)
        samples = np.repeat(pcm, channels)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout=encoder.layout.name)
        frame.sample_rate = AUDIO_RATE
        frame.pts = i * OPUS_FRAME
        packets.extend(encoder.encode(frame))
    packets.extend(encoder.encode(None))
    # libopus stamps its first packet -pre_skip; an RTP sender starts the track at 0.
    # The flush adds a frame for the look-ahead; a live sender sends one frame per 20 ms captured.
    first = packets[0].pts or 0
    return [EncodedFrame((p.pts or 0) - first, bytes(p), True) for p in packets[:count]]


def interleave(
    tracks: dict[str, list[EncodedFrame]], rates: dict[str, int]
) -> Iterator[tuple[str, EncodedFrame, float]]:
    """Merge tracks in presentation order: (track_id, frame, seconds since the start)."""
    merged = heapq.merge(
        *(
            [(f.rtp_timestamp / rates[track_id], track_id, n, f) for n, f in enumerate(frames)]
            for track_id, frames in tracks.items()
        )
    )
    for seconds, track_id, _, frame in merged:
        yield track_id, frame, seconds
