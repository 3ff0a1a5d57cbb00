"""What the defendant sees: the court full-screen, a small self-view, and a status bar.

How this works: :class:`Screen` runs one thread that composes the picture about 15 times a second
(:meth:`Screen.compose`: the participant who has the floor, letterboxed; the terminal's own camera in
a corner; a bar with the connection, the hearing state and whether the court is recording) and shows
it with ``cv2.imshow`` / ``cv2.waitKey`` in that same thread, since HighGUI wants one thread and the
event loop must never wait for it. Received pictures are turned into pixels here, not on the loop.

Without a display (``--headless``, or an OpenCV built without HighGUI such as
``opencv-python-headless``) there is no window; the thread still runs, slowly, when a snapshot file
is configured, so remote support can see what the screen would show.

Chinese text needs a CJK font and Tibetan names a Tibetan one: :class:`TextPainter` draws with the
composite's painter (Pillow, fonts found by fontconfig, the shipped Tibetan Machine Uni), and falls
back to English with OpenCV's own font.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from recorder.overlay import FontFace
from recorder.overlay import TextPainter as OverlayPainter
from terminal.camera import FrameSource
from terminal.court import CourtFeed
from terminal.status import CONNECTION_LABELS, TerminalStatus

logger = logging.getLogger(__name__)

__all__ = ["Screen", "TextPainter", "self_view_rect"]

BAR_HEIGHT = 48
FPS = 15
HEARING_LABELS = {
    "scheduled": ("等待开庭", "waiting to open"),
    "open": ("庭审进行中", "in session"),
    "paused": ("休庭", "paused"),
    "closed": ("庭审已结束", "ended"),
}
PAUSE_LABELS = {
    "recess": ("休庭", "recess"),
    "non-public-evidence": ("不公开质证", "non-public evidence"),
    "mediation": ("调解", "mediation"),
}
ROLE_LABELS = {
    "judge": "审判长",
    "clerk": "书记员",
    "prosecutor": "公诉人",
    "defence": "辩护人",
    "party": "当事人",
    "witness": "证人",
    "interpreter": "翻译",
}
GREEN, AMBER, RED, WHITE, GREY = (
    (80, 200, 80),
    (0, 190, 255),
    (60, 60, 230),
    (240, 240, 240),
    (
        150,
        150,
        150,
    ),
)


class TextPainter:
    """Draws one line of text on a BGR image with the composite's painter (recorder/overlay.py):
    Chinese with a CJK font, Tibetan names with the shipped Tibetan font, else English/ASCII."""

    def __init__(
        self, font: Path | FontFace | None, tibetan: Path | FontFace | None = None
    ) -> None:
        face = FontFace(font) if isinstance(font, Path) else font
        bo = FontFace(tibetan) if isinstance(tibetan, Path) else tibetan
        self._painter = OverlayPainter(face, bo)

    @classmethod
    def create(cls) -> TextPainter:
        """A painter with the best CJK and Tibetan fonts found (English only without CJK)."""
        painter = cls(None)
        painter._painter = OverlayPainter.create()
        return painter

    @property
    def chinese(self) -> bool:
        """Whether Chinese labels can be drawn (else the English ones are used)."""
        return self._painter.cjk

    def draw(
        self, image: np.ndarray, text: str, x: int, y: int, size: int, colour: tuple[int, ...]
    ) -> int:
        """Draw `text` with its top-left at (x, y); returns the width drawn."""
        if x >= image.shape[1] or y >= image.shape[0]:
            return 0
        self._painter.draw(image, text, x, y, size, (colour[0], colour[1], colour[2]))
        return min(self.width(text, size), image.shape[1] - x)

    def width(self, text: str, size: int) -> int:
        """The width `text` takes at `size` pixels."""
        return int(self._painter.mask(text, size).shape[1])


def _fit(picture: np.ndarray, width: int, height: int) -> np.ndarray:
    """`picture` scaled to fit width x height, centred on black (letterbox)."""
    canvas = np.zeros((height, width, 3), np.uint8)
    ph, pw = picture.shape[:2]
    scale = min(width / pw, height / ph)
    w, h = max(1, int(pw * scale)), max(1, int(ph * scale))
    resized = cv2.resize(picture, (w, h), interpolation=cv2.INTER_LINEAR)
    x, y = (width - w) // 2, (height - h) // 2
    canvas[y : y + h, x : x + w] = resized
    return canvas


def self_view_rect(
    width: int, height: int, camera_w: int, camera_h: int
) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the self-view on a `width` x `height` screen: a fifth of the width,
    bottom right, above the status bar."""
    w = width // 5
    h = int(w * camera_h / camera_w)
    return width - w - 16, height - BAR_HEIGHT - h - 16, w, h


class Screen:
    """The window (or the snapshot) composed in its own thread."""

    def __init__(
        self,
        status: TerminalStatus,
        camera: FrameSource | None,
        court: Callable[[], CourtFeed | None],
        headless: bool = False,
        fullscreen: bool = True,
        snapshot_file: Path | None = None,
        snapshot_interval: float = 2.0,
        size: tuple[int, int] = (1280, 720),
        painter: TextPainter | None = None,
    ) -> None:
        self.status = status
        self.camera = camera
        self.court = court
        self.headless = headless
        self.fullscreen = fullscreen
        self.snapshot_file = snapshot_file
        self.snapshot_interval = snapshot_interval
        self.width, self.height = size
        self.painter = painter or TextPainter.create()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Open the window and start drawing (nothing to do when headless without a snapshot)."""
        if self.headless and self.snapshot_file is None:
            return
        self._thread = threading.Thread(target=self._run, name="Screen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the window."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- drawing ---------------------------------------------------------------------------------

    def _label(self, labels: tuple[str, str]) -> str:
        return labels[0] if self.painter.chinese else labels[1]

    def compose(self) -> np.ndarray:
        """The screen as a BGR picture, width x height."""
        canvas = np.zeros((self.height, self.width, 3), np.uint8)
        court_h = self.height - BAR_HEIGHT
        court = self.court()
        floor = court.floor() if court is not None else None
        picture = floor.picture if floor is not None else None
        if floor is not None and picture is not None:
            canvas[:court_h] = _fit(picture.to_ndarray(format="bgr24"), self.width, court_h)
            role = ROLE_LABELS.get(floor.role, floor.role)
            name = floor.name if floor.name.startswith(role) else f"{role}  {floor.name}".strip()
            if not self.painter.chinese:
                name = floor.role
            self.painter.draw(canvas, name, 16, 12, 26, WHITE)
        else:
            self._draw_waiting(canvas, court_h)
        self._draw_self_view(canvas, court_h)
        self._draw_bar(canvas, court_h)
        return canvas

    def _draw_waiting(self, canvas: np.ndarray, court_h: int) -> None:
        canvas[:court_h] = (40, 32, 24)
        status = self.status
        if status.connection == "connected":
            text = self._label(("等待法庭画面", "waiting for the court"))
        else:
            text = self._label(CONNECTION_LABELS.get(status.connection, ("", status.connection)))
        size = max(24, self.height // 16)
        width = self.painter.width(text, size)
        self.painter.draw(
            canvas, text, max(0, (self.width - width) // 2), court_h // 2, size, WHITE
        )
        if status.detail:
            self.painter.draw(canvas, status.detail, 24, court_h // 2 + size * 2, 20, GREY)

    def _draw_self_view(self, canvas: np.ndarray, court_h: int) -> None:
        latest = self.camera.latest() if self.camera is not None else None
        if latest is None:
            return
        x, y, w, h = self_view_rect(self.width, self.height, latest[0].shape[1], latest[0].shape[0])
        if y < 2:
            return
        canvas[y - 2 : y + h + 2, x - 2 : x + w + 2] = WHITE
        canvas[y : y + h, x : x + w] = cv2.resize(latest[0], (w, h), interpolation=cv2.INTER_AREA)

    def _draw_bar(self, canvas: np.ndarray, top: int) -> None:
        status = self.status
        canvas[top:] = (30, 30, 30)
        connection = status.connection
        colour = (
            GREEN if connection == "connected" else RED if connection == "reconnecting" else AMBER
        )
        cv2.circle(canvas, (24, top + BAR_HEIGHT // 2), 9, colour, -1, cv2.LINE_AA)
        x = 44
        label = self._label(CONNECTION_LABELS.get(connection, (connection, connection)))
        x += self.painter.draw(canvas, label, x, top + 10, 24, WHITE) + 32
        if status.hearing_state:
            label = self._label(
                HEARING_LABELS.get(status.hearing_state, ("", status.hearing_state))
            )
            if status.pause_reason:
                reason = PAUSE_LABELS.get(status.pause_reason, (status.pause_reason,) * 2)
                label += f" ({self._label(reason)})"
            x += self.painter.draw(canvas, label, x, top + 10, 24, WHITE) + 32
        if status.recording:
            rec = self._label(("录像中", "REC"))
        elif status.hearing_state == "paused":
            rec = self._label(("录像暂停", "recording paused"))
        else:
            rec = ""
        if rec:
            width = self.painter.width(rec, 24)
            rx = self.width - width - 16
            if status.recording and int(time.monotonic() * 2) % 2 == 0:
                cv2.circle(canvas, (rx - 18, top + BAR_HEIGHT // 2), 8, RED, -1, cv2.LINE_AA)
            self.painter.draw(canvas, rec, rx, top + 10, 24, RED if status.recording else AMBER)

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        viewer = None if self.headless else self._open_window()
        interval = 1.0 / FPS if viewer is not None else min(1.0, self.snapshot_interval)
        next_snapshot = 0.0
        while not self._stopped.is_set():
            started = time.monotonic()
            try:
                picture = self.compose()
                if viewer is not None and not self._show(viewer, picture):
                    viewer = None
                if self.snapshot_file is not None and started >= next_snapshot:
                    next_snapshot = started + self.snapshot_interval
                    self._write_snapshot(picture)
            except Exception:
                logger.exception("screen: drawing failed")
                self._stopped.wait(1.0)
            self._stopped.wait(max(0.0, interval - (time.monotonic() - started)))
        if viewer is not None:
            self._close_window(viewer)

    def _open_window(self) -> subprocess.Popen[bytes] | None:
        """Start the window process (terminal/viewer.py): Qt draws only from a main thread."""
        args = [sys.executable, "-m", "terminal.viewer", str(self.width), str(self.height)]
        if not self.fullscreen:
            args.append("--windowed")
        try:
            return subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError as exc:
            logger.error("screen: no window (%s); run with --headless", exc)
            return None

    def _show(self, viewer: subprocess.Popen[bytes], picture: np.ndarray) -> bool:
        stdin = viewer.stdin
        if stdin is None or viewer.poll() is not None:
            logger.error(
                "screen: the window closed (exit %s); install opencv-python with GUI support "
                "and a display, or run with --headless",
                viewer.returncode,
            )
            return False
        try:
            stdin.write(np.ascontiguousarray(picture).tobytes())
            stdin.flush()
        except (BrokenPipeError, OSError):
            logger.error("screen: the window went away")
            return False
        return True

    def _close_window(self, viewer: subprocess.Popen[bytes]) -> None:
        try:
            if viewer.stdin is not None:
                viewer.stdin.close()
            viewer.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            viewer.kill()

    def _write_snapshot(self, picture: np.ndarray) -> None:
        assert self.snapshot_file is not None
        ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return
        try:
            self.snapshot_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.snapshot_file.with_name(self.snapshot_file.name + ".tmp")
            temporary.write_bytes(data.tobytes())
            os.replace(temporary, self.snapshot_file)
        except OSError as exc:
            logger.warning("screen: snapshot not written: %s", exc)
