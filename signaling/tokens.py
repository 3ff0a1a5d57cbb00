"""Signed tokens: join tokens for the WebSocket, bearer tokens for the HTTP API, and join codes.

How this works: a join token is an HS256 JWT (PyJWT) bound to one hearing, one role, a display name
and a *participant key*, and optionally the code of the court the participant is at (claim
``court``; absent, as in tokens issued before it existed, it means the hearing's own court). The key
names the invitation, not the connection: a participant who reconnects with the same token replaces
its old connection instead of appearing twice. Admin and archivist tokens are JWTs of another
audience, so neither kind of token is accepted in place of the other.

Time is an argument. PyJWT checks ``exp`` only against its own clock read (its ``leeway`` is
relative to that read), so its time checks are switched off and ``exp`` is compared with the ``now``
passed in; PyJWT still checks the signature, the algorithm (HS256 only, never ``none``), the
audience and that the required claims are present. Every refusal is a fatal :class:`ProtocolError`
(``bad-token`` or ``token-expired``) whose message says what was wrong without echoing the token.

Join codes are the short codes a person or the defendant's terminal types instead of following a
link; the server maps a code to a token. The randomness comes in as an argument.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

import jwt

from signaling.errors import ProtocolError
from signaling.messages import MAX_NAME_CHARS, MAX_TOKEN_CHARS
from signaling.roles import Role, can_join

__all__ = [
    "COURT_CODE",
    "JOIN_CODE_ALPHABET",
    "AdminClaims",
    "JoinClaims",
    "TokenAuthority",
    "new_join_code",
    "normalize_join_code",
]

_ALGORITHM: Final = "HS256"
# RFC 7518 §3.2: an HS256 key is at least as long as the hash output.
_MIN_SECRET_BYTES: Final = 32
_JOIN_AUDIENCE: Final = "tingshen:join"
_ADMIN_AUDIENCE: Final = "tingshen:admin"
_ADMIN_ROLES: Final = frozenset({Role.admin, Role.archivist})
# Identifiers are ours (hearing ids, invitation keys, account names): short, and bounded here so a
# token stays far below MAX_TOKEN_CHARS whatever the name's script.
_MAX_ID_CHARS: Final = 128
# Unicode categories refused in a display name: controls, format characters (bidirectional
# overrides), surrogates, private use, unassigned, and line/paragraph separators.
_BAD_NAME_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
#: A court code as config/courts.toml writes it (``gz-zy``, ``shiqu``).
COURT_CODE: Final = re.compile(r"[a-z0-9-]{2,32}")

#: Join code symbols: digits and capitals without the look-alikes 0/O, 1/I/L.
JOIN_CODE_ALPHABET: Final = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_JOIN_CODE_LENGTH: Final = 8
_JOIN_CODE_SPACE: Final = len(JOIN_CODE_ALPHABET) ** _JOIN_CODE_LENGTH
# Eight random bytes exceed the code space ~2**24 times over, so reducing them modulo the space
# leaves a bias of about 1e-7: far below what a guesser could use.
_JOIN_CODE_RANDOM_BYTES: Final = 8


@dataclass(frozen=True, slots=True)
class JoinClaims:
    """What a valid join token says: who may join which hearing, as what, until when."""

    hearing_id: str
    role: Role
    name: str
    participant_key: str
    expires_at: float
    #: The code of the court the participant is at; None: the hearing's own court.
    court: str | None = None


@dataclass(frozen=True, slots=True)
class AdminClaims:
    """What a valid admin or archivist bearer token says."""

    subject: str
    role: Role
    expires_at: float


class TokenAuthority:
    """Issues and verifies the server's tokens with one HMAC secret (at least 32 bytes)."""

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < _MIN_SECRET_BYTES:
            raise ValueError(f"the token secret must be at least {_MIN_SECRET_BYTES} bytes")
        self._secret = secret

    def __repr__(self) -> str:
        return "TokenAuthority(<secret>)"

    def issue_join(
        self,
        hearing_id: str,
        role: Role,
        name: str,
        now: float,
        ttl: float,
        participant_key: str | None = None,
        court: str | None = None,
    ) -> str:
        """Issue a join token for ``hearing_id``, valid from ``now`` for ``ttl`` seconds.

        ``participant_key`` identifies the invitation (default: a fresh random id); joining again
        with the same key replaces the earlier connection. ``court`` is the code of the court the
        participant is at (None: no claim, which means the hearing's own court). Raises
        :class:`ProtocolError` ``bad-message`` for an unusable hearing id, name, key, court code
        or ttl, or a role that takes no part in hearings (archivist, admin).
        """
        _check_lifetime(now, ttl)
        _check_id(hearing_id, "hearing id")
        role = Role(role)
        if not can_join(role):
            raise ProtocolError("bad-message", f"a {role} does not join hearings")
        name = _check_name(name)
        if participant_key is None:
            participant_key = secrets.token_urlsafe(16)
        _check_id(participant_key, "participant key")
        if court is not None and not _is_court(court):
            raise ProtocolError("bad-message", "a court code is 2 to 32 of a-z, 0-9 and '-'")
        payload: dict[str, object] = {
            "aud": _JOIN_AUDIENCE,
            "iat": now,
            "exp": now + ttl,
            "hid": hearing_id,
            "role": role.value,
            "name": name,
            "pk": participant_key,
        }
        if court is not None:
            payload["court"] = court
        return jwt.encode(payload, self._secret, algorithm=_ALGORITHM)

    def verify_join(self, token: str, now: float) -> JoinClaims:
        """Check a join token at time ``now`` and return its claims.

        Raises a fatal :class:`ProtocolError`: ``token-expired`` for a genuine token past its
        expiry, ``bad-token`` for anything else (malformed, oversize, forged, another token type).
        """
        payload, expires_at = self._decode(token, _JOIN_AUDIENCE, now)
        hearing_id = payload.get("hid")
        role = payload.get("role")
        name = payload.get("name")
        key = payload.get("pk")
        court = payload.get("court")  # absent in tokens made before the claim existed
        if not (_is_id(hearing_id) and _is_id(key) and isinstance(role, str)):
            raise _bad_token("the token's claims are malformed")
        if court is not None and not _is_court(court):
            raise _bad_token("the token's claims are malformed")
        try:
            return JoinClaims(
                hearing_id=hearing_id,
                role=Role(role),
                name=_check_name(name),
                participant_key=key,
                expires_at=expires_at,
                court=court,
            )
        except (ValueError, ProtocolError):
            raise _bad_token("the token's claims are malformed") from None

    def issue_admin(self, subject: str, now: float, ttl: float, role: Role = Role.admin) -> str:
        """Issue an HTTP API bearer token to ``subject`` (an account name) as admin or archivist.

        Raises :class:`ProtocolError` ``bad-message`` for an unusable subject or ttl, or a role
        other than admin and archivist.
        """
        _check_lifetime(now, ttl)
        _check_id(subject, "subject")
        role = Role(role)
        if role not in _ADMIN_ROLES:
            raise ProtocolError(
                "bad-message", f"bearer tokens are for admins and archivists, not {role}"
            )
        payload = {
            "aud": _ADMIN_AUDIENCE,
            "iat": now,
            "exp": now + ttl,
            "sub": subject,
            "role": role.value,
        }
        return jwt.encode(payload, self._secret, algorithm=_ALGORITHM)

    def verify_admin(self, token: str, now: float) -> AdminClaims:
        """Check an admin or archivist bearer token at time ``now`` and return its claims.

        Raises a fatal :class:`ProtocolError` ``token-expired`` or ``bad-token``, as
        :meth:`verify_join` does.
        """
        payload, expires_at = self._decode(token, _ADMIN_AUDIENCE, now)
        subject = payload.get("sub")
        role = payload.get("role")
        if not (_is_id(subject) and isinstance(role, str) and role in _ADMIN_ROLES):
            raise _bad_token("the token's claims are malformed")
        return AdminClaims(subject=subject, role=Role(role), expires_at=expires_at)

    def _decode(self, token: object, audience: str, now: float) -> tuple[dict[str, Any], float]:
        # Cheap refusals first: a JWT is a short ASCII string (and PyJWT would raise
        # UnicodeEncodeError, not one of its own errors, on a lone surrogate).
        if not isinstance(token, str) or not token or not token.isascii():
            raise _bad_token("a token is a non-empty ASCII string")
        if len(token) > MAX_TOKEN_CHARS:
            raise _bad_token(f"a token is at most {MAX_TOKEN_CHARS} characters")
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=audience,
                options={
                    "require": ["aud", "exp", "iat"],
                    # Checked below against `now`: see the module docstring.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.InvalidAudienceError:
            raise _bad_token("the token is not valid here") from None
        except jwt.PyJWTError as exc:
            raise _bad_token(f"the token is not valid ({type(exc).__name__})") from None
        # PyJWT accepts a list holding our audience; only our own exact form is ours.
        if payload.get("aud") != audience:
            raise _bad_token("the token is not valid here")
        expires_at = payload["exp"]
        issued_at = payload["iat"]
        if not (_is_number(expires_at) and _is_number(issued_at)) or issued_at > expires_at:
            raise _bad_token("the token's times are malformed")
        if now >= expires_at:
            raise ProtocolError("token-expired", "the token has expired", fatal=True)
        return payload, float(expires_at)


def new_join_code(random_bytes: bytes) -> str:
    """Make a join code such as ``"7KQM-W3XF"`` from 8 or more bytes of ``secrets.token_bytes``.

    Eight symbols of :data:`JOIN_CODE_ALPHABET` (about 40 bits), grouped by four for reading aloud.
    The result is already normalized: ``normalize_join_code(code) == code``.
    """
    if len(random_bytes) < _JOIN_CODE_RANDOM_BYTES:
        raise ValueError(f"a join code needs at least {_JOIN_CODE_RANDOM_BYTES} random bytes")
    number = int.from_bytes(random_bytes, "big") % _JOIN_CODE_SPACE
    symbols = []
    for _ in range(_JOIN_CODE_LENGTH):
        number, digit = divmod(number, len(JOIN_CODE_ALPHABET))
        symbols.append(JOIN_CODE_ALPHABET[digit])
    return _format_join_code("".join(symbols))


def normalize_join_code(text: str) -> str:
    """Read a typed join code: case, spaces and dashes are forgiven.

    Returns the canonical form (``"7KQM-W3XF"``, as :func:`new_join_code` makes it), so a stored
    code and a typed one compare equal. Raises :class:`ProtocolError` ``bad-message`` if ``text``
    is not eight symbols of the alphabet.
    """
    # A generous bound on the typed form, so the work below stays small.
    if not isinstance(text, str) or len(text) > 4 * _JOIN_CODE_LENGTH:
        raise ProtocolError("bad-message", "a join code is eight letters and digits")
    compact = "".join(text.split()).replace("-", "").upper()
    if len(compact) != _JOIN_CODE_LENGTH or any(c not in JOIN_CODE_ALPHABET for c in compact):
        raise ProtocolError("bad-message", "a join code is eight letters and digits")
    return _format_join_code(compact)


def _format_join_code(compact: str) -> str:
    half = _JOIN_CODE_LENGTH // 2
    return f"{compact[:half]}-{compact[half:]}"


def _bad_token(message: str) -> ProtocolError:
    return ProtocolError("bad-token", message, fatal=True)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and 0 < len(value) <= _MAX_ID_CHARS and value.isprintable()


def _is_court(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and COURT_CODE.fullmatch(value) is not None


def _check_id(value: object, what: str) -> None:
    if not _is_id(value):
        raise ProtocolError(
            "bad-message", f"the {what} must be printable, 1 to {_MAX_ID_CHARS} characters"
        )


def _check_lifetime(now: float, ttl: float) -> None:
    if not (_is_number(now) and _is_number(ttl)) or ttl <= 0:
        raise ProtocolError("bad-message", "a token lifetime is a positive number of seconds")


def _check_name(name: object) -> str:
    """Return the display name without surrounding spaces, or refuse it (``bad-message``)."""
    if not isinstance(name, str):
        raise ProtocolError("bad-message", "a name is a string")
    name = name.strip()
    if not 0 < len(name) <= MAX_NAME_CHARS:
        raise ProtocolError("bad-message", f"a name is 1 to {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(c) in _BAD_NAME_CATEGORIES for c in name):
        raise ProtocolError("bad-message", "a name holds only visible characters and spaces")
    return name


def turn_rest_credentials(
    secret: bytes, urls: tuple[str, ...], user: str, now: float, ttl: float
) -> tuple[str, str]:
    """Short-lived TURN credentials in coturn's ``use-auth-secret`` (TURN REST API) scheme.

    The username is ``<expiry unix time>:<user>``; the password is base64(HMAC-SHA1(secret,
    username)). coturn recomputes it with the same shared secret and refuses it after expiry, so
    nothing is stored and a leaked credential dies on its own. ``urls`` is only checked here.
    """
    if not secret or not urls or ttl <= 0:
        raise ValueError("TURN credentials need a secret, at least one URL and a positive ttl")
    if ":" in user or not user:
        raise ValueError("the TURN user part may not be empty or hold ':'")
    username = f"{int(now + ttl)}:{user}"
    digest = hmac.new(secret, username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()
