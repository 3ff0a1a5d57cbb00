"""`tingshen terminal`: the unattended terminal of a remote defendant.

How this works: :class:`Terminal` owns what lives as long as the process: the camera and
microphone threads, the speaker, the screen thread, the status reporter, and the invitation on
disk. Its :meth:`Terminal.run` loop gets a hearing link (the stored one, or the join code
exchanged), runs one :class:`HearingSession` until it ends, and decides what comes next from
:class:`SessionEnd`: a dropped link, a failed peer connection, stalled media or a restarting
server mean "reconnect after a :class:`Backoff` delay"; a refused token means "back to the join
code"; an ended hearing means "wait for the code of the next one" (re-read from the config file).
Nobody at the terminal needs to touch it: SIGTERM leaves the hearing and exits, SIGHUP cuts a wait
short (e.g. after a new code was written to the config file).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import logging.handlers
import random
import signal
import sys
import time
from pathlib import Path

from aiortc import MediaStreamTrack

from terminal.audio import AudioMixer, Microphone, Speaker, ToneTrack, open_microphone, open_speaker
from terminal.camera import CameraTrack, FrameSource, open_source
from terminal.config import ConfigError, TerminalConfig, build_parser, config_from_args
from terminal.court import CourtFeed
from terminal.invitation import CodeRefused, InvitationStore, ServerUnreachable
from terminal.screen import Screen
from terminal.session import HearingSession, SessionEnd
from terminal.status import StatusReporter, TerminalStatus

logger = logging.getLogger(__name__)

__all__ = ["Backoff", "Terminal", "main"]

#: After `bye replaced` someone else uses this invitation: do not take it straight back.
REPLACED_WAIT = 30.0


class Backoff:
    """Reconnect delays: `initial`, doubling up to `maximum`; after `long_after` seconds of
    failing, up to `long_maximum` (a long outage should not keep the server busy). Each delay is
    jittered by ±20 % so that terminals cut off together do not return in step."""

    def __init__(
        self,
        initial: float,
        maximum: float,
        long_maximum: float,
        long_after: float,
        rng: random.Random | None = None,
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.long_maximum = long_maximum
        self.long_after = long_after
        self.failures = 0
        self.failing_since: float | None = None
        self._rng = rng or random.Random()

    def next(self, now: float) -> float:
        """The delay before the next attempt, after one more failure at `now` (monotonic)."""
        if self.failing_since is None:
            self.failing_since = now
        self.failures += 1
        cap = self.maximum if now - self.failing_since < self.long_after else self.long_maximum
        delay = min(cap, self.initial * 2 ** (self.failures - 1))
        return delay * self._rng.uniform(0.8, 1.2)

    def reset(self) -> None:
        """A connection worked: the next failure starts from `initial` again."""
        self.failures = 0
        self.failing_since = None


class Terminal:
    """The terminal application (see the module docstring)."""

    def __init__(self, config: TerminalConfig) -> None:
        self.config = config
        self.status = TerminalStatus()
        self.store = InvitationStore(config.state_file)
        self.backoff = Backoff(
            config.backoff_initial,
            config.backoff_max,
            config.backoff_long_max,
            config.long_outage,
        )
        self.stop_event = asyncio.Event()
        self._wake = asyncio.Event()
        self.camera: FrameSource | None = None
        self.microphone: Microphone | None = None
        self.speaker: Speaker | None = None
        self.mixer: AudioMixer | None = None
        self.screen: Screen | None = None
        self.court: CourtFeed | None = None

    def stop(self) -> None:
        """Leave the hearing and exit (SIGTERM, SIGINT)."""
        if not self.stop_event.is_set():
            logger.info("stopping")
            self.status.set_connection("stopping")
        self.stop_event.set()
        self._wake.set()

    def wake(self) -> None:
        """Cut the current wait short (SIGHUP): re-read the code and try now."""
        logger.info("woken up: trying now")
        self._wake.set()

    async def run(self) -> int:
        """Run until stopped; returns the exit status."""
        config = self.config
        logger.info("terminal starting: server %s, source %s", config.server, config.source)
        self.camera = await asyncio.to_thread(
            open_source, config.source, config.width, config.height, config.fps
        )
        if config.source != "testsrc":
            self.microphone = await open_microphone(config.microphone)
        if config.speaker != "none":
            self.mixer = AudioMixer()
            self.speaker = open_speaker(config.speaker, self.mixer)
            if self.speaker is None:
                self.mixer = None
        self.status.microphone = (
            "testsrc" if config.source == "testsrc" else repr(self.microphone or "none")
        )
        self.screen = Screen(
            self.status,
            self.camera,
            lambda: self.court,
            headless=config.headless,
            fullscreen=config.fullscreen,
            snapshot_file=config.snapshot_file,
            snapshot_interval=config.snapshot_interval,
        )
        self.screen.start()
        camera = self.camera

        def refresh() -> None:
            self.status.camera = camera.state

        reporter = asyncio.create_task(
            StatusReporter(self.status, config.status_file, refresh=refresh).run()
        )
        try:
            await self._loop()
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            await asyncio.to_thread(self._release_devices)
        logger.info("terminal stopped")
        return 0

    def _release_devices(self) -> None:
        for device in (self.screen, self.camera, self.microphone, self.speaker):
            if device is not None:
                device.stop()

    def _make_tracks(self) -> dict[str, MediaStreamTrack]:
        assert self.camera is not None
        camera = self.camera

        def sent() -> None:
            self.status.frames_sent += 1

        tracks: dict[str, MediaStreamTrack] = {"video": CameraTrack(camera, on_frame=sent)}
        if self.config.source == "testsrc":
            tracks["audio"] = ToneTrack()
        elif self.microphone is not None:
            tracks["audio"] = self.microphone.track()
        return tracks

    async def _wait(self, seconds: float) -> None:
        """Sleep `seconds`, or less if stopped or woken."""
        self._wake.clear()
        if self.stop_event.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _retry_later(self, detail: str) -> None:
        delay = self.backoff.next(time.monotonic())
        self.status.set_connection("reconnecting", detail)
        logger.info("reconnecting in %.1f s (%s)", delay, detail)
        await self._wait(delay)

    async def _loop(self) -> None:
        config, status = self.config, self.status
        while not self.stop_event.is_set():
            code = config.reload_code()
            if self.store.matches(config.server, code) is None and code is not None:
                status.set_connection("exchanging-code")
            try:
                invitation = await self.store.current(config.server, code)
            except ServerUnreachable as exc:
                await self._retry_later(f"server unreachable: {exc}")
                continue
            except CodeRefused as exc:
                status.set_connection("waiting-for-code", f"join code not accepted: {exc.message}")
                await self._wait(exc.retry_after or config.code_retry)
                continue
            if invitation is None:
                status.set_connection("waiting-for-code", "no join code configured")
                await self._wait(config.code_retry)
                continue
            if status.connection not in ("reconnecting",):
                status.set_connection("connecting")
            self.court = CourtFeed(self.mixer)
            status.court = self.court
            session = HearingSession(config, invitation, status, self.court, self._make_tracks)
            try:
                end = await session.run(self.stop_event)
            except Exception as exc:
                # Nobody is there to restart it: log the bug, and try again like any failure.
                logger.exception("session failed unexpectedly")
                end = SessionEnd("internal", f"{type(exc).__name__}: {exc}")
            logger.info("session ended: %s %s", end.reason, end.detail)
            await self._after(end)

    async def _after(self, end: SessionEnd) -> None:
        config, status = self.config, self.status
        if end.reason == "stopped" or self.stop_event.is_set():
            return
        if end.healthy:
            self.backoff.reset()
        status.last_error = f"{end.reason}: {end.detail}" if end.detail else end.reason
        if end.token_refused:
            self.store.forget()
            if end.code in ("hearing-ended", "ended"):
                status.set_connection("hearing-ended", "waiting for the next hearing's code")
            else:
                status.set_connection("waiting-for-code", f"link refused ({end.code})")
            status.hearing_state = None
            await self._wait(config.code_retry)
            return
        if end.reason == "bye" and end.code == "replaced":
            status.set_connection("replaced", "this invitation was used by another device")
            await self._wait(REPLACED_WAIT)
            return
        if end.reason == "bye" and end.code == "refused":
            # The judge sent the terminal away from the lobby; ask again later, not at once.
            status.set_connection("not-admitted", "the court did not admit this terminal")
            await self._wait(REPLACED_WAIT)
            return
        if end.reason == "refused":
            # A refusal that is not about the token (full hearing, rate limit): try later.
            status.set_connection("reconnecting", f"refused: {end.code}")
            await self._wait(config.code_retry)
            return
        status.reconnects += 1
        await self._retry_later(f"{end.reason}: {end.detail}" if end.detail else end.reason)


def setup_logging(log: Path | None, verbose: bool = False) -> None:
    """Log to `log` (rotated, 5 x 5 MB) and warnings to stderr; or everything to stderr."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(formatter)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            log, maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8"
        )
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
        stderr.setLevel(logging.WARNING)
    root.addHandler(stderr)
    for noisy in ("aioice", "aiortc", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def _run(config: TerminalConfig) -> int:
    terminal = Terminal(config)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, terminal.stop)
    loop.add_signal_handler(signal.SIGINT, terminal.stop)
    loop.add_signal_handler(signal.SIGHUP, terminal.wake)
    try:
        return await terminal.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)


def main(argv: list[str] | None = None) -> int:
    """The `tingshen terminal` entry point (also `python -m terminal`)."""
    parser = build_parser()
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    return run_from_args(args)


def run_from_args(args: argparse.Namespace) -> int:
    """Run the terminal with parsed `build_parser()` arguments."""
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"tingshen terminal: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log, getattr(args, "verbose", False))
    return asyncio.run(_run(config))


if __name__ == "__main__":
    sys.exit(main())
