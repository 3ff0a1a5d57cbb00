"""Synthetic media for tests: a solid-colour camera, a tone microphone, and a receiving sink."""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from dataclasses import dataclass, field

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

VIDEO_CLOCK = 90000


class ColourTrack(MediaStreamTrack):
    """A camera that films one colour (RGB) at `fps`."""

    kind = "video"

    def __init__(
        self, rgb: tuple[int, int, int], width: int = 320, height: int = 240, fps: int = 30
    ):
        super().__init__()
        self.rgb = rgb
        self.fps = fps
        self._image = np.zeros((height, width, 3), np.uint8)
        self._image[:, :] = rgb
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._count / self.fps
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = VideoFrame.from_ndarray(self._image, format="rgb24")
        frame.pts = int(self._count * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """A microphone that hears a sine tone (20 ms frames, 48 kHz mono)."""

    kind = "audio"

    def __init__(self, hz: float = 440.0) -> None:
        super().__init__()
        self.hz = hz
        self._start: float | None = None
        self._samples = 0

    async def recv(self) -> AudioFrame:
        rate, n = 48000, 960
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._samples / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        t = (np.arange(n) + self._samples) / rate
        pcm = (np.sin(2 * math.pi * self.hz * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, rate)
        self._samples += n
        return frame


@dataclass
class Received:
    """What a subscriber got from one publisher."""

    video_frames: int = 0
    audio_frames: int = 0
    last_rgb: tuple[int, int, int] | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def drain(track: MediaStreamTrack, into: Received) -> None:
    """Read (and decode) a received track until it ends."""
    try:
        while True:
            frame = await track.recv()
            if isinstance(frame, VideoFrame):
                into.video_frames += 1
                if into.video_frames % 10 == 1:
                    rgb = frame.to_ndarray(format="rgb24")
                    h, w, _ = rgb.shape
                    centre = rgb[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
                    mean = centre.reshape(-1, 3).mean(axis=0)
                    into.last_rgb = (int(mean[0]), int(mean[1]), int(mean[2]))
            else:
                into.audio_frames += 1
    except MediaStreamError:
        pass


def close_to(
    rgb: tuple[int, int, int] | None, expected: tuple[int, int, int], tol: int = 24
) -> bool:
    return rgb is not None and all(abs(a - b) <= tol for a, b in zip(rgb, expected, strict=True))
