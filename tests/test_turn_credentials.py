"""TURN REST credentials match what coturn's use-auth-secret recomputes."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from signaling.tokens import turn_rest_credentials


def test_username_and_password_follow_the_turn_rest_scheme() -> None:
    username, password = turn_rest_credentials(b"s3cret", ("turn:x:3478",), "p1", 1000.4, 3600)
    assert username == "4600:p1"
    expected = base64.b64encode(hmac.new(b"s3cret", b"4600:p1", hashlib.sha1).digest()).decode()
    assert password == expected


@pytest.mark.parametrize(
    ("secret", "urls", "user", "ttl"),
    [
        (b"", ("turn:x",), "p", 60),
        (b"s", (), "p", 60),
        (b"s", ("turn:x",), "a:b", 60),
        (b"s", ("turn:x",), "p", 0),
    ],
)
def test_refuses_unusable_input(
    secret: bytes, urls: tuple[str, ...], user: str, ttl: float
) -> None:
    with pytest.raises(ValueError):
        turn_rest_credentials(secret, urls, user, 0.0, ttl)
