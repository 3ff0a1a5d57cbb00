"""Every hearing recorded: the glue between the SFU's streams and `recorder.RecordingSession`.

A `HearingRecorder` starts when a hearing is brought up (before anyone's media can arrive) and
cannot be switched off by any message. For each published stream it registers a track and points
the stream's `FrameTap` at `push_frame`: the recorder gets exactly the encoded frames the forwarder
carries, already reassembled by aiortc's jitter buffer, never decoded. The publisher's RTCP sender
reports are passed on so each segment is placed on the wall clock. Joins, leaves and mutes go on
the recording's timeline. Blocking work (start, stop, recovery) runs in threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recorder.manifest import ManifestSigner
from recorder.recovery import RecoveryError, recover_recording
from recorder.session import RecordingSession
from recorder.track import TrackInfo, UnsupportedCodec
from server.sfu import internals
from server.sfu.forwarder import PublishedStream

logger = logging.getLogger(__name__)

SIGNING_KEY_FILE = "recording-signing.key"
CATALOG_INTERVAL = 10.0
_NTP_EPOCH_OFFSET = 2208988800
_CODEC_NAMES = {"video/vp8": "VP8", "audio/opus": "opus"}


def load_signer(data: Path) -> ManifestSigner:
    """The server's Ed25519 recording key (created in the data folder on first start)."""
    return ManifestSigner.load_or_create(data / SIGNING_KEY_FILE)


def ntp_to_unix(ntp: int) -> float:
    return (ntp >> 32) - _NTP_EPOCH_OFFSET + (ntp & 0xFFFFFFFF) / 2**32


@dataclass
class _Track:
    track_id: str
    stream: PublishedStream
    last_timestamp: int = 0
    frames: int = 0
    origin: int | None = None  # first RTP timestamp, for tracks taken straight from RTP

    def unwrap(self, rtp_timestamp: int) -> int:
        """RTP timestamp -> a timeline starting at 0 for the first packet, across wraps."""
        if self.origin is None:
            self.origin = rtp_timestamp
        value = rtp_timestamp - self.origin
        while value < self.last_timestamp - 2**31:
            value += 2**32
        while value > self.last_timestamp + 2**31:
            value -= 2**32
        return value


class HearingRecorder:
    """Records one live hearing into `<recordings>/<hearing id>/<recording id>/`."""

    def __init__(
        self,
        recordings_root: Path,
        hearing_id: str,
        signer: ManifestSigner,
        on_change: Callable[[Path], None] | None = None,
    ) -> None:
        self.recording_id = uuid.uuid4().hex[:16]
        self.hearing_id = hearing_id
        self.folder = recordings_root / hearing_id / self.recording_id
        self._loop = asyncio.get_running_loop()
        self._tracks: dict[str, _Track] = {}
        self._on_change = on_change
        self.session = RecordingSession(
            self.folder,
            self.recording_id,
            hearing_id,
            signer,
            request_keyframe=self._request_keyframe,
        )
        self.stopped = False
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.session.start)
        logger.info("hearing %s: recording %s started", self.hearing_id, self.recording_id)
        if self._on_change is not None:
            self._on_change(self.folder)
            self._ticker = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        """Tell the catalog about new segments every few seconds while recording."""
        assert self._on_change is not None
        while True:
            await asyncio.sleep(CATALOG_INTERVAL)
            self._on_change(self.folder)

    def _request_keyframe(self, track_id: str) -> None:
        # Called on the recorder's worker thread.
        def ask() -> None:
            track = self._tracks.get(track_id)
            if track is not None:
                track.stream.request_keyframe()

        self._loop.call_soon_threadsafe(ask)

    # -- tracks ---------------------------------------------------------------------------------

    def add_stream(self, stream: PublishedStream, participant_name: str) -> None:
        tap = stream.tap
        if tap is None or self.stopped:
            return  # the MediaRelay benchmark baseline has no tap
        # The negotiated codec (the receiver's own table only fills once it starts receiving).
        codec = next(iter(internals.negotiated_codecs(stream.transceiver)), None)
        codec_name = _CODEC_NAMES.get(codec.mimeType.lower(), codec.mimeType) if codec else "?"
        track_id = f"{stream.participant_id}-{stream.kind}"
        try:
            self.session.add_track(
                TrackInfo(
                    track_id=track_id,
                    participant_id=stream.participant_id,
                    participant_name=participant_name,
                    kind="audio" if stream.kind == "audio" else "video",  # a screen is video
                    codec=codec_name,
                    clock_rate=48000 if stream.kind == "audio" else 90000,
                )
            )
        except UnsupportedCodec:
            logger.error("hearing %s: %s cannot be recorded", self.hearing_id, codec_name)
            self.event("recording-error", {"track": track_id, "error": "unsupported codec"})
            return
        track = _Track(track_id, stream)
        self._tracks[track_id] = track
        push = self.session.push_frame
        video = stream.kind != "audio"

        if video:

            def on_frame(_codec: Any, frame: Any) -> None:
                data = frame.data
                track.last_timestamp = frame.timestamp
                # VP8: bit 0 of the frame tag is 0 on a keyframe.
                push(track_id, frame.timestamp, data, not data[0] & 1, time.time())

            tap.on_frame = on_frame
        else:
            # Opus: one RTP packet is one frame, so take it straight from RTP. aiortc's audio
            # jitter buffer throws away the frames it holds whenever one is missing: at 5 %
            # loss a quarter of the audio would never reach the recording.
            def on_packet(rtp_timestamp: int, payload: bytes) -> None:
                unwrapped = track.unwrap(rtp_timestamp)
                if unwrapped > track.last_timestamp or track.frames == 0:
                    track.last_timestamp = unwrapped
                    track.frames += 1
                    push(track_id, unwrapped, payload, True, time.time())

            stream.on_audio_packet = on_packet
        stream.on_report = lambda ntp, rtp: self._sender_report(track, ntp, rtp)

    def _sender_report(self, track: _Track, ntp: int, rtp: int) -> None:
        if self.stopped:
            return
        if track.stream.kind == "audio":
            if track.origin is None:
                return
            unwrapped = track.unwrap(rtp)
        else:
            origin = internals.receiver_timestamp_origin(track.stream.receiver)
            if origin is None:
                return
            unwrapped = rtp - origin
            # bring it next to the frames' unwrapped timeline (the origin moves back on a wrap)
            while unwrapped < track.last_timestamp - 2**31:
                unwrapped += 2**32
            while unwrapped > track.last_timestamp + 2**31:
                unwrapped -= 2**32
        try:
            self.session.set_sender_report(track.track_id, ntp_to_unix(ntp), unwrapped)
        except Exception:
            logger.exception("hearing %s: sender report not recorded", self.hearing_id)

    def remove_stream(self, stream: PublishedStream) -> None:
        track_id = f"{stream.participant_id}-{stream.kind}"
        if self._tracks.pop(track_id, None) is None or self.stopped:
            return
        if stream.tap is not None:
            stream.tap.on_frame = None
        stream.on_report = None
        stream.on_audio_packet = None
        try:
            self.session.remove_track(track_id)
        except (KeyError, RuntimeError):
            logger.exception("hearing %s: removing track %s", self.hearing_id, track_id)

    # -- timeline -------------------------------------------------------------------------------

    def pause(self, reason: str, who: str) -> None:
        """A lawful pause: the recorder closes every segment; the gap goes in the manifest."""
        if not self.stopped:
            self.session.pause(reason, who)

    def resume(self, who: str) -> None:
        if not self.stopped:
            self.session.resume(who)

    def event(self, kind: str, data: dict[str, Any], at: float | None = None) -> None:
        if self.stopped:
            return
        try:
            self.session.event(kind, data, at)
        except Exception:
            logger.exception("hearing %s: event %s not recorded", self.hearing_id, kind)

    async def stop(self, status: str = "complete") -> None:
        if self.stopped:
            return
        self.stopped = True
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        for track in self._tracks.values():
            if track.stream.tap is not None:
                track.stream.tap.on_frame = None
            track.stream.on_report = None
            track.stream.on_audio_packet = None
        self._tracks.clear()
        try:
            await asyncio.to_thread(self.session.stop, status)
        finally:
            logger.info("hearing %s: recording %s %s", self.hearing_id, self.recording_id, status)
            if self._on_change is not None:
                self._on_change(self.folder)


def recover_interrupted(recordings_root: Path, signer: ManifestSigner) -> list[Path]:
    """After a crash: close every recording left in status "recording" as interrupted.

    Blocking (reads and remuxes files): run it in a thread, before hearings resume.
    """
    recovered: list[Path] = []
    if not recordings_root.is_dir():
        return recovered
    for status_file in sorted(recordings_root.glob("*/*/recording.json")):
        try:
            status = json.loads(status_file.read_text()).get("status")
        except (OSError, ValueError):
            logger.error("unreadable %s: left for an archivist", status_file)
            continue
        if status != "recording":
            continue
        folder = status_file.parent
        try:
            result = recover_recording(folder, signer)
        except (RecoveryError, OSError) as exc:
            logger.error("recording %s could not be recovered: %s", folder, exc)
            continue
        logger.warning("recording %s closed as interrupted: %s", folder, result)
        recovered.append(folder)
    return recovered
