"""terminal/app.py: the reconnect backoff, and the CLI entry point's refusals."""

from __future__ import annotations

import random

import pytest

from server.cli import main as tingshen
from terminal.app import Backoff, main


def delays(backoff: Backoff, times: list[float]) -> list[float]:
    return [round(backoff.next(t), 2) for t in times]


def test_backoff_doubles_to_its_cap_then_to_the_long_cap() -> None:
    backoff = Backoff(0.5, 2.0, 15.0, 120.0, rng=random.Random(1))
    short = delays(backoff, [0, 1, 2, 3, 4, 5])
    assert [0.4 <= d <= 0.6 for d in short[:1]] == [True]
    assert all(d <= 2.0 * 1.2 for d in short) and short[-1] >= 2.0 * 0.8
    late = delays(backoff, [200, 210, 220, 230])
    assert max(late) > 2.4 and all(d <= 15.0 * 1.2 for d in late)
    backoff.reset()
    assert backoff.next(300) <= 0.6


def test_backoff_is_jittered() -> None:
    backoff = Backoff(1.0, 1.0, 1.0, 60.0)
    assert len({backoff.next(0) for _ in range(20)}) > 1


def test_bad_settings_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--server", "ftp://nowhere"]) == 2
    assert "server" in capsys.readouterr().err


def test_tingshen_terminal_dispatches_to_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        tingshen(["terminal", "--help"])
    assert exit_info.value.code == 0
    assert "--source" in capsys.readouterr().out
    assert tingshen(["terminal", "--server", "ftp://nowhere"]) == 2
