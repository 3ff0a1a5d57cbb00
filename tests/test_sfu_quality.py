"""Audio first: the video gate's hysteresis, and a paused slot restarting at a keyframe."""

from __future__ import annotations

from server.sfu.quality import GateSettings, VideoGate
from tests.test_sfu_forwarder import DELTA, KEY, Rig, packet


def test_two_bad_reports_of_one_kind_turn_video_off_one_does_not() -> None:
    gate = VideoGate()
    assert gate.observe_loss("video", 0.30, 1.0) is None  # one bad report: a blip
    assert gate.observe_loss("video", 0.01, 2.0) is None
    assert gate.observe_loss("video", 0.30, 3.0) is None
    assert gate.observe_loss("audio", 0.00, 3.5) is None  # good audio says nothing about video
    assert gate.observe_loss("video", 0.20, 4.0) == "off"
    assert gate.state == "off"


def test_a_report_spanning_an_outage_is_not_overload() -> None:
    gate = VideoGate()
    assert gate.observe_loss("video", 0.01, 1.0) is None
    # the link was cut for 20 s: the first reports after it count the whole outage as loss
    assert gate.observe_loss("video", 0.80, 21.0) is None
    assert gate.observe_loss("video", 0.00, 22.0) is None
    assert gate.state == "on"


def test_comes_back_after_the_hold_and_good_audio_then_backs_off_when_the_probe_fails() -> None:
    gate = VideoGate(GateSettings(hold=5.0, max_hold=60.0, probe_seconds=10.0))
    gate.observe_loss("video", 0.5, 0.0)
    assert gate.observe_loss("video", 0.5, 1.0) == "off"
    for t in (2.0, 3.0, 4.0, 5.0):  # good audio, but the hold is not over
        assert gate.observe_loss("audio", 0.0, t) is None
    assert gate.observe_loss("audio", 0.0, 6.5) == "on"  # probe
    assert gate.observe_loss("video", 0.5, 7.0) is None
    assert gate.observe_loss("video", 0.5, 7.5) == "off"  # the probe failed: hold doubles
    for t in (9.0, 10.0, 11.0, 12.0, 14.0, 17.0):
        assert gate.observe_loss("audio", 0.0, t) is None
    assert gate.observe_loss("audio", 0.0, 18.5) == "on"
    # the probe lasts: the hold goes back to its start value
    for t in (19.0, 21.0, 23.0, 25.0, 27.0, 29.0):
        assert gate.observe_loss("video", 0.01, t) is None
    gate.observe_loss("video", 0.5, 30.0)
    assert gate.observe_loss("video", 0.5, 31.0) == "off"
    for t in (32.0, 33.0, 34.0):  # good audio (video reports came meanwhile: no outage)
        assert gate.observe_loss("audio", 0.0, t) is None
    assert gate.observe_loss("audio", 0.0, 36.5) == "on"


def _chromium_paused_second(gate: VideoGate, t: float, audio_loss: float | None) -> str | None:
    """One second of what Chromium sends while its video is paused: a REMB (its video reports
    do not reach the gate then) and, every 5 s, a receiver report for audio."""
    change = gate.observe_remb(178_000, t)
    if audio_loss is not None:
        change = gate.observe_loss("audio", audio_loss, t + 0.5) or change
    return change


def test_a_browser_reporting_audio_every_5_s_gets_video_back() -> None:
    """Chromium sends an audio receiver report only every 2.5-7.5 s: each one is not an outage
    (its REMBs and video reports came in between), and two good ones cover enough time."""
    gate = VideoGate(now=0.0)
    gate.observe_loss("video", 0.6, 1.0)
    assert gate.observe_loss("video", 0.7, 2.0) == "off"
    changes = []
    for second in range(3, 40):
        # thin until 20 s (the report at 20 s still covers thin time): audio loses 6 %
        loss = 0.06 if second <= 20 else 0.0
        change = _chromium_paused_second(gate, float(second), loss if second % 5 == 0 else None)
        if change is not None:
            changes.append((second, change))
    # the first report after the recovery (25 s) is one good one; the second (30 s) brings video
    assert changes == [(30, "on")]


def test_one_lucky_audio_report_is_not_enough() -> None:
    gate = VideoGate(now=0.0)
    gate.observe_loss("video", 0.6, 1.0)
    assert gate.observe_loss("video", 0.7, 2.0) == "off"
    for second in range(3, 60):
        if second % 5 == 0:
            loss: float | None = 0.0 if second % 10 == 0 else 0.06  # good, bad, good, ...
        else:
            loss = None
        assert _chromium_paused_second(gate, float(second), loss) is None
    assert gate.state == "off"


def test_after_an_outage_the_first_report_of_any_kind_is_ignored() -> None:
    gate = VideoGate(now=0.0)
    gate.observe_loss("video", 0.01, 1.0)
    gate.observe_loss("audio", 0.0, 1.2)
    # 20 s of nothing at all; then an audio report counting the outage, and a video one
    assert gate.observe_loss("audio", 0.9, 21.0) is None
    assert gate.observe_loss("video", 0.9, 21.1) is None  # the first bad one: not yet
    assert gate.observe_loss("video", 0.0, 22.0) is None
    assert gate.state == "on"


def test_remb_is_ignored_while_the_estimate_ramps_up() -> None:
    gate = VideoGate(now=0.0)
    gate.observe_loss("video", 0.05, 0.5)  # some video is being lost
    for t in range(1, 10):  # the grace: an estimate ramps up from the bottom
        assert gate.observe_remb(30_000, float(t)) is None
    assert gate.observe_remb(30_000, 10.5) is None
    assert gate.observe_remb(30_000, 11.5) == "off"


def test_a_low_estimate_without_loss_is_not_enough() -> None:
    gate = VideoGate(now=0.0)
    gate.observe_loss("video", 0.0, 11.0)
    for t in (12.0, 13.0, 14.0):
        assert gate.observe_remb(30_000, t) is None
    assert gate.state == "on"


async def test_paused_slot_sends_nothing_then_restarts_at_a_keyframe_without_a_gap() -> None:
    rig = Rig("video")
    try:
        rig.stream.on_rtp(packet(10, 0, KEY))
        rig.stream.on_rtp(packet(11, 3000, DELTA, marker=1))
        rig.slot.set_paused(True)
        rig.stream.on_rtp(packet(12, 6000, DELTA, marker=1))
        assert len(rig.sent) == 2
        rig.slot.set_paused(False)
        rig.stream.on_rtp(packet(13, 9000, DELTA, marker=1))  # not a keyframe: wait
        assert len(rig.sent) == 2
        rig.stream.on_rtp(packet(14, 12000, KEY))
        out = rig.parsed()
        assert len(out) == 3
        # the subscriber sees one continuous sequence: no hole for its NACKs to chase
        assert out[2].sequence_number == (out[1].sequence_number + 1) & 0xFFFF
        assert out[2].timestamp != out[1].timestamp
    finally:
        await rig.close()


async def test_a_publisher_resuming_after_an_outage_does_not_look_like_loss() -> None:
    rig = Rig("audio")
    try:
        rig.stream.on_rtp(packet(100, 0, b"\x00"))
        rig.stream.on_rtp(packet(101, 960, b"\x00"))
        # 40 s of nothing: the publisher's sequence ran on by 2000 while its link was down
        rig.stream.on_rtp(packet(2101, 960 * 2001, b"\x00"))
        out = rig.parsed()
        assert out[2].sequence_number == (out[1].sequence_number + 1) & 0xFFFF
    finally:
        await rig.close()


def test_an_estimate_after_an_outage_gets_its_ramp_up_time_again() -> None:
    gate = VideoGate(now=0.0)
    assert gate.observe_remb(800_000, 15.0) is None
    # 20 s without video: the subscriber's estimator starts from the bottom again
    assert gate.observe_remb(30_000, 35.0) is None
    assert gate.observe_remb(35_000, 36.0) is None
    assert gate.state == "on"
