"""Audio redundancy toward lossy subscribers: when it switches, what a RED payload repeats."""

from __future__ import annotations

from server.sfu.redundancy import HOLD_SECONDS, RecentPackets, RedundancyPolicy


def test_policy_follows_reported_loss_with_hold() -> None:
    policy = RedundancyPolicy("auto")
    assert policy.distance == 0
    assert policy.observe(0.0, 0.0) == 0
    assert policy.observe(0.005, 1.0) == 0  # below 1 %: nothing
    assert policy.observe(0.02, 2.0) == 1
    assert policy.observe(0.06, 3.0) == 2
    # one clean report does not switch it off (no flapping on random loss)
    assert policy.observe(0.0, 4.0) == 2
    assert policy.observe(0.0, 3.0 + HOLD_SECONDS - 0.1) == 2
    # ten seconds after the last report at >= 3 %, one step down; then off
    assert policy.observe(0.0, 3.0 + HOLD_SECONDS + 0.1) == 0  # level 1 last needed at 3.0 too
    assert policy.observe(0.015, 20.0) == 1
    assert policy.observe(0.0, 20.0 + HOLD_SECONDS + 0.1) == 0


def test_policy_modes() -> None:
    always, off = RedundancyPolicy("always"), RedundancyPolicy("off")
    assert always.distance == 2 and always.observe(0.0, 100.0) == 2
    assert off.distance == 0 and off.observe(0.5, 1.0) == 0


def test_recent_packets_repeat_an_unbroken_run() -> None:
    recent = RecentPackets()
    for seq in (10, 11, 12):
        recent.add(seq, seq * 960, bytes([seq]))
    assert recent.blocks(13, 13 * 960, 2, floor=0) == [(1920, b"\x0b"), (960, b"\x0c")]
    assert recent.blocks(13, 13 * 960, 1, floor=0) == [(960, b"\x0c")]
    # 12 missing before 14: no block may stand for it (the receiver infers places)
    assert recent.blocks(14, 14 * 960, 2, floor=0) == []
    # nothing from before the subscriber's line was resynchronised
    assert recent.blocks(13, 13 * 960, 2, floor=12) == [(960, b"\x0c")]


def test_recent_packets_skip_late_ones_and_wrap() -> None:
    recent = RecentPackets()
    recent.add(65535, 1000, b"a")
    recent.add(0, 1960, b"b")
    recent.add(65534, 40, b"late")  # out of order: not the newest
    assert recent.blocks(1, 2920, 2, floor=65530) == [(1920, b"a"), (960, b"b")]
    recent.clear()
    assert recent.blocks(1, 2920, 2, floor=0) == []


def test_recent_packets_leave_out_what_the_header_cannot_carry() -> None:
    recent = RecentPackets()
    recent.add(1, 0, b"x")
    recent.add(2, 20000, b"y")  # a DTX pause: the offset to 3 would be too large for the older
    assert recent.blocks(3, 20960, 2, floor=0) == [(960, b"y")]
    recent.add(3, 20960, b"z" * 1100)
    assert recent.blocks(4, 21920, 2, floor=0) == []
