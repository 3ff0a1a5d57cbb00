"""The court as the terminal receives it: the other participants, their tracks and their pictures.

How this works: every remote track aiortc hands the client is read by one task here, until it ends
(an unread track is still decoded into an unbounded queue). A reused m-line keeps its track object
and gets a new owner; the owner is looked up at each frame, so a track is drained once however often
it changes hands. Video frames are not converted here: the newest ``av.VideoFrame`` per participant
is kept, and the screen thread turns it into pixels (no CPU work on the event loop). Audio frames go
to the mixer of the speaker, when there is one.

The court also decides who is shown full-screen (:meth:`CourtFeed.floor`: in a hearing the judge's
spotlight, in a prefecture meeting the floor; see PROTOCOL.md "The spotlight") and whether media has
stalled (:meth:`CourtFeed.stalled`), which is one of the reasons the terminal reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from terminal.audio import AudioMixer

logger = logging.getLogger(__name__)

__all__ = ["CourtFeed", "RemoteParticipant"]

#: Roles shown full-screen first, in order: the court, then whoever else speaks.
FLOOR_ORDER = ("judge", "clerk", "prosecutor", "defence", "party", "witness", "interpreter")


@dataclass
class RemoteParticipant:
    """Another participant of the hearing, as far as the terminal knows."""

    id: str
    name: str = ""
    role: str = ""
    muted: dict[str, bool] = field(default_factory=dict)
    video_frames: int = 0
    audio_frames: int = 0
    #: monotonic time of the last frame of any kind
    last_frame_at: float | None = None
    #: the newest decoded picture (converted to pixels by the screen thread)
    picture: VideoFrame | None = None

    def to_wire(self) -> dict[str, Any]:
        """The status-file view."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "muted": dict(self.muted),
            "videoFrames": self.video_frames,
            "audioFrames": self.audio_frames,
        }


class CourtFeed:
    """The remote participants and the tasks that read their tracks, for one connection."""

    def __init__(self, mixer: AudioMixer | None = None) -> None:
        self.participants: dict[str, RemoteParticipant] = {}
        self._mixer = mixer
        self._owners: dict[int, tuple[str, str]] = {}  # id(track) -> (participant id, kind)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        #: participant id -> kinds with an active m-line now (from the latest offer)
        self._expected: dict[str, set[str]] = {}
        self._expected_since: float = time.monotonic()
        self.last_frame_at: float | None = None
        #: who holds the floor (a prefecture meeting's presenter), from the server's `floor`
        self.floor_holder: str | None = None
        #: whom the presiding judge spotlighted, from the server's `spotlight`
        self.spotlight: str | None = None
        #: a prefecture meeting (`welcome.hearing.kind` is `meeting`): there the floor comes first
        self.meeting = False
        # The screen thread reads `participants`; the lock keeps it from seeing a half update.
        self.lock = threading.Lock()

    # -- roster (from signalling) ------------------------------------------------------------

    def add(self, wire: dict[str, Any]) -> None:
        """A participant from `welcome.participants` or `participant-joined` / `-updated`."""
        pid = str(wire.get("id", ""))
        if not pid:
            return
        with self.lock:
            participant = self.participants.setdefault(pid, RemoteParticipant(pid))
            participant.name = str(wire.get("name", participant.name))
            participant.role = str(wire.get("role", participant.role))
            muted = wire.get("muted")
            if isinstance(muted, dict):
                participant.muted = {str(k): bool(v) for k, v in muted.items()}

    def remove(self, participant_id: str) -> None:
        """`participant-left`."""
        with self.lock:
            self.participants.pop(participant_id, None)
        self._expected.pop(participant_id, None)
        if self._mixer is not None:
            self._mixer.forget(participant_id)

    def set_tracks(self, tracks: dict[str, Any]) -> None:
        """The `tracks` of the latest offer: which participants' media should be arriving."""
        expected: dict[str, set[str]] = {}
        for info in tracks.values():
            if isinstance(info, dict):
                expected.setdefault(str(info.get("participantId")), set()).add(
                    str(info.get("kind"))
                )
        if expected != self._expected:
            self._expected = expected
            self._expected_since = time.monotonic()

    # -- media ---------------------------------------------------------------------------------

    def on_track(self, participant_id: str, kind: str, track: MediaStreamTrack, _: Any) -> None:
        """`HearingClient`'s track callback: note the owner, and read the track (once)."""
        key = id(track)
        self._owners[key] = (participant_id, kind)
        if key not in self._tasks:
            self._tasks[key] = asyncio.create_task(self._drain(key, track))

    async def _drain(self, key: int, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                owner = self._owners.get(key)
                if owner is None:
                    continue
                self._on_frame(owner[0], frame)
        except MediaStreamError:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("court: reading a track failed")

    def _on_frame(self, participant_id: str, frame: Any) -> None:
        now = time.monotonic()
        self.last_frame_at = now
        with self.lock:
            participant = self.participants.setdefault(
                participant_id, RemoteParticipant(participant_id)
            )
            participant.last_frame_at = now
            if isinstance(frame, VideoFrame):
                participant.video_frames += 1
                participant.picture = frame
            elif isinstance(frame, AudioFrame):
                participant.audio_frames += 1
        if isinstance(frame, AudioFrame) and self._mixer is not None:
            self._mixer.push(participant_id, frame)

    def stalled(self, now: float, timeout: float) -> bool:
        """True when participants' media should be arriving but none has for `timeout` seconds.

        Only participants whose tracks are in the latest offer count, and each gets `timeout`
        from the moment it appeared there: a judge who has just joined is not a stall.
        """
        if not self._expected:
            return False
        if now - self._expected_since < timeout:
            return False
        return self.last_frame_at is None or now - self.last_frame_at > timeout

    def floor(self) -> RemoteParticipant | None:
        """Who is shown full-screen, among the participants with a picture.

        In a hearing: the spotlighted participant (the presiding judge chose whom the court looks
        at), else whoever holds the floor; in a prefecture meeting the floor holder comes first,
        then the spotlight. Else the judge, the clerk and so on (:data:`FLOOR_ORDER`). A terminal
        whose own defendant is spotlighted keeps showing the court: it is not among the remote
        participants, and its own picture is the self-view.
        """
        with self.lock:
            candidates = [p for p in self.participants.values() if p.picture is not None]
        if not candidates:
            return None
        first = (
            (self.floor_holder, self.spotlight)
            if self.meeting
            else (self.spotlight, self.floor_holder)
        )
        for chosen in first:
            shown = next((p for p in candidates if chosen is not None and p.id == chosen), None)
            if shown is not None:
                return shown

        def rank(p: RemoteParticipant) -> int:
            return FLOOR_ORDER.index(p.role) if p.role in FLOOR_ORDER else len(FLOOR_ORDER)

        return min(candidates, key=rank)

    @property
    def media_flowing(self) -> bool:
        """Whether any remote frame arrived in the last two seconds."""
        return self.last_frame_at is not None and time.monotonic() - self.last_frame_at < 2.0

    async def stop(self) -> None:
        """Cancel the readers (the tracks end with their peer connection anyway)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._mixer is not None:
            for pid in list(self.participants):
                self._mixer.forget(pid)
