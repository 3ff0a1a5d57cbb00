"""The floor: the judge's mute of a participant and a meeting's presenter."""

from __future__ import annotations

import pytest

from signaling.errors import ProtocolError
from signaling.hearing import FloorChanged
from signaling.roles import Role
from tests.test_signaling_hearing import claims, new_hearing


@pytest.fixture
def meeting():
    h = new_hearing()
    h.join("chair", claims(Role.judge, "k0", "州中院"), 1.0)
    h.join("a", claims(Role.party, "ka", "石渠县法院"), 1.0)
    h.join("b", claims(Role.party, "kb", "色达县法院"), 1.0)
    h.join("o", claims(Role.observer, "ko", "旁听"), 1.0)
    return h


def test_everyone_speaks_until_the_chair_gives_the_floor(meeting) -> None:
    assert all(meeting.audible(p) for p in ("chair", "a", "b"))
    (event,) = meeting.request_floor("a", 2.0)
    assert event == FloorChanged(None, ("a",), ())
    (event,) = meeting.give_floor("chair", "a", 3.0)
    assert event.holder == "a" and event.requests == ()
    assert meeting.audible("a") and meeting.audible("chair") and not meeting.audible("b")
    assert "b" in event.silenced and "chair" not in event.silenced
    (event,) = meeting.give_floor("chair", None, 4.0)
    assert event.holder is None and meeting.audible("b")


def test_only_the_chair_gives_the_floor_and_observers_do_not_ask(meeting) -> None:
    with pytest.raises(ProtocolError) as info:
        meeting.give_floor("a", "a", 2.0)
    assert info.value.code == "forbidden"
    with pytest.raises(ProtocolError):
        meeting.request_floor("o", 2.0)


def test_the_judge_mutes_a_participant_for_everyone(meeting) -> None:
    (event,) = meeting.silence("chair", "b", True, 2.0)
    assert event.silenced == ("b",) and not meeting.audible("b")
    with pytest.raises(ProtocolError):
        meeting.silence("a", "b", False, 2.0)
    meeting.silence("chair", "b", False, 3.0)
    assert meeting.audible("b")


def test_leaving_clears_the_floor(meeting) -> None:
    meeting.give_floor("chair", "a", 2.0)
    meeting.leave("a", "left", 3.0)
    assert meeting.audible("b")
