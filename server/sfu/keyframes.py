"""Keyframe requests towards a publisher, and keyframe detection in VP8 RTP payloads.

Every subscriber that joins, and every PLI/FIR a subscriber sends, asks the publisher for a keyframe.
Thirty joins in a second must not become thirty keyframes (each is 5-10x a delta frame on a thin
link), so requests are throttled to one per `interval`. The throttle **coalesces, it never drops**: a
request inside the window is remembered and sent when the window ends. A publisher with a long GOP
and no periodic keyframes would otherwise leave a late subscriber black for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.3


class KeyframeThrottle:
    """The coalescing throttle as plain logic: time is passed in, nothing is scheduled here."""

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        self.interval = interval
        self._last_sent: float | None = None
        self._pending = False

    @property
    def pending(self) -> bool:
        return self._pending

    def request(self, now: float) -> float | None:
        """Register a request at `now`.

        Returns 0.0 when a request should be sent now, a positive delay when the caller must
        schedule one send after that delay, and None when a send is already scheduled (the request
        is folded into it).
        """
        if self._pending:
            return None
        if self._last_sent is None or now - self._last_sent >= self.interval:
            self._last_sent = now
            return 0.0
        self._pending = True
        return self.interval - (now - self._last_sent)

    def fire(self, now: float) -> None:
        """The scheduled send happens now."""
        self._pending = False
        self._last_sent = now


class KeyframeRequester:
    """Drives a `KeyframeThrottle` on an event loop; `send` emits one PLI upstream."""

    def __init__(
        self,
        send: Callable[[], None],
        interval: float = DEFAULT_INTERVAL,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._send = send
        self._throttle = KeyframeThrottle(interval)
        self._loop = loop or asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self.sent = 0
        self.requested = 0

    def request(self) -> None:
        self.requested += 1
        delay = self._throttle.request(self._loop.time())
        if delay is None:
            return
        if delay == 0.0:
            self._emit()
        else:
            self._timer = self._loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._throttle.fire(self._loop.time())
        self._emit()

    def _emit(self) -> None:
        self.sent += 1
        try:
            self._send()
        except Exception:
            logger.exception("keyframe request failed")

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def vp8_payload_is_keyframe(payload: bytes) -> bool:
    """True when an RTP VP8 payload (RFC 7741) starts a keyframe.

    The payload descriptor is 1-6 bytes; the first packet of a frame has S=1 and partition id 0,
    and the VP8 frame tag right after the descriptor has P (bit 0) = 0 for a keyframe.
    """
    n = len(payload)
    if n < 2:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # S bit clear, or partition id != 0
        return False
    offset = 1
    if first & 0x80:  # X: extension byte follows
        ext = payload[1]
        offset = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if offset >= n:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            offset += 1
        if ext & 0x30:  # T or K: TID/KEYIDX byte
            offset += 1
    if offset >= n:
        return False
    return not payload[offset] & 0x01
