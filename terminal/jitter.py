"""An audio jitter buffer that plays on past a lost packet instead of discarding what it holds.

How this works. aiortc 1.16's audio receiver keeps 16 packets and hands a frame on only when the
frame at its origin and `prefetch` frames after it are all present. A lost packet at the origin
therefore stops it until the buffer overflows, and the overflow removes the *received* frames
around the gap along with it: on a link with 10 % loss the receiver decoded about half the frames
(tests/test_red_functional.py's control run). Redundant audio (terminal/red_receiver.py) repairs
most losses on the subscriber's own link, but a packet the publisher's link lost never reaches the
server, so every subscriber's buffer sees that gap.

This buffer keeps aiortc's capacity and prefetch, but hands on the oldest packet it holds as soon as
`prefetch` newer packets wait behind it, gap or no gap: a missing packet is given up only when later
ones prove it late, and everything received is played (the decoder bridges the missing 20 ms).
Without loss it behaves exactly like aiortc's. Video keeps aiortc's buffer (a frame with a hole
must not reach the decoder).
"""

from __future__ import annotations

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame

#: aiortc's own audio settings (rtcrtpreceiver.py): 16 packets, 4 frames prefetched.
CAPACITY = 16
PREFETCH = 4


class GapSkippingJitterBuffer(JitterBuffer):
    """For audio, one packet per frame (Opus over RTP): the oldest packet held is played once
    `prefetch` newer ones wait behind it, whether or not packets before it are missing."""

    def __init__(self, capacity: int = CAPACITY, prefetch: int = PREFETCH) -> None:
        super().__init__(capacity=capacity, prefetch=prefetch)
        self.skipped = 0  # packets given up as lost

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        origin = self._origin
        if origin is None:
            return None
        held: list[int] = []  # places after the origin that hold a packet, oldest first
        for count in range(self._capacity):
            if self._packets[(origin + count) % self._capacity] is not None:
                held.append(count)
                if len(held) > self._prefetch:
                    break
        if len(held) <= self._prefetch:
            return None  # a gap may still be filled (a late or redundant copy of its packet)
        first = held[0]
        packet = self._packets[(origin + first) % self._capacity]
        assert packet is not None
        self.skipped += first
        self.remove(first + 1)
        return JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]


def install(receiver: RTCRtpReceiver) -> GapSkippingJitterBuffer:
    """Use the gap-skipping buffer on an *audio* receiver (before its media flows)."""
    current = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    if isinstance(current, GapSkippingJitterBuffer):
        return current
    buffer = GapSkippingJitterBuffer()
    receiver._RTCRtpReceiver__jitter_buffer = buffer  # type: ignore[attr-defined]
    return buffer
