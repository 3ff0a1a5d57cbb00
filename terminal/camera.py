"""The terminal's camera: OpenCV capture (a device, a file or an RTSP URL) or a synthetic pattern.

How this works: a :class:`FrameSource` owns one capture thread for the life of the terminal. The
thread reads pictures (``cv2.VideoCapture.read`` blocks, so it never runs on the event loop), scales
them to the configured size and turns each into an ``av.VideoFrame`` there, keeping only the newest.
A :class:`CameraTrack` is the aiortc side: its ``recv()`` wakes at the configured frame rate and
hands out the newest frame with a fresh timestamp. aiortc stops a sender's track when its peer
connection closes, so each connection gets a new, cheap ``CameraTrack`` over the same source.

When the camera cannot be opened or stops delivering (unplugged, RTSP down) the source reopens it
every few seconds and meanwhile sends a grey "no camera" picture, so the court sees that the camera
failed rather than a frozen frame. ``testsrc`` (:class:`PatternSource`) draws colour bars over a
moving square: the bars let a test check what arrived (:func:`bar_colours`), the square that it moves.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

logger = logging.getLogger(__name__)

__all__ = [
    "TESTSRC_BARS",
    "CameraTrack",
    "FrameSource",
    "OpenCVSource",
    "PatternSource",
    "bar_colours",
    "open_source",
]

VIDEO_CLOCK = 90000
REOPEN_DELAY = 2.0

#: The colour bars of ``testsrc``, left to right, as RGB.
TESTSRC_BARS: tuple[tuple[int, int, int], ...] = (
    (235, 235, 235),  # white
    (235, 235, 16),  # yellow
    (16, 235, 235),  # cyan
    (16, 235, 16),  # green
    (235, 16, 235),  # magenta
    (235, 16, 16),  # red
    (16, 16, 235),  # blue
    (16, 16, 16),  # black
)
#: The bars cover the top part of the picture; the moving square runs below them.
BARS_FRACTION = 0.6


def bar_colours(rgb: np.ndarray, bars: int = len(TESTSRC_BARS)) -> list[tuple[int, int, int]]:
    """The mean RGB at the centre of each colour bar of a ``testsrc`` picture (any size)."""
    height, width, _ = rgb.shape
    top, bottom = int(height * BARS_FRACTION * 0.25), int(height * BARS_FRACTION * 0.75)
    result = []
    for i in range(bars):
        left = int(width * (i + 0.3) / bars)
        right = max(left + 1, int(width * (i + 0.7) / bars))
        mean = rgb[top:bottom, left:right].reshape(-1, 3).mean(axis=0)
        result.append((int(mean[0]), int(mean[1]), int(mean[2])))
    return result


def _no_camera_picture(width: int, height: int, text: str) -> np.ndarray:
    image = np.full((height, width, 3), 64, np.uint8)
    scale = max(0.5, width / 640)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    origin = ((width - tw) // 2, (height + th) // 2)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (200, 200, 200), 2)
    return image


class FrameSource:
    """A capture thread that keeps the newest picture, as BGR pixels and as an ``av.VideoFrame``.

    Subclasses implement :meth:`_capture`, which runs in the thread until :meth:`stop` and calls
    :meth:`_publish` for each picture.
    """

    def __init__(self, width: int, height: int, fps: int) -> None:
        self.width = width
        self.height = height
        self.fps = fps
        #: "starting", "ok", or why there is no picture ("no camera", ...), for the status bar.
        self.state = "starting"
        self.frames = 0
        self._lock = threading.Lock()
        self._latest: tuple[np.ndarray, VideoFrame] | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the capture thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"{type(self).__name__}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """Stop the capture thread and wait for it (a blocked device read may take a moment)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def latest(self) -> tuple[np.ndarray, VideoFrame] | None:
        """The newest picture (BGR pixels, and the same as a video frame), or None before any."""
        with self._lock:
            return self._latest

    def _run(self) -> None:
        try:
            self._capture()
        except Exception:
            logger.exception("camera: capture thread failed")
            self.state = "camera failed"
            self._publish(_no_camera_picture(self.width, self.height, "camera failed"))

    def _capture(self) -> None:
        raise NotImplementedError

    def _publish(self, bgr: np.ndarray) -> None:
        if bgr.shape[1] != self.width or bgr.shape[0] != self.height:
            bgr = cv2.resize(bgr, (self.width, self.height), interpolation=cv2.INTER_AREA)
        frame = VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        with self._lock:
            self._latest = (bgr, frame)
        self.frames += 1

    def _no_picture(self, why: str) -> None:
        if self.state != why:
            logger.warning("camera: %s", why)
        self.state = why
        self._publish(_no_camera_picture(self.width, self.height, why))


class PatternSource(FrameSource):
    """``testsrc``: colour bars above a white square that moves left and right, and a counter."""

    def _capture(self) -> None:
        base = np.zeros((self.height, self.width, 3), np.uint8)
        bar_bottom = int(self.height * BARS_FRACTION)
        bars = len(TESTSRC_BARS)
        for i, (r, g, b) in enumerate(TESTSRC_BARS):
            left, right = self.width * i // bars, self.width * (i + 1) // bars
            base[:bar_bottom, left:right] = (b, g, r)
        base[bar_bottom:] = (48, 48, 48)
        side = max(8, (self.height - bar_bottom) // 2)
        top = bar_bottom + (self.height - bar_bottom - side) // 2
        travel = max(1, self.width - side)
        start = time.monotonic()
        count = 0
        self.state = "ok"
        while not self._stopped.is_set():
            image = base.copy()
            phase = (count * 4) % (2 * travel)
            x = phase if phase < travel else 2 * travel - phase
            image[top : top + side, x : x + side] = 255
            cv2.putText(
                image,
                f"testsrc {count}",
                (8, self.height - 8),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.5,
                (200, 200, 200),
                1,
            )
            self._publish(image)
            count += 1
            delay = start + count / self.fps - time.monotonic()
            if delay > 0:
                self._stopped.wait(delay)


class OpenCVSource(FrameSource):
    """A camera through ``cv2.VideoCapture``: a device index, a video file (looped) or a URL."""

    def __init__(self, target: str, width: int, height: int, fps: int) -> None:
        super().__init__(width, height, fps)
        self.target = target

    @property
    def is_device(self) -> bool:
        """Whether the target is a device index (else a file or a stream URL)."""
        return self.target.isdigit()

    @property
    def is_file(self) -> bool:
        """Whether the target is a local video file (read at its own frame rate, looped)."""
        return not self.is_device and "://" not in self.target

    def _open(self) -> cv2.VideoCapture:
        if self.is_device:
            capture = cv2.VideoCapture(int(self.target))
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            capture.set(cv2.CAP_PROP_FPS, self.fps)
            # Keep the driver's queue short: an old picture is worse than a dropped one.
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            return capture
        return cv2.VideoCapture(self.target, cv2.CAP_FFMPEG)

    def _capture(self) -> None:
        while not self._stopped.is_set():
            capture = self._open()
            try:
                if not capture.isOpened():
                    self._no_picture("no camera")
                    self._stopped.wait(REOPEN_DELAY)
                    continue
                self._read_until_failure(capture)
            finally:
                capture.release()
            if not self._stopped.is_set():
                self._no_picture("camera lost")
                self._stopped.wait(REOPEN_DELAY if not self.is_file else 0.0)

    def _read_until_failure(self, capture: cv2.VideoCapture) -> None:
        file_fps = capture.get(cv2.CAP_PROP_FPS) if self.is_file else 0.0
        interval = 1.0 / file_fps if 1.0 <= file_fps <= 120.0 else 1.0 / self.fps
        next_at = time.monotonic()
        while not self._stopped.is_set():
            ok, bgr = capture.read()
            if not ok or bgr is None:
                if self.is_file and self.frames > 0:
                    # A kiosk may play a recorded clip: loop it without a "camera lost" picture.
                    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    ok, bgr = capture.read()
                if not ok or bgr is None:
                    return
            if self.state != "ok":
                logger.info("camera: %s open (%dx%d)", self.target, bgr.shape[1], bgr.shape[0])
                self.state = "ok"
            self._publish(bgr)
            if self.is_file:
                # A file is read as fast as the disk allows: play it at its own frame rate.
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stopped.wait(delay)
                else:
                    next_at = time.monotonic()


def open_source(target: str, width: int, height: int, fps: int) -> FrameSource:
    """The frame source for a `source` setting ("testsrc", a device index, a file, a URL)."""
    source: FrameSource
    if target == "testsrc":
        source = PatternSource(width, height, fps)
    else:
        source = OpenCVSource(target, width, height, fps)
    source.start()
    return source


class CameraTrack(MediaStreamTrack):
    """An aiortc video track at `source.fps` over a shared :class:`FrameSource`.

    `on_frame` (optional) is called with each frame handed to the encoder (the status counts them).
    """

    kind = "video"

    def __init__(self, source: FrameSource, on_frame: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.source = source
        self._on_frame = on_frame
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> VideoFrame:
        """The newest picture, paced at the source's frame rate."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._count / self.source.fps
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -1.0:
            # The loop was held up: restart the clock rather than send a burst.
            self._start = time.monotonic() - self._count / self.source.fps
        latest = self.source.latest()
        while latest is None:
            await asyncio.sleep(0.02)
            if self.readyState != "live":
                raise MediaStreamError
            latest = self.source.latest()
        frame = latest[1]
        frame.pts = int(self._count * VIDEO_CLOCK / self.source.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        if self._on_frame is not None:
            self._on_frame()
        return frame
