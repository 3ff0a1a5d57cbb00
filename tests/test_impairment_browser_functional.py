"""A browser whose link dies comes back by itself (issue 7 item 5), in network namespaces.

Headless Chromium (the party) runs in its own network namespace behind a veth link to a real
server process, an aiortc publisher (the judge) on a clean link of its own (tests/impairment.py
`run_browser_blackout`). Once the page decodes the judge's video, the browser's link goes dark
twice in the same hearing, nobody touching the page:

- (a) all UDP to and from the browser dropped for 20 s, signalling TCP up;
- (b) every packet dropped for 30 s (the socket dies too). Longer than (a) so that the page's first
  new socket gives up its TCP handshake (OPEN_TIMEOUT_MS, 6 s) and the next ones are tried while
  the link is still dark; short enough that the server's grace (`reconnect_grace_seconds`, 30 s
  from when its heartbeat finds the socket dead, 7.5 to 22.5 s into the cut) always holds.

The drops are made on the wire (netdev hooks on the veth), where nobody's send fails, as on a real
link.

"Video back" is the judge's video decoding again in the page (`framesDecoded` of
`window.tingshen.pc.getStats()`, sampled every 200 ms in the page) at 10 fps or more for 2 s,
counted from the moment the drop rule goes. The page's banner (`data-testid="connection-state"`)
says `reconnecting` meanwhile and `connected` again after. What the page does (web/js/session.js):
Chromium calls the peer connection `disconnected` 5 to 7 s into the cut; after 8 s more
(DISCONNECTED_GRACE_MS) the attempt is dropped and a new socket and peer connection are made with
the same token after the backoff; the server keeps the participant's place for
`reconnect_grace_seconds` and the rejoin replaces the old participant (`leave` `replaced`, then
`join`, on the timeline).
`python tests/bench/impairment.py --scenarios browser-blackout` prints the same figures.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.impairment import (
    BrowserBlackoutResult,
    BrowserOutage,
    NotIsolated,
    check_isolated,
    run_browser_blackout,
)

pytestmark = [
    pytest.mark.impairment,
    pytest.mark.browser,
    pytest.mark.media,
    # one hearing for the module: ~75 s when all goes well, ~115 s if nothing comes back
    pytest.mark.timeout(180),
]

#: After the whole link returns, the page waits for its current socket's next SYN (1 and 3 s into
#: an attempt) or, past 3 s, for the next socket (6 s open timeout + 1 s): at most ~4 s, then
#: ~1 s to rejoin and decode (socket, welcome, offer/answer, ICE, DTLS, a keyframe). Measured
#: 0.4-1.1 s; the bound leaves room for a loaded machine.
FULL_CUT_BOUND_S = 8.0


@pytest.fixture(scope="module")
def blackouts(tmp_path_factory: pytest.TempPathFactory) -> BrowserBlackoutResult:
    try:
        check_isolated()
    except NotIsolated as exc:
        pytest.skip(str(exc))
    result = asyncio.run(
        run_browser_blackout(
            tmp_path_factory.mktemp("browser-blackout"),
            outages=(("udp", 20.0), ("all", 30.0)),
            observe=20.0,
        )
    )
    for outage in result.outages:
        print(
            f"\n{outage.what} blackout {outage.blackout_s:.0f} s: judge's video decoding again "
            f"{outage.video_back_s} s after the link returned (first frame {outage.first_frame_s} "
            f"s), banner connected after {outage.connected_s} s; the browser's camera and "
            f"microphone at the judge after {outage.uplink_video_back_s} / "
            f"{outage.uplink_audio_back_s} s; {outage.new_peer_connections} new peer "
            f"connection(s), {outage.new_participant_ids} rejoin(s)"
        )
        print(f"  banner: {outage.states}")
        print(f"  session: {outage.console}")
        print(f"  timeline: {[(t, kind) for t, kind, _ in outage.timeline if kind != 'mute']}")
    print(
        f"copies of the browser at the judge: at most {result.most_copies_at_peer}, "
        f"{result.copies_at_peer_at_end} at the end; others in the page: at most "
        f"{result.most_others_in_page}"
    )
    return result


def _outage(result: BrowserBlackoutResult, what: str) -> BrowserOutage:
    return next(o for o in result.outages if o.what == what)


def _gap_on_timeline(outage: BrowserOutage) -> None:
    """The server's timeline shows the outage: the link's evidence goes bad while it is dark,
    the dropped socket is a `disconnected` (not a departure), and the rejoin replaces the old
    participant with a new one."""
    assert any(level == "bad" for _, level, _ in outage.evidence), outage.evidence
    kinds = [(kind, data) for _, kind, data in outage.timeline]
    assert any(kind == "disconnected" for kind, _ in kinds), outage.timeline
    assert any(kind == "leave" and data.get("reason") == "replaced" for kind, data in kinds), (
        outage.timeline
    )
    assert not any(kind == "leave" and data.get("reason") != "replaced" for kind, data in kinds), (
        outage.timeline
    )
    joined = [t for t, kind, _ in outage.timeline if kind == "join"]
    connected = [
        t
        for t, kind, data in outage.timeline
        if kind == "connection" and data.get("state") == "connected"
    ]
    assert joined and connected and connected[-1] >= outage.blackout_s, outage.timeline


# -- (a) UDP dead, signalling up ------------------------------------------------------------------


def test_udp_blackout_video_back_within_5_s(blackouts: BrowserBlackoutResult) -> None:
    outage = _outage(blackouts, "udp")
    assert outage.frames_during_blackout == 0, outage  # the cut was real
    assert "reconnecting" in [state for _, state in outage.states], outage.states
    # the figure: media back within 5 s after the link returns (measured 0.6-2.8 s). At
    # this length the page's rejoin is under way when the link returns; how soon the server then
    # nominates depends on when aioice retransmits its own check (0.5, 1.5, 3.5, 7.5, 15.5 s after
    # the attempt began: it does not answer ours with a triggered check), so outages of 12 to 45 s
    # measured 0.05 to 7.2 s (tests/bench/impairment.py --scenarios browser-blackout --blackout N)
    assert outage.video_back_s is not None and outage.video_back_s <= 5.0, outage
    assert outage.connected_s is not None and outage.connected_s <= 5.0, outage
    # and the other way: the browser's camera and microphone reach the judge again
    assert outage.uplink_video_back_s is not None and outage.uplink_video_back_s <= 5.0, outage
    assert outage.uplink_audio_back_s is not None and outage.uplink_audio_back_s <= 5.0, outage


def test_udp_blackout_gap_on_timeline(blackouts: BrowserBlackoutResult) -> None:
    _gap_on_timeline(_outage(blackouts, "udp"))


# -- (b) everything cut ---------------------------------------------------------------------------


def test_full_cut_rejoins_by_itself(blackouts: BrowserBlackoutResult) -> None:
    outage = _outage(blackouts, "all")
    assert outage.frames_during_blackout == 0, outage
    assert "reconnecting" in [state for _, state in outage.states], outage.states
    # a new socket and peer connection, with the same token: the server replaced the old
    # participant (same invitation) rather than adding one
    assert outage.new_peer_connections >= 1 and outage.new_participant_ids >= 1, outage
    # measured 0.4-0.9 s (30 s cut), 0.5-1.1 s (20 s); the bound: FULL_CUT_BOUND_S
    assert outage.video_back_s is not None and outage.video_back_s <= FULL_CUT_BOUND_S, outage
    assert outage.connected_s is not None and outage.connected_s <= FULL_CUT_BOUND_S, outage
    assert outage.uplink_video_back_s is not None, outage
    assert outage.uplink_video_back_s <= FULL_CUT_BOUND_S, outage


def test_full_cut_gap_on_timeline(blackouts: BrowserBlackoutResult) -> None:
    _gap_on_timeline(_outage(blackouts, "all"))


# -- both ---------------------------------------------------------------------------------------


def test_the_browser_never_appears_twice(blackouts: BrowserBlackoutResult) -> None:
    # the judge's list of participants, replayed from the server's messages: one entry for the
    # browser's invitation at any moment (each rejoin's `participant-left` comes before its
    # `participant-joined`), and one at the end
    assert blackouts.most_copies_at_peer == 1, blackouts
    assert blackouts.copies_at_peer_at_end == 1, blackouts
    # the page never listed anyone but the judge
    assert blackouts.most_others_in_page == 1, blackouts
    assert blackouts.peer_error is None, blackouts
