import pytest

from signaling.errors import ProtocolError
from signaling.roles import GRANTS, MEDIA_KINDS, Grants, Role, can_join, grants, parse_role


def test_every_role_has_one_row():
    assert set(GRANTS) == set(Role)
    for role in Role:
        assert grants(role) is GRANTS[role]
        assert grants(role).publish <= MEDIA_KINDS


def test_wire_values():
    assert Role.defence == "defence"
    assert [role.value for role in Role] == [
        "judge",
        "clerk",
        "prosecutor",
        "defence",
        "party",
        "defendant",
        "witness",
        "interpreter",
        "observer",
        "archivist",
        "admin",
    ]


def test_observer_receives_unseen():
    row = grants(Role.observer)
    assert row.publish == frozenset()
    assert row.subscribe is True
    assert row.visible is False


@pytest.mark.parametrize("role", [Role.archivist, Role.admin])
def test_archive_and_admin_roles_take_no_media(role):
    row = grants(role)
    assert row.publish == frozenset()
    assert row.subscribe is False
    assert row.visible is False
    assert can_join(role) is False


def test_only_the_judge_controls_and_only_the_clerk_writes_notes():
    assert [role for role in Role if grants(role).control] == [Role.judge]
    assert [role for role in Role if grants(role).notes] == [Role.clerk]
    assert [role for role in Role if grants(role).archive] == [Role.archivist]


def test_court_and_parties_may_show_evidence():
    for role in (Role.judge, Role.clerk, Role.prosecutor, Role.defence, Role.party):
        assert grants(role).publish == {"audio", "video", "screen"}
    for role in (Role.defendant, Role.witness, Role.interpreter):
        assert grants(role).publish == {"audio", "video"}


def test_everyone_who_joins_is_visible_except_observers():
    for role in Role:
        if can_join(role) and role is not Role.observer:
            assert grants(role).visible and grants(role).subscribe


def test_grants_are_frozen_and_checked():
    with pytest.raises(AttributeError):
        grants(Role.judge).control = False
    with pytest.raises(ValueError, match="unknown media kinds"):
        Grants(publish=frozenset({"audio", "smell"}), subscribe=True, visible=True)
    with pytest.raises(TypeError):
        GRANTS[Role.observer] = grants(Role.judge)


@pytest.mark.parametrize(
    ("text", "role"),
    [("judge", Role.judge), ("defence", Role.defence), (" Observer ", Role.observer)],
)
def test_parse_role(text, role):
    assert parse_role(text) is role


@pytest.mark.parametrize("text", ["", "defense", "emperor", "judge\x00", "j" * 100, None, 3])
def test_parse_role_refuses(text):
    with pytest.raises(ProtocolError) as info:
        parse_role(text)
    assert info.value.code == "bad-message"
    assert info.value.fatal is False
