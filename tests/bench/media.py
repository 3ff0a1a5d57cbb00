"""Synthetic media for the relay benchmark: a numbered camera, a tone microphone, a counter reader.

The camera films a moving gradient with fresh grain on every frame, hard enough that aiortc's VP8
encoder (CBR) spends its whole budget, and stamps a 16-bit frame counter into the top rows of the
picture: 16 black/white blocks, and under them the same bits inverted as a check. The blocks are large
and flat, so they survive VP8 compression, even the second encode of a decode/re-encode relay. The
time at which the camera hands each frame to aiortc is kept per counter (the latency origin).
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections import deque

import numpy as np
from aiortc import MediaStreamTrack
from av import VideoFrame

from tests.media import ToneTrack

WIDTH = 640
HEIGHT = 480
FPS = 30
VIDEO_CLOCK = 90000
BITRATE = 1_500_000

COUNTER_BITS = 16
BLOCK_W = WIDTH // COUNTER_BITS  # 40 px
BLOCK_H = 32
_BLACK = 16
_WHITE = 235
GRAIN = 48  # amplitude of the per-frame grain: the encoder then runs at its (pinned) target
_GRAIN_POOL = 31  # distinct grain images, cycled (a prime: no reference frame ever matches)


def pin_vp8_bitrate(bitrate: int = BITRATE) -> None:
    """Make aiortc's VP8 encoder run at `bitrate`, whatever REMB says (call in the publisher only).

    `Vp8Encoder` starts at `DEFAULT_BITRATE` and clamps REMB-driven targets to
    [`MIN_BITRATE`, `MAX_BITRATE`]; all three are read from the module at run time.
    """
    from aiortc.codecs import vpx

    vpx.DEFAULT_BITRATE = bitrate
    vpx.MIN_BITRATE = bitrate
    vpx.MAX_BITRATE = bitrate


def stamp_counter(luma: np.ndarray, counter: int) -> None:
    """Write `counter` (16 bits) as blocks into the top 2 * BLOCK_H rows of a luma plane."""
    for bit in range(COUNTER_BITS):
        on = (counter >> (COUNTER_BITS - 1 - bit)) & 1
        x = bit * BLOCK_W
        luma[0:BLOCK_H, x : x + BLOCK_W] = _WHITE if on else _BLACK
        luma[BLOCK_H : 2 * BLOCK_H, x : x + BLOCK_W] = _BLACK if on else _WHITE


def read_counter(frame: VideoFrame) -> int | None:
    """The counter stamped in a decoded frame, or None when the blocks do not read back cleanly."""
    if frame.width != WIDTH or frame.height < 2 * BLOCK_H:
        return None
    plane = frame.planes[0]
    rows = np.frombuffer(memoryview(plane), np.uint8, count=plane.line_size * 2 * BLOCK_H)
    luma = rows.reshape(2 * BLOCK_H, plane.line_size)[:, :WIDTH]
    # Mean of the inner part of every block (edges bleed into the grain around them).
    inner_y = slice(BLOCK_H // 4, BLOCK_H - BLOCK_H // 4)
    top = luma[inner_y].reshape(-1, COUNTER_BITS, BLOCK_W)[:, :, BLOCK_W // 4 : -BLOCK_W // 4]
    bottom = luma[BLOCK_H:][inner_y].reshape(-1, COUNTER_BITS, BLOCK_W)
    bottom = bottom[:, :, BLOCK_W // 4 : -BLOCK_W // 4]
    bits = top.mean(axis=(0, 2)) > 128
    check = bottom.mean(axis=(0, 2)) > 128
    if np.any(bits == check):
        return None
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return value


class NumberedCamera(MediaStreamTrack):
    """640x480 at 30 fps, yuv420p, moving content, a frame counter, send times kept per counter."""

    kind = "video"

    def __init__(self, history: int = FPS * 120) -> None:
        super().__init__()
        rng = np.random.default_rng(20260509)
        self._grain = [
            rng.integers(0, GRAIN, (HEIGHT, WIDTH), dtype=np.uint8) for _ in range(_GRAIN_POOL)
        ]
        yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
        self._gradient = (((xx + yy) // 2) % 256 // 2).astype(np.uint8)
        self._chroma = np.full((HEIGHT // 2, WIDTH), 128, np.uint8)
        self._start: float | None = None
        self.count = 0
        #: (counter, monotonic time when recv() handed the frame to aiortc)
        self.sent: deque[tuple[int, float]] = deque(maxlen=history)

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self.count / FPS - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        n = self.count
        image = np.empty((HEIGHT * 3 // 2, WIDTH), np.uint8)
        shifted = np.roll(self._gradient, (n * 4) % WIDTH, axis=1)
        np.add(shifted, self._grain[n % _GRAIN_POOL], out=image[:HEIGHT])
        image[HEIGHT:] = self._chroma
        stamp_counter(image, n & 0xFFFF)
        frame = VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts = n * (VIDEO_CLOCK // FPS)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.count += 1
        self.sent.append((n & 0xFFFF, time.monotonic()))
        return frame


# The microphone is the tests' tone source (440 Hz, 20 ms frames, 48 kHz mono).
ToneMicrophone = ToneTrack
