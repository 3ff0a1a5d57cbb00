"""Network evidence: each participant's connection, sampled onto the hearing's timeline.

The online litigation rules treat leaving a hearing as a refusal to appear unless a network, device
or power failure caused it, so the court must be able to show what the link did. Every few seconds
the monitor samples each participant's peer connection (round-trip time, loss in each direction,
bitrate in each direction) and puts the sample on the recording's timeline; connection state changes
go there as they happen. The judge and clerk get a quality level per participant (good, poor, bad)
for the indicator on their page.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from server.sfu.peer import Peer

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL = 5.0


@dataclass
class LinkSample:
    """One participant's link over the last interval."""

    participant_id: str
    rtt_ms: float | None
    loss_in_pct: float | None  # what the server lost of this participant's media
    loss_out_pct: float | None  # what this participant reports losing of ours
    kbps_in: float
    kbps_out: float
    state: str
    publishing: bool = False  # it sends media: silence from it means the link, not the person

    @property
    def level(self) -> str:
        """good / poor / bad: what the judge's indicator shows."""
        if self.state not in ("connected", "new", "connecting"):
            return "bad"
        if self.publishing and self.kbps_in < 1.0:
            return "bad"  # nothing arrives from a participant who sends: the link is down
        loss = max(self.loss_in_pct or 0.0, self.loss_out_pct or 0.0)
        rtt = self.rtt_ms or 0.0
        if loss >= 10.0 or rtt >= 1000.0:
            return "bad"
        if loss >= 2.0 or rtt >= 400.0:
            return "poor"
        return "good"

    def to_wire(self) -> dict[str, Any]:
        def r(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        return {
            "participantId": self.participant_id,
            "level": self.level,
            "state": self.state,
            "rttMs": r(self.rtt_ms),
            "lossInPct": r(self.loss_in_pct),
            "lossOutPct": r(self.loss_out_pct),
            "kbpsIn": r(self.kbps_in),
            "kbpsOut": r(self.kbps_out),
        }


@dataclass
class _Counters:
    at: float
    octets_in: int = 0
    octets_out: int = 0
    received: dict[int, tuple[int, int]] = field(default_factory=dict)  # ssrc -> (recv, lost)


async def sample_peer(peer: Peer, previous: _Counters | None) -> tuple[LinkSample, _Counters]:
    """Sample one peer connection; rates and loss are over the time since `previous`."""
    now = time.monotonic()
    counters = _Counters(
        at=now,
        octets_in=sum(s.octets for s in peer.published.values()),
        octets_out=sum(s.octets for s in peer.slots),
    )
    rtts: list[float] = []
    fraction_lost: list[float] = []
    report = await peer.pc.getStats()
    for stats in report.values():
        kind = getattr(stats, "type", "")
        if kind == "inbound-rtp":
            counters.received[stats.ssrc] = (stats.packetsReceived, stats.packetsLost)
        elif kind == "remote-inbound-rtp":
            if stats.roundTripTime is not None:
                rtts.append(stats.roundTripTime * 1000.0)
            if stats.fractionLost is not None:
                fraction_lost.append(stats.fractionLost / 256.0 * 100.0)
    loss_in: float | None = None
    kbps_in = kbps_out = 0.0
    if previous is not None:
        elapsed = max(now - previous.at, 1e-3)
        kbps_in = (counters.octets_in - previous.octets_in) * 8 / elapsed / 1000
        kbps_out = (counters.octets_out - previous.octets_out) * 8 / elapsed / 1000
        got = lost = 0
        for ssrc, (received, lost_now) in counters.received.items():
            before = previous.received.get(ssrc, (0, 0))
            got += max(received - before[0], 0)
            lost += max(lost_now - before[1], 0)
        if got + lost:
            loss_in = 100.0 * lost / (got + lost)
    sample = LinkSample(
        participant_id=peer.participant_id,
        rtt_ms=max(rtts) if rtts else None,
        loss_in_pct=loss_in,
        loss_out_pct=max(fraction_lost) if fraction_lost else None,
        kbps_in=kbps_in,
        kbps_out=kbps_out,
        state=peer.connection_state,
        publishing=previous is not None and peer.publishing,
    )
    return sample, counters


class NetworkMonitor:
    """Samples every peer of a live hearing on an interval; owned and stopped by the hearing."""

    def __init__(
        self,
        peers: Callable[[], list[Peer]],
        on_sample: Callable[[LinkSample], Awaitable[None]],
        interval: float = SAMPLE_INTERVAL,
    ) -> None:
        self._peers = peers
        self._on_sample = on_sample
        self.interval = interval
        self._previous: dict[str, _Counters] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.sample_once()

    async def sample_once(self) -> None:
        peers = self._peers()
        alive = {p.participant_id for p in peers}
        for gone in set(self._previous) - alive:
            del self._previous[gone]
        for peer in peers:
            try:
                sample, counters = await sample_peer(peer, self._previous.get(peer.participant_id))
            except Exception:
                logger.exception("network sample of %s failed", peer.participant_id)
                continue
            first = peer.participant_id not in self._previous
            self._previous[peer.participant_id] = counters
            if not first:
                await self._on_sample(sample)
