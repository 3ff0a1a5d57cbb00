"""What a hearing keeps across a server restart: admissions (with the judge's mute) and the pause.

The rule under test: a restart changes nothing a reconnect would not. Whatever happened before,
an invitation that joins a hearing brought back with :meth:`Hearing.restore` is let in (or sent to
the lobby, or kept muted) exactly as a reconnect of the same invitation would have been without
the restart.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.errors import ProtocolError
from signaling.hearing import (
    Admission,
    FloorChanged,
    Hearing,
    HearingState,
    ParticipantAdmitted,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantWaiting,
    RecordingPaused,
    StateChanged,
)
from signaling.messages import LeaveReason
from signaling.roles import Role
from tests.test_signaling_hearing import claims, new_hearing


@pytest.fixture
def court() -> Hearing:
    h = new_hearing(lobby=True)
    h.join("judge", claims(Role.judge, "kj", "审判长"), 1.0)
    return h


def restarted(before: Hearing) -> Hearing:
    """The same hearing brought up again from what the server stored of ``before``."""
    after = Hearing(before.id, before.court, before.case_number, before.kind, before.state)
    after.auto_admit = before.auto_admit
    keys = {p.key for p in before.participants.values()} | set(before._restored)
    kept = [a for a in (before.admission(k) for k in sorted(keys)) if a is not None]
    after.restore(kept, pause=before.current_pause)
    return after


# -- what the hearing says must be kept -----------------------------------------------------------


def test_admission_is_held_from_admit_to_leave(court: Hearing) -> None:
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    assert court.admission("kp") is None  # waiting in the lobby: no place yet
    court.admit("judge", "p", 3.0)
    assert court.admission("kp") == Admission("kp", silenced=False)
    court.join("p2", claims(Role.party, "kp", "甲"), 4.0)  # a reconnect keeps it
    assert court.admission("kp") == Admission("kp")
    court.leave("p2", LeaveReason.left, 5.0)
    assert court.admission("kp") is None


@pytest.mark.parametrize("gone", ["eject", "disconnected", "refuse"])
def test_no_place_once_ejected_disconnected_or_refused(court: Hearing, gone: str) -> None:
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    if gone == "refuse":
        court.refuse("judge", "p", 3.0)
    else:
        court.admit("judge", "p", 3.0)
        if gone == "eject":
            court.eject("judge", "p", 4.0)
        else:
            court.leave("p", LeaveReason.disconnected, 4.0)  # past the grace
    assert court.admission("kp") is None


def test_judge_clerk_and_auto_admitted_roles_hold_a_place(court: Hearing) -> None:
    court.auto_admit = frozenset({Role.defendant})
    court.join("d", claims(Role.defendant, "kd", "张某"), 2.0)
    assert court.admission("kj") == Admission("kj")
    assert court.admission("kd") == Admission("kd")
    assert court.admission("nobody") is None


def test_the_judges_mute_is_part_of_the_admission(court: Hearing) -> None:
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    court.admit("judge", "p", 3.0)
    court.silence("judge", "p", True, 4.0)
    assert court.admission("kp") == Admission("kp", silenced=True)
    court.silence("judge", "p", False, 5.0)
    assert court.admission("kp") == Admission("kp", silenced=False)


def test_someone_in_the_lobby_cannot_be_muted(court: Hearing) -> None:
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    with pytest.raises(ProtocolError) as info:
        court.silence("judge", "p", True, 3.0)  # nothing to mute, and no admission to keep it
    assert info.value.code == "forbidden"
    assert court.silenced == frozenset()


def test_current_pause_follows_pause_resume_and_end(court: Hearing) -> None:
    assert court.current_pause is None
    court.pause("judge", "non-public-evidence", 2.0)
    assert court.current_pause == RecordingPaused("non-public-evidence", "judge", "审判长")
    court.resume("judge", 3.0)
    assert court.current_pause is None
    court.pause("judge", "mediation", 4.0)
    court.end("ended", 5.0)
    assert court.current_pause is None


# -- taking it back after the restart ---------------------------------------------------------


def test_an_admitted_invitation_goes_straight_back_in(court: Hearing) -> None:
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    court.admit("judge", "p", 3.0)
    court.join("q", claims(Role.party, "kq", "乙"), 3.0)  # still waiting at the crash
    after = restarted(court)
    assert after.admission("kp") == Admission("kp")  # kept until it comes back

    after.join("judge2", claims(Role.judge, "kj", "审判长"), 10.0)
    events = after.join("p2", claims(Role.party, "kp", "甲"), 11.0)
    assert events[0] == ParticipantAdmitted("p2", None, "server-restart")
    assert isinstance(events[1], ParticipantJoined) and events[1].participant.admitted
    assert len(events) == 2
    assert after.participants["p2"].admitted
    assert after.publish("p2", "audio", 11.0)  # media, no lobby

    (waiting,) = after.join("q2", claims(Role.party, "kq", "乙"), 11.0)
    assert isinstance(waiting, ParticipantWaiting)  # the lobby again, as before the crash


def test_a_refused_invitation_waits_in_the_lobby_again(court: Hearing) -> None:
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    court.refuse("judge", "p", 3.0)
    after = restarted(court)
    (event,) = after.join("p2", claims(Role.party, "kp", "甲"), 10.0)
    assert isinstance(event, ParticipantWaiting)
    assert not after.participants["p2"].admitted


def test_one_who_left_before_the_crash_waits_again(court: Hearing) -> None:
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    court.admit("judge", "p", 3.0)
    court.leave("p", LeaveReason.left, 4.0)
    after = restarted(court)
    (event,) = after.join("p2", claims(Role.party, "kp", "甲"), 10.0)
    assert isinstance(event, ParticipantWaiting)


def test_the_restored_place_is_taken_once(court: Hearing) -> None:
    after = Hearing("h1", court.court, court.case_number, court.kind, HearingState.open)
    after.restore([Admission("kp")])
    after.join("p2", claims(Role.party, "kp", "甲"), 10.0)
    # once back it is an ordinary participant: a later reconnect is a plain replace
    events = after.join("p3", claims(Role.party, "kp", "甲"), 11.0)
    assert ParticipantLeft("p2", LeaveReason.replaced) in events
    assert not any(isinstance(e, ParticipantAdmitted) for e in events)
    after.leave("p3", LeaveReason.left, 12.0)
    (event,) = after.join("p4", claims(Role.party, "kp", "甲"), 13.0)
    assert isinstance(event, ParticipantWaiting)


def test_no_readmission_event_for_roles_that_skip_the_lobby(court: Hearing) -> None:
    court.auto_admit = frozenset({Role.defendant})
    court.join("d", claims(Role.defendant, "kd", "张某"), 2.0)
    after = restarted(court)
    for pid, role, key in (("j", Role.judge, "kj"), ("d", Role.defendant, "kd")):
        events = after.join(pid, claims(role, key, "x"), 10.0)
        assert not any(isinstance(e, ParticipantAdmitted) for e in events), events
        assert after.participants[pid].admitted


def test_the_judges_mute_survives_a_reconnect_and_a_restart(court: Hearing) -> None:
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    court.admit("judge", "p", 3.0)
    court.silence("judge", "p", True, 4.0)

    events = court.join("p2", claims(Role.party, "kp", "甲"), 5.0)  # reconnect
    assert events[-1] == FloorChanged(None, (), ("p2",))
    assert not court.audible("p2")

    after = restarted(court)
    after.join("judge", claims(Role.judge, "kj", "审判长"), 10.0)
    events = after.join("p3", claims(Role.party, "kp", "甲"), 11.0)
    assert events[-1] == FloorChanged(None, (), ("p3",))
    assert not after.audible("p3") and after.silenced == {"p3"}


def test_a_paused_hearing_stays_paused(court: Hearing) -> None:
    court.join("p", claims(Role.party, "kp", "甲"), 2.0)
    court.admit("judge", "p", 3.0)
    court.pause("judge", "non-public-evidence", 4.0)
    after = restarted(court)
    assert after.state is HearingState.paused
    assert after.current_pause == RecordingPaused("non-public-evidence", "judge", "审判长")

    events = after.join("judge2", claims(Role.judge, "kj", "审判长"), 10.0)
    assert not any(isinstance(e, StateChanged) for e in events)  # no silent resume
    assert after.state is HearingState.paused
    with pytest.raises(ProtocolError):
        after.pause("judge2", "recess", 11.0)  # already paused
    after.resume("judge2", 12.0)  # only the judge resumes
    assert after.state is HearingState.open and after.current_pause is None


def test_restore_refuses_what_does_not_fit(court: Hearing) -> None:
    with pytest.raises(RuntimeError):
        court.restore([Admission("kp")])  # someone joined already
    fresh = new_hearing(state=HearingState.open, lobby=True)
    with pytest.raises(ValueError):
        fresh.restore(pause=RecordingPaused("recess", "j", "审判长"))  # not paused
    paused = new_hearing(state=HearingState.paused, lobby=True)
    with pytest.raises(ValueError):
        paused.restore()  # paused, but why?


# -- the rule, for any history ----------------------------------------------------------------

KEYS = ("ka", "kb", "kc")
_step = st.one_of(
    st.tuples(st.just("join"), st.sampled_from(KEYS)),
    st.tuples(st.just("admit"), st.sampled_from(KEYS)),
    st.tuples(st.just("refuse"), st.sampled_from(KEYS)),
    st.tuples(st.just("eject"), st.sampled_from(KEYS)),
    st.tuples(st.just("leave"), st.sampled_from(KEYS)),
    st.tuples(st.just("silence"), st.sampled_from(KEYS)),
    st.tuples(st.just("unsilence"), st.sampled_from(KEYS)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_step, max_size=25), st.sampled_from(KEYS))
def test_a_restart_lets_in_exactly_whom_a_reconnect_would(
    steps: list[tuple[str, str]], probe: str
) -> None:
    court = new_hearing(lobby=True)
    court.join("judge", claims(Role.judge, "kj", "审判长"), 0.0)
    ejected: set[str] = set()
    for n, (action, key) in enumerate(steps, start=1):
        present = next((p.id for p in court.participants.values() if p.key == key), None)
        try:
            if action == "join" and key not in ejected:
                court.join(f"{key}-{n}", claims(Role.party, key, key), float(n))
            elif present is None:
                continue
            elif action == "admit":
                court.admit("judge", present, float(n))
            elif action == "refuse":
                court.refuse("judge", present, float(n))
            elif action == "eject":
                court.eject("judge", present, float(n))
                ejected.add(key)  # the server revokes the invitation: it never joins again
            elif action == "leave":
                court.leave(present, LeaveReason.disconnected, float(n))
            elif action in ("silence", "unsilence"):
                court.silence("judge", present, action == "silence", float(n))
        except ProtocolError:
            pass  # refused commands change nothing
    if probe in ejected:
        return
    after = restarted(court)
    after.join("judge-again", claims(Role.judge, "kj", "审判长"), 100.0)
    after.join("probe-after", claims(Role.party, probe, probe), 101.0)
    court.join("probe-reconnect", claims(Role.party, probe, probe), 101.0)
    reconnected = court.participants["probe-reconnect"]
    assert after.participants["probe-after"].admitted == reconnected.admitted
    assert ("probe-after" in after.silenced) == ("probe-reconnect" in court.silenced)
