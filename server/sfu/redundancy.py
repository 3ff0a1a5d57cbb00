"""Audio redundancy toward lossy subscribers (RFC 2198 RED; format in signaling/red.py).

How this works. A subscriber whose answer kept RED gets plain Opus while its link is clean. When
its receiver reports for the audio stream show loss, the slot starts wrapping each packet with
copies of the one (loss >= 1 %) or two (loss >= 3 %) packets before it, so random loss up to ~10 %
is repaired before the subscriber's jitter buffer sees a gap. Redundancy steps back down one level
after 10 s without a report that needed it. Receiver reports count what the network delivered
(RED-recovered packets are not "received"), so redundancy never hides the loss that keeps it on.

The cost is bandwidth, not CPU: two copies of a 96 kbit/s Opus stream triple it, which is why it is
per subscriber and only while that subscriber loses packets. Audio first: the extra audio can push a
thin link's video gate to pause video, never the other way round.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Literal

from signaling import red

logger = logging.getLogger(__name__)

Mode = Literal["auto", "always", "off"]

#: Report loss fractions at or above which each redundancy level is switched on.
LEVELS = (0.01, 0.03)
MAX_DISTANCE = len(LEVELS)
#: A level is kept this long after the last report that asked for it.
HOLD_SECONDS = 10.0


class RedundancyPolicy:
    """How many earlier packets each audio packet to one subscriber carries (0, 1 or 2)."""

    def __init__(self, mode: Mode = "auto") -> None:
        self.mode = mode
        self.distance = MAX_DISTANCE if mode == "always" else 0
        self._last_needed = [float("-inf")] * (MAX_DISTANCE + 1)

    def observe(self, fraction_lost: float, now: float) -> int:
        """Take one receiver report's loss fraction for the audio stream; return the distance."""
        if self.mode != "auto":
            return self.distance
        for level, threshold in enumerate(LEVELS, start=1):
            if fraction_lost >= threshold:
                self._last_needed[level] = now
        wanted = max(
            (
                level
                for level in range(1, MAX_DISTANCE + 1)
                if now - self._last_needed[level] < HOLD_SECONDS
            ),
            default=0,
        )
        if wanted != self.distance:
            logger.info(
                "audio redundancy %d -> %d (loss %.1f %%)",
                self.distance,
                wanted,
                fraction_lost * 100,
            )
            self.distance = wanted
        return self.distance


class RecentPackets:
    """The last few packets of a publisher's audio stream: the blocks a RED payload repeats."""

    __slots__ = ("_packets",)

    def __init__(self) -> None:
        self._packets: deque[tuple[int, int, bytes]] = deque(maxlen=MAX_DISTANCE)

    def add(self, seq: int, ts: int, payload: bytes) -> None:
        """Keep an in-order packet (a late or repeated one is not the newest: it is skipped)."""
        if self._packets and not 0 < (seq - self._packets[-1][0]) & 0xFFFF < 0x8000:
            return
        self._packets.append((seq, ts, payload))

    def clear(self) -> None:
        self._packets.clear()

    def blocks(self, seq: int, ts: int, distance: int, floor: int) -> list[tuple[int, bytes]]:
        """[(timestamp offset, payload)] for the packets just before `seq`, oldest first.

        Only an unbroken run ending at seq - 1 (the receiver infers each block's sequence number
        from its place), none from before `floor` (the subscriber's line was resynchronised)."""
        out: list[tuple[int, bytes]] = []
        want = (seq - 1) & 0xFFFF
        for prev_seq, prev_ts, payload in reversed(self._packets):
            if len(out) >= distance or prev_seq != want:
                break
            if (prev_seq - floor) & 0xFFFF >= 0x8000:
                break
            offset = (ts - prev_ts) & 0xFFFFFFFF
            if not 0 < offset <= red.MAX_TIMESTAMP_OFFSET or len(payload) > red.MAX_BLOCK_LENGTH:
                break
            out.append((offset, payload))
            want = (want - 1) & 0xFFFF
        out.reverse()
        return out
