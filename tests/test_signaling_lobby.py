"""The lobby and the judge's controls: admit, refuse, eject, auto-admit, the hearing log."""

from __future__ import annotations

import pytest

from signaling.errors import ProtocolError
from signaling.hearing import (
    NoteTaken,
    ParticipantAdmitted,
    ParticipantEjected,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantWaiting,
)
from signaling.messages import LeaveReason
from signaling.roles import Role
from tests.test_signaling_hearing import claims, new_hearing


@pytest.fixture
def court():
    h = new_hearing(lobby=True)
    h.join("judge", claims(Role.judge, "kj", "审判长"), 1.0)
    h.join("clerk", claims(Role.clerk, "kc", "书记员"), 1.0)
    return h


def test_judge_and_clerk_enter_others_wait(court) -> None:
    (event,) = court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    assert isinstance(event, ParticipantWaiting)
    assert [p.id for p in court.waiting()] == ["p"]
    assert "p" not in [p.id for p in court.visible_participants()]
    assert "p" not in court.subscribers_of("judge")
    with pytest.raises(ProtocolError) as info:
        court.publish("p", "video", 2.0)
    assert info.value.code == "forbidden"


def test_only_the_judge_admits(court) -> None:
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    court.join("q", claims(Role.party, "kq", "乙"), 2.0)
    for who in ("clerk", "q"):
        with pytest.raises(ProtocolError) as info:
            court.admit(who, "p", 3.0)
        assert info.value.code == "forbidden"
    events = court.admit("judge", "p", 3.0)
    assert isinstance(events[0], ParticipantAdmitted) and isinstance(events[1], ParticipantJoined)
    assert court.participants["p"].admitted
    assert court.admit("judge", "p", 3.0) == []  # idempotent
    assert court.publish("p", "audio", 3.0)


def test_refuse_sends_a_waiting_participant_away(court) -> None:
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    events = court.refuse("judge", "p", 3.0)
    assert events == [ParticipantLeft("p", LeaveReason.refused)]
    assert "p" not in court.participants
    court.join("q", claims(Role.party, "kq", "乙"), 2.0)
    court.admit("judge", "q", 3.0)
    with pytest.raises(ProtocolError):
        court.refuse("judge", "q", 3.0)  # admitted people are ejected, not refused


def test_eject_names_the_invitation_to_revoke(court) -> None:
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    court.admit("judge", "p", 3.0)
    events = court.eject("judge", "p", 4.0)
    assert events[0] == ParticipantEjected("p", "kp", "judge")
    assert events[-1] == ParticipantLeft("p", LeaveReason.ejected)
    with pytest.raises(ProtocolError):
        court.eject("clerk", "judge", 4.0)
    with pytest.raises(ProtocolError):
        court.eject("judge", "judge", 4.0)


def test_auto_admit_and_reconnect_keep_the_place(court) -> None:
    court.set_auto_admit("judge", {Role.defendant}, 2.0)
    (event,) = court.join("d", claims(Role.defendant, "kd", "张某"), 2.0)
    assert isinstance(event, ParticipantJoined)
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    court.admit("judge", "p", 3.0)
    # the same invitation reconnecting does not go back to the lobby
    events = court.join("p2", claims(Role.party, "kp", "甲"), 5.0)
    assert isinstance(events[-1], ParticipantJoined)
    with pytest.raises(ProtocolError):
        court.set_auto_admit("clerk", {Role.party}, 2.0)


def test_notes_by_clerk_and_judge_only(court) -> None:
    (note,) = court.note("clerk", "  宣誓  ", 10.0)
    assert note == NoteTaken(10.0, "clerk", "书记员", "宣誓")
    assert court.note("judge", "出示证据3", 11.0)
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    court.admit("judge", "p", 3.0)
    for who, text, code in (
        ("p", "x", "forbidden"),
        ("clerk", "", "bad-message"),
        ("clerk", "x" * 2001, "bad-message"),
    ):
        with pytest.raises(ProtocolError) as info:
            court.note(who, text, 12.0)
        assert info.value.code == code
