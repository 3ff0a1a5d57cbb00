"""The terminal's court window is a real X11 window (Xvfb), showing the judge full-screen."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator

import numpy as np
import pytest

from terminal.court import CourtFeed
from terminal.screen import Screen
from terminal.status import TerminalStatus
from tests.test_terminal_screen import picture


@pytest.fixture
def display() -> Iterator[str]:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.fail("Xvfb is missing: `bash tests/run` installs Debian's xvfb")
    number = 90 + os.getpid() % 400
    proc = subprocess.Popen(
        [xvfb, f":{number}", "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    try:
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def grab(display: str) -> np.ndarray:
    """The root window as RGB, read from `xwd` (a 24-bit ZPixmap)."""
    raw = subprocess.run(
        ["xwd", "-root", "-silent", "-display", display], capture_output=True, check=True
    ).stdout
    fields = struct.unpack(">25I", raw[:100])
    header_size, width, height = fields[0], fields[4], fields[5]
    bits_per_pixel, bytes_per_line, ncolors = fields[11], fields[12], fields[19]
    step = bits_per_pixel // 8
    assert step in (3, 4), bits_per_pixel
    start = header_size + ncolors * 12
    pixels = np.frombuffer(raw[start : start + bytes_per_line * height], np.uint8)
    rows = pixels.reshape(height, bytes_per_line)[:, : width * step]
    image = rows.reshape(height, width, step)
    byte_order = fields[7]  # 0: LSBFirst -> B, G, R(, x) in memory
    if byte_order == 0:
        return image[:, :, [2, 1, 0]]
    return image[:, :, [step - 3, step - 2, step - 1]]


def test_the_court_window_shows_the_judge(display: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", display)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    court = CourtFeed()
    court.add({"id": "j1", "name": "王法官", "role": "judge"})
    court._on_frame("j1", picture((30, 160, 60)))
    status = TerminalStatus(connection="connected", hearing_state="open")
    screen = Screen(status, None, lambda: court, headless=False, fullscreen=True)
    screen.start()
    judge = np.array((30, 160, 60))
    shown = 0
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            rgb = grab(display).astype(int)
            # Xvfb has no window manager to honour "fullscreen": look for the window's pixels
            shown = int((np.abs(rgb - judge).max(axis=2) < 12).sum())
            if shown > 20_000:
                break
            time.sleep(0.3)
    finally:
        screen.stop()
    assert shown > 20_000, f"only {shown} pixels of the judge's picture on the screen"
