"""Audio first: decide, per subscriber, whether its link can carry video at all.

A county court at the end of a thin, lossy link must keep hearing the court when pictures cannot get
through. The gate watches what the subscriber itself reports (RTCP receiver reports: the fraction of
our packets it lost, per stream; REMB: the bitrate it estimates it can take) and turns that
subscriber's video off when the link is clearly overloaded, so the audio it still gets is not
crowded out. Nothing is re-encoded; we only choose what to forward.

Hysteresis, so that it does not flap: video goes off after two bad reports in a row; it comes back
only after a hold time and once the audio reports have been good for a while (at least two in a
row, covering `good_audio_seconds`), as a probe; if the probe fails within `probe_seconds` the next
hold is twice as long (up to `max_hold`), and a probe that lasts resets the hold. Plain logic with
time passed in; the peer feeds it and applies the result.

Receivers report at their own pace, so both rules count time, not reports: aiortc sends a receiver
report per stream every 0.5-1.5 s, Chromium one for video about every second (and more with its
NACKs) and a REMB about every second, but one for audio only every 2.5-7.5 s (5 s on average). A
report spans an outage when nothing at all came from the subscriber for `STALE_REPORT_SECONDS`
before it; a gap in one kind's reports alone is only that receiver's pace (counted per kind,
Chromium's audio reports all looked stale and video never came back to a browser).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

logger = logging.getLogger(__name__)


#: A report arriving this long after anything else from the subscriber spans an outage of its link.
STALE_REPORT_SECONDS = 3.0


@dataclass(frozen=True)
class GateSettings:
    off_loss: float = 0.15  # a report with this fraction lost (or more) is bad
    on_loss: float = 0.03  # audio reports under this are good enough to try video again
    good_audio_seconds: float = 3.0  # ... when they cover this long (three of aiortc's reports)
    off_remb_bps: int = 100_000  # an estimate under this cannot carry video
    remb_grace: float = 10.0  # a receiver's estimate starts low and ramps up: ignore it at first
    hold: float = 5.0
    max_hold: float = 60.0
    probe_seconds: float = 10.0


class VideoGate:
    """`on` forwards video to the subscriber, `off` forwards only audio."""

    def __init__(self, settings: GateSettings | None = None, now: float = 0.0) -> None:
        self.settings = settings or GateSettings()
        self._created = now
        self.state = "on"
        # consecutive bad reports, per kind (a good audio report says nothing about video)
        self._bad: dict[str, deque[bool]] = {}
        self._last_report: dict[str, float] = {}  # per kind, and "remb"
        self._last_heard: float | None = None  # any report or estimate from the subscriber
        self._last_loss: dict[str, float] = {}
        #: the good audio reports since the last bad one: how many, and from when they speak
        #: (a report covers the time since the one before it); None after a bad one
        self._good_audio_since: float | None = None
        self._good_audio_reports = 0
        self._hold = self.settings.hold
        self._off_since = 0.0
        self._probe_since: float | None = None
        self.changes = 0

    def observe_loss(self, kind: str, fraction_lost: float, now: float) -> str | None:
        """A receiver report from the subscriber about one of our streams."""
        previous = self._last_report.get(kind)
        self._last_report[kind] = now
        if self._heard(now):
            return None  # this report spans an outage of the link, not its capacity
        self._last_loss[kind] = fraction_lost
        if kind == "audio":
            self._observe_audio(fraction_lost < self.settings.on_loss, previous, now)
        if self.state == "on":
            if self._bad_twice(kind, fraction_lost >= self.settings.off_loss):
                return self._turn_off(now, f"loss {fraction_lost:.0%} on {kind}")
            self._check_probe(now)
            return None
        return self._maybe_probe(now)

    def observe_remb(self, bps: int, now: float) -> str | None:
        """A bandwidth estimate from the subscriber (REMB)."""
        previous = self._last_report.get("remb")
        self._last_report["remb"] = now
        self._heard(now)
        if previous is not None and now - previous > STALE_REPORT_SECONDS:
            self._created = now  # no video reached it for a while: its estimate starts over
        if now - self._created < self.settings.remb_grace:
            return None
        if self.state == "on":
            # An estimate alone is not proof (a receiver's estimator may sit low long after an
            # outage): only a low estimate while video is actually being lost counts.
            losing = self._last_loss.get("video", 0.0) >= self.settings.on_loss
            if self._bad_twice("remb", bps < self.settings.off_remb_bps and losing):
                return self._turn_off(now, f"estimate {bps // 1000} kbit/s")
            return None
        return self._maybe_probe(now)

    def _heard(self, now: float) -> bool:
        """Note that the subscriber said something; whether it had been silent for too long."""
        silent = self._last_heard is not None and now - self._last_heard > STALE_REPORT_SECONDS
        self._last_heard = now
        return silent

    def _observe_audio(self, good: bool, previous: float | None, now: float) -> None:
        if not good:
            self._good_audio_since = None
            return
        if self._good_audio_since is None:
            # this report speaks for the time since the one before it, but not for before video
            # went off (the video was what overloaded the link then)
            since = now if previous is None else previous
            self._good_audio_since = max(since, self._off_since)
            self._good_audio_reports = 0
        self._good_audio_reports += 1

    def _audio_good(self) -> bool:
        since, last = self._good_audio_since, self._last_report.get("audio")
        return (
            since is not None
            and last is not None
            and self._good_audio_reports >= 2
            and last - since >= self.settings.good_audio_seconds
        )

    def _bad_twice(self, source: str, bad: bool) -> bool:
        window = self._bad.setdefault(source, deque(maxlen=2))
        window.append(bad)
        return len(window) == 2 and all(window)

    def _turn_off(self, now: float, why: str) -> str:
        if self._probe_since is not None and now - self._probe_since < self.settings.probe_seconds:
            self._hold = min(self._hold * 2, self.settings.max_hold)  # the probe failed
        self._probe_since = None
        self.state = "off"
        self._off_since = now
        self._bad.clear()
        self._good_audio_since = None
        self.changes += 1
        logger.info("video off for %.0f s at least: %s", self._hold, why)
        return self.state

    def _maybe_probe(self, now: float) -> str | None:
        if now - self._off_since < self._hold:
            return None
        if not self._audio_good():
            return None
        self.state = "on"
        self._probe_since = now
        self._created = now  # the estimate ramps up again with video: give it the grace again
        self._bad.clear()
        self.changes += 1
        logger.info("video back on (probe)")
        return self.state

    def _check_probe(self, now: float) -> None:
        if self._probe_since is not None and now - self._probe_since >= self.settings.probe_seconds:
            self._probe_since = None
            self._hold = self.settings.hold  # the link held: next time start short again
