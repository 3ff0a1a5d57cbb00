"""The permission matrix: every role x every action, decided by the one grants table.

Each cell is checked against the hearing core, which the server consults for every message; the
expected table below is written out by hand so that a change to the grants shows up here.
"""

from __future__ import annotations

import pytest

from signaling.errors import ProtocolError
from signaling.hearing import Hearing, HearingKind, SpotlightChanged
from signaling.messages import Spotlight, parse_client_message
from signaling.roles import Role, can_join, grants
from signaling.tokens import JoinClaims

MEDIA_ROLES = [r for r in Role if can_join(r)]

# role: (audio, video, screen, subscribe, visible, control, notes)
EXPECTED = {
    Role.judge: (1, 1, 1, 1, 1, 1, 0),
    Role.clerk: (1, 1, 1, 1, 1, 0, 1),
    Role.prosecutor: (1, 1, 1, 1, 1, 0, 0),
    Role.defence: (1, 1, 1, 1, 1, 0, 0),
    Role.party: (1, 1, 1, 1, 1, 0, 0),
    Role.defendant: (1, 1, 0, 1, 1, 0, 0),
    Role.witness: (1, 1, 0, 1, 1, 0, 0),
    Role.interpreter: (1, 1, 0, 1, 1, 0, 0),
    Role.observer: (0, 0, 0, 1, 0, 0, 0),
    Role.archivist: (0, 0, 0, 0, 0, 0, 0),
    Role.admin: (0, 0, 0, 0, 0, 0, 0),
}


def test_the_table_is_complete_and_as_written() -> None:
    assert set(EXPECTED) == set(Role)
    for role, row in EXPECTED.items():
        g = grants(role)
        actual = (
            "audio" in g.publish,
            "video" in g.publish,
            "screen" in g.publish,
            g.subscribe,
            g.visible,
            g.control,
            g.notes,
        )
        assert tuple(map(bool, row)) == actual, role


def court_with(role: Role) -> Hearing:
    h = Hearing("h1", "gz-zy", "X", HearingKind.hearing)
    h.auto_admit = frozenset(Role)
    h.join("judge", JoinClaims("h1", Role.judge, "审判长", "kj", 1e12), 0.0)
    h.join("other", JoinClaims("h1", Role.party, "乙", "ko", 1e12), 0.0)
    if role is not Role.judge:
        h.join("me", JoinClaims("h1", role, "甲", "km", 1e12), 0.0)
    return h


@pytest.mark.parametrize("role", MEDIA_ROLES)
@pytest.mark.parametrize("kind", ["audio", "video", "screen"])
def test_publish(role: Role, kind: str) -> None:
    h = court_with(role)
    me = "judge" if role is Role.judge else "me"
    allowed = EXPECTED[role][("audio", "video", "screen").index(kind)]
    if allowed:
        assert h.publish(me, kind, 1.0)
    else:
        with pytest.raises(ProtocolError) as info:
            h.publish(me, kind, 1.0)
        assert info.value.code == "forbidden"


ACTIONS = {
    "pause": lambda h, me: h.pause(me, "recess", 1.0),
    "admit": lambda h, me: h.admit(me, "other", 1.0),
    "eject": lambda h, me: h.eject(me, "other", 1.0),
    "auto-admit": lambda h, me: h.set_auto_admit(me, {Role.party}, 1.0),
    "note": lambda h, me: h.note(me, "宣誓", 1.0),
    "spotlight": lambda h, me: h.set_spotlight(me, "other", 1.0),
    "clear-spotlight": lambda h, me: h.set_spotlight(me, None, 1.0),
}


@pytest.mark.parametrize("role", MEDIA_ROLES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_controls(role: Role, action: str) -> None:
    h = court_with(role)
    me = "judge" if role is Role.judge else "me"
    control, notes = EXPECTED[role][5], EXPECTED[role][6]
    allowed = control or (action == "note" and notes)
    if allowed:
        ACTIONS[action](h, me)
    else:
        with pytest.raises(ProtocolError) as info:
            ACTIONS[action](h, me)
        assert info.value.code == "forbidden"


@pytest.mark.parametrize("role", MEDIA_ROLES)
@pytest.mark.parametrize("target", ["other", None])
def test_a_hand_made_spotlight_frame(role: Role, target: str | None) -> None:
    """The page shows the spotlight button to the judge only; a client written by hand sends the
    frame anyway. It is parsed as the server parses it and refused unless the role has control
    (over a real socket: tests/test_spotlight_functional.py)."""
    h = court_with(role)
    me = "judge" if role is Role.judge else "me"
    frame = '{"type":"spotlight","participantId":%s}' % ("null" if target is None else '"other"')
    message = parse_client_message(frame)
    assert message == Spotlight(target)
    if EXPECTED[role][5]:
        events = h.set_spotlight(me, message.participant_id, 1.0)
        assert events == (
            [] if target is None else [SpotlightChanged("other", "乙", "judge", "审判长")]
        )
    else:
        with pytest.raises(ProtocolError) as info:
            h.set_spotlight(me, message.participant_id, 1.0)
        assert info.value.code == "forbidden"
    assert h.spotlight == (target if EXPECTED[role][5] else None)


@pytest.mark.parametrize("role", [Role.archivist, Role.admin])
def test_roles_without_media_cannot_join(role: Role) -> None:
    h = Hearing("h1", "gz-zy", "X", HearingKind.hearing)
    with pytest.raises(ProtocolError) as info:
        h.join("x", JoinClaims("h1", role, "甲", "kx", 1e12), 0.0)
    assert info.value.code == "forbidden" and info.value.fatal


def test_a_sealed_hearing_refuses_observers() -> None:
    h = Hearing("h1", "gz-zy", "X", HearingKind.hearing)
    h.sealed = True
    with pytest.raises(ProtocolError) as info:
        h.join("o", JoinClaims("h1", Role.observer, "旁听", "ko", 1e12), 0.0)
    assert info.value.code == "forbidden" and info.value.fatal
    assert h.join("p", JoinClaims("h1", Role.party, "甲", "kp", 1e12), 0.0)
