"""terminal/court.py: reading remote tracks once, owners of reused m-lines, and the stall rule."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from aiortc import VideoStreamTrack

from terminal.court import CourtFeed


async def test_a_track_is_read_once_and_frames_go_to_its_current_owner() -> None:
    court = CourtFeed()
    court.add({"id": "a", "name": "甲", "role": "judge"})
    track = VideoStreamTrack()
    court.on_track("a", "video", track, None)
    court.on_track("a", "video", track, None)  # reported again: still one reader
    await asyncio.sleep(0.15)
    assert court.participants["a"].video_frames >= 2
    court.on_track("b", "video", track, None)  # the m-line was reused for someone else
    before = court.participants["a"].video_frames
    await asyncio.sleep(0.15)
    assert court.participants["a"].video_frames == before
    assert court.participants["b"].video_frames >= 2
    await court.stop()
    track.stop()


def test_stall_needs_expected_media_and_a_grace_period() -> None:
    court = CourtFeed()
    now = time.monotonic()
    assert not court.stalled(now + 100, 3.0)  # nobody publishes: nothing to miss
    court.set_tracks({"1": {"participantId": "j", "kind": "video"}})
    assert not court.stalled(now + 1, 3.0)  # just appeared
    assert court.stalled(now + 4, 3.0)
    court.last_frame_at = now + 3.5
    assert not court.stalled(now + 4, 3.0)
    court.remove("j")
    court.set_tracks({})
    assert not court.stalled(now + 100, 3.0)


def test_roster_updates() -> None:
    court = CourtFeed()
    court.add({"id": "x", "name": "甲", "role": "party", "muted": {"audio": True}})
    court.add({"id": "x", "name": "甲", "role": "party", "muted": {"audio": False}})
    assert court.participants["x"].muted == {"audio": False}
    court.add({"name": "no id"})
    assert list(court.participants) == ["x"]
    assert court.participants["x"].to_wire()["videoFrames"] == 0
    assert np is not None


def test_whoever_holds_the_floor_is_shown_before_the_judge() -> None:
    import numpy as np
    from av import VideoFrame

    from terminal.court import CourtFeed

    court = CourtFeed()
    court.add({"id": "j1", "name": "州中院", "role": "judge"})
    court.add({"id": "p1", "name": "石渠县法院", "role": "party"})
    for pid in ("j1", "p1"):
        court._on_frame(pid, VideoFrame.from_ndarray(np.zeros((24, 32, 3), np.uint8), "rgb24"))
    shown = court.floor()
    assert shown is not None and shown.id == "j1"
    court.floor_holder = "p1"
    shown = court.floor()
    assert shown is not None and shown.id == "p1"


def court_with_pictures(*people: tuple[str, str]) -> CourtFeed:
    from av import VideoFrame

    court = CourtFeed()
    for pid, role in people:
        court.add({"id": pid, "name": pid, "role": role})
        court._on_frame(pid, VideoFrame.from_ndarray(np.zeros((24, 32, 3), np.uint8), "rgb24"))
    return court


def shown(court: CourtFeed) -> str | None:
    participant = court.floor()
    return participant.id if participant is not None else None


def test_in_a_hearing_the_spotlight_wins_over_the_floor() -> None:
    court = court_with_pictures(("j", "judge"), ("w", "witness"), ("p", "party"))
    court.floor_holder = "p"
    court.spotlight = "w"
    assert shown(court) == "w"
    court.spotlight = None  # cleared: the floor holder, then the judge
    assert shown(court) == "p"
    court.floor_holder = None
    assert shown(court) == "j"


def test_in_a_meeting_the_floor_wins_over_the_spotlight() -> None:
    court = court_with_pictures(("chair", "judge"), ("a", "party"), ("b", "party"))
    court.meeting = True
    court.floor_holder = "a"
    court.spotlight = "b"
    assert shown(court) == "a"
    court.floor_holder = None
    assert shown(court) == "b"


def test_a_spotlight_on_someone_without_a_picture_falls_through() -> None:
    court = court_with_pictures(("j", "judge"), ("p", "party"))
    court.add({"id": "w", "name": "证人", "role": "witness"})  # no frame yet
    court.spotlight = "w"
    court.floor_holder = "p"
    assert shown(court) == "p"
    court.spotlight = "self"  # this terminal's own defendant: it sees itself in the self-view
    court.floor_holder = None
    assert shown(court) == "j"


def test_the_session_follows_welcome_floor_and_spotlight() -> None:
    from typing import Any, cast

    from terminal.session import HearingSession
    from terminal.status import TerminalStatus

    court = court_with_pictures(("j", "judge"), ("w", "witness"), ("p", "party"))
    court.spotlight = "stale"  # from before a reconnect: a welcome starts afresh
    session = HearingSession(cast(Any, None), cast(Any, None), TerminalStatus(), court, lambda: {})
    welcome = {
        "hearing": {"id": "h", "caseNumber": "X", "kind": "arraignment", "state": "open"},
        "participant": {"id": "me", "name": "被告人", "role": "defendant"},
        "participants": [],
        "admitted": True,
    }
    session._welcome(welcome)
    assert court.spotlight is None and not court.meeting
    assert session._handle({"type": "floor", "holder": "p", "requests": [], "silenced": []}) is None
    assert session._handle({"type": "spotlight", "participantId": "w"}) is None
    assert shown(court) == "w"
    session._handle({"type": "spotlight", "participantId": None})
    assert court.spotlight is None and shown(court) == "p"
    session._welcome({**welcome, "hearing": {**welcome["hearing"], "kind": "meeting"}})
    assert court.meeting and court.floor_holder is None
