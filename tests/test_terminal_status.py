"""terminal/status.py: the status record, its file, and the console line."""

from __future__ import annotations

import io
import json
from pathlib import Path

from terminal.court import CourtFeed
from terminal.status import StatusReporter, TerminalStatus


def test_recording_is_on_only_while_connected_to_an_open_hearing() -> None:
    status = TerminalStatus(connection="connected", hearing_state="open")
    assert status.recording
    status.hearing_state, status.pause_reason = "paused", "recess"
    assert not status.recording
    assert "paused (recess)" in status.summary()
    status.set_connection("reconnecting", "media-stalled")
    assert not status.recording and status.summary().startswith("reconnecting (media-stalled)")


def test_status_file_and_plain_console_line(tmp_path: Path) -> None:
    court = CourtFeed()
    court.add({"id": "j", "name": "审判长", "role": "judge"})
    status = TerminalStatus(connection="connected", hearing_state="open", court=court)
    console = io.StringIO()  # not a TTY: plain lines, one per change
    path = tmp_path / "run" / "status.json"
    reporter = StatusReporter(status, path, stream=console)
    reporter.report()
    reporter.report()
    wire = json.loads(path.read_text())
    assert wire["connection"] == "connected" and wire["recording"] is True
    assert wire["remote"][0]["name"] == "审判长" and wire["lastMediaAt"] is None
    lines = console.getvalue().splitlines()
    assert len(lines) == 1 and "judge 审判长" in lines[0] and "REC" in lines[0]
    status.set_connection("reconnecting")
    reporter.report()
    assert len(console.getvalue().splitlines()) == 2
