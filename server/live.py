"""Hearings in progress: the sans-IO `signaling.Hearing` joined to its media room and its sockets.

`LiveHearing` is the only place where protocol events become messages on sockets and changes of
the media layout. The WebSocket handler (ws.py) feeds it; it never blocks.

What a restart must not lose goes to a `HearingStore` (the database, server/state.py) before the
events that changed it are sent: the hearing's state and pause, and for each invitation an event
names, what `Hearing.admission` says of it now. Writes of one hearing take turns and each reads
the hearing when its turn comes, so the last write holds the latest truth whatever the order in
which concurrent handlers reached the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiortc import RTCIceServer
from aiortc.contrib.media import MediaRelay

from server.network import SAMPLE_INTERVAL, LinkSample, NetworkMonitor
from server.recording import HearingRecorder
from server.sfu.forwarder import PublishedStream
from server.sfu.peer import Offer, Peer
from server.sfu.redundancy import Mode
from signaling import messages
from signaling.errors import ProtocolError
from signaling.hearing import (
    Admission,
    Event,
    FloorChanged,
    Hearing,
    HearingEnded,
    HearingState,
    NoteTaken,
    Participant,
    ParticipantAdmitted,
    ParticipantEjected,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    ParticipantWaiting,
    RecordingPaused,
    RecordingResumed,
    SpotlightChanged,
    StateChanged,
    TrackPublished,
    TrackUnpublished,
)
from signaling.roles import grants
from signaling.tokens import turn_rest_credentials

logger = logging.getLogger(__name__)


class HearingStore(Protocol):
    """Where a hearing keeps what a restart must not lose (the database: server/state.py)."""

    async def save_admission(self, hearing_id: str, key: str, admission: Admission | None) -> None:
        """Invitation ``key`` holds this place now (None: none)."""

    async def save_state(
        self, hearing_id: str, state: HearingState, pause: RecordingPaused | None
    ) -> None:
        """The hearing is ``state`` now (``open`` or ``paused``, with the pause in force)."""


@dataclass
class Connection:
    """One joined participant's socket and peer connection."""

    participant_id: str
    send: Callable[[str], Awaitable[None]]
    close: Callable[[str], Awaitable[None]]
    peer: Peer | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class LiveHearing:
    """A hearing with people in it."""

    def __init__(
        self,
        hearing: Hearing,
        ice_servers: list[RTCIceServer],
        wire_ice_servers: list[messages.IceServer],
        keyframe_interval: float,
        relay: MediaRelay | None = None,
        recorder: HearingRecorder | None = None,
        sample_interval: float = SAMPLE_INTERVAL,
        reconnect_grace: float = 30.0,
    ) -> None:
        self.hearing = hearing
        self._relay = relay
        self.recorder = recorder
        self.connections: dict[str, Connection] = {}
        self.streams: dict[tuple[str, str], PublishedStream] = {}
        self._ice_servers = ice_servers
        self._wire_ice_servers = wire_ice_servers
        self._keyframe_interval = keyframe_interval
        self._background: set[asyncio.Task[None]] = set()
        self._hidden: set[str] = set()  # observers: never announced to the others
        self.reconnect_grace = reconnect_grace
        self._lobby: set[str] = set()  # waiting: announced to the judge and clerk only
        #: Called with an ejected invitation's key; the server makes the revocation durable.
        self.on_revoke: Callable[[str], Awaitable[None]] | None = None
        #: Keeps the state, the pause and the admissions across a restart (None: not kept).
        self.store: HearingStore | None = None
        self._store_turn = asyncio.Lock()
        self._keys: dict[str, str] = {}  # participant id -> invitation key, while present
        #: (shared secret, URLs, lifetime) of the TURN relay, when one is configured
        self.turn: tuple[bytes, tuple[str, ...], float] | None = None
        #: RED toward lossy subscribers (server/sfu/redundancy.py): "auto", "always" or "off"
        self.audio_redundancy: Mode = "auto"
        self.network = NetworkMonitor(self._peers, self._on_link_sample, sample_interval)
        self.network.start()

    @property
    def id(self) -> str:
        return self.hearing.id

    # -- joining and leaving ------------------------------------------------------------------

    async def join(self, connection: Connection, events: list[Event]) -> None:
        """Admit a connection whose `Hearing.join` produced `events`; start its media unless it
        waits in the lobby."""
        pid = connection.participant_id
        participant = self.hearing.participants[pid]
        for event in events:
            if isinstance(event, ParticipantLeft) and event.reason == "replaced":
                await self._drop(event.participant_id, "replaced")
        self.connections[pid] = connection
        if not grants(participant.role).visible:
            self._hidden.add(pid)
        if not participant.admitted:
            self._lobby.add(pid)
        await connection.send(
            messages.encode_welcome(participant, self.hearing, self._ice_servers_for(pid))
        )
        if participant.admitted:
            await self._send_room_state(connection)
        await self.broadcast(events, exclude=pid)
        if participant.admitted:
            self._start_media(connection)
        if pid in self._hidden or self._is_staff(pid):
            await self._tell_observer_count()

    async def _send_room_state(self, connection: Connection) -> None:
        """What a late joiner (or a reconnecting participant) must know besides who is there: the
        floor and the spotlight, when either is set (the others got them as they changed)."""
        floor = self.hearing.floor_state()
        if floor.holder is not None or floor.requests or floor.silenced:
            await connection.send(
                messages.encode_floor(floor.holder, floor.requests, floor.silenced)
            )
        if self.hearing.spotlight is not None:
            await connection.send(messages.encode_spotlight(self.hearing.spotlight))
        pause = self.hearing.current_pause
        if pause is not None:  # `welcome` says paused; this says why
            await connection.send(messages.encode_hearing_state(self.hearing, pause.reason))

    def _ice_servers_for(self, participant_id: str) -> list[messages.IceServer]:
        servers = list(self._wire_ice_servers)
        if self.turn is not None:
            secret, urls, ttl = self.turn
            username, credential = turn_rest_credentials(
                secret, urls, participant_id, time.time(), ttl
            )
            servers.append(messages.IceServer(urls, username, credential))
        return servers

    def _start_media(self, connection: Connection) -> None:
        pid = connection.participant_id
        participant = self.hearing.participants[pid]
        role_grants = grants(participant.role)
        if not (role_grants.publish or role_grants.subscribe) or connection.peer is not None:
            return  # archivists and admins have no media

        async def send_offer(offer: Offer) -> None:
            await connection.send(
                messages.encode_offer(offer.offer_id, offer.sdp, offer.publish, offer.tracks)
            )

        def on_failed(reason: str) -> None:
            logger.warning("hearing %s: %s media failed (%s)", self.id, pid, reason)
            self._spawn(connection.close("media-failed"))

        peer = Peer(
            pid,
            publish_kinds=[k for k in ("audio", "video", "screen") if k in role_grants.publish],
            ice_servers=self._ice_servers,
            send_offer=send_offer,
            on_published=self._on_published,
            on_unpublished=self._on_unpublished,
            on_failed=on_failed,
            keyframe_interval=self._keyframe_interval,
            audio_redundancy=self.audio_redundancy,
            relay=self._relay,
            on_state=lambda state: self._on_connection_state(pid, state),
            on_video_gate=lambda state: self._on_video_gate(connection, state),
        )
        connection.peer = peer
        peer.start()
        if role_grants.subscribe:
            for (publisher, _kind), stream in self.streams.items():
                if publisher != pid:
                    peer.subscribe(stream)

    # -- network evidence ---------------------------------------------------------------------

    def _on_connection_state(self, participant_id: str, state: str) -> None:
        if self.recorder is not None:
            self.recorder.event("connection", {"participant": participant_id, "state": state})

    async def _on_link_sample(self, sample: LinkSample) -> None:
        link = sample.to_wire()
        if self.recorder is not None:
            self.recorder.event("network", link)
        text = messages.encode_quality(link)
        for pid, connection in list(self.connections.items()):
            if self._is_staff(pid) and pid not in self._lobby:
                try:
                    await connection.send(text)
                except ConnectionError:
                    pass

    def _on_video_gate(self, connection: Connection, state: str) -> None:
        """Audio first: tell the participant its video was paused (or is back), and the record."""
        if self.recorder is not None:
            self.recorder.event(
                "video-gate", {"participant": connection.participant_id, "video": state}
            )
        self._spawn(connection.send(messages.encode_video_gate(state)))

    async def _tell_observer_count(self) -> None:
        """Observers are not tiles, but the court knows how many watch."""
        count = sum(
            1
            for pid, p in self.hearing.participants.items()
            if pid in self._hidden and p.admitted and p.role == "observer"
        )
        text = messages.encode_observers(count)
        for pid, connection in list(self.connections.items()):
            if self._is_staff(pid) and pid not in self._lobby:
                try:
                    await connection.send(text)
                except ConnectionError:
                    pass

    def _peers(self) -> list[Peer]:
        return [c.peer for c in self.connections.values() if c.peer is not None]

    # -- the judge's controls -----------------------------------------------------------------

    async def control(self, by: str, action: str, target: str) -> None:
        """admit / refuse (the lobby) or eject, by a participant with the control grant."""
        now = time.time()
        if action == "admit":
            events = self.hearing.admit(by, target, now)
            connection = self.connections.get(target)
            self._lobby.discard(target)
            if connection is not None and events:
                others = [p for p in self.hearing.visible_participants() if p.id != target]
                await connection.send(messages.encode_admitted(others))
                await self._send_room_state(connection)
                await self.broadcast(events, exclude=target)
                self._start_media(connection)
            return
        if action == "refuse":
            events = self.hearing.refuse(by, target, now)
            await self._send_away(target, "refused")
        elif action == "eject":
            events = self.hearing.eject(by, target, now)
            for event in events:
                if isinstance(event, ParticipantEjected) and self.on_revoke is not None:
                    await self.on_revoke(event.key)
            await self._send_away(target, "ejected")
        else:
            raise ValueError(action)
        await self.broadcast(events)
        self._lobby.discard(target)
        self._hidden.discard(target)

    async def _send_away(self, participant_id: str, reason: str) -> None:
        connection = self.connections.get(participant_id)
        if connection is None:
            return
        try:
            await connection.send(messages.encode_bye(reason))
        except ConnectionError:
            pass
        await self._drop(participant_id, reason)
        await connection.close(reason)

    async def floor(self, by: str, message: messages.Silence | messages.Floor) -> None:
        """The judge's mute of a participant, or a meeting's floor: whose audio is forwarded."""
        now = time.time()
        if isinstance(message, messages.Silence):
            events = self.hearing.silence(by, message.participant_id, message.muted, now)
            key = self._keys.get(message.participant_id)
            if key is not None:  # the judge's mute follows the invitation, across a restart too
                await self._save_admission(key)
        elif message.type == "request-floor":
            events = self.hearing.request_floor(by, now)
        else:
            events = self.hearing.give_floor(by, message.participant_id, now)
        self._apply_floor()
        await self.broadcast(events)

    async def spotlight(self, by: str, participant_id: str | None) -> None:
        """The judge shows one participant large to everyone (None: clears it); on the timeline."""
        await self.broadcast(self.hearing.set_spotlight(by, participant_id, time.time()))

    def _apply_floor(self) -> None:
        for (pid, kind), stream in self.streams.items():
            if kind == "audio":
                stream.silenced = not self.hearing.audible(pid)

    async def note(self, by: str, text: str) -> None:
        """A line of the hearing log: on the recording's timeline, shown to judge and clerk."""
        await self.broadcast(self.hearing.note(by, text, time.time()))

    def disconnected(self, participant_id: str) -> None:
        """The socket dropped without a `leave`: keep the participant's place for a while.

        A rejoin with the same invitation within `reconnect_grace` replaces this connection and
        keeps its place (no lobby again); otherwise it leaves as `disconnected`. Either way the
        gap is on the recording's timeline, which is how a court tells a network failure from a
        refusal to appear.
        """
        connection = self.connections.get(participant_id)
        if connection is None:
            return
        if self.recorder is not None:
            self.recorder.event("disconnected", {"participant": participant_id})
        if self.reconnect_grace <= 0:
            self._spawn(self.leave(participant_id, "disconnected"))
            return

        async def later() -> None:
            await asyncio.sleep(self.reconnect_grace)
            if self.connections.get(participant_id) is connection:
                await self.leave(participant_id, "disconnected")

        self._spawn(later())

    async def leave(self, participant_id: str, reason: str) -> None:
        """The participant's socket is gone (or it left): tell the others, free its media."""
        connection = self.connections.get(participant_id)
        if connection is None:
            return
        events = self.hearing.leave(participant_id, reason, time.time())
        await self._drop(participant_id, reason)
        await self.broadcast(events)
        was_hidden = participant_id in self._hidden
        self._hidden.discard(participant_id)
        self._lobby.discard(participant_id)
        if was_hidden:
            await self._tell_observer_count()

    async def _drop(self, participant_id: str, reason: str) -> None:
        connection = self.connections.pop(participant_id, None)
        for key in [k for k in self.streams if k[0] == participant_id]:
            stream = self.streams.pop(key)
            if self.recorder is not None:
                self.recorder.remove_stream(stream)
            for other in self.connections.values():
                if other.peer is not None:
                    other.peer.unsubscribe(stream)
        if connection is None:
            return
        if reason == "replaced":
            try:
                await connection.send(messages.encode_bye("replaced"))
            except ConnectionError:
                pass
            await connection.close("replaced")
        if connection.peer is not None:
            await connection.peer.close()
            connection.peer = None

    # -- media --------------------------------------------------------------------------------

    def _on_published(self, stream: PublishedStream) -> None:
        pid = stream.participant_id
        if pid not in self.connections:
            return
        try:
            events = self.hearing.publish(pid, stream.kind, time.time())
        except Exception:
            logger.exception("hearing %s: refused %s track of %s", self.id, stream.kind, pid)
            return
        self.streams[(pid, stream.kind)] = stream
        if stream.kind == "audio":
            stream.silenced = not self.hearing.audible(pid)
        if self.recorder is not None:
            self.recorder.add_stream(stream, self.hearing.participants[pid].name)
        for other_id, other in self.connections.items():
            participant = self.hearing.participants.get(other_id)
            if other_id == pid or other.peer is None or participant is None:
                continue
            if grants(participant.role).subscribe:
                other.peer.subscribe(stream)
        self._spawn(self.broadcast(events))

    def _on_unpublished(self, stream: PublishedStream) -> None:
        """A track stopped (a screen share ended): subscribers' slots go idle, its track closes."""
        pid = stream.participant_id
        if self.streams.get((pid, stream.kind)) is not stream:
            return
        del self.streams[(pid, stream.kind)]
        if self.recorder is not None:
            self.recorder.remove_stream(stream)
        for other in self.connections.values():
            if other.peer is not None:
                other.peer.unsubscribe(stream)
        self._spawn(self.broadcast(self.hearing.unpublish(pid, stream.kind, time.time())))

    def request_share(self, participant_id: str, on: bool) -> None:
        """The participant starts or stops sharing its screen: offer again so it can answer."""
        participant = self.hearing.participants.get(participant_id)
        connection = self.connections.get(participant_id)
        if participant is None or connection is None or connection.peer is None:
            raise ProtocolError("not-joined", "join the hearing first")
        if "screen" not in grants(participant.role).publish:
            raise ProtocolError("forbidden", f"a {participant.role} does not present evidence")
        connection.peer.request_negotiation()

    # -- messages -----------------------------------------------------------------------------

    async def broadcast(self, events: list[Event], exclude: str | None = None) -> None:
        self._record(events)
        await self._persist(events)
        for event in events:
            text = _encode_event(event, self.hearing)
            if text is None:
                continue
            pid_of_event = getattr(event, "participant_id", None) or getattr(
                getattr(event, "participant", None), "id", None
            )
            if pid_of_event in self._hidden:
                continue
            staff_only = pid_of_event in self._lobby or isinstance(
                event, ParticipantWaiting | NoteTaken
            )
            for pid, connection in list(self.connections.items()):
                if pid == exclude or pid in self._lobby:
                    continue
                if staff_only and not self._is_staff(pid):
                    continue
                try:
                    await connection.send(text)
                except ConnectionError:
                    pass

    async def pause(self, participant_id: str, reason: str) -> None:
        """The judge pauses the recording for a lawful reason (a gap in the manifest)."""
        events = self.hearing.pause(participant_id, reason, time.time())
        if self.recorder is not None:
            paused = next(e for e in events if isinstance(e, RecordingPaused))
            self.recorder.pause(reason, f"{paused.by_name} ({paused.by})")
        await self.broadcast(events)

    async def resume(self, participant_id: str) -> None:
        events = self.hearing.resume(participant_id, time.time())
        if self.recorder is not None:
            resumed = next(e for e in events if isinstance(e, RecordingResumed))
            self.recorder.resume(f"{resumed.by_name} ({resumed.by})")
        await self.broadcast(events)

    async def end(self, reason: str = "ended") -> None:
        """End the hearing: everyone gets `bye` and is disconnected."""
        events = self.hearing.end(reason, time.time())
        for event in events:
            if isinstance(event, HearingEnded):
                break
        for pid in list(self.connections):
            connection = self.connections.get(pid)
            if connection is None:
                continue
            try:
                await connection.send(messages.encode_bye("ended"))
            except ConnectionError:
                pass
            await self._drop(pid, "ended")
            await connection.close("ended")
        self._record(events)
        await self.network.stop()
        if self.recorder is not None:
            await self.recorder.stop("complete")

    async def _persist(self, events: list[Event]) -> None:
        """Store what these events changed of the state, the pause and the admissions."""
        keys: list[str] = []
        state_changed = False
        for event in events:
            if isinstance(event, ParticipantJoined | ParticipantWaiting):
                self._keys[event.participant.id] = event.participant.key
                keys.append(event.participant.key)
            elif isinstance(event, ParticipantLeft):
                key = self._keys.pop(event.participant_id, None)
                if key is not None:
                    keys.append(key)
            elif isinstance(event, StateChanged | RecordingPaused | RecordingResumed):
                state_changed = True
        if state_changed:
            await self._save_state()
        for key in dict.fromkeys(keys):
            await self._save_admission(key)

    async def _save_admission(self, key: str) -> None:
        if self.store is None:
            return
        async with self._store_turn:
            admission = self.hearing.admission(key)  # read on our turn: the latest truth
            try:
                await self.store.save_admission(self.id, key, admission)
            except Exception:
                logger.exception("hearing %s: admission of %s not stored", self.id, key)

    async def _save_state(self) -> None:
        if self.store is None:
            return
        async with self._store_turn:
            state = self.hearing.state
            if state not in (HearingState.open, HearingState.paused):
                return  # closed: the server marks it so itself, before the room empties
            try:
                await self.store.save_state(self.id, state, self.hearing.current_pause)
            except Exception:
                logger.exception("hearing %s: state %s not stored", self.id, state)

    def _is_staff(self, participant_id: str) -> bool:
        participant = self.hearing.participants.get(participant_id)
        if participant is None:
            return False
        role_grants = grants(participant.role)
        return role_grants.control or role_grants.notes

    def _record(self, events: list[Event]) -> None:
        """Put the hearing's events on the recording's timeline."""
        if self.recorder is None:
            return
        for event in events:
            if isinstance(event, ParticipantJoined):
                p = event.participant
                self.recorder.event(
                    "join", {"participant": p.id, "name": p.name, "role": p.role, **_court_of(p)}
                )
            elif isinstance(event, ParticipantLeft):
                self.recorder.event(
                    "leave", {"participant": event.participant_id, "reason": event.reason}
                )
            elif isinstance(event, ParticipantUpdated):
                p = event.participant
                self.recorder.event("mute", {"participant": p.id, "muted": dict(p.muted)})
            elif isinstance(event, TrackPublished):
                self.recorder.event(
                    "track", {"participant": event.participant_id, "kind": event.kind}
                )
            elif isinstance(event, StateChanged):
                self.recorder.event("state", {"old": event.old.value, "new": event.new.value})
            elif isinstance(event, ParticipantWaiting):
                p = event.participant
                self.recorder.event(
                    "waiting",
                    {"participant": p.id, "name": p.name, "role": p.role, **_court_of(p)},
                )
            elif isinstance(event, ParticipantAdmitted):
                admit: dict[str, object] = {"participant": event.participant_id, "by": event.by}
                if event.reason is not None:
                    admit["reason"] = event.reason  # server-restart: re-admitted, nobody asked
                self.recorder.event("admit", admit)
            elif isinstance(event, ParticipantEjected):
                self.recorder.event("eject", {"participant": event.participant_id, "by": event.by})
            elif isinstance(event, FloorChanged):
                self.recorder.event(
                    "floor",
                    {
                        "holder": event.holder,
                        "requests": list(event.requests),
                        "silenced": list(event.silenced),
                    },
                )
            elif isinstance(event, SpotlightChanged):
                spotlight: dict[str, object] = {
                    "participant": event.participant_id,
                    "name": event.name,
                    "by": event.by,
                    "byName": event.by_name,
                }
                if event.reason is not None:
                    spotlight["reason"] = event.reason
                self.recorder.event("spotlight", spotlight)
            elif isinstance(event, NoteTaken):
                self.recorder.event(
                    "note",
                    {"author": event.author_id, "name": event.author_name, "text": event.text},
                    at=event.at,
                )

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except ConnectionError:
                pass  # the participant's socket closed meanwhile: nothing to tell it any more
            except Exception:
                logger.exception("hearing %s: background task failed", self.id)

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Server shutdown: the hearing is not over, its recording is interrupted (not complete)."""
        for task in list(self._background):
            task.cancel()
        await self.network.stop()
        for pid in list(self.connections):
            await self._drop(pid, "shutdown")
        if self.recorder is not None:
            self.recorder.event("server-shutdown", {})
            await self.recorder.stop("interrupted")


def _court_of(participant: Participant) -> dict[str, str]:
    """Where the participant was, for the timeline: the code and the name it had then."""
    if participant.court is None:
        return {}
    return {"court": participant.court.code, "courtName": participant.court.name}


def _encode_event(event: Event, hearing: Hearing) -> str | None:
    if isinstance(event, ParticipantJoined):
        return messages.encode_participant_joined(event.participant)
    if isinstance(event, ParticipantLeft):
        return messages.encode_participant_left(event.participant_id, event.reason)
    if isinstance(event, ParticipantUpdated):
        return messages.encode_participant_updated(event.participant)
    if isinstance(event, TrackPublished):
        return messages.encode_track_published(event.participant_id, event.kind)
    if isinstance(event, TrackUnpublished):
        return messages.encode_track_unpublished(event.participant_id, event.kind)
    if isinstance(event, ParticipantWaiting):
        return messages.encode_participant_waiting(event.participant)
    if isinstance(event, FloorChanged):
        return messages.encode_floor(event.holder, event.requests, event.silenced)
    if isinstance(event, SpotlightChanged):
        return messages.encode_spotlight(event.participant_id)
    if isinstance(event, NoteTaken):
        return messages.encode_note(event.at, event.author_id, event.author_name, event.text)
    if isinstance(event, RecordingPaused):
        return messages.encode_hearing_state(hearing, event.reason)
    if isinstance(event, RecordingResumed):
        return messages.encode_hearing_state(hearing)
    return None
