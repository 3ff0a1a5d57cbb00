"""The hearing: who is in the room, what they send, and the hearing's own state.

How this works: a :class:`Hearing` is a plain object with no I/O and no clock. The server calls one
method per thing that happened (a participant joined, muted, published a track, left; the judge
ended the hearing), passing the current time as ``now``. Each method either raises
:class:`ProtocolError` and changes nothing, or changes the state and returns the list of events that
describe the change, in order. The server turns events into wire messages and renegotiations, and
the recorder puts them on the hearing's timeline; neither has to compare before and after.

The hearing's state moves along :data:`TRANSITIONS` only, through the one setter ``_set_state``,
which logs ``old -> new`` and returns the :class:`StateChanged` event::

    scheduled --open/first join--> open --end--> closed
    scheduled ---------------------end---------> closed      (cancelled before it opened)
                                   open <--pause/resume--> paused --end--> closed

What a restart must not lose is asked of the hearing, never worked out by the server: its state and
the pause in force (:attr:`Hearing.current_pause`), and per invitation whether it holds a place in
the room (:meth:`Hearing.admission`). The server stores them as they change, and a hearing brought
back up after a restart takes them back with :meth:`Hearing.restore` before anyone joins: an
invitation that held a place goes straight in on its next join (:class:`ParticipantAdmitted` with
reason ``server-restart``), a paused hearing is still paused.

New states (a session in progress, a recess) are new rows of the table and new methods; the rest of
the class only asks whether the hearing is closed.

Permissions come from the grants table in :mod:`signaling.roles`; nothing here decides by role name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from signaling.errors import ProtocolError
from signaling.messages import MUTE_KINDS, PAUSE_REASONS, LeaveReason
from signaling.roles import MEDIA_KINDS, Role, can_join, grants
from signaling.tokens import JoinClaims

__all__ = [
    "CONSULTATION_ROLES",
    "MAX_PARTICIPANTS",
    "TRANSITIONS",
    "Admission",
    "Court",
    "Event",
    "FloorChanged",
    "Hearing",
    "HearingEnded",
    "HearingKind",
    "HearingState",
    "NoteTaken",
    "Participant",
    "ParticipantAdmitted",
    "ParticipantEjected",
    "ParticipantJoined",
    "ParticipantLeft",
    "ParticipantUpdated",
    "ParticipantWaiting",
    "RecordingPaused",
    "RecordingResumed",
    "SpotlightChanged",
    "StateChanged",
    "TrackPublished",
    "TrackUnpublished",
]

logger = logging.getLogger(__name__)

#: At most this many participants (of every role) are in one hearing at a time.
MAX_PARTICIPANTS: Final = 100
#: The longest line of the hearing log.
MAX_NOTE_CHARS: Final = 2000

# Tracks are listed in this order for a participant, whatever order they were published in.
_KIND_ORDER: Final = ("audio", "video", "screen")


class HearingKind(StrEnum):
    """What sort of session a hearing is; values are the wire strings."""

    hearing = "hearing"
    cross_court = "cross-court"
    arraignment = "arraignment"
    meeting = "meeting"
    observation = "observation"
    petition = "petition"
    #: Defence counsel and the defendant in private, linked to a hearing; never recorded.
    consultation = "consultation"


#: The only roles a consultation room admits: by construction, no judge, observer or recorder.
CONSULTATION_ROLES: Final = frozenset({Role.defence, Role.defendant})


class HearingState(StrEnum):
    """The hearing's state; values are the wire strings (``welcome.hearing.state``)."""

    scheduled = "scheduled"
    open = "open"
    paused = "paused"  # recording interrupted for a lawful reason; media still flows
    closed = "closed"


#: Allowed state changes: old -> the states it may go to. ``closed`` is final.
TRANSITIONS: Final[Mapping[HearingState, frozenset[HearingState]]] = MappingProxyType(
    {
        HearingState.scheduled: frozenset({HearingState.open, HearingState.closed}),
        HearingState.open: frozenset({HearingState.paused, HearingState.closed}),
        HearingState.paused: frozenset({HearingState.open, HearingState.closed}),
        HearingState.closed: frozenset(),
    }
)


@dataclass(frozen=True, slots=True)
class Court:
    """The court a participant is at, as the others see it: its code and display names.

    The names are data (config/courts.toml ``name``, ``name_en``), not page strings. A code the
    hearing does not know (a court since removed from the configuration) is shown as itself.
    """

    code: str
    name: str
    name_en: str = ""

    def to_wire(self) -> dict[str, str]:
        """``{court, courtName}``, and ``courtNameEn`` when the court has an English name."""
        wire = {"court": self.code, "courtName": self.name}
        if self.name_en:
            wire["courtNameEn"] = self.name_en
        return wire


@dataclass
class Participant:
    """One connection in the hearing.

    ``id`` names the connection (the server chooses it); ``key`` names the invitation it joined with
    (a reconnect with the same key replaces the connection). ``muted`` is the participant's own mute
    state per kind; ``published`` the kinds of track it currently sends.
    """

    id: str
    name: str
    role: Role
    key: str
    joined_at: float
    muted: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(sorted(MUTE_KINDS), False))
    published: set[str] = field(default_factory=set)
    #: False while waiting in the lobby: no media, not shown, not announced.
    admitted: bool = True
    #: The court the participant is at (its invitation's; :meth:`Hearing.join` sets it).
    court: Court | None = None

    def to_wire(self) -> dict[str, object]:
        """The public view sent to others: ``{id, name, role, muted: {audio, video}}`` and the
        court (``court``, ``courtName``, ``courtNameEn``; see :class:`Court`)."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "muted": dict(self.muted),
            **(self.court.to_wire() if self.court is not None else {}),
        }

    def _snapshot(self) -> Participant:
        # Events hold a copy, so that an event says what was true when it happened.
        return replace(self, muted=dict(self.muted), published=set(self.published))


@dataclass(frozen=True, slots=True)
class Admission:
    """An invitation that holds a place in the room: what the server keeps of it across a restart.

    ``key`` is the invitation (the token's participant key). It holds a place from the moment it
    is admitted (by the judge, or at once: judge, clerk, ``autoAdmit`` roles) until its holder
    leaves, is ejected, or stays disconnected past the reconnect grace; a reconnect keeps it.
    ``silenced``: the presiding judge muted its audio for everyone, and that follows the invitation.
    """

    key: str
    silenced: bool = False


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    """A participant entered the hearing."""

    participant: Participant


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    """A participant left; ``reason`` is a :class:`~signaling.messages.LeaveReason`."""

    participant_id: str
    reason: LeaveReason


@dataclass(frozen=True, slots=True)
class ParticipantUpdated:
    """A participant's public view changed (its mute state)."""

    participant: Participant


@dataclass(frozen=True, slots=True)
class TrackPublished:
    """A participant started sending a track of ``kind`` (``audio``, ``video``, ``screen``)."""

    participant_id: str
    kind: str


@dataclass(frozen=True, slots=True)
class TrackUnpublished:
    """A participant's track of ``kind`` went away."""

    participant_id: str
    kind: str


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The hearing's state changed from ``old`` to ``new``."""

    old: HearingState
    new: HearingState


@dataclass(frozen=True, slots=True)
class ParticipantWaiting:
    """A participant is in the lobby, waiting for the judge (told to controllers only)."""

    participant: Participant


@dataclass(frozen=True, slots=True)
class ParticipantAdmitted:
    """The judge admitted a waiting participant; a :class:`ParticipantJoined` follows.

    ``by`` is None and ``reason`` ``server-restart`` when nobody admitted it now: its invitation
    held a place before the server restarted (see :meth:`Hearing.restore`).
    """

    participant_id: str
    by: str | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ParticipantEjected:
    """The judge ejected a participant: its invitation ``key`` must stop working at once."""

    participant_id: str
    key: str
    by: str


@dataclass(frozen=True, slots=True)
class NoteTaken:
    """A line of the hearing log (the clerk's note), on the recording's timeline."""

    at: float
    author_id: str
    author_name: str
    text: str


@dataclass(frozen=True, slots=True)
class FloorChanged:
    """Who may speak (a meeting's presenter) and who asks to.

    The floor decides whose sound is forwarded; whom everyone looks at is the spotlight
    (:class:`SpotlightChanged`).

    ``holder`` None means everyone may speak. ``silenced`` lists participants whose audio the
    server stops forwarding (the judge's mute, or everyone but the holder and the chair in a
    meeting); their audio is still recorded as it arrives.
    """

    holder: str | None
    requests: tuple[str, ...]
    silenced: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SpotlightChanged:
    """Whom everyone shows large (the main tile, and the defendant terminal's court window).

    ``participant_id`` None means no one: the usual layout. ``by``/``by_name`` name the judge who
    set or cleared it; both are None when the server moved it on by itself, and ``reason`` then
    says why: a :class:`~signaling.messages.LeaveReason` (the participant left or was ejected, so
    the spotlight went out) or ``rejoined`` (it follows the participant onto its new connection).
    """

    participant_id: str | None
    name: str | None
    by: str | None
    by_name: str | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RecordingPaused:
    """The presiding judge paused the recording: ``reason`` is lawful, ``by`` names who."""

    reason: str
    by: str
    by_name: str


@dataclass(frozen=True, slots=True)
class RecordingResumed:
    """The recording goes on after a pause."""

    by: str
    by_name: str


@dataclass(frozen=True, slots=True)
class HearingEnded:
    """The hearing is over; every connection gets ``bye``."""

    reason: str


Event = (
    ParticipantJoined
    | ParticipantLeft
    | ParticipantUpdated
    | TrackPublished
    | TrackUnpublished
    | StateChanged
    | ParticipantWaiting
    | ParticipantAdmitted
    | ParticipantEjected
    | NoteTaken
    | FloorChanged
    | SpotlightChanged
    | RecordingPaused
    | RecordingResumed
    | HearingEnded
)


class _HearingLog(logging.LoggerAdapter[logging.Logger]):
    """Prefixes messages with the hearing id and passes it on as ``extra`` for structured logs."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = self.extra or {}
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        return f"hearing {extra.get('hearing_id')}: {msg}", kwargs


class Hearing:
    """One hearing's room: its participants, their tracks, and its state (see the module docstring).

    Every command returns the events it caused (possibly none) or raises :class:`ProtocolError`
    without changing anything.
    """

    def __init__(
        self,
        id: str,
        court: str,
        case_number: str,
        kind: HearingKind,
        state: HearingState = HearingState.scheduled,
    ) -> None:
        self.id = id
        self.court = court
        self.case_number = case_number
        self.kind = HearingKind(kind)
        self._state = HearingState(state)
        #: When the state last changed (``now`` of that call); ``None`` until it first does.
        self.state_since: float | None = None
        # Insertion order is joining order, which is the order others are listed in.
        self._participants: dict[str, Participant] = {}
        #: Roles the judge lets in without the lobby (judge and clerk always skip it).
        self.auto_admit: frozenset[Role] = frozenset()
        #: The courts participants may be at, by code (the server's configuration).
        self.courts: Mapping[str, Court] = {}
        #: A sealed (non-public) hearing admits no observers.
        self.sealed = False
        self._floor: str | None = None
        self._floor_requests: list[str] = []
        self._silenced: set[str] = set()  # muted by the judge
        self._spotlight: str | None = None
        self._pause: RecordingPaused | None = None  # the pause in force while paused
        # Invitations that held a place before a restart and have not joined again since.
        self._restored: dict[str, Admission] = {}
        self._log = _HearingLog(logger, {"hearing_id": id})

    def __repr__(self) -> str:
        return f"<Hearing {self.id} {self._state} participants={len(self._participants)}>"

    # --- queries ---------------------------------------------------------------------------------

    @property
    def state(self) -> HearingState:
        """The hearing's current state."""
        return self._state

    @property
    def participants(self) -> Mapping[str, Participant]:
        """The participants present, by id, in joining order (a read-only view)."""
        return MappingProxyType(self._participants)

    def visible_participants(self) -> list[Participant]:
        """The participants shown to others (not observers), in joining order."""
        return [p for p in self._participants.values() if grants(p.role).visible and p.admitted]

    def subscribers_of(self, participant_id: str) -> list[str]:
        """Ids of the others who receive media, i.e. who get ``participant_id``'s tracks."""
        return [
            p.id
            for p in self._participants.values()
            if p.id != participant_id and grants(p.role).subscribe and p.admitted
        ]

    @property
    def spotlight(self) -> str | None:
        """Whom the judge spotlighted (shown large to everyone), or None."""
        return self._spotlight

    @property
    def current_pause(self) -> RecordingPaused | None:
        """The pause in force (why, and which judge paused) while the hearing is paused, else None."""
        return self._pause

    @property
    def silenced(self) -> frozenset[str]:
        """Ids of the participants the presiding judge muted for everyone."""
        return frozenset(self._silenced)

    def admission(self, key: str) -> Admission | None:
        """What the server must keep of invitation ``key`` so that a restart changes nothing.

        None when the invitation holds no place: never admitted, waiting in the lobby, or gone
        (left, ejected, refused, disconnected past the grace). The server stores the answer
        after every event that names this invitation; the hearing takes it back with
        :meth:`restore`.
        """
        for participant in self._participants.values():
            if participant.key == key and participant.admitted:
                return Admission(key, participant.id in self._silenced)
        return self._restored.get(key)

    def published_tracks(self) -> list[tuple[str, str]]:
        """Every track being sent, as ``(participant_id, kind)``, in joining order."""
        return [(p.id, kind) for p in self._participants.values() for kind in _kinds(p.published)]

    def to_wire(self) -> dict[str, object]:
        """The hearing as in ``welcome``: ``{id, court, courtName, [courtNameEn], caseNumber, kind,
        state}`` (the court's names as its participants' are given)."""
        return {
            "id": self.id,
            **self._court(self.court).to_wire(),
            "caseNumber": self.case_number,
            "kind": self.kind.value,
            "state": self._state.value,
        }

    # --- commands --------------------------------------------------------------------------------

    def open(self, now: float) -> list[Event]:
        """Open the hearing (``scheduled -> open``); nothing happens if it is open already.

        Raises ``forbidden`` for a closed hearing.
        """
        if self._state in (HearingState.open, HearingState.paused):
            return []
        return [self._set_state(HearingState.open, now)]

    def restore(
        self, admissions: Iterable[Admission] = (), pause: RecordingPaused | None = None
    ) -> None:
        """Take back what the server kept across a restart; before anyone joins.

        Each of ``admissions`` goes straight in on its next join, without the lobby, keeping the
        judge's mute (:meth:`join` says so with :class:`ParticipantAdmitted`, reason
        ``server-restart``). ``pause`` is the pause in force: the hearing must be ``paused``.
        """
        if self._participants:
            raise RuntimeError(f"hearing {self.id}: restore() after participants joined")
        if (pause is not None) != (self._state is HearingState.paused):
            raise ValueError(f"hearing {self.id} is {self._state}: pause {pause!r} does not fit")
        self._restored = {a.key: a for a in admissions}
        self._pause = pause
        if self._restored or pause is not None:
            self._log.info(
                "restored: %d admitted invitation(s), %s",
                len(self._restored),
                f"paused ({pause.reason})" if pause is not None else self._state,
            )

    def join(self, participant_id: str, claims: JoinClaims, now: float) -> list[Event]:
        """Admit connection ``participant_id`` with verified token ``claims``.

        Opens a scheduled hearing. A participant already present with the same invitation key is
        removed first (reason ``replaced``) and its place passes to the new connection: admitted,
        the spotlight and the judge's mute. So does an invitation that held a place before a restart
        (:meth:`restore`). Raises ``forbidden`` (fatal) for another hearing's
        token, a role that takes no part, or a full hearing; ``hearing-ended`` (fatal) once closed;
        ``token-expired`` (fatal) if the claims expired; ``already-joined`` for a known connection.
        """
        if claims.hearing_id != self.id:
            raise ProtocolError("forbidden", "the token is for another hearing", fatal=True)
        if self._state is HearingState.closed:
            raise ProtocolError("hearing-ended", "the hearing has ended", fatal=True)
        if now >= claims.expires_at:
            raise ProtocolError("token-expired", "the token has expired", fatal=True)
        if not can_join(claims.role):
            raise ProtocolError("forbidden", f"a {claims.role} does not join hearings", fatal=True)
        if participant_id in self._participants:
            raise ProtocolError("already-joined", "this connection has joined already")
        if self.kind is HearingKind.consultation and claims.role not in CONSULTATION_ROLES:
            raise ProtocolError(
                "forbidden", "a consultation room is for defence counsel and defendant", fatal=True
            )
        if self.sealed and claims.role is Role.observer:
            raise ProtocolError("forbidden", "a sealed hearing cannot be observed", fatal=True)
        previous = next(
            (p for p in self._participants.values() if p.key == claims.participant_key), None
        )
        staying = len(self._participants) - (previous is not None)
        if staying >= MAX_PARTICIPANTS:
            raise ProtocolError("forbidden", "the hearing is full", fatal=True)

        events: list[Event] = []
        if self._state is HearingState.scheduled:
            events.append(self._set_state(HearingState.open, now))
        # A spotlighted participant whose link dropped keeps the spotlight on its new connection.
        keeps_spotlight = previous is not None and self._spotlight == previous.id
        restored = self._restored.pop(claims.participant_key, None)
        # The judge's mute follows the invitation: a reconnect or a restart does not lift it.
        keeps_silence = (previous is not None and previous.id in self._silenced) or (
            restored is not None and restored.silenced
        )
        if previous is not None:
            events.extend(self._remove(previous, LeaveReason.replaced))
        admitted = grants(claims.role).bypass_lobby or claims.role in self.auto_admit
        readmitted = False
        if previous is not None and previous.admitted:
            admitted = True  # a reconnect keeps its place: it was admitted already
        elif restored is not None and not admitted:
            admitted = readmitted = True  # admitted before the server restarted
        participant = Participant(
            id=participant_id,
            name=claims.name,
            role=claims.role,
            key=claims.participant_key,
            joined_at=now,
            admitted=admitted,
            court=self._court(claims.court or self.court),
        )
        self._participants[participant_id] = participant
        if keeps_silence:
            self._silenced.add(participant_id)
        if admitted:
            self._log.info("participant %s joined as %s", participant_id, claims.role)
            if readmitted:
                self._log.info("participant %s re-admitted after a server restart", participant_id)
                events.append(ParticipantAdmitted(participant_id, None, "server-restart"))
            events.append(ParticipantJoined(participant._snapshot()))
            if keeps_spotlight:
                self._spotlight = participant_id
                events.append(
                    SpotlightChanged(participant_id, participant.name, None, None, "rejoined")
                )
        else:
            self._log.info("participant %s waits in the lobby as %s", participant_id, claims.role)
            events.append(ParticipantWaiting(participant._snapshot()))
        if keeps_silence:
            events.append(self._floor_event())  # the others learn the muted one's new id
        return events

    def admit(self, by: str, participant_id: str, now: float) -> list[Event]:
        """The judge admits a participant waiting in the lobby."""
        self._require_control(by, "admit participants")
        participant = self._require(participant_id)
        if participant.admitted:
            return []
        participant.admitted = True
        self._log.info("participant %s admitted by %s", participant_id, by)
        return [ParticipantAdmitted(participant_id, by), ParticipantJoined(participant._snapshot())]

    def refuse(self, by: str, participant_id: str, now: float) -> list[Event]:
        """The judge does not admit a waiting participant: it is sent away."""
        self._require_control(by, "refuse participants")
        participant = self._require(participant_id)
        if participant.admitted:
            raise ProtocolError("forbidden", "only a waiting participant can be refused")
        return self._remove(participant, LeaveReason.refused)

    def eject(self, by: str, participant_id: str, now: float) -> list[Event]:
        """The judge ejects a participant; its invitation stops working (see ParticipantEjected)."""
        judge = self._require_control(by, "eject participants")
        participant = self._require(participant_id)
        if participant.id == judge.id:
            raise ProtocolError("forbidden", "the presiding judge cannot eject themself")
        events: list[Event] = [ParticipantEjected(participant.id, participant.key, by)]
        events.extend(self._remove(participant, LeaveReason.ejected))
        return events

    def set_auto_admit(self, by: str, roles: set[Role], now: float) -> list[Event]:
        """The judge lets these roles in without waiting (e.g. every party of a hearing)."""
        self._require_control(by, "change the lobby")
        self.auto_admit = frozenset(roles)
        return []

    def note(self, by: str, text: str, now: float) -> list[Event]:
        """A line for the hearing log (clerk, or the judge)."""
        participant = self._require(by)
        role_grants = grants(participant.role)
        if not (role_grants.notes or role_grants.control):
            raise ProtocolError("forbidden", f"a {participant.role} does not keep the record")
        text = text.strip()
        if not text or len(text) > MAX_NOTE_CHARS:
            raise ProtocolError("bad-message", f"a note is 1 to {MAX_NOTE_CHARS} characters")
        return [NoteTaken(now, participant.id, participant.name, text)]

    # --- the floor: who speaks -------------------------------------------------------------------

    def silence(self, by: str, participant_id: str, silenced: bool, now: float) -> list[Event]:
        """The judge mutes (or unmutes) a participant's audio for everyone.

        Only someone admitted: a participant waiting in the lobby sends no sound to mute
        (``forbidden``), and the mute is kept with its admission (:meth:`admission`).
        """
        judge = self._require_control(by, "mute others")
        target = self._require(participant_id)
        if participant_id == judge.id:
            raise ProtocolError("forbidden", "the presiding judge cannot mute themself this way")
        if not target.admitted:
            raise ProtocolError("forbidden", "a waiting participant cannot be muted")
        if silenced:
            self._silenced.add(participant_id)
        else:
            self._silenced.discard(participant_id)
        return [self._floor_event()]

    def request_floor(self, participant_id: str, now: float) -> list[Event]:
        """A court in a meeting asks to speak."""
        participant = self._require(participant_id)
        if not participant.admitted or "audio" not in grants(participant.role).publish:
            raise ProtocolError("forbidden", f"a {participant.role} does not take the floor")
        if participant_id in self._floor_requests or participant_id == self._floor:
            return []
        self._floor_requests.append(participant_id)
        return [self._floor_event()]

    def give_floor(self, by: str, participant_id: str | None, now: float) -> list[Event]:
        """The chair gives the floor to one participant (None: takes it back, all may speak)."""
        self._require_control(by, "give the floor")
        if participant_id is not None:
            target = self._require(participant_id)
            if not target.admitted:
                raise ProtocolError("forbidden", "a waiting participant cannot have the floor")
            if participant_id in self._floor_requests:
                self._floor_requests.remove(participant_id)
        self._floor = participant_id
        return [self._floor_event()]

    # --- the spotlight: whom everyone shows large ------------------------------------------------

    def set_spotlight(self, by: str, participant_id: str | None, now: float) -> list[Event]:
        """The judge shows one participant large to everyone (None: clears the spotlight).

        Only a participant in the hearing and shown to others can be spotlighted. Raises
        ``forbidden`` for a role without the ``control`` grant, for an observer (not shown) and
        for someone waiting in the lobby; ``not-joined`` for an id that is not in the hearing.
        The spotlight is only what everyone looks at: whose sound is forwarded is the floor's
        business (:meth:`give_floor`, :meth:`silence`).
        """
        judge = self._require_control(by, "spotlight participants")
        target: Participant | None = None
        if participant_id is not None:
            target = self._participants.get(participant_id)
            if target is None:
                raise ProtocolError("not-joined", f"no participant {participant_id} in the hearing")
            if not grants(target.role).visible:
                raise ProtocolError("forbidden", f"a {target.role} is not shown to the court")
            if not target.admitted:
                raise ProtocolError("forbidden", "a waiting participant cannot be spotlighted")
        if participant_id == self._spotlight:
            return []
        self._log.info("spotlight %s -> %s by %s", self._spotlight, participant_id, by)
        self._spotlight = participant_id
        name = target.name if target is not None else None
        return [SpotlightChanged(participant_id, name, judge.id, judge.name)]

    def audible(self, participant_id: str) -> bool:
        """Whether the server forwards this participant's audio to the others now."""
        if participant_id in self._silenced:
            return False
        if self._floor is None or participant_id == self._floor:
            return True
        participant = self._participants.get(participant_id)
        return participant is not None and grants(participant.role).control  # the chair

    def floor_state(self) -> FloorChanged:
        """The floor as it stands now (what a late joiner is told), in the shape of the event."""
        return self._floor_event()

    def _floor_event(self) -> FloorChanged:
        silenced = tuple(sorted(pid for pid in self._participants if not self.audible(pid)))
        return FloorChanged(self._floor, tuple(self._floor_requests), silenced)

    def waiting(self) -> list[Participant]:
        """Who waits in the lobby, in arrival order."""
        return [p for p in self._participants.values() if not p.admitted]

    def leave(self, participant_id: str, reason: str, now: float) -> list[Event]:
        """Remove ``participant_id`` for ``reason`` (a :class:`LeaveReason` value).

        Its tracks go first (:class:`TrackUnpublished` events), then :class:`ParticipantLeft`.
        Unknown ids are ignored, so a disconnect after a leave is harmless.
        """
        leave_reason = LeaveReason(reason)
        participant = self._participants.get(participant_id)
        if participant is None:
            return []
        return self._remove(participant, leave_reason)

    def set_muted(self, participant_id: str, kind: str, muted: bool, now: float) -> list[Event]:
        """Record the participant's own mute state of ``kind`` (``audio``/``video``).

        Returns :class:`ParticipantUpdated` if it changed. Raises ``not-joined``, ``bad-message``
        for another kind, ``forbidden`` for a kind the role may not send.
        """
        participant = self._require(participant_id)
        if kind not in MUTE_KINDS:
            raise ProtocolError("bad-message", f"cannot mute {kind!r}")
        if kind not in grants(participant.role).publish:
            raise ProtocolError("forbidden", f"a {participant.role} does not send {kind}")
        if participant.muted[kind] == muted:
            return []
        participant.muted[kind] = muted
        if self._log.isEnabledFor(logging.DEBUG):
            self._log.debug("participant %s %s muted=%s", participant_id, kind, muted)
        return [ParticipantUpdated(participant._snapshot())]

    def publish(self, participant_id: str, kind: str, now: float) -> list[Event]:
        """Record that ``participant_id`` sends a track of ``kind``; nothing if it already does.

        Raises ``not-joined``, ``bad-message`` for an unknown kind, ``forbidden`` if the role may
        not send that kind (an observer, or a witness sharing a screen).
        """
        participant = self._require(participant_id)
        if kind not in MEDIA_KINDS:
            raise ProtocolError("bad-message", f"unknown media kind {kind!r}")
        if kind not in grants(participant.role).publish:
            raise ProtocolError("forbidden", f"a {participant.role} may not publish {kind}")
        if not participant.admitted:
            raise ProtocolError("forbidden", "a participant in the lobby sends no media")
        if kind in participant.published:
            return []
        participant.published.add(kind)
        self._log.info("participant %s publishes %s", participant_id, kind)
        return [TrackPublished(participant_id, kind)]

    def unpublish(self, participant_id: str, kind: str, now: float) -> list[Event]:
        """Record that the track of ``kind`` went away; nothing if there was none."""
        participant = self._participants.get(participant_id)
        if participant is None or kind not in participant.published:
            return []
        participant.published.discard(kind)
        self._log.info("participant %s stopped %s", participant_id, kind)
        return [TrackUnpublished(participant_id, kind)]

    def pause(self, participant_id: str, reason: str, now: float) -> list[Event]:
        """Pause the recording (judge controls only, lawful reasons only, from ``open``)."""
        participant = self._require(participant_id)
        if not grants(participant.role).control:
            raise ProtocolError("forbidden", f"a {participant.role} cannot pause the recording")
        if reason not in PAUSE_REASONS:
            raise ProtocolError("bad-message", f"{reason!r} is not a lawful reason to pause")
        if self._state is not HearingState.open:
            raise ProtocolError("forbidden", f"cannot pause a hearing that is {self._state}")
        changed = self._set_state(HearingState.paused, now)
        self._pause = RecordingPaused(reason, participant.id, participant.name)
        return [changed, self._pause]

    def resume(self, participant_id: str, now: float) -> list[Event]:
        """Resume the recording after a pause (judge controls only)."""
        participant = self._require(participant_id)
        if not grants(participant.role).control:
            raise ProtocolError("forbidden", f"a {participant.role} cannot resume the recording")
        if self._state is not HearingState.paused:
            raise ProtocolError("forbidden", f"cannot resume a hearing that is {self._state}")
        changed = self._set_state(HearingState.open, now)
        self._pause = None
        return [changed, RecordingResumed(participant.id, participant.name)]

    def end(self, reason: str, now: float) -> list[Event]:
        """End the hearing: everyone leaves (reason ``ended``), the state goes to ``closed``.

        Afterwards joins are refused with ``hearing-ended``. Ending a closed hearing does nothing.
        """
        if self._state is HearingState.closed:
            return []
        events: list[Event] = []
        for participant in list(self._participants.values()):
            events.extend(self._remove(participant, LeaveReason.ended))
        events.append(self._set_state(HearingState.closed, now))
        self._pause = None
        self._restored.clear()
        events.append(HearingEnded(reason))
        return events

    # --- internals -------------------------------------------------------------------------------

    def _set_state(self, new: HearingState, now: float) -> StateChanged:
        """The one state setter: check the table, log ``old -> new``, return the event."""
        old = self._state
        if new not in TRANSITIONS[old]:
            raise ProtocolError("forbidden", f"hearing {self.id} cannot go {old} -> {new}")
        self._log.info("%s -> %s", old, new)
        self._state = new
        self.state_since = now
        return StateChanged(old, new)

    def _require_control(self, participant_id: str, what: str) -> Participant:
        participant = self._require(participant_id)
        if not grants(participant.role).control:
            raise ProtocolError("forbidden", f"a {participant.role} cannot {what}")
        return participant

    def _require(self, participant_id: str) -> Participant:
        try:
            return self._participants[participant_id]
        except KeyError:
            raise ProtocolError("not-joined", "join the hearing first") from None

    def _court(self, code: str) -> Court:
        return self.courts.get(code) or Court(code, code)

    def _remove(self, participant: Participant, reason: LeaveReason) -> list[Event]:
        events: list[Event] = [
            TrackUnpublished(participant.id, kind) for kind in _kinds(participant.published)
        ]
        participant.published.clear()
        del self._participants[participant.id]
        self._silenced.discard(participant.id)
        if participant.id in self._floor_requests:
            self._floor_requests.remove(participant.id)
        if self._floor == participant.id:
            self._floor = None
        self._log.info("participant %s left (%s)", participant.id, reason)
        events.append(ParticipantLeft(participant.id, reason))
        if self._spotlight == participant.id:
            # Nobody is shown large any more (a rejoin puts the spotlight back: see join).
            self._spotlight = None
            if reason is not LeaveReason.replaced:
                events.append(SpotlightChanged(None, None, None, None, reason.value))
        return events


def _kinds(published: set[str]) -> Iterator[str]:
    return (kind for kind in _KIND_ORDER if kind in published)
