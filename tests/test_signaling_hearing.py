import logging
from itertools import product

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from signaling.errors import ProtocolError
from signaling.hearing import (
    MAX_PARTICIPANTS,
    TRANSITIONS,
    Court,
    Hearing,
    HearingEnded,
    HearingKind,
    HearingState,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    StateChanged,
    TrackPublished,
    TrackUnpublished,
)
from signaling.messages import LeaveReason
from signaling.roles import Role, grants
from signaling.tokens import JoinClaims, TokenAuthority

EXPIRES = 1e12
# The hearing below is made with a court's name where its code would be, and knows no courts: a
# participant without a court of its own is at the hearing's, shown by that code.
HOME = Court("康定市人民法院", "康定市人民法院")


def claims(role=Role.party, key="k1", name="A", hearing_id="h1", expires_at=EXPIRES):
    return JoinClaims(hearing_id, role, name, key, expires_at)


def new_hearing(state=HearingState.scheduled, lobby=False):
    """A hearing; without `lobby` every role is let in at once (the lobby has its own tests)."""
    h = Hearing("h1", "康定市人民法院", "(2024)川3301民初12号", HearingKind.hearing, state)
    if not lobby:
        h.auto_admit = frozenset(Role)
    return h


@pytest.fixture
def hearing():
    return new_hearing()


def refused(call, code, fatal=False):
    with pytest.raises(ProtocolError) as info:
        call()
    assert (info.value.code, info.value.fatal) == (code, fatal), info.value
    return info.value


def joined(hearing, pid, role=Role.party, key=None, now=0.0):
    hearing.join(pid, claims(role, key or f"key-{pid}"), now)
    return hearing.participants[pid]


# --- state transitions ----------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new"), list(product(HearingState, repeat=2)))
def test_every_transition_follows_the_table(old, new):
    hearing = new_hearing(old)
    if new in TRANSITIONS[old]:
        assert hearing._set_state(new, 5.0) == StateChanged(old, new)
        assert (hearing.state, hearing.state_since) == (new, 5.0)
    else:
        error = refused(lambda: hearing._set_state(new, 5.0), "forbidden")
        assert f"{old} -> {new}" in error.message
        assert (hearing.state, hearing.state_since) == (old, None)


def test_closed_is_final():
    assert TRANSITIONS[HearingState.closed] == frozenset()
    assert set(TRANSITIONS) == set(HearingState)


def test_open(hearing):
    assert hearing.open(1.0) == [StateChanged(HearingState.scheduled, HearingState.open)]
    assert hearing.open(2.0) == []
    assert hearing.state_since == 1.0


def test_open_after_end_is_forbidden(hearing):
    hearing.end("judge ended", 1.0)
    error = refused(lambda: hearing.open(2.0), "forbidden")
    assert "closed -> open" in error.message


def test_end_from_scheduled_cancels(hearing):
    assert hearing.end("cancelled", 1.0) == [
        StateChanged(HearingState.scheduled, HearingState.closed),
        HearingEnded("cancelled"),
    ]


def test_end_twice_does_nothing(hearing):
    hearing.open(0.0)
    assert hearing.end("done", 1.0)[-1] == HearingEnded("done")
    assert hearing.end("again", 2.0) == []


def test_state_changes_are_logged(hearing, caplog):
    caplog.set_level(logging.INFO, logger="signaling.hearing")
    hearing.open(0.0)
    record = next(r for r in caplog.records if "->" in r.getMessage())
    assert record.getMessage() == "hearing h1: scheduled -> open"
    assert record.hearing_id == "h1"


def test_wire_view(hearing):
    assert hearing.to_wire() == {
        "id": "h1",
        "court": "康定市人民法院",
        "courtName": "康定市人民法院",  # a court the hearing was not told about: its code
        "caseNumber": "(2024)川3301民初12号",
        "kind": "hearing",
        "state": "scheduled",
    }
    assert HearingKind("cross-court") is HearingKind.cross_court


# --- join -----------------------------------------------------------------------------------------


def test_first_join_opens_the_hearing(hearing):
    events = hearing.join("p1", claims(Role.judge, name="张法官"), 3.0)
    judge = Participant("p1", "张法官", Role.judge, "k1", 3.0, court=HOME)
    assert events == [
        StateChanged(HearingState.scheduled, HearingState.open),
        ParticipantJoined(judge),
    ]
    assert hearing.participants == {"p1": judge}
    assert hearing.join("p2", claims(key="k2"), 4.0) == [
        ParticipantJoined(Participant("p2", "A", Role.party, "k2", 4.0, court=HOME))
    ]


def test_a_participant_is_at_its_invitations_court_else_the_hearings():
    hearing = Hearing("h1", "gz-zy", "(2026)川33刑初1号", HearingKind.cross_court)
    hearing.auto_admit = frozenset(Role)
    hearing.courts = {
        "gz-zy": Court("gz-zy", "甘孜藏族自治州中级人民法院", "Ganzi Intermediate People's Court"),
        "shiqu": Court("shiqu", "石渠县人民法院"),
    }
    at_shiqu = JoinClaims("h1", Role.defendant, "张某", "k1", EXPIRES, court="shiqu")
    hearing.join("p1", at_shiqu, 0.0)
    hearing.join("p2", claims(Role.judge, key="k2"), 0.0)  # no court claim: the hearing's
    removed = JoinClaims("h1", Role.witness, "证人", "k3", EXPIRES, court="atlantis")
    hearing.join("p3", removed, 0.0)  # a court since gone from the configuration: its code
    p = hearing.participants
    assert p["p1"].court == Court("shiqu", "石渠县人民法院")
    assert p["p1"].to_wire() == {
        "id": "p1",
        "name": "张某",
        "role": "defendant",
        "muted": {"audio": False, "video": False},
        "court": "shiqu",
        "courtName": "石渠县人民法院",
    }
    assert p["p2"].to_wire()["court"] == "gz-zy"
    assert p["p2"].to_wire()["courtNameEn"] == "Ganzi Intermediate People's Court"
    assert (p["p3"].to_wire()["court"], p["p3"].to_wire()["courtName"]) == ("atlantis", "atlantis")


def test_join_with_another_hearings_token(hearing):
    refused(lambda: hearing.join("p1", claims(hearing_id="h2"), 0.0), "forbidden", fatal=True)
    assert hearing.state is HearingState.scheduled
    assert not hearing.participants


def test_join_after_end(hearing):
    hearing.join("p1", claims(), 0.0)
    hearing.end("done", 1.0)
    refused(lambda: hearing.join("p2", claims(key="k2"), 2.0), "hearing-ended", fatal=True)
    refused(lambda: hearing.join("p1", claims(), 2.0), "hearing-ended", fatal=True)
    assert not hearing.participants


def test_join_with_expired_claims(hearing):
    late = claims(expires_at=10.0)
    refused(lambda: hearing.join("p1", late, 10.0), "token-expired", fatal=True)


@pytest.mark.parametrize("role", [Role.archivist, Role.admin])
def test_roles_outside_hearings_cannot_join(hearing, role):
    refused(lambda: hearing.join("p1", claims(role), 0.0), "forbidden", fatal=True)


def test_same_connection_cannot_join_twice(hearing):
    hearing.join("p1", claims(), 0.0)
    refused(lambda: hearing.join("p1", claims(key="other"), 1.0), "already-joined")


def test_rejoin_with_the_same_key_replaces(hearing):
    joined(hearing, "p1", Role.defendant, key="invite")
    hearing.publish("p1", "audio", 1.0)
    hearing.publish("p1", "video", 1.0)
    events = hearing.join("p9", claims(Role.defendant, key="invite"), 2.0)
    assert events == [
        TrackUnpublished("p1", "audio"),
        TrackUnpublished("p1", "video"),
        ParticipantLeft("p1", LeaveReason.replaced),
        ParticipantJoined(Participant("p9", "A", Role.defendant, "invite", 2.0, court=HOME)),
    ]
    assert list(hearing.participants) == ["p9"]
    assert hearing.published_tracks() == []


def test_hearing_is_full_at_100(hearing):
    for i in range(MAX_PARTICIPANTS):
        joined(hearing, f"p{i}", Role.observer)
    error = refused(lambda: hearing.join("late", claims(key="late"), 1.0), "forbidden", fatal=True)
    assert "full" in error.message
    # A reconnect takes its own old place.
    events = hearing.join("again", claims(Role.observer, key="key-p5"), 1.0)
    assert ParticipantLeft("p5", LeaveReason.replaced) in events
    assert len(hearing.participants) == MAX_PARTICIPANTS


def test_join_through_a_real_token(hearing):
    authority = TokenAuthority(b"s" * 32)
    token = authority.issue_join("h1", Role.witness, "证人", now=100.0, ttl=600.0)
    events = hearing.join("p1", authority.verify_join(token, 101.0), 101.0)
    assert events[-1].participant.role is Role.witness


# --- leave ----------------------------------------------------------------------------------------


def test_leave_drops_tracks_first(hearing):
    joined(hearing, "p1", Role.clerk)
    for kind in ("screen", "audio"):
        hearing.publish("p1", kind, 1.0)
    assert hearing.leave("p1", "disconnected", 2.0) == [
        TrackUnpublished("p1", "audio"),
        TrackUnpublished("p1", "screen"),
        ParticipantLeft("p1", LeaveReason.disconnected),
    ]
    assert not hearing.participants


def test_leave_is_idempotent(hearing):
    joined(hearing, "p1")
    assert hearing.leave("p1", "left", 1.0) == [ParticipantLeft("p1", LeaveReason.left)]
    assert hearing.leave("p1", "disconnected", 2.0) == []
    assert hearing.leave("nobody", "left", 2.0) == []


def test_leave_reason_must_be_known(hearing):
    with pytest.raises(ValueError):
        hearing.leave("p1", "vanished", 0.0)


# --- mute -----------------------------------------------------------------------------------------


def test_mute_reports_changes_only(hearing):
    joined(hearing, "p1")
    [event] = hearing.set_muted("p1", "audio", True, 1.0)
    assert isinstance(event, ParticipantUpdated)
    assert event.participant.to_wire() == {
        "id": "p1",
        "name": "A",
        "role": "party",
        "muted": {"audio": True, "video": False},
        "court": "康定市人民法院",
        "courtName": "康定市人民法院",
    }
    assert hearing.set_muted("p1", "audio", True, 2.0) == []
    hearing.set_muted("p1", "audio", False, 3.0)
    # The event kept what was true when it happened.
    assert event.participant.muted["audio"] is True


def test_mute_refusals(hearing):
    joined(hearing, "p1", Role.observer)
    joined(hearing, "p2")
    refused(lambda: hearing.set_muted("nobody", "audio", True, 1.0), "not-joined")
    refused(lambda: hearing.set_muted("p2", "screen", True, 1.0), "bad-message")
    refused(lambda: hearing.set_muted("p1", "audio", True, 1.0), "forbidden")


# --- publish --------------------------------------------------------------------------------------


def test_publish_once_per_kind(hearing):
    joined(hearing, "p1", Role.prosecutor)
    assert hearing.publish("p1", "video", 1.0) == [TrackPublished("p1", "video")]
    assert hearing.publish("p1", "video", 2.0) == []
    assert hearing.publish("p1", "screen", 2.0) == [TrackPublished("p1", "screen")]


def test_observer_may_not_publish_video(hearing):
    joined(hearing, "p1", Role.observer)
    error = refused(lambda: hearing.publish("p1", "video", 1.0), "forbidden")
    assert "observer" in error.message
    assert hearing.published_tracks() == []


def test_witness_may_not_share_a_screen(hearing):
    joined(hearing, "p1", Role.witness)
    refused(lambda: hearing.publish("p1", "screen", 1.0), "forbidden")


def test_publish_refusals(hearing):
    joined(hearing, "p1")
    refused(lambda: hearing.publish("nobody", "audio", 1.0), "not-joined")
    refused(lambda: hearing.publish("p1", "smell", 1.0), "bad-message")


def test_unpublish(hearing):
    joined(hearing, "p1")
    hearing.publish("p1", "screen", 1.0)
    assert hearing.unpublish("p1", "screen", 2.0) == [TrackUnpublished("p1", "screen")]
    assert hearing.unpublish("p1", "screen", 3.0) == []
    assert hearing.unpublish("nobody", "audio", 3.0) == []


# --- end ------------------------------------------------------------------------------------------


def test_end_removes_everyone(hearing):
    joined(hearing, "p1", Role.judge)
    joined(hearing, "p2", Role.observer)
    hearing.publish("p1", "audio", 1.0)
    assert hearing.end("judge closed the hearing", 5.0) == [
        TrackUnpublished("p1", "audio"),
        ParticipantLeft("p1", LeaveReason.ended),
        ParticipantLeft("p2", LeaveReason.ended),
        StateChanged(HearingState.open, HearingState.closed),
        HearingEnded("judge closed the hearing"),
    ]
    assert hearing.state is HearingState.closed
    assert not hearing.participants


# --- queries --------------------------------------------------------------------------------------


def test_queries(hearing):
    joined(hearing, "judge", Role.judge)
    joined(hearing, "watcher", Role.observer)
    joined(hearing, "defendant", Role.defendant)
    hearing.publish("defendant", "video", 1.0)
    hearing.publish("defendant", "audio", 1.0)
    hearing.publish("judge", "audio", 1.0)
    assert [p.id for p in hearing.visible_participants()] == ["judge", "defendant"]
    assert hearing.subscribers_of("defendant") == ["judge", "watcher"]
    assert hearing.subscribers_of("watcher") == ["judge", "defendant"]
    assert hearing.published_tracks() == [
        ("judge", "audio"),
        ("defendant", "audio"),
        ("defendant", "video"),
    ]


def test_participants_view_is_read_only(hearing):
    joined(hearing, "p1")
    with pytest.raises(TypeError):
        hearing.participants["p2"] = hearing.participants["p1"]


# --- random sequences -----------------------------------------------------------------------------

ids = st.sampled_from([f"p{i}" for i in range(6)])
keys = st.sampled_from([f"k{i}" for i in range(4)])
roles = st.sampled_from(list(Role))
kinds = st.sampled_from(["audio", "video", "screen"])


class HearingMachine(RuleBasedStateMachine):
    """Random commands; whatever happens, the room stays consistent with its events."""

    def __init__(self) -> None:
        super().__init__()
        self.hearing = new_hearing()
        self.now = 0.0
        # Rebuilt only from events: must always equal the hearing's own view.
        self.present: dict[str, str] = {}
        self.tracks: set[tuple[str, str]] = set()
        self.state = HearingState.scheduled

    def apply(self, call) -> None:
        self.now += 1.0
        before = (dict(self.hearing.participants), self.hearing.state)
        try:
            events = call()
        except ProtocolError:
            assert (dict(self.hearing.participants), self.hearing.state) == before
            return
        for event in events:
            match event:
                case ParticipantJoined(participant=p):
                    assert p.id not in self.present
                    self.present[p.id] = p.key
                case ParticipantLeft(participant_id=pid):
                    assert not any(t[0] == pid for t in self.tracks)
                    del self.present[pid]
                case TrackPublished(participant_id=pid, kind=kind):
                    self.tracks.add((pid, kind))
                case TrackUnpublished(participant_id=pid, kind=kind):
                    self.tracks.remove((pid, kind))
                case StateChanged(old=old, new=new):
                    assert old is self.state and new in TRANSITIONS[old]
                    self.state = new

    @rule(pid=ids, key=keys, role=roles)
    def join(self, pid, key, role):
        self.apply(lambda: self.hearing.join(pid, claims(role, key), self.now))

    @rule(pid=ids, reason=st.sampled_from(["left", "disconnected", "ejected"]))
    def leave(self, pid, reason):
        self.apply(lambda: self.hearing.leave(pid, reason, self.now))

    @rule(pid=ids, kind=kinds)
    def publish(self, pid, kind):
        self.apply(lambda: self.hearing.publish(pid, kind, self.now))

    @rule(pid=ids, kind=kinds)
    def unpublish(self, pid, kind):
        self.apply(lambda: self.hearing.unpublish(pid, kind, self.now))

    @rule(pid=ids, kind=st.sampled_from(["audio", "video"]), muted=st.booleans())
    def mute(self, pid, kind, muted):
        self.apply(lambda: self.hearing.set_muted(pid, kind, muted, self.now))

    @rule()
    def open(self):
        self.apply(lambda: self.hearing.open(self.now))

    @rule()
    def end(self):
        self.apply(lambda: self.hearing.end("done", self.now))

    @invariant()
    def events_describe_the_room(self):
        participants = self.hearing.participants
        assert {pid: p.key for pid, p in participants.items()} == self.present
        assert set(self.hearing.published_tracks()) == self.tracks
        assert self.hearing.state is self.state

    @invariant()
    def rules_hold(self):
        participants = list(self.hearing.participants.values())
        assert len({p.key for p in participants}) == len(participants) <= MAX_PARTICIPANTS
        for p in participants:
            assert p.published <= grants(p.role).publish
            assert grants(p.role).subscribe or grants(p.role).publish
        if self.hearing.state is HearingState.closed:
            assert not participants


HearingMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=30)
test_hearing_machine = HearingMachine.TestCase
