"""Segments: real VP8/Opus frames in, decodable WebM segments out (recorder.session/track/segment_writer)."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from recorder.manifest import ManifestSigner, parse_iso_utc
from recorder.segment_writer import ClosedSegment, SegmentWriter, opus_head, vp8_keyframe_size
from recorder.session import RecordingSession, RecordingStateError
from recorder.synthetic import EncodedFrame, encode_audio, encode_video, interleave
from recorder.track import TrackInfo, UnsupportedCodec
from recorder.verify import verify_recording

BASE = 1_760_000_000.0  # wall clock of RTP time 0 in these tests
RED = (200, 30, 30)
VIDEO = TrackInfo("p1-video", "p1", "审判长 Judge", "video", "VP8", 90000)
AUDIO = TrackInfo("p1-audio", "p1", "审判长 Judge", "audio", "opus", 48000)
RATES = {VIDEO.track_id: 90000, AUDIO.track_id: 48000}


@pytest.fixture(scope="module")
def video() -> list[EncodedFrame]:
    return encode_video(5.0, color=RED, keyframe_interval=30)


@pytest.fixture(scope="module")
def audio() -> list[EncodedFrame]:
    return encode_audio(5.0)


def new_session(folder: Path, **kwargs: Any) -> RecordingSession:
    session = RecordingSession(folder, "rec-1", "hearing-1", ManifestSigner.generate(), **kwargs)
    session.start()
    return session


def push_all(
    session: RecordingSession,
    tracks: dict[str, list[EncodedFrame]],
    delay: float = 0.05,
    rtp_offset: dict[str, int] | None = None,
) -> None:
    for track_id, frame, seconds in interleave(tracks, RATES):
        offset = (rtp_offset or {}).get(track_id, 0)
        session.push_frame(
            track_id,
            frame.rtp_timestamp + offset,
            frame.data,
            frame.keyframe,
            BASE + seconds + delay,
        )


def manifest(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_bytes().splitlines()]


def segments(folder: Path, track_id: str) -> list[dict[str, Any]]:
    return [e for e in manifest(folder) if e["type"] == "segment" and e["track_id"] == track_id]


def decode_video(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def decode_audio_samples(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(f.samples for f in container.decode(audio=0))


def test_vp8_keyframe_header_gives_size(video: list[EncodedFrame]) -> None:
    assert video[0].keyframe
    assert vp8_keyframe_size(video[0].data) == (320, 240)
    assert vp8_keyframe_size(video[1].data) is None  # an interframe
    assert vp8_keyframe_size(b"\x00\x00\x00\x9d\x01") is None  # too short
    assert vp8_keyframe_size(b"\x00\x00\x00\x00\x00\x00\x40\x01\xf0\x00") is None  # no start code


def test_opus_head_layout() -> None:
    head = opus_head()
    assert head[:8] == b"OpusHead" and len(head) == 19
    assert head[9] == 2 and int.from_bytes(head[10:12], "little") == 0
    assert int.from_bytes(head[12:16], "little") == 48000


def test_track_info_validation() -> None:
    with pytest.raises(UnsupportedCodec):
        TrackInfo("p1-video", "p1", "x", "video", "H264", 90000)
    with pytest.raises(ValueError, match="track_id"):
        TrackInfo("../etc", "p1", "x", "video", "VP8", 90000)
    with pytest.raises(ValueError, match="audio"):
        TrackInfo("p1-a", "p1", "x", "video", "opus", 48000)
    with pytest.raises(ValueError, match="clock rate"):
        TrackInfo("p1-a", "p1", "x", "audio", "OPUS", 8000)
    assert TrackInfo("p1-a", "p1", "x", "audio", "OPUS", 48000).codec_name == "opus"


def test_segments_decode_with_right_frames_and_colour(
    tmp_path: Path, video: list[EncodedFrame], audio: list[EncodedFrame]
) -> None:
    folder = tmp_path / "rec"
    session = new_session(folder)
    session.add_track(VIDEO)
    session.add_track(AUDIO)
    push_all(session, {VIDEO.track_id: video, AUDIO.track_id: audio})
    session.stop()

    video_entries = segments(folder, VIDEO.track_id)
    audio_entries = segments(folder, AUDIO.track_id)
    assert [e["file"] for e in video_entries] == [
        "p1-video/000000.webm",
        "p1-video/000001.webm",
        "p1-video/000002.webm",
    ]
    assert len(audio_entries) == 3
    assert not list(folder.rglob("*.part"))
    decoded = 0
    for entry in video_entries:
        frames = decode_video(folder / entry["file"])
        assert len(frames) == entry["frames"]
        assert entry["starts_with_keyframe"] and (entry["width"], entry["height"]) == (320, 240)
        decoded += len(frames)
        centre = frames[1][120, 160].astype(int)  # frame 0 of each second is the white flash
        assert np.abs(centre - RED).max() < 25, centre
    assert decoded == len(video)
    samples = sum(decode_audio_samples(folder / e["file"]) for e in audio_entries)
    assert samples == len(audio) * 960
    with av.open(str(folder / audio_entries[0]["file"])) as container:
        assert container.streams.audio[0].codec_context.extradata == opus_head()
    # contiguous on the RTP clock, and placed on the wall clock from arrival times
    assert video_entries[1]["rtp_start"] == video_entries[0]["rtp_end"] == 180000
    assert parse_iso_utc(video_entries[0]["start"]) == pytest.approx(BASE + 0.05, abs=0.002)
    assert video_entries[0]["clock"] == "arrival"
    assert sum(e["frames"] for e in audio_entries) == len(audio)
    stats = session.stats()
    assert stats.frames_recorded == len(video) + len(audio) and stats.frames_dropped == 0
    assert json.loads((folder / "recording.json").read_bytes())["status"] == "complete"
    assert verify_recording(folder).ok


def test_video_rotates_only_at_keyframes(tmp_path: Path) -> None:
    frames = encode_video(7.0, keyframe_interval=45)  # a keyframe every 1.5 s
    requests: list[str] = []
    folder = tmp_path / "rec"
    session = new_session(folder, request_keyframe=requests.append)
    session.add_track(VIDEO)
    push_all(session, {VIDEO.track_id: frames})
    session.stop()
    entries = segments(folder, VIDEO.track_id)
    assert [e["rtp_start"] for e in entries] == [0, 270000, 540000]  # keyframes at 3 s and 6 s
    assert all(e["starts_with_keyframe"] for e in entries)
    assert requests == [VIDEO.track_id]  # asked when the rotation fell due; more are throttled


def test_video_force_rotates_without_keyframes(tmp_path: Path) -> None:
    frames = encode_video(7.0, keyframe_interval=1000)
    folder = tmp_path / "rec"
    session = new_session(folder)
    session.add_track(VIDEO)
    push_all(session, {VIDEO.track_id: frames})
    session.stop()
    entries = segments(folder, VIDEO.track_id)
    assert [e["rtp_start"] for e in entries] == [0, 540000]  # cut at 3 x 2 s
    assert not entries[1]["starts_with_keyframe"]
    assert verify_recording(folder).ok


def test_resolution_change_starts_a_segment(tmp_path: Path, video: list[EncodedFrame]) -> None:
    small = encode_video(1.0, width=160, height=120, keyframe_interval=30)
    shifted = [EncodedFrame(f.rtp_timestamp + 90000, f.data, f.keyframe) for f in small]
    folder = tmp_path / "rec"
    session = new_session(folder)
    session.add_track(VIDEO)
    push_all(session, {VIDEO.track_id: video[:30] + shifted})
    session.stop()
    entries = segments(folder, VIDEO.track_id)
    assert [(e["width"], e["height"]) for e in entries] == [(320, 240), (160, 120)]
    assert len(decode_video(folder / entries[1]["file"])) == len(small)


def test_frames_before_first_keyframe_are_recorded_as_dropped(
    tmp_path: Path, video: list[EncodedFrame]
) -> None:
    folder = tmp_path / "rec"
    requests: list[str] = []
    session = new_session(folder, request_keyframe=requests.append)
    session.add_track(VIDEO)
    push_all(session, {VIDEO.track_id: video[1:]})  # joined mid-GOP: keyframe at frame 30
    session.stop()
    drops = [e for e in manifest(folder) if e["type"] == "drop"]
    assert [(d["reason"], d["frames"], d["rtp_first"]) for d in drops] == [
        ("before-first-keyframe", 29, 3000)
    ]
    assert segments(folder, VIDEO.track_id)[0]["rtp_start"] == 90000
    assert requests  # and asked for one


def test_full_queue_drops_are_counted_and_recorded(
    tmp_path: Path, video: list[EncodedFrame]
) -> None:
    folder = tmp_path / "rec"
    session = new_session(folder, max_queued_frames=0)
    session.add_track(VIDEO)
    push_all(session, {VIDEO.track_id: video[:10]})
    session.stop()
    assert session.stats().frames_dropped == 10
    drops = [e for e in manifest(folder) if e["type"] == "drop"]
    assert drops[0]["reason"] == "queue-full" and drops[0]["frames"] == 10
    assert drops[0]["bytes"] == sum(len(f.data) for f in video[:10])
    end = manifest(folder)[-1]
    assert end["type"] == "end" and end["frames_dropped"] == 10


def test_push_frame_does_not_block_while_worker_is_stuck(
    tmp_path: Path, video: list[EncodedFrame]
) -> None:
    release = threading.Event()
    folder = tmp_path / "rec"
    # The keyframe request runs on the worker: blocking it stalls the worker like a slow disk.
    session = new_session(folder, max_queued_frames=20, request_keyframe=lambda _: release.wait())
    session.add_track(VIDEO)
    push_all(session, {VIDEO.track_id: video[1:61]})  # delta first: triggers the request
    stats = session.stats()
    release.set()
    session.stop()
    assert stats.queued_frames <= 20 and stats.frames_dropped >= 39
    assert sum(e["frames"] for e in manifest(folder) if e["type"] == "drop") == 60


def test_pause_is_a_gap_with_reason_and_who(
    tmp_path: Path, video: list[EncodedFrame], audio: list[EncodedFrame]
) -> None:
    clock = iter(float(BASE + t) for t in range(100))
    folder = tmp_path / "rec"
    session = new_session(folder, clock=lambda: next(clock))
    session.add_track(VIDEO)
    with pytest.raises(ValueError, match="lawful"):
        session.pause("lunch", "judge-1")
    with pytest.raises(RecordingStateError):
        session.resume("judge-1")
    push_all(session, {VIDEO.track_id: video[:45]})
    session.pause("non-public-evidence", "judge-1")
    push_all(session, {VIDEO.track_id: video[45:90]})  # not recorded
    session.resume("judge-1")
    push_all(session, {VIDEO.track_id: video[90:]})
    session.stop()
    entries = manifest(folder)
    gap = next(e for e in entries if e["type"] == "gap")
    assert gap["reason"] == "non-public-evidence"
    assert (gap["paused_by"], gap["resumed_by"]) == ("judge-1", "judge-1")
    assert gap["frames_not_recorded"] == {VIDEO.track_id: 45}
    assert parse_iso_utc(gap["end"]) > parse_iso_utc(gap["start"])
    recorded = sum(e["frames"] for e in segments(folder, VIDEO.track_id))
    assert recorded == len(video) - 45
    kinds = [json.loads(x)["kind"] for x in (folder / "events.jsonl").read_bytes().splitlines()]
    assert kinds == ["recording-paused", "recording-resumed"]
    assert verify_recording(folder).ok


def test_sender_reports_put_audio_and_video_on_one_timeline(
    tmp_path: Path, video: list[EncodedFrame], audio: list[EncodedFrame]
) -> None:
    folder = tmp_path / "rec"
    session = new_session(folder)
    session.add_track(VIDEO)
    session.add_track(AUDIO)
    # The sender's clock is an hour slow; audio leaves its jitter buffer 50 ms later than video,
    # and its RTP clock started at a random point.
    sender_base = BASE - 3600.0
    session.set_sender_report(VIDEO.track_id, sender_base, 0)
    session.set_sender_report(AUDIO.track_id, sender_base, 4800)  # audio rtp 4800 at sender_base
    for track_id, frame, seconds in interleave(
        {VIDEO.track_id: video, AUDIO.track_id: audio}, RATES
    ):
        delay = 0.03 if track_id == VIDEO.track_id else 0.08
        ts = frame.rtp_timestamp + (4800 if track_id == AUDIO.track_id else 0)
        session.push_frame(track_id, ts, frame.data, frame.keyframe, BASE + seconds + delay)
    session.stop()
    v0 = segments(folder, VIDEO.track_id)[0]
    a0 = segments(folder, AUDIO.track_id)[0]
    assert v0["clock"] == a0["clock"] == "sr"
    # both captured at sender time 0: same start on our clock, within a millisecond
    assert abs(parse_iso_utc(v0["start"]) - parse_iso_utc(a0["start"])) <= 0.001
    assert parse_iso_utc(v0["start"]) == pytest.approx(BASE + 0.03, abs=0.002)


def test_events_removal_and_re_adding_a_track(tmp_path: Path, video: list[EncodedFrame]) -> None:
    folder = tmp_path / "rec"
    session = new_session(folder)
    session.add_track(VIDEO)
    session.event("join", {"participant": "p1", "name": "张三"}, at=BASE)
    push_all(session, {VIDEO.track_id: video[:30]})
    session.remove_track(VIDEO.track_id)
    session.push_frame(VIDEO.track_id, 999999, b"late", False, BASE)  # the tap lags: ignored
    with pytest.raises(KeyError):
        session.push_frame("nobody", 0, b"x", True, BASE)
    session.add_track(VIDEO)
    shifted = [EncodedFrame(f.rtp_timestamp + 90000, f.data, f.keyframe) for f in video[30:60]]
    push_all(session, {VIDEO.track_id: shifted})
    session.stop()
    session.stop()  # idempotent
    files = [e["file"] for e in segments(folder, VIDEO.track_id)]
    assert files == ["p1-video/000000.webm", "p1-video/000001.webm"]
    types = [e["type"] for e in manifest(folder)]
    assert types.count("track") == 2 and "track-removed" in types
    event = json.loads((folder / "events.jsonl").read_bytes().splitlines()[0])
    assert event["kind"] == "join" and event["data"]["name"] == "张三"
    assert event["at"].endswith("Z")
    with pytest.raises(RecordingStateError):
        session.add_track(AUDIO)
    assert verify_recording(folder).ok


def test_worker_error_is_logged_recorded_and_recording_goes_on(
    tmp_path: Path,
    video: list[EncodedFrame],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    original = SegmentWriter.write
    calls = {"n": 0}

    def flaky(self: SegmentWriter, rtp_timestamp: int, data: bytes, keyframe: bool) -> None:
        calls["n"] += 1
        if calls["n"] == 10:
            raise OSError(28, "No space left on device")
        original(self, rtp_timestamp, data, keyframe)

    monkeypatch.setattr(SegmentWriter, "write", flaky)
    folder = tmp_path / "rec"
    session = new_session(folder)
    session.add_track(VIDEO)
    with caplog.at_level(logging.ERROR, logger="recorder.session"):
        push_all(session, {VIDEO.track_id: video[:120]})
        session.stop()
    assert session.stats().errors == 1
    assert "No space left" in (session.stats().last_error or "")
    assert any(r.exc_info for r in caplog.records)  # logged with its traceback
    entries = manifest(folder)
    error = next(e for e in entries if e["type"] == "error")
    lost = next(e for e in entries if e["type"] == "lost")
    assert error["where"] == VIDEO.track_id and lost["file"] == "p1-video/000000.webm.part"
    assert [e["index"] for e in segments(folder, VIDEO.track_id)] == [1, 2]  # went on
    assert verify_recording(folder).ok


def test_failed_segment_close_is_recorded_as_lost(
    tmp_path: Path, video: list[EncodedFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = SegmentWriter.close
    calls = {"n": 0}

    def flaky(self: SegmentWriter) -> ClosedSegment:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(5, "Input/output error")
        return original(self)

    monkeypatch.setattr(SegmentWriter, "close", flaky)
    folder = tmp_path / "rec"
    session = new_session(folder)
    session.add_track(VIDEO)
    push_all(session, {VIDEO.track_id: video[:90]})
    session.stop()
    entries = manifest(folder)
    lost = [e for e in entries if e["type"] == "lost"]
    assert [(e["index"], e["file"]) for e in lost] == [(0, "p1-video/000000.webm.part")]
    assert [e["index"] for e in segments(folder, VIDEO.track_id)] == [1]
    assert session.stats().frames_recorded == 90  # the frame that rotated was still written
    assert verify_recording(folder).ok


def test_start_refuses_a_folder_that_holds_a_recording(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    new_session(folder).stop()
    with pytest.raises(FileExistsError):
        new_session(folder)
    with pytest.raises(RecordingStateError):
        RecordingSession(folder, "r", "h", ManifestSigner.generate()).push_frame(
            "x", 0, b"", True, 0.0
        )
