"""terminal/camera.py: the capture thread, the synthetic pattern, a looped file, a missing camera."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from terminal.camera import (
    TESTSRC_BARS,
    CameraTrack,
    FrameSource,
    OpenCVSource,
    PatternSource,
    bar_colours,
    open_source,
)
from tests.media import close_to


def wait_for_picture(source: FrameSource, frames: int = 1, timeout: float = 5.0) -> np.ndarray:
    deadline = time.monotonic() + timeout
    while source.frames < frames or source.latest() is None:
        assert time.monotonic() < deadline, f"{source.frames} frames, state {source.state}"
        time.sleep(0.01)
    latest = source.latest()
    assert latest is not None
    return latest[0]


def test_pattern_has_the_bars_and_a_moving_square() -> None:
    source = PatternSource(320, 240, 30)
    source.start()
    try:
        first = wait_for_picture(source).copy()
        later = wait_for_picture(source, frames=source.frames + 5)
    finally:
        source.stop()
    rgb = cv2.cvtColor(first, cv2.COLOR_BGR2RGB)
    assert all(
        close_to(got, expected, tol=2)
        for got, expected in zip(bar_colours(rgb), TESTSRC_BARS, strict=True)
    )
    assert first.shape == (240, 320, 3)
    assert not np.array_equal(first[180:220], later[180:220])  # the square moved


async def test_camera_track_paces_frames_with_increasing_timestamps() -> None:
    source = open_source("testsrc", 160, 120, 20)
    try:
        sent: list[int] = []
        track = CameraTrack(source, on_frame=lambda: sent.append(1))
        started = time.monotonic()
        # A frame object is reused while the camera has nothing newer (the sender encodes each
        # before asking for the next), so its timestamp is read at once.
        stamps, widths = [], set()
        for _ in range(10):
            frame = await track.recv()
            stamps.append(frame.pts)
            widths.add(frame.width)
        elapsed = time.monotonic() - started
        assert 0.35 <= elapsed <= 1.5, elapsed  # 10 frames at 20 fps
        assert stamps == [i * 4500 for i in range(10)]  # 90 kHz clock at 20 fps
        assert widths == {160} and len(sent) == 10
        track.stop()
        with pytest.raises(MediaStreamError):
            await track.recv()
    finally:
        source.stop()


def test_a_video_file_is_played_and_looped(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 50, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), (0, 0, 50 * i), np.uint8))
    writer.release()
    source = OpenCVSource(str(path), 128, 96, 25)
    assert source.is_file and not source.is_device
    source.start()
    try:
        picture = wait_for_picture(source, frames=12)  # more than the file holds: it looped
        assert picture.shape == (96, 128, 3)  # scaled to the configured size
        assert source.state == "ok"
    finally:
        source.stop()


def test_a_missing_camera_sends_a_no_camera_picture() -> None:
    source = OpenCVSource("/nonexistent/camera.mp4", 160, 120, 25)
    source.start()
    try:
        picture = wait_for_picture(source)
        assert source.state == "no camera"
        assert 50 < picture.mean() < 90  # grey, with the words on it
    finally:
        source.stop()


async def test_capture_never_blocks_the_loop() -> None:
    source = open_source("testsrc", 640, 480, 30)
    try:
        track = CameraTrack(source)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticker = asyncio.create_task(tick())
        for _ in range(15):
            await track.recv()
        ticker.cancel()
        assert ticks > 40  # ~0.5 s of 5 ms sleeps, not starved by capture
    finally:
        source.stop()
