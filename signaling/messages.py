"""Wire messages of the hearing protocol (``PROTOCOL.md``): parsing client messages, encoding ours.

How this works: a WebSocket text frame goes into :func:`parse_client_message`, which either returns
one of the frozen client message dataclasses (:class:`Join`, :class:`Answer`, :class:`Candidate`,
:class:`Mute`, :class:`Leave`) with every field checked, or raises :class:`ProtocolError` with the
code the server sends back. The checks run cheapest first: the frame kind, the size (before any JSON
work), JSON syntax, the envelope (an object with a string ``type``), then the fields of that type.
Nothing else can escape: a Hypothesis test feeds arbitrary text and bytes to hold that line.

The SDP of an answer is only checked lightly here (size, ``v=0`` first, printable ASCII and line
breaks); aiortc parses it fully in the server, which turns its failures into ``bad-sdp``.

Server messages are built by the ``encode_*`` functions, each returning the JSON text of one message
in the exact shape of ``PROTOCOL.md`` (camelCase on the wire). Client messages have ``to_json()``
for the Python clients (the terminal) and for round-trip tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Final

from signaling.errors import ProtocolError
from signaling.roles import MEDIA_KINDS, grants

if TYPE_CHECKING:
    # Only for annotations: hearing.py imports this module at run time.
    from signaling.hearing import Hearing, Participant

__all__ = [
    "MAX_CANDIDATE_CHARS",
    "MAX_MESSAGE_BYTES",
    "MAX_NAME_CHARS",
    "MAX_SDP_BYTES",
    "MAX_TOKEN_CHARS",
    "MUTE_KINDS",
    "Answer",
    "ByeReason",
    "Candidate",
    "ClientMessage",
    "IceServer",
    "Join",
    "Leave",
    "LeaveReason",
    "Mute",
    "Spotlight",
    "encode_bye",
    "encode_error",
    "encode_offer",
    "encode_participant_joined",
    "encode_participant_left",
    "encode_participant_updated",
    "encode_spotlight",
    "encode_track_published",
    "encode_welcome",
    "parse_client_message",
]

MAX_MESSAGE_BYTES: Final = 128 * 1024
MAX_SDP_BYTES: Final = 96 * 1024
MAX_NAME_CHARS: Final = 64
MAX_TOKEN_CHARS: Final = 4096
MAX_CANDIDATE_CHARS: Final = 1024
# A media id is a short token in practice ("0", "audio"); this only bounds abuse.
MAX_MID_CHARS: Final = 64
# An m-line index far beyond any real session (our offers have tens of m-lines at most).
MAX_MLINE_INDEX: Final = 1023
# Offer ids are JavaScript numbers on the client: stay within the exactly representable integers.
MAX_OFFER_ID: Final = 2**53 - 1
# Unknown fields are ignored (forward compatibility) but may not smuggle bulk: a few short scalars.
MAX_EXTRA_FIELDS: Final = 8
MAX_EXTRA_FIELD_CHARS: Final = 256

#: What a participant may mute: its microphone and its camera.
MUTE_KINDS: Final = frozenset({"audio", "video"})


class LeaveReason(StrEnum):
    """Why a participant left (``participant-left.reason``)."""

    left = "left"
    disconnected = "disconnected"
    ejected = "ejected"
    replaced = "replaced"
    ended = "ended"
    refused = "refused"  # the judge did not admit them from the lobby


class ByeReason(StrEnum):
    """Why the server closes a connection (``bye.reason``)."""

    ended = "ended"
    shutdown = "shutdown"
    replaced = "replaced"
    ejected = "ejected"
    refused = "refused"


# --- client -> server ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    """``join``: the first message, carrying the signed join token."""

    type: ClassVar[str] = "join"
    token: str = field(repr=False)  # a bearer secret: keep it out of logs

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump({"type": self.type, "token": self.token})


@dataclass(frozen=True, slots=True)
class Answer:
    """``answer``: the client's SDP answer to the server's offer ``offer_id``."""

    type: ClassVar[str] = "answer"
    sdp: str = field(repr=False)
    offer_id: int

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump({"type": self.type, "sdp": self.sdp, "offerId": self.offer_id})


@dataclass(frozen=True, slots=True)
class Candidate:
    """``candidate``: one trickled ICE candidate; ``candidate == ""`` is the end of candidates."""

    type: ClassVar[str] = "candidate"
    candidate: str
    sdp_mid: str | None
    sdp_mline_index: int | None

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump(
            {
                "type": self.type,
                "candidate": self.candidate,
                "sdpMid": self.sdp_mid,
                "sdpMLineIndex": self.sdp_mline_index,
            }
        )


@dataclass(frozen=True, slots=True)
class Mute:
    """``mute``: the participant's own mute state of its ``audio`` or ``video``."""

    type: ClassVar[str] = "mute"
    kind: str
    muted: bool

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump({"type": self.type, "kind": self.kind, "muted": self.muted})


@dataclass(frozen=True, slots=True)
class Leave:
    """``leave``: the participant leaves; the server closes the socket."""

    type: ClassVar[str] = "leave"

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump({"type": self.type})


@dataclass(frozen=True, slots=True)
class Pause:
    """``pause``: the presiding judge pauses the recording for a lawful reason."""

    type: ClassVar[str] = "pause"
    reason: str

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump({"type": self.type, "reason": self.reason})


@dataclass(frozen=True, slots=True)
class Resume:
    """``resume``: the presiding judge resumes the recording."""

    type: ClassVar[str] = "resume"

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump({"type": self.type})


@dataclass(frozen=True, slots=True)
class Control:
    """The judge acts on a participant: ``admit`` or ``refuse`` (lobby), ``eject``."""

    type: str  # "admit" | "refuse" | "eject"
    participant_id: str

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump({"type": self.type, "participantId": self.participant_id})


@dataclass(frozen=True, slots=True)
class Note:
    """``note``: a line of the hearing log (clerk or judge)."""

    type: ClassVar[str] = "note"
    text: str

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump({"type": self.type, "text": self.text})


@dataclass(frozen=True, slots=True)
class End:
    """``end``: the presiding judge closes the hearing."""

    type: ClassVar[str] = "end"

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump({"type": self.type})


@dataclass(frozen=True, slots=True)
class Silence:
    """``mute-participant``: the judge stops (or restores) a participant's audio for everyone."""

    type: ClassVar[str] = "mute-participant"
    participant_id: str
    muted: bool

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump({"type": self.type, "participantId": self.participant_id, "muted": self.muted})


@dataclass(frozen=True, slots=True)
class Floor:
    """``request-floor`` (a court asks to speak) or ``give-floor`` (the chair; null takes it back)."""

    type: str  # "request-floor" | "give-floor"
    participant_id: str | None = None

    def to_json(self) -> str:
        """Encode as the wire message."""
        if self.type == "request-floor":
            return _dump({"type": self.type})
        return _dump({"type": self.type, "participantId": self.participant_id})


@dataclass(frozen=True, slots=True)
class Spotlight:
    """``spotlight``: the judge shows one participant large to everyone (None clears it)."""

    type: ClassVar[str] = "spotlight"
    participant_id: str | None

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump({"type": self.type, "participantId": self.participant_id})


@dataclass(frozen=True, slots=True)
class Consult:
    """``consult``: defence counsel or the defendant asks for the private consultation room."""

    type: ClassVar[str] = "consult"

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump({"type": self.type})


@dataclass(frozen=True, slots=True)
class Share:
    """``share``: start (or stop) presenting a screen; the server offers again to carry it."""

    type: ClassVar[str] = "share"
    on: bool

    def to_json(self) -> str:
        """Encode as the wire message."""
        return _dump({"type": self.type, "on": self.on})


#: The longest note accepted on the wire (the hearing checks the same bound).
MAX_NOTE_CHARS: Final = 2000
MAX_PARTICIPANT_ID_CHARS: Final = 64

#: The only reasons a recording may be interrupted (SPC rules on hearing recordings, 2017):
#: recess (休庭), non-public examination of evidence (不公开质证), mediation (调解).
PAUSE_REASONS: Final = frozenset({"recess", "non-public-evidence", "mediation"})

ClientMessage = (
    Join
    | Answer
    | Candidate
    | Mute
    | Leave
    | Pause
    | Resume
    | Control
    | Note
    | End
    | Silence
    | Floor
    | Spotlight
    | Consult
    | Share
)

_SDP_TEXT: Final = re.compile(r"[\x20-\x7e\r\n]*")
_CANDIDATE_TEXT: Final = re.compile(r"[\x20-\x7e]*")


def parse_client_message(data: str | bytes) -> ClientMessage:
    """Parse one WebSocket frame from a client.

    ``data`` is the frame's payload: ``str`` for a text frame, ``bytes`` for a binary one (refused).
    Returns the message, or raises :class:`ProtocolError` with ``bad-message``, ``too-large``,
    ``bad-json``, ``unknown-type`` or ``bad-sdp``; no other exception comes out for any input.
    """
    if not isinstance(data, str):
        if isinstance(data, bytes | bytearray | memoryview):
            raise ProtocolError("bad-message", "binary frames are not accepted; send JSON text")
        raise TypeError(f"expected str or bytes, got {type(data).__name__}")
    # Characters never outnumber UTF-8 bytes, so the first test is exact for a refusal and costs
    # nothing; only non-ASCII text needs encoding to be measured.
    if len(data) > MAX_MESSAGE_BYTES or (
        not data.isascii() and len(data.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES
    ):
        raise ProtocolError("too-large", f"a message is at most {MAX_MESSAGE_BYTES} bytes")
    try:
        obj = json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ProtocolError("bad-json", f"invalid JSON: {exc.msg} at {exc.pos}") from None
    except (ValueError, RecursionError) as exc:
        # Our hooks' refusals, integers past Python's digit limit, nesting past the recursion limit.
        raise ProtocolError("bad-json", f"invalid JSON: {_clip(str(exc), 80)}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad-message", "a message is a JSON object")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad-message", "a message needs a string 'type'")
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ProtocolError("unknown-type", f"unknown message type {_clip(kind)!r}")
    _check_extra_fields(kind, obj)
    return parser(obj)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of duplicate keys; two "token" or "sdp" fields are refused instead, so
    # that what we check is what every other JSON reader on the path would see.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in object")
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "join": frozenset({"type", "token"}),
    "answer": frozenset({"type", "sdp", "offerId"}),
    "candidate": frozenset({"type", "candidate", "sdpMid", "sdpMLineIndex"}),
    "mute": frozenset({"type", "kind", "muted"}),
    "leave": frozenset({"type"}),
    "pause": frozenset({"type", "reason"}),
    "resume": frozenset({"type"}),
    "admit": frozenset({"type", "participantId"}),
    "refuse": frozenset({"type", "participantId"}),
    "eject": frozenset({"type", "participantId"}),
    "note": frozenset({"type", "text"}),
    "end": frozenset({"type"}),
    "mute-participant": frozenset({"type", "participantId", "muted"}),
    "request-floor": frozenset({"type"}),
    "give-floor": frozenset({"type", "participantId"}),
    "spotlight": frozenset({"type", "participantId"}),
    "consult": frozenset({"type"}),
    "share": frozenset({"type", "on"}),
}


def _check_extra_fields(kind: str, obj: dict[str, Any]) -> None:
    extra = obj.keys() - _FIELDS[kind]
    if not extra:
        return
    if len(extra) > MAX_EXTRA_FIELDS:
        raise ProtocolError("bad-message", f"too many unknown fields in {kind!r}")
    for name in extra:
        value = obj[name]
        if isinstance(value, str):
            if len(value) > MAX_EXTRA_FIELD_CHARS:
                raise ProtocolError("bad-message", f"unknown field {_clip(name)!r} is too long")
        elif value is not None and not isinstance(value, bool | int | float):
            raise ProtocolError("bad-message", f"unknown field {_clip(name)!r} must be a scalar")


def _required(obj: dict[str, Any], kind: str, name: str) -> Any:
    try:
        return obj[name]
    except KeyError:
        raise ProtocolError("bad-message", f"{kind!r} needs {name!r}") from None


def _is_int(value: object) -> bool:
    # bool is an int subclass in Python but not a number on the wire.
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_join(obj: dict[str, Any]) -> Join:
    token = _required(obj, "join", "token")
    if not isinstance(token, str) or not token:
        raise ProtocolError("bad-message", "'token' must be a non-empty string")
    if len(token) > MAX_TOKEN_CHARS:
        raise ProtocolError("bad-message", f"'token' is at most {MAX_TOKEN_CHARS} characters")
    return Join(token=token)


def _parse_answer(obj: dict[str, Any]) -> Answer:
    sdp = _required(obj, "answer", "sdp")
    offer_id = _required(obj, "answer", "offerId")
    if not isinstance(sdp, str):
        raise ProtocolError("bad-message", "'sdp' must be a string")
    if not _is_int(offer_id) or not 0 <= offer_id <= MAX_OFFER_ID:
        raise ProtocolError("bad-message", "'offerId' must be a non-negative integer")
    _check_sdp(sdp)
    return Answer(sdp=sdp, offer_id=offer_id)


def _check_sdp(sdp: str) -> None:
    # Printable ASCII only, so characters and bytes agree and the size test is exact.
    if len(sdp) > MAX_SDP_BYTES:
        raise ProtocolError("too-large", f"an SDP is at most {MAX_SDP_BYTES} bytes")
    if not (sdp.startswith("v=0\r\n") or sdp.startswith("v=0\n")):
        raise ProtocolError("bad-sdp", "an SDP starts with the line 'v=0'")
    if _SDP_TEXT.fullmatch(sdp) is None:
        raise ProtocolError("bad-sdp", "an SDP holds only printable ASCII and line breaks")


def _parse_candidate(obj: dict[str, Any]) -> Candidate:
    candidate = _required(obj, "candidate", "candidate")
    # Browsers' RTCIceCandidate.toJSON() always sends both; a missing one is read as null.
    sdp_mid = obj.get("sdpMid")
    index = obj.get("sdpMLineIndex")
    if not isinstance(candidate, str) or len(candidate) > MAX_CANDIDATE_CHARS:
        raise ProtocolError(
            "bad-message",
            f"'candidate' must be a string of at most {MAX_CANDIDATE_CHARS} characters",
        )
    if _CANDIDATE_TEXT.fullmatch(candidate) is None:
        raise ProtocolError("bad-message", "'candidate' holds only printable ASCII")
    if sdp_mid is not None and (not isinstance(sdp_mid, str) or len(sdp_mid) > MAX_MID_CHARS):
        raise ProtocolError("bad-message", "'sdpMid' must be a short string or null")
    if index is not None and (not _is_int(index) or not 0 <= index <= MAX_MLINE_INDEX):
        raise ProtocolError("bad-message", "'sdpMLineIndex' must be a small integer or null")
    if candidate and sdp_mid is None and index is None:
        # As RTCIceCandidate's constructor: without either, the candidate belongs to no m-line.
        raise ProtocolError("bad-message", "a candidate needs 'sdpMid' or 'sdpMLineIndex'")
    return Candidate(candidate=candidate, sdp_mid=sdp_mid, sdp_mline_index=index)


def _parse_mute(obj: dict[str, Any]) -> Mute:
    kind = _required(obj, "mute", "kind")
    muted = _required(obj, "mute", "muted")
    if not isinstance(kind, str) or kind not in MUTE_KINDS:
        raise ProtocolError("bad-message", "'kind' must be 'audio' or 'video'")
    if not isinstance(muted, bool):
        raise ProtocolError("bad-message", "'muted' must be true or false")
    return Mute(kind=kind, muted=muted)


def _parse_leave(obj: dict[str, Any]) -> Leave:
    return Leave()


def _parse_pause(obj: dict[str, Any]) -> Pause:
    reason = _required(obj, "pause", "reason")
    if not isinstance(reason, str) or reason not in PAUSE_REASONS:
        raise ProtocolError(
            "bad-message",
            "a recording may pause only for: " + ", ".join(sorted(PAUSE_REASONS)),
        )
    return Pause(reason=reason)


def _parse_resume(obj: dict[str, Any]) -> Resume:
    return Resume()


def _parse_control(obj: dict[str, Any]) -> Control:
    kind = obj["type"]
    target = _required(obj, kind, "participantId")
    if (
        not isinstance(target, str)
        or not 0 < len(target) <= MAX_PARTICIPANT_ID_CHARS
        or not target.isalnum()
    ):
        raise ProtocolError("bad-message", "'participantId' must be a participant's id")
    return Control(type=kind, participant_id=target)


def _parse_note(obj: dict[str, Any]) -> Note:
    text = _required(obj, "note", "text")
    if not isinstance(text, str) or not 0 < len(text.strip()) <= MAX_NOTE_CHARS:
        raise ProtocolError("bad-message", f"'text' must be 1 to {MAX_NOTE_CHARS} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise ProtocolError("bad-message", "'text' may not hold control characters")
    return Note(text=text)


def _parse_end(obj: dict[str, Any]) -> End:
    return End()


def _participant_id(obj: dict[str, Any], kind: str, nullable: bool = False) -> str | None:
    target = obj.get("participantId") if nullable else _required(obj, kind, "participantId")
    if target is None and nullable:
        return None
    if (
        not isinstance(target, str)
        or not 0 < len(target) <= MAX_PARTICIPANT_ID_CHARS
        or not target.isalnum()
    ):
        raise ProtocolError("bad-message", "'participantId' must be a participant's id")
    return target


def _parse_silence(obj: dict[str, Any]) -> Silence:
    target = _participant_id(obj, "mute-participant")
    muted = _required(obj, "mute-participant", "muted")
    if not isinstance(muted, bool):
        raise ProtocolError("bad-message", "'muted' must be true or false")
    assert target is not None
    return Silence(participant_id=target, muted=muted)


def _parse_share(obj: dict[str, Any]) -> Share:
    on = _required(obj, "share", "on")
    if not isinstance(on, bool):
        raise ProtocolError("bad-message", "'on' must be true or false")
    return Share(on=on)


def _parse_floor(obj: dict[str, Any]) -> Floor:
    kind = obj["type"]
    if kind == "request-floor":
        return Floor(type=kind)
    return Floor(type=kind, participant_id=_participant_id(obj, kind, nullable=True))


def _parse_spotlight(obj: dict[str, Any]) -> Spotlight:
    # The field is required (null clears): a client that forgot it should hear so, not clear.
    _required(obj, "spotlight", "participantId")
    return Spotlight(participant_id=_participant_id(obj, "spotlight", nullable=True))


_PARSERS: Final[Mapping[str, Callable[[dict[str, Any]], ClientMessage]]] = {
    "join": _parse_join,
    "answer": _parse_answer,
    "candidate": _parse_candidate,
    "mute": _parse_mute,
    "leave": _parse_leave,
    "pause": _parse_pause,
    "resume": _parse_resume,
    "admit": _parse_control,
    "refuse": _parse_control,
    "eject": _parse_control,
    "note": _parse_note,
    "end": _parse_end,
    "mute-participant": _parse_silence,
    "request-floor": _parse_floor,
    "give-floor": _parse_floor,
    "spotlight": _parse_spotlight,
    "consult": lambda obj: Consult(),
    "share": lambda obj: _parse_share(obj),
}


# --- server -> client ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IceServer:
    """One entry of ``welcome.iceServers`` (an ``RTCIceServer`` for the browser)."""

    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = field(default=None, repr=False)

    def to_wire(self) -> dict[str, object]:
        """The JSON object, leaving out absent credentials."""
        wire: dict[str, object] = {"urls": list(self.urls)}
        if self.username is not None:
            wire["username"] = self.username
        if self.credential is not None:
            wire["credential"] = self.credential
        return wire


def _dump(message: Mapping[str, object]) -> str:
    # Names are Chinese or Tibetan: send them as text rather than \u escapes. NaN is not JSON.
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_welcome(
    participant: Participant, hearing: Hearing, ice_servers: Sequence[IceServer] = ()
) -> str:
    """``welcome`` for ``participant``, who has just joined ``hearing``.

    ``participants`` lists the others who are visible (observers are not shown), in joining order.
    """
    others = [p.to_wire() for p in hearing.visible_participants() if p.id != participant.id]
    if not participant.admitted:
        others = []  # the lobby does not see into the courtroom
    message: dict[str, object] = {
        "type": "welcome",
        "participant": {
            "id": participant.id,
            "name": participant.name,
            "role": participant.role.value,
            **(participant.court.to_wire() if participant.court is not None else {}),
        },
        "hearing": hearing.to_wire(),
        "participants": others,
        "iceServers": [server.to_wire() for server in ice_servers],
        "admitted": participant.admitted,
    }
    role_grants = grants(participant.role)
    if role_grants.control or role_grants.notes:
        message["waiting"] = [p.to_wire() for p in hearing.waiting()]
    return _dump(message)


def encode_offer(
    offer_id: int,
    sdp: str,
    publish: Mapping[str, str],
    tracks: Mapping[str, tuple[str, str]],
) -> str:
    """``offer`` number ``offer_id``.

    ``publish`` maps a kind the client sends (``audio``, ``video``) to the mid of its m-line;
    ``tracks`` maps the mid of each other active m-line to ``(participant_id, kind)`` of the remote
    track it carries. Mids absent from both are inactive.
    """
    if not _is_int(offer_id) or offer_id < 0:
        raise ValueError(f"offer id must be a non-negative integer, not {offer_id!r}")
    for kind in [*publish, *(kind for _, kind in tracks.values())]:
        if kind not in MEDIA_KINDS:
            raise ValueError(f"unknown media kind {kind!r}")
    return _dump(
        {
            "type": "offer",
            "offerId": offer_id,
            "sdp": sdp,
            "publish": dict(publish),
            "tracks": {
                mid: {"participantId": participant_id, "kind": kind}
                for mid, (participant_id, kind) in tracks.items()
            },
        }
    )


def encode_participant_joined(participant: Participant) -> str:
    """``participant-joined`` with the participant's public view."""
    return _dump({"type": "participant-joined", "participant": participant.to_wire()})


def encode_participant_updated(participant: Participant) -> str:
    """``participant-updated`` (a mute change) with the participant's public view."""
    return _dump({"type": "participant-updated", "participant": participant.to_wire()})


def encode_participant_left(participant_id: str, reason: str) -> str:
    """``participant-left``; ``reason`` is a :class:`LeaveReason` value."""
    return _dump(
        {
            "type": "participant-left",
            "participantId": participant_id,
            "reason": LeaveReason(reason).value,
        }
    )


def encode_track_published(participant_id: str, kind: str) -> str:
    """``track-published``: ``participant_id`` now sends a track of ``kind``."""
    if kind not in MEDIA_KINDS:
        raise ValueError(f"unknown media kind {kind!r}")
    return _dump({"type": "track-published", "participantId": participant_id, "kind": kind})


def encode_track_unpublished(participant_id: str, kind: str) -> str:
    """``track-unpublished``: ``participant_id`` stopped sending ``kind`` (e.g. a screen share)."""
    if kind not in MEDIA_KINDS:
        raise ValueError(f"unknown media kind {kind!r}")
    return _dump({"type": "track-unpublished", "participantId": participant_id, "kind": kind})


def encode_error(error: ProtocolError) -> str:
    """``error`` from a refusal."""
    return _dump(
        {"type": "error", "code": error.code, "message": error.message, "fatal": error.fatal}
    )


def encode_participant_waiting(participant: Participant) -> str:
    """``participant-waiting`` (to the judge and clerk): someone is in the lobby."""
    return _dump({"type": "participant-waiting", "participant": participant.to_wire()})


def encode_admitted(participants: Sequence[Participant] = ()) -> str:
    """``admitted``: the judge let this participant in; its media starts with the next offer.

    ``participants`` are those already in the hearing (the lobby's welcome listed no one).
    """
    return _dump({"type": "admitted", "participants": [p.to_wire() for p in participants]})


def encode_note(at: float, author_id: str, author_name: str, text: str) -> str:
    """``note``: a line of the hearing log, to the judge and clerk."""
    return _dump(
        {"type": "note", "at": at, "authorId": author_id, "authorName": author_name, "text": text}
    )


def encode_observers(count: int) -> str:
    """``observers``: how many watch unseen (remote observation), to judge and clerk."""
    return _dump({"type": "observers", "count": count})


def encode_consultation(url: str) -> str:
    """``consultation``: the link to the private room (defence counsel and defendant only)."""
    return _dump({"type": "consultation", "url": url})


def encode_floor(holder: str | None, requests: Sequence[str], silenced: Sequence[str]) -> str:
    """``floor``: who holds the floor (null: everyone may speak), who asks, whose audio is off."""
    return _dump(
        {
            "type": "floor",
            "holder": holder,
            "requests": list(requests),
            "silenced": list(silenced),
        }
    )


def encode_spotlight(participant_id: str | None) -> str:
    """``spotlight``: whom everyone shows large now (null: no one, the usual layout)."""
    return _dump({"type": "spotlight", "participantId": participant_id})


def encode_video_gate(state: str) -> str:
    """``video-paused`` (the link cannot carry video: audio only) or ``video-resumed``."""
    if state not in ("on", "off"):
        raise ValueError(state)
    kind = "video-paused" if state == "off" else "video-resumed"
    return _dump({"type": kind, "reason": "poor-connection" if state == "off" else None})


def encode_quality(link: Mapping[str, object]) -> str:
    """``quality`` (to judge and clerk): one participant's sampled link (level good/poor/bad)."""
    return _dump({"type": "quality", **link})


def encode_hearing_state(hearing: Hearing, pause_reason: str | None = None) -> str:
    """``hearing-state``: the hearing's state changed (e.g. paused for a recess, resumed)."""
    return _dump(
        {"type": "hearing-state", "state": hearing.state.value, "pauseReason": pause_reason}
    )


def encode_bye(reason: str) -> str:
    """``bye`` before the server closes the socket; ``reason`` is a :class:`ByeReason` value."""
    return _dump({"type": "bye", "reason": ByeReason(reason).value})
