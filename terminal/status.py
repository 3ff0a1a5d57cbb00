"""What the terminal is doing, for the people around it: the status, its file, its console line.

How this works: :class:`TerminalStatus` is the one record of the terminal's state. The app changes
it through :meth:`TerminalStatus.set_connection` (which logs ``old -> new``) and plain attributes;
the screen thread reads it to draw the status bar; :class:`StatusReporter` rewrites the status file
(JSON, atomically) and the console line once a second. The console line uses ``rich`` on a real
terminal and plain text lines (one per change) otherwise, e.g. under systemd.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from terminal.court import CourtFeed

logger = logging.getLogger(__name__)

__all__ = ["CONNECTION_LABELS", "StatusReporter", "TerminalStatus"]

#: Connection states, with the Chinese and English words shown on screen.
CONNECTION_LABELS: dict[str, tuple[str, str]] = {
    "starting": ("正在启动", "starting"),
    "exchanging-code": ("正在验证加入码", "checking join code"),
    "connecting": ("正在连接", "connecting"),
    "lobby": ("等待法官准许进入", "waiting to be admitted"),
    "connected": ("已连接", "connected"),
    "reconnecting": ("连接中断，正在重连", "reconnecting"),
    "waiting-for-code": ("等待加入码", "waiting for a join code"),
    "hearing-ended": ("庭审已结束", "hearing ended"),
    "replaced": ("已在别处加入", "joined elsewhere"),
    "not-admitted": ("法庭未准许进入", "not admitted by the court"),
    "stopping": ("正在退出", "stopping"),
}


@dataclass
class TerminalStatus:
    """The terminal's state, shared by the app (writer), the screen and the reporter (readers)."""

    connection: str = "starting"
    #: Human detail of the connection state ("server unreachable", "join code not accepted").
    detail: str = ""
    hearing_id: str | None = None
    case_number: str = ""
    hearing_state: str | None = None  # scheduled, open, paused, closed
    pause_reason: str | None = None
    participant_id: str | None = None
    name: str = ""
    camera: str = "starting"
    microphone: str = "none"
    reconnects: int = 0
    connected_at: float | None = None  # wall-clock time of the current connection
    frames_sent: int = 0
    last_error: str | None = None
    court: CourtFeed | None = field(default=None, repr=False)
    started_at: float = field(default_factory=time.time)

    def set_connection(self, new: str, detail: str = "") -> None:
        """Change the connection state, logging the change."""
        old = self.connection
        if (old, self.detail) == (new, detail):
            return
        self.connection = new
        self.detail = detail
        if new == "connected":
            self.connected_at = time.time()
        logger.info("connection %s -> %s%s", old, new, f" ({detail})" if detail else "")

    @property
    def recording(self) -> bool:
        """Whether the court is recording (every open hearing is; a pause interrupts it)."""
        return self.connection == "connected" and self.hearing_state == "open"

    def to_wire(self) -> dict[str, Any]:
        """The status file's JSON object."""
        court = self.court
        remote = []
        last_media: float | None = None
        if court is not None:
            with court.lock:
                remote = [p.to_wire() for p in court.participants.values()]
            if court.last_frame_at is not None:
                last_media = time.time() - (time.monotonic() - court.last_frame_at)
        return {
            "connection": self.connection,
            "detail": self.detail,
            "hearing": {
                "id": self.hearing_id,
                "caseNumber": self.case_number,
                "state": self.hearing_state,
                "pauseReason": self.pause_reason,
            },
            "recording": self.recording,
            "participantId": self.participant_id,
            "name": self.name,
            "camera": self.camera,
            "microphone": self.microphone,
            "reconnects": self.reconnects,
            "connectedAt": self.connected_at,
            "framesSent": self.frames_sent,
            "lastMediaAt": last_media,
            "lastError": self.last_error,
            "remote": remote,
            "pid": os.getpid(),
            "updatedAt": time.time(),
        }

    def summary(self) -> str:
        """The one-line console status, e.g. ``connected | open REC | judge 审判长 25 fps``."""
        label = CONNECTION_LABELS.get(self.connection, (self.connection, self.connection))[1]
        parts = [label + (f" ({self.detail})" if self.detail else "")]
        if self.hearing_state:
            state = self.hearing_state
            if self.pause_reason:
                state += f" ({self.pause_reason})"
            parts.append(state + (" REC" if self.recording else ""))
        court = self.court
        if court is not None:
            with court.lock:
                people = [f"{p.role} {p.name}" for p in court.participants.values()]
            if people:
                parts.append(", ".join(people))
            parts.append("media ok" if court.media_flowing else "no media")
        parts.append(f"camera {self.camera}")
        if self.reconnects:
            parts.append(f"{self.reconnects} reconnects")
        return " | ".join(parts)


class StatusReporter:
    """Rewrites the status file and the console line every `interval` seconds until stopped."""

    def __init__(
        self,
        status: TerminalStatus,
        path: Path | None,
        interval: float = 1.0,
        stream: TextIO | None = None,
        refresh: Callable[[], None] | None = None,
    ) -> None:
        self.status = status
        self._refresh = refresh
        self.path = path
        self.interval = interval
        self._stream = stream if stream is not None else sys.stdout
        self._last_line = ""
        self._live: Any = None

    async def run(self) -> None:
        """Report until cancelled."""
        self._start_console()
        try:
            while True:
                self.report()
                await asyncio.sleep(self.interval)
        finally:
            self.report()
            if self._live is not None:
                with contextlib.suppress(Exception):
                    self._live.stop()

    def report(self) -> None:
        """Write the file and the console line now."""
        if self._refresh is not None:
            self._refresh()
        if self.path is not None:
            self._write_file()
        self._write_console()

    def _write_file(self) -> None:
        assert self.path is not None
        try:
            data = json.dumps(self.status.to_wire(), ensure_ascii=False)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(self.path.name + ".tmp")
            temporary.write_text(data, encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError as exc:
            logger.warning("status file %s not written: %s", self.path, exc)

    def _start_console(self) -> None:
        if not self._stream.isatty():
            return
        try:
            from rich.console import Console
            from rich.live import Live
        except ImportError:
            return
        console = Console(file=self._stream)
        self._live = Live("", console=console, refresh_per_second=2, transient=False)
        self._live.start()

    def _write_console(self) -> None:
        line = self.status.summary()
        if self._live is not None:
            from rich.text import Text

            style = {"connected": "bold green", "reconnecting": "bold red"}.get(
                self.status.connection, "yellow"
            )
            # One line, always: a long detail is cut, not wrapped.
            text = Text(f"庭审终端  {line}", style=style, no_wrap=True, overflow="ellipsis")
            self._live.update(text)
            return
        if line != self._last_line:
            self._last_line = line
            with contextlib.suppress(OSError, ValueError):
                print(f"[tingshen terminal] {line}", file=self._stream, flush=True)
