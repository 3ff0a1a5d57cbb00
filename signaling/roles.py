"""Roles in a hearing and what each may do.

Every permission check in the project reads the one grants table here (:data:`GRANTS`, through
:func:`grants`); nothing else decides what a judge or an observer may do. A role is carried in the
signed join token, so a participant cannot change its own role.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from signaling.errors import ProtocolError

__all__ = [
    "GRANTS",
    "MEDIA_KINDS",
    "Grants",
    "Role",
    "can_join",
    "grants",
    "parse_role",
]

#: The kinds of track a participant may publish: microphone, camera, and a shared screen (evidence).
MEDIA_KINDS: Final = frozenset({"audio", "video", "screen"})

# Longest role text worth looking at; anything longer is refused without further work.
_MAX_ROLE_CHARS: Final = 32


class Role(StrEnum):
    """A participant's role; values are the wire strings (British "defence", as in the protocol)."""

    judge = "judge"
    clerk = "clerk"
    prosecutor = "prosecutor"
    defence = "defence"
    party = "party"
    defendant = "defendant"
    witness = "witness"
    interpreter = "interpreter"
    observer = "observer"
    archivist = "archivist"
    admin = "admin"


@dataclass(frozen=True, slots=True)
class Grants:
    """What a role may do.

    ``publish`` is a subset of :data:`MEDIA_KINDS`; ``subscribe`` means it receives others' media;
    ``visible`` means it is shown to others as a tile (observers watch unseen); ``control`` is the
    judge's control of the hearing (admit, refuse, eject, mute others, give the floor, spotlight
    a participant, pause, end); ``notes`` is writing the hearing log (the clerk); ``archive`` is
    access to recordings through the HTTP API; ``bypass_lobby`` enters without waiting to be
    admitted.
    """

    publish: frozenset[str]
    subscribe: bool
    visible: bool
    control: bool = False
    notes: bool = False
    archive: bool = False
    #: Enters the hearing at once; everyone else waits in the lobby until the judge admits them.
    bypass_lobby: bool = False

    def __post_init__(self) -> None:
        unknown = self.publish - MEDIA_KINDS
        if unknown:
            raise ValueError(f"unknown media kinds {sorted(unknown)}")


_SPEAKER: Final = frozenset({"audio", "video"})
# Those who may show evidence on screen besides speaking (parties, counsel, the court).
_PRESENTER: Final = frozenset({"audio", "video", "screen"})
_NOTHING: Final[frozenset[str]] = frozenset()

#: The grants table: the single source of every permission decision.
GRANTS: Final = MappingProxyType(
    {
        Role.judge: Grants(
            publish=_PRESENTER, subscribe=True, visible=True, control=True, bypass_lobby=True
        ),
        Role.clerk: Grants(
            publish=_PRESENTER, subscribe=True, visible=True, notes=True, bypass_lobby=True
        ),
        Role.prosecutor: Grants(publish=_PRESENTER, subscribe=True, visible=True),
        Role.defence: Grants(publish=_PRESENTER, subscribe=True, visible=True),
        Role.party: Grants(publish=_PRESENTER, subscribe=True, visible=True),
        # The remote defendant joins from a fixed terminal with a camera and a microphone.
        Role.defendant: Grants(publish=_SPEAKER, subscribe=True, visible=True),
        Role.witness: Grants(publish=_SPEAKER, subscribe=True, visible=True),
        Role.interpreter: Grants(publish=_SPEAKER, subscribe=True, visible=True),
        # Remote observation: many receive-only viewers, not shown to the court.
        Role.observer: Grants(publish=_NOTHING, subscribe=True, visible=False),
        # Archive and operations roles use the HTTP API only; they take no part in the media.
        Role.archivist: Grants(publish=_NOTHING, subscribe=False, visible=False, archive=True),
        Role.admin: Grants(publish=_NOTHING, subscribe=False, visible=False),
    }
)


def grants(role: Role) -> Grants:
    """Return what ``role`` may do (a row of :data:`GRANTS`)."""
    return GRANTS[role]


def can_join(role: Role) -> bool:
    """Whether ``role`` takes part in a hearing's media at all (send or receive).

    Archivists and admins do not: a join token is never issued to them and a hearing refuses them.
    """
    row = GRANTS[role]
    return row.subscribe or bool(row.publish)


def parse_role(text: object) -> Role:
    """Parse a role from its wire text (surrounding spaces and case are forgiven).

    Raises :class:`ProtocolError` ``bad-message`` for anything that is not a role.
    """
    if not isinstance(text, str) or len(text) > _MAX_ROLE_CHARS:
        raise ProtocolError("bad-message", "role must be a short string")
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise ProtocolError("bad-message", f"unknown role {text!r}") from None
