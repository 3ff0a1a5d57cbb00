import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.errors import ProtocolError
from signaling.ratelimit import (
    MAX_REFUSED_IN_A_ROW,
    MESSAGE_BURST,
    MESSAGE_RATE,
    MessageRateLimit,
    TokenBucket,
)


def test_starts_full_then_refuses():
    bucket = TokenBucket(rate=1.0, burst=3.0)
    assert [bucket.allow(100.0) for _ in range(4)] == [True, True, True, False]


def test_refills_at_rate_up_to_burst():
    bucket = TokenBucket(rate=2.0, burst=4.0)
    for _ in range(4):
        assert bucket.allow(0.0)
    assert bucket.tokens(0.5) == pytest.approx(1.0)
    assert bucket.allow(0.5)
    assert not bucket.allow(0.5)
    assert bucket.tokens(1000.0) == 4.0


def test_refusal_spends_nothing():
    bucket = TokenBucket(rate=1.0, burst=2.0)
    assert not bucket.allow(0.0, cost=3.0)
    assert bucket.tokens(0.0) == 2.0
    assert bucket.allow(0.0, cost=2.0)


def test_zero_cost_always_allowed_and_negative_cost_refused():
    bucket = TokenBucket(rate=1.0, burst=1.0)
    assert bucket.allow(0.0)
    assert bucket.allow(0.0, cost=0.0)
    with pytest.raises(ValueError, match="cost"):
        bucket.allow(0.0, cost=-1.0)


def test_time_going_backwards_refills_nothing_and_counts_nothing_twice():
    bucket = TokenBucket(rate=1.0, burst=10.0)
    for _ in range(10):
        assert bucket.allow(50.0)
    assert not bucket.allow(40.0)  # a step back
    assert bucket.tokens(45.0) == 0.0  # still behind the latest time seen
    assert bucket.tokens(52.0) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("rate", "burst"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.0), (math.inf, 1.0), (1.0, math.nan)]
)
def test_bad_parameters(rate, burst):
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=5.0),
            st.floats(min_value=0.0, max_value=8.0),
        ),
        max_size=100,
    )
)
def test_never_allows_more_than_burst_plus_refill(steps):
    rate, burst = 3.0, 5.0
    bucket = TokenBucket(rate, burst)
    now = spent = 0.0
    for dt, cost in steps:
        now += dt
        if bucket.allow(now, cost):
            spent += cost
        assert -1e-9 <= bucket.tokens(now) <= burst
    assert spent <= burst + rate * now + 1e-6


def test_protocol_limit_allows_a_burst_of_50_then_20_per_second():
    limit = MessageRateLimit()
    assert (MESSAGE_RATE, MESSAGE_BURST) == (20.0, 50.0)
    for _ in range(50):
        limit.check(0.0)
    with pytest.raises(ProtocolError) as info:
        limit.check(0.0)
    assert info.value.code == "rate-limited"
    assert info.value.fatal is False
    # Sustained 20 per second passes indefinitely.
    for i in range(1, 201):
        limit.check(i / 20)
    assert limit.refused_in_a_row == 0


def test_protocol_limit_is_fatal_after_200_refusals_in_a_row():
    limit = MessageRateLimit()
    for _ in range(50):
        limit.check(0.0)
    fatal = []
    for _ in range(MAX_REFUSED_IN_A_ROW):
        with pytest.raises(ProtocolError) as info:
            limit.check(0.0)
        fatal.append(info.value.fatal)
    assert fatal == [False] * (MAX_REFUSED_IN_A_ROW - 1) + [True]


def test_an_allowed_message_resets_the_refusal_count():
    limit = MessageRateLimit(rate=1.0, burst=1.0, max_refused=3)
    limit.check(0.0)
    for _ in range(2):
        with pytest.raises(ProtocolError):
            limit.check(0.0)
    limit.check(1.0)
    assert limit.refused_in_a_row == 0
    with pytest.raises(ProtocolError) as info:
        limit.check(1.0)
    assert not info.value.fatal
    with pytest.raises(ValueError):
        MessageRateLimit(max_refused=0)
