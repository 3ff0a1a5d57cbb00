"""Audio first in a real browser behind a thin link (issue 7 item 3), in network namespaces.

Headless Chromium (the party) in its own namespace behind a veth link subscribes to an aiortc
publisher (the judge: 1 Mbit/s of VP8 + Opus, on a clean link of its own), through a real server
process (tests/impairment_browser.py `run_browser_thin`). Once the page decodes the judge's video,
the browser's link becomes 400 kbit/s with 5 % UDP loss both ways for 20 s, then clean again:

1. the server stops forwarding video to the browser and the page shows the `video-paused` notice,
   visible, in the page's language;
2. audio keeps flowing meanwhile (the page's `inbound-rtp` audio stats);
3. once the link is clean the server tries video again and the notice goes;
4. the notice does not flap while the link stays thin.

What to expect of the server (server/sfu/quality.py): video goes off after two bad receiver
reports of one kind in a row. Chromium reports video about every second (and with every NACK
burst), so that is 1-2 s into the thin link. It comes back after the hold (5 s from going off,
long over when the link recovers) once the audio reports have been good twice in a row over 3 s
or more; Chromium reports audio only every 2.5-7.5 s (5 s on average), and its first report after
the recovery still counts some thin time: 2.5 to ~22 s after the link is clean, 10 s typically.
While the link is thin its audio reports show its 5 % loss (bad: over 3 %), so there is no probe;
a lucky pair of reports could make one, and then the hold doubles (5, 10, 20 s).
`python tests/bench/impairment.py --scenarios browser-thin` prints the same figures.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from server.sfu.quality import GateSettings
from tests.impairment import NotIsolated, check_isolated
from tests.impairment_browser import NOTICE_TEXT, BrowserThinResult, run_browser_thin

pytestmark = [
    pytest.mark.impairment,
    pytest.mark.browser,
    pytest.mark.media,
    # one hearing for the module: ~55 s when all goes well, ~85 s if video never comes back
    pytest.mark.timeout(150),
]

#: Thin link to notice on the page. Measured 1.5-2.1 s (the server's decision 1.0-1.6 s in).
NOTICE_BOUND_S = 6.0
#: Clean link to notice gone (the server's `video-resumed`): see the module's docstring for the
#: 2.5-22 s one can expect from Chromium's pace of audio reports; measured 6.5-11.3 s.
RESUME_BOUND_S = 25.0


@pytest.fixture(scope="module")
def thin(tmp_path_factory: pytest.TempPathFactory) -> BrowserThinResult:
    try:
        check_isolated()
    except NotIsolated as exc:
        pytest.skip(str(exc))
    result = asyncio.run(run_browser_thin(tmp_path_factory.mktemp("browser-thin")))
    print(
        f"\n{result.impairment} for {result.thin_s:.0f} s: server paused video after "
        f"{result.server_off_s} s, page's video packets stopped at {result.video_stopped_s} s, "
        f"notice shown after {result.notice_shown_s} s ({result.notice_text!r})"
    )
    print(
        f"link clean again: server resumed video after {result.server_on_after_s} s, notice "
        f"hidden after {result.notice_hidden_after_s} s, video decoding (10 fps for 2 s) after "
        f"{result.video_back_after_s} s"
    )
    print(f"notice while thin (s, shown): {result.flips_while_thin}; gate: {result.gate}")
    print(
        f"audio while paused: {result.audio}; video packets while paused: "
        f"{result.video_packets_while_paused}; concealed on the clean link before: "
        f"{result.audio_concealed_pct_clean} %"
    )
    print(f"page states {result.states}, peer connections {result.peer_connections}")
    return result


def test_thin_link_pauses_video_and_shows_the_notice(thin: BrowserThinResult) -> None:
    # the server decided, and the page got no more video packets
    assert thin.server_off_s is not None and thin.server_off_s <= NOTICE_BOUND_S, thin.gate
    assert thin.video_stopped_s is not None, thin
    assert thin.video_stopped_s - thin.server_off_s <= 2.0, thin
    assert thin.video_packets_while_paused == 0, thin
    # the notice: rendered, in the page's language (zh-CN), as Playwright sees it too
    assert thin.notice_shown_s is not None and thin.notice_shown_s <= NOTICE_BOUND_S, thin
    assert thin.notice_text == NOTICE_TEXT, thin.notice_text
    assert thin.notice_seen_text == NOTICE_TEXT, thin.notice_seen_text
    # the thin link did not cost the page its session (which would hide the notice by itself)
    assert thin.peer_connections == 1 and "reconnecting" not in thin.states, thin.states


def test_audio_keeps_flowing_while_video_is_paused(thin: BrowserThinResult) -> None:
    audio = thin.audio
    assert audio is not None and audio.seconds >= 10.0, audio
    # the link really lost audio packets (measured 4.2-6.1 % of them) ...
    assert audio.lost_pct >= 2.0, audio
    # ... and the rest came: 50 packets/s less the loss (measured 47.0-48.6/s, worst second
    # 42-45), played in real time (48 000 samples/s; measured 47 963-48 000)
    assert audio.packets_per_s >= 40.0, audio
    assert audio.worst_packets_per_s >= 30.0, audio
    assert audio.samples_per_s >= 45_600, audio
    # the losses were repaired (RED from the server, Opus FEC) before they were heard: samples
    # concealed by NetEq measured 0.0-1.2 % (0.0-0.3 % on the clean link before)
    assert audio.concealed_pct <= 4.0, audio


def test_video_comes_back_when_the_link_recovers(thin: BrowserThinResult) -> None:
    assert thin.server_on_after_s is not None, thin.gate
    assert 0.0 <= thin.server_on_after_s <= RESUME_BOUND_S, thin.gate
    hidden = thin.notice_hidden_after_s
    assert hidden is not None and 0.0 <= hidden <= RESUME_BOUND_S, thin
    # the server waits for a keyframe before it forwards again (measured 0.05-0.25 s after)
    assert thin.video_back_after_s is not None, thin
    assert thin.video_back_after_s <= hidden + 3.0, thin


def test_the_notice_does_not_flap_while_the_link_is_thin(thin: BrowserThinResult) -> None:
    shows = [t for t, shown in thin.flips_while_thin if shown]
    hides = [t for t, shown in thin.flips_while_thin if not shown]
    assert shows, thin.flips_while_thin
    # measured: shown once, never hidden. What the gate allows: a hide is a probe, tried no
    # sooner than the hold after video went off, and the hold doubles each time a probe fails
    settings = GateSettings()
    hold = settings.hold
    for previous, later in itertools.pairwise(shows):
        assert later - previous >= hold, thin.flips_while_thin
        hold = min(hold * 2, settings.max_hold)
    assert len(hides) <= 2 and len(shows) <= 3, thin.flips_while_thin
    # every change on the page is the server's: as many as its decisions while thin (a decision
    # made in the last second of it may show after)
    decisions = [state for t, state in thin.gate if 0 <= t < thin.thin_s]
    assert abs(len(decisions) - len(thin.flips_while_thin)) <= 1, (thin.gate, thin.flips_while_thin)
