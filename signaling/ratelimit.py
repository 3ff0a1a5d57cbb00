"""Rate limits for client messages, with time passed in.

:class:`TokenBucket` is the mechanism: ``burst`` tokens, refilled at ``rate`` per second, one spent
per message. :class:`MessageRateLimit` is the protocol's policy on top (``PROTOCOL.md``, Limits): 20
messages per second sustained, bursts of 50, each refused message answered with ``rate-limited``,
and the 200th refusal in a row fatal, so a client that keeps hammering is disconnected while one
that had a burst and then waits is not.

``now`` is any monotonic clock in seconds (the server passes ``loop.time()``). A ``now`` that goes
backwards refills nothing rather than failing.
"""

from __future__ import annotations

import math
from typing import Final

from signaling.errors import ProtocolError

__all__ = [
    "MAX_REFUSED_IN_A_ROW",
    "MESSAGE_BURST",
    "MESSAGE_RATE",
    "MessageRateLimit",
    "TokenBucket",
]

#: Messages per second a connection may send, sustained.
MESSAGE_RATE: Final = 20.0
#: Messages a connection may send at once after a quiet spell.
MESSAGE_BURST: Final = 50.0
#: Refused messages in a row after which the connection is closed.
MAX_REFUSED_IN_A_ROW: Final = 200

# Slack for float arithmetic in the refill (0.05 s * 20/s is not exactly 1.0).
_ROUNDING: Final = 1e-9


class TokenBucket:
    """A token bucket: up to ``burst`` tokens, refilled continuously at ``rate`` tokens per second.

    The bucket starts full. ``allow(now, cost)`` spends ``cost`` tokens if there are that many and
    says whether it did; a refused request spends nothing.
    """

    def __init__(self, rate: float, burst: float) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive number, not {rate!r}")
        if not (math.isfinite(burst) and burst > 0):
            raise ValueError(f"burst must be a positive number, not {burst!r}")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last: float | None = None

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate}, burst={self.burst}, tokens={self._tokens:.2f})"

    def tokens(self, now: float) -> float:
        """How many tokens the bucket holds at ``now`` (without spending any)."""
        self._refill(now)
        return self._tokens

    def allow(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens at ``now`` if the bucket holds them; return whether it did."""
        if cost < 0:
            raise ValueError(f"cost must not be negative, not {cost!r}")
        self._refill(now)
        # A client sending at exactly the rate must not be refused for a rounding error.
        if self._tokens + _ROUNDING < cost:
            return False
        self._tokens = max(0.0, self._tokens - cost)
        return True

    def _refill(self, now: float) -> None:
        # Only time moving forward refills; keeping the latest time seen means a step backwards
        # cannot make the same interval count twice.
        if self._last is None:
            self._last = now
        elif now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now


class MessageRateLimit:
    """The per-connection message limit of the protocol.

    Call :meth:`check` once per received message, before parsing it. It returns quietly if the
    message may be handled, else raises :class:`ProtocolError` ``rate-limited``, fatal once
    ``max_refused`` messages in a row were refused.
    """

    def __init__(
        self,
        rate: float = MESSAGE_RATE,
        burst: float = MESSAGE_BURST,
        max_refused: int = MAX_REFUSED_IN_A_ROW,
    ) -> None:
        if max_refused < 1:
            raise ValueError(f"max_refused must be at least 1, not {max_refused!r}")
        self._bucket = TokenBucket(rate, burst)
        self.max_refused = max_refused
        #: Messages refused since the last one allowed.
        self.refused_in_a_row = 0

    def check(self, now: float) -> None:
        """Let one message through at ``now``, or raise ``rate-limited``."""
        if self._bucket.allow(now):
            self.refused_in_a_row = 0
            return
        self.refused_in_a_row += 1
        fatal = self.refused_in_a_row >= self.max_refused
        raise ProtocolError(
            "rate-limited",
            f"more than {self._bucket.rate:g} messages per second",
            fatal=fatal,
        )
