"""The spotlight: the presiding judge shows one participant large to everyone (sans-IO)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling.errors import ProtocolError
from signaling.hearing import (
    ParticipantEjected,
    ParticipantJoined,
    ParticipantLeft,
    SpotlightChanged,
)
from signaling.messages import LeaveReason, Spotlight, encode_spotlight, parse_client_message
from signaling.roles import Role
from tests.test_signaling_hearing import claims, new_hearing


@pytest.fixture
def court():
    h = new_hearing()
    h.join("judge", claims(Role.judge, "kj", "审判长"), 1.0)
    h.join("clerk", claims(Role.clerk, "kc", "书记员"), 1.0)
    h.join("w", claims(Role.witness, "kw", "证人王某"), 1.0)
    h.join("d", claims(Role.defendant, "kd", "被告人张某"), 1.0)
    h.join("o", claims(Role.observer, "ko", "旁听"), 1.0)
    return h


def refused(call, code: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        call()
    assert info.value.code == code and not info.value.fatal, info.value
    return info.value


def test_the_judge_sets_moves_and_clears_the_spotlight(court) -> None:
    assert court.spotlight is None
    (event,) = court.set_spotlight("judge", "w", 2.0)
    assert event == SpotlightChanged("w", "证人王某", "judge", "审判长")
    assert court.spotlight == "w"
    assert court.set_spotlight("judge", "w", 2.5) == []  # already so: nothing to tell anyone
    (event,) = court.set_spotlight("judge", "d", 3.0)
    assert event.participant_id == "d" and court.spotlight == "d"
    (event,) = court.set_spotlight("judge", None, 4.0)
    assert event == SpotlightChanged(None, None, "judge", "审判长")
    assert court.spotlight is None
    assert court.set_spotlight("judge", None, 5.0) == []


def test_the_judge_may_spotlight_themself(court) -> None:
    (event,) = court.set_spotlight("judge", "judge", 2.0)
    assert event.participant_id == "judge"


def test_only_the_judge_spotlights(court) -> None:
    for who in ("clerk", "w", "d", "o"):
        error = refused(lambda who=who: court.set_spotlight(who, "w", 2.0), "forbidden")
        assert "spotlight" in error.message
        refused(lambda who=who: court.set_spotlight(who, None, 2.0), "forbidden")
    refused(lambda: court.set_spotlight("stranger", "w", 2.0), "not-joined")
    assert court.spotlight is None


def test_only_someone_in_the_hearing_and_shown_can_be_spotlighted(court) -> None:
    error = refused(lambda: court.set_spotlight("judge", "nobody", 2.0), "not-joined")
    assert "nobody" in error.message
    error = refused(lambda: court.set_spotlight("judge", "o", 2.0), "forbidden")
    assert "observer" in error.message
    lobby = new_hearing(lobby=True)
    lobby.join("judge", claims(Role.judge, "kj", "审判长"), 1.0)
    lobby.join("p", claims(Role.party, "kp", "甲"), 1.0)
    error = refused(lambda: lobby.set_spotlight("judge", "p", 2.0), "forbidden")
    assert "waiting" in error.message
    lobby.admit("judge", "p", 3.0)
    assert lobby.set_spotlight("judge", "p", 4.0)
    assert court.spotlight is None  # a refusal changes nothing


def test_leaving_clears_the_spotlight(court) -> None:
    court.set_spotlight("judge", "w", 2.0)
    assert court.leave("d", "left", 3.0)[-1] == ParticipantLeft(
        "d", LeaveReason.left
    )  # someone else
    assert court.spotlight == "w"
    events = court.leave("w", "left", 4.0)
    assert events[-2] == ParticipantLeft("w", LeaveReason.left)
    assert events[-1] == SpotlightChanged(None, None, None, None, "left")
    assert court.spotlight is None


def test_ejecting_clears_the_spotlight(court) -> None:
    court.set_spotlight("judge", "d", 2.0)
    events = court.eject("judge", "d", 3.0)
    assert isinstance(events[0], ParticipantEjected)
    assert events[-2] == ParticipantLeft("d", LeaveReason.ejected)
    assert events[-1] == SpotlightChanged(None, None, None, None, "ejected")
    assert court.spotlight is None


def test_a_reconnect_keeps_the_spotlight_on_the_new_connection(court) -> None:
    court.set_spotlight("judge", "d", 2.0)
    events = court.join("d2", claims(Role.defendant, "kd", "被告人张某"), 3.0)
    assert ParticipantLeft("d", LeaveReason.replaced) in events
    # no "cleared" in between: the others see left, joined, and the spotlight on the new id
    spotlights = [e for e in events if isinstance(e, SpotlightChanged)]
    assert spotlights == [SpotlightChanged("d2", "被告人张某", None, None, "rejoined")]
    assert isinstance(events[-2], ParticipantJoined) and events[-1] is spotlights[0]
    assert court.spotlight == "d2"


def test_ending_the_hearing_clears_the_spotlight(court) -> None:
    court.set_spotlight("judge", "w", 2.0)
    events = court.end("ended", 3.0)
    assert SpotlightChanged(None, None, None, None, "ended") in events
    assert court.spotlight is None


def test_the_spotlight_does_not_change_who_is_heard(court) -> None:
    court.set_spotlight("judge", "w", 2.0)
    assert all(court.audible(p) for p in ("judge", "clerk", "w", "d"))
    court.give_floor("judge", "d", 3.0)
    assert court.spotlight == "w" and court.audible("d") and not court.audible("w")


# --- the wire ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type":"spotlight","participantId":"ab12"}', Spotlight("ab12")),
        ('{"type":"spotlight","participantId":null}', Spotlight(None)),
    ],
)
def test_parses(text: str, expected: Spotlight) -> None:
    assert parse_client_message(text) == expected
    assert parse_client_message(expected.to_json()) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {},  # clearing is an explicit null, never a forgotten field
        {"participantId": ""},
        {"participantId": 5},
        {"participantId": True},
        {"participantId": ["a"]},
        {"participantId": "a" * 65},
        {"participantId": "a b"},
        {"participantId": "../x"},
    ],
)
def test_bad_fields(fields: dict[str, object]) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(json.dumps({"type": "spotlight", **fields}))
    assert info.value.code == "bad-message" and not info.value.fatal


def test_encode() -> None:
    assert json.loads(encode_spotlight("ab12")) == {"type": "spotlight", "participantId": "ab12"}
    assert json.loads(encode_spotlight(None)) == {"type": "spotlight", "participantId": None}


@given(
    st.dictionaries(
        st.sampled_from(["participantId", "x", "type"]) | st.text(max_size=4),
        st.none() | st.booleans() | st.integers() | st.text(max_size=80) | st.lists(st.none()),
        max_size=4,
    )
)
def test_arbitrary_fields(fields: dict[str, object]) -> None:
    try:
        message = parse_client_message(json.dumps({**fields, "type": "spotlight"}))
    except ProtocolError as error:
        assert error.code == "bad-message"
    else:
        assert isinstance(message, Spotlight)
        assert parse_client_message(message.to_json()) == message


@given(st.none() | st.text(alphabet="abcdef0123456789", min_size=1, max_size=64))
def test_round_trip(participant_id: str | None) -> None:
    message = Spotlight(participant_id)
    assert parse_client_message(message.to_json()) == message
