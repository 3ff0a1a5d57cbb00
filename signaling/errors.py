"""The one error type of the hearing protocol.

Everything in :mod:`signaling` that refuses an input raises :class:`ProtocolError`. Its ``code`` is
one of the error codes of ``PROTOCOL.md`` (the :class:`ErrorCode` values), so the server can turn
any refusal into an ``error`` reply without a mapping table; ``fatal`` says whether the server
closes the socket after the reply. Programming mistakes (an unknown error code, a bad argument from
our own code) stay ``ValueError``/``TypeError`` and are never sent to a client.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ErrorCode", "ProtocolError"]


class ErrorCode(StrEnum):
    """The error codes of ``PROTOCOL.md``; values are the wire strings."""

    bad_json = "bad-json"
    too_large = "too-large"
    bad_message = "bad-message"
    unknown_type = "unknown-type"
    not_joined = "not-joined"
    already_joined = "already-joined"
    bad_token = "bad-token"
    token_expired = "token-expired"
    hearing_not_found = "hearing-not-found"
    hearing_ended = "hearing-ended"
    bad_sdp = "bad-sdp"
    stale_answer = "stale-answer"
    rate_limited = "rate-limited"
    forbidden = "forbidden"
    internal = "internal"


class ProtocolError(Exception):
    """A refused input: becomes an ``error`` message ``{code, message, fatal}`` on the wire.

    ``code`` must be one of the protocol's error codes (a plain string or an :class:`ErrorCode`);
    ``message`` is for humans and must not carry secrets; ``fatal`` means the server closes the
    connection after sending the error.
    """

    code: str
    message: str
    fatal: bool

    def __init__(self, code: str, message: str, fatal: bool = False) -> None:
        try:
            # Store the plain string so that comparisons, repr and JSON all see "bad-json".
            self.code = ErrorCode(code).value
        except ValueError:
            raise ValueError(f"unknown protocol error code {code!r}") from None
        self.message = message
        self.fatal = fatal
        super().__init__(code, message, fatal)

    def __str__(self) -> str:
        suffix = " (fatal)" if self.fatal else ""
        return f"{self.code}: {self.message}{suffix}"

    def __repr__(self) -> str:
        return f"ProtocolError({self.code!r}, {self.message!r}, fatal={self.fatal!r})"
