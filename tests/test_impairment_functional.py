"""Thin, lossy and broken links (issue 7): audio first, loss repair, reconnect, in namespaces.

Each client runs in its own network namespace behind a veth link to a real server process
(tests/impairment.py builds it; the suite runs under `unshare -n` as root). Two sessions, run once
for the whole module:

- *thin links*: one publisher on a clean link (1 Mbit/s VP8 + Opus) and, in the same hearing,
  three subscribers: on a clean link (the control), behind 512 kbit/s + 5 % loss (a), behind 10 %
  loss (b). Figures over a window from 4 s after everyone joined (connection set-up) to the end;
- *blackout*: two participants publish and subscribe; all UDP to and from one of them is dropped
  for 20 s (signalling TCP stays up), then the link returns (c).

"Audio frames delivered" is received / expected: the frames the subscriber's aiortc receiver
decoded, against the frames the publisher sent over the same stretch of media time (by RTP
timestamp; the publisher's own wall-clock count agrees within a frame or two). The RTP-level figure
is what reached the client's RTP stack before aiortc's jitter buffer: what the link delivered
(packets repaired from redundant audio do not count there). `python tests/bench/impairment.py`
prints every figure; the thresholds below sit on the generous side of what it measured, except the
issue's own (≥ 95 %, ≥ 90 %, 5 s).
"""

from __future__ import annotations

import pytest

from tests.impairment import (
    BlackoutResult,
    Impairment,
    NotIsolated,
    ThinLinksResult,
    check_isolated,
    run_blackout,
    run_thin_links,
)

pytestmark = [pytest.mark.impairment, pytest.mark.media]

# Audio frames: the server wraps a lossy subscriber's audio in RED (server/sfu/redundancy.py) once
# its receiver reports show loss, and the client repairs lost packets before aiortc's jitter
# buffer sees a gap (terminal/red_receiver.py). Without it aiortc's buffer discarded the frames it
# prefetched at every gap: 73 % / 55 % decoded at 5 % / 10 % loss (previous session's figures).


@pytest.fixture(scope="module")
def thin_links(tmp_path_factory: pytest.TempPathFactory) -> ThinLinksResult:
    try:
        check_isolated()
    except NotIsolated as exc:
        pytest.skip(str(exc))
    result = run_thin_links(tmp_path_factory.mktemp("thin-links"), seconds=30.0)
    for figures in result.subscribers.values():
        print(f"\n{figures}")
    print(f"recording: {result.recording}")
    return result


@pytest.fixture(scope="module")
def lossy_publisher(tmp_path_factory: pytest.TempPathFactory) -> ThinLinksResult:
    try:
        check_isolated()
    except NotIsolated as exc:
        pytest.skip(str(exc))
    result = run_thin_links(
        tmp_path_factory.mktemp("lossy-publisher"),
        seconds=20.0,
        subscribers=("clean",),
        publisher=Impairment(loss_pct=5),
    )
    print(f"\n{result.subscribers['clean']}\nrecorded audio: {result.recorded_audio_pct} %")
    return result


@pytest.fixture(scope="module")
def blackout(tmp_path_factory: pytest.TempPathFactory) -> BlackoutResult:
    try:
        check_isolated()
    except NotIsolated as exc:
        pytest.skip(str(exc))
    result = run_blackout(tmp_path_factory.mktemp("blackout"), blackout=20.0, after=12.0)
    print(f"\nrecoveries: {result.recoveries}")
    print(f"cut participant got: {result.impaired_messages}; peer got: {result.peer_messages}")
    return result


def _control_is_sound(result: ThinLinksResult) -> None:
    """The clean subscriber gets everything: otherwise the machine, not the link, is measured."""
    clean = result.subscribers["clean"]
    assert (clean.audio_rtp_pct or 0) >= 99.0 and clean.audio_delivered_pct >= 98.0, clean
    assert clean.video_fps_mean >= 20.0, clean


# -- (a) 512 kbit/s + 5 % loss ------------------------------------------------------------------


def test_thin_link_pauses_video_and_keeps_audio(thin_links: ThinLinksResult) -> None:
    _control_is_sound(thin_links)
    thin, clean = thin_links.subscribers["thin"], thin_links.subscribers["clean"]
    # 1 Mbit/s of video cannot cross 512 kbit/s: the server pauses it (and says so) or it degrades
    assert thin.video_paused or thin.video_fps_mean < 0.8 * clean.video_fps_mean, thin
    if thin.video_paused:
        assert any(e["data"]["video"] == "off" for e in thin_links.gate_events)
    # audio is never dropped for video's sake: what reaches the client is what the link lets
    # through (5 % random loss) but for the ~3 s each probe of the video overloads it again
    # (measured 92.6-95.2 %, with none to two probes in the window)
    assert (thin.audio_rtp_pct or 0) >= 85.0, thin
    # the figure: >= 95 % of audio frames delivered (decoded) behind 5 % loss
    # (measured 100.0 % in the window, 96.8 % from the first frame, start-up included)
    assert thin.audio_delivered_pct >= 95.0, thin


def test_thin_link_recording_is_continuous(thin_links: ThinLinksResult) -> None:
    assert thin_links.recording_found, "the recording was not finalised"
    kinds = {t.kind for t in thin_links.recording}
    assert kinds == {"audio", "video"}, thin_links.recording
    for track in thin_links.recording:
        assert track.segments >= 5, track
        assert track.worst_gap_s <= 3.0, track
        assert track.lost == 0, track


# -- (b) 10 % loss --------------------------------------------------------------------------------


def test_lossy_link_repairs_video_and_keeps_audio(thin_links: ThinLinksResult) -> None:
    _control_is_sound(thin_links)
    lossy = thin_links.subscribers["lossy"]
    # measured 89.2-91.3 %: the link's 10 % and no more
    assert (lossy.audio_rtp_pct or 0) >= 86.0, lossy
    # the figure: >= 90 % of audio frames delivered (decoded) behind 10 % loss
    # (measured 100.0 % in the window, 98.9 % from the first frame)
    assert lossy.audio_delivered_pct >= 90.0, lossy
    # NACKs answered from the subscriber's history repair the video (measured 100 %, 30 fps)
    assert (lossy.video_rtp_pct or 0) >= 95.0, lossy
    if not lossy.video_paused:
        assert lossy.video_fps_mean >= 20.0, lossy
        # never stalls for good (aiortc #1416-#1418): a lost retransmission can hold a frame back
        # until the keyframe it asks for (one 1-s bin with no frame was seen in 1 of ~8 runs,
        # then 30+ fps as it catches up); a stall for good would run to the window's end
        assert lossy.video_longest_gap_s <= 3.0, lossy


# -- a publisher behind 5 % loss (a county court's microphone) -------------------------------------


def test_lossy_publisher_is_repaired_for_the_record_and_the_court(
    lossy_publisher: ThinLinksResult,
) -> None:
    """The terminal's client sends RED while the server reports loss; the server unwraps it before
    the recorder and the forwarder (measured: recording 99.8 %, clean subscriber 100 %; without
    redundancy 95.7 % and 78.5 %)."""
    assert lossy_publisher.recorded_audio_pct >= 97.0, lossy_publisher.recorded_audio_pct
    clean = lossy_publisher.subscribers["clean"]
    assert clean.audio_delivered_pct >= 95.0, clean
    for track in lossy_publisher.recording:
        assert track.lost == 0 and track.worst_gap_s <= 3.0, track


# -- (c) a 20 s blackout ---------------------------------------------------------------------------


def test_blackout_audio_is_back_within_5_s(blackout: BlackoutResult) -> None:
    for direction in ("down", "up"):
        seconds = blackout.recovery(direction, "audio")
        assert seconds is not None and seconds <= 5.0, blackout.recoveries
    # without user action: the same socket and peer connection carried on (ICE consent outlives
    # a 20 s outage; HearingClient has no reconnect of its own)
    assert blackout.impaired_socket_closed_at is None, blackout
    assert "failed" not in [state for _, state in blackout.impaired_states], blackout


def test_blackout_video_is_back_within_5_s(blackout: BlackoutResult) -> None:
    for direction in ("down", "up"):
        seconds = blackout.recovery(direction, "video")
        assert seconds is not None and seconds <= 5.0, blackout.recoveries


def test_harness_refuses_a_shared_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch a namespace with real interfaces (e.g. pytest run outside `unshare -n`)."""
    import tests.impairment as harness

    monkeypatch.setattr(harness, "_interfaces", lambda: ["lo", "eth0", "tsimp1s"])
    monkeypatch.setattr(harness.os, "geteuid", lambda: 0)
    monkeypatch.setattr(harness.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(NotIsolated, match="eth0"):
        harness.Lab(["x"]).__enter__()
