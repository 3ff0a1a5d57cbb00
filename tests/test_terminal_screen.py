"""terminal/screen.py: the composed picture (court, self-view, status bar) and the snapshot."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from av import VideoFrame

from terminal.camera import TESTSRC_BARS, PatternSource, bar_colours
from terminal.court import CourtFeed
from terminal.screen import BAR_HEIGHT, Screen, TextPainter, self_view_rect
from terminal.status import TerminalStatus
from tests.media import close_to


def picture(rgb: tuple[int, int, int]) -> VideoFrame:
    return VideoFrame.from_ndarray(np.full((240, 320, 3), rgb, np.uint8), format="rgb24")


def test_the_judge_has_the_floor_full_screen_with_self_view_and_bar() -> None:
    camera = PatternSource(640, 480, 30)
    camera.start()
    court = CourtFeed()
    court.add({"id": "p1", "name": "李某", "role": "party"})
    court.add({"id": "j1", "name": "王法官", "role": "judge"})
    court._on_frame("p1", picture((0, 0, 255)))
    court._on_frame("j1", picture((200, 100, 0)))
    status = TerminalStatus(connection="connected", hearing_state="open")
    screen = Screen(status, camera, lambda: court, headless=True)
    try:
        deadline = time.monotonic() + 5
        while camera.latest() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        rgb = cv2.cvtColor(screen.compose(), cv2.COLOR_BGR2RGB)
    finally:
        camera.stop()
    assert rgb.shape == (720, 1280, 3)
    centre = rgb[300:400, 500:700].reshape(-1, 3).mean(axis=0)
    assert close_to((int(centre[0]), int(centre[1]), int(centre[2])), (200, 100, 0), tol=3)
    x, y, w, h = self_view_rect(1280, 720, 640, 480)
    assert all(
        close_to(got, expected, tol=12)
        for got, expected in zip(bar_colours(rgb[y : y + h, x : x + w]), TESTSRC_BARS, strict=True)
    )
    bar = rgb[720 - BAR_HEIGHT :]
    assert bar.max() > 200  # text drawn on the bar
    assert (bar[:, :, 0] > 200).any() and status.recording  # the red "recording" mark


def test_without_the_court_it_says_why() -> None:
    status = TerminalStatus(connection="reconnecting", detail="server unreachable")
    screen = Screen(status, None, lambda: None, headless=True, size=(640, 360))
    image = screen.compose()
    assert image.shape == (360, 640, 3)
    assert image[: 360 - BAR_HEIGHT].max() > 200  # the message is written on the court area


def test_first_video_is_shown_when_no_judge() -> None:
    court = CourtFeed()
    court.add({"id": "w", "name": "证人", "role": "witness"})
    assert court.floor() is None  # no picture yet
    court._on_frame("w", picture((0, 255, 0)))
    floor = court.floor()
    assert floor is not None and floor.id == "w"


def test_snapshot_file_is_written_in_headless_mode(tmp_path: Path) -> None:
    status = TerminalStatus(connection="lobby")
    snapshot = tmp_path / "screen.jpg"
    screen = Screen(
        status, None, lambda: None, headless=True, snapshot_file=snapshot, snapshot_interval=0.1
    )
    screen.start()
    try:
        deadline = time.monotonic() + 5
        while not snapshot.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        screen.stop()
    written = cv2.imread(str(snapshot))
    assert written is not None and written.shape == (720, 1280, 3)


def test_text_painter_falls_back_to_english() -> None:
    painter = TextPainter(None)
    image = np.zeros((40, 200, 3), np.uint8)
    assert painter.draw(image, "REC 录像", 2, 2, 20, (255, 255, 255)) > 0
    assert image.max() > 0 and not painter.chinese


def test_a_window_without_gui_support_falls_back_to_no_window(tmp_path: Path) -> None:
    # opencv-python-headless has no HighGUI: the terminal logs it and keeps running.
    snapshot = tmp_path / "screen.jpg"
    screen = Screen(
        TerminalStatus(),
        None,
        lambda: None,
        headless=False,
        snapshot_file=snapshot,
        snapshot_interval=0.1,
    )
    screen.start()
    try:
        deadline = time.monotonic() + 5
        while not snapshot.exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        screen.stop()


def test_tibetan_names_are_drawn_not_boxes() -> None:
    """The court window names whoever is shown: a Tibetan name needs the Tibetan font (shipped in
    web/fonts) and shaping, like the composite's labels."""
    painter = TextPainter.create()
    assert painter.chinese  # tests/run installs fonts-noto-cjk
    assert painter._painter.tibetan is not None  # web/fonts/TibetanMachineUni.woff2
    a = painter._painter.mask("བཀྲ་ཤིས", 26)
    b = painter._painter.mask("ཚེ་རིང", 26)
    box = painter._painter.mask("\U000f0000\U000f0001", 26)  # no font has these: .notdef boxes
    assert a.shape != b.shape or not np.array_equal(a, b)
    assert a.max() > 0 and a.shape[1] != box.shape[1]
    image = np.zeros((60, 400, 3), np.uint8)
    assert painter.draw(image, "བཀྲ་ཤིས (扎西)", 2, 2, 26, (255, 255, 255)) > 0
    assert image.max() > 0
