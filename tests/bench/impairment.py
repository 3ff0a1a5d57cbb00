"""Impairment benchmark: what thin, lossy and broken links do to a hearing, scenario by scenario.

    unshare -n sh -c 'ip link set lo up; python tests/bench/impairment.py'
    python tests/bench/impairment.py [--json]
                                     [--scenarios thin-links,blackout,blackout-all,lossy-publisher,
                                                  browser-blackout,browser-thin]
                                     [--seconds 30] [--blackout 20] [--logs DIR]
                                     [--experiment no-red] [--thin-kbit 400] [--thin-loss 5]

Runs the harness of tests/impairment.py (per-client network namespaces on veth links, `tc tbf`
for rate, nftables `numgen random` for loss and blackouts) and prints scenario -> figures:

- thin-links: one publisher (1 Mbit/s VP8 + Opus) on a clean link and, in the same hearing,
  subscribers on a clean link (the baseline), behind 512 kbit/s + 5 % loss, and behind 10 % loss.
  Per subscriber: audio frames delivered (decoded by the aiortc client / expected by RTP
  timestamp; also from the first audio frame, start-up included), audio and video packets that
  reached the client's RTP stack, video fps min/mean, whether and when the server paused video,
  and the publisher's recording coverage (largest hole between segments).
- blackout: two participants publish and subscribe; all UDP of one link is dropped for
  `--blackout` seconds. Per direction and kind: seconds until media is back (sustained: audio at
  25 fps, video at 10 fps for 2 s), the first frame at all, the rate at the end; connection
  states, socket, the gate's messages, and what the server's network evidence said meanwhile.
- lossy-publisher: the publisher behind 5 % loss, one clean subscriber: what the recording
  keeps of the publisher's audio (the recorder takes its frames from aiortc's jitter buffer).
- blackout-all: the same with signalling TCP cut too (the server drops the socket after its 15 s
  heartbeat; HearingClient itself never rejoins, the terminal application does).
- browser-blackout: headless Chromium (in its own namespace) and an aiortc publisher in one
  hearing; the browser's link loses all UDP for `--blackout` seconds, then everything for as long
  (dropped on the wire). Per outage: seconds until the page decodes the publisher's video again
  (sustained 10 fps for 2 s), its banner says `connected`, and the browser's camera and microphone
  reach the publisher again; the banner's states, the page's own log (why it dropped an attempt),
  how many times it rejoined, and the server's timeline about it.
- browser-thin: headless Chromium (in its own namespace) subscribes to an aiortc publisher's
  1 Mbit/s video; its link is clean, then `--thin-kbit` kbit/s with `--thin-loss` % loss for 20 s
  (`--seconds` if given below 30), then clean again (tests/impairment_browser.py). Seconds until the
  server pauses the video, the page's video packets stop and its `video-paused` notice shows; the
  page's audio meanwhile (packets/s, samples/s, concealed %); seconds from the link's recovery
  until the server resumes video, the notice goes and the video decodes; the notice's changes
  while the link was thin.

`--experiment no-red` runs the server with redundant audio off (`audio_redundancy = "off"`): the
baseline for what RED (server/sfu/redundancy.py, server/sfu/red_transport.py) buys. The client keeps
its gap-skipping jitter buffer (terminal/jitter.py) either way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.impairment import (  # noqa: E402 (the path above first)
    BlackoutResult,
    BrowserBlackoutResult,
    Impairment,
    NotIsolated,
    ThinLinksResult,
    check_isolated,
    log,
    run_blackout,
    run_browser_blackout,
    run_thin_links,
)
from tests.impairment_browser import BrowserThinResult, run_browser_thin  # noqa: E402

SCENARIOS = (
    "thin-links",
    "blackout",
    "blackout-all",
    "lossy-publisher",
    "browser-blackout",
    "browser-thin",
)
EXPERIMENT_SERVER = ("-m", "tests.bench.impairment", "serve-without-red")


def serve_without_red(argv: list[str]) -> int:
    """`server.cli serve` with redundant audio switched off (neither offered nor sent): the
    baseline for what RED buys on these links."""
    import os

    from server import cli

    os.environ["TINGSHEN_AUDIO_REDUNDANCY"] = "off"
    return int(cli.main(argv) or 0)


def thin_links_rows(name: str, result: ThinLinksResult) -> list[dict[str, Any]]:
    rows = []
    for figures in result.subscribers.values():
        rows.append(
            {
                "scenario": name,
                "link": figures.impairment,
                **asdict(figures),
            }
        )
    return rows


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def print_thin_links(name: str, result: ThinLinksResult) -> None:
    window = result.window[1] - result.window[0]
    print(
        f"\n{name}: publisher link {result.publisher_link} (window {window:.0f} s from 4 s after "
        f"joining; publisher video at the server: {result.publisher_video_kbps:.0f} kbit/s)"
    )
    header = (
        f"{'link':<24}{'audio frames%':>14}{'(from start)':>13}{'audio RTP%':>11}"
        f"{'video RTP%':>11}{'fps min/mean':>14}{'stall s':>9}  video paused (s after join)"
    )
    print(header)
    print("-" * len(header) + "-" * 10)
    for f in result.subscribers.values():
        paused = "no"
        if f.video_paused:
            paused = "off " + ",".join(f"{t:g}" for t in f.paused_at_s)
            if f.resumed_at_s:
                paused += " / on " + ",".join(f"{t:g}" for t in f.resumed_at_s)
        print(
            f"{f.impairment:<24}{f.audio_delivered_pct:>14.1f}{f.audio_whole_pct:>13.1f}"
            f"{_pct(f.audio_rtp_pct):>11}{_pct(f.video_rtp_pct):>11}"
            f"{f'{f.video_fps_min}/{f.video_fps_mean:.1f}':>14}{f.video_longest_gap_s:>9.2f}  {paused}"
        )
    for track in result.recording:
        print(
            f"recording of the publisher's {track.kind}: {track.segments} segments, "
            f"largest gap {track.worst_gap_s:.2f} s, lost {track.lost}, drop entries {track.drops}"
        )
    print(
        "publisher's audio frames in the recording / frames it sent: "
        f"{result.recorded_audio_pct:.1f} %"
    )
    if not result.recording_found:
        print("recording: not finalised (no manifest end entry)")


def print_blackout(name: str, result: BlackoutResult) -> None:
    what = "all traffic" if result.tcp_too else "UDP only, signalling TCP up"
    print(f"\n{name}: {result.blackout_s:.0f} s, {what}")
    print(
        f"{'direction':<12}{'kind':<7}{'back after s':>13}{'first frame s':>14}{'fps at end':>11}"
    )
    for r in result.recoveries:
        back = "never" if r.seconds is None else f"{r.seconds:.2f}"
        first = "-" if r.first_frame_s is None else f"{r.first_frame_s:.2f}"
        label = "server->cut" if r.direction == "down" else "cut->peer"
        print(f"{label:<12}{r.kind:<7}{back:>13}{first:>14}{r.fps_after:>11.1f}")
    print(f"cut participant's connection states (s after the cut): {result.impaired_states}")
    closed = result.impaired_socket_closed_at
    print(
        f"cut participant's socket: {'stayed open' if closed is None else f'closed at {closed} s'}"
    )
    print(f"gate messages to the cut participant: {result.impaired_messages}")
    print(f"gate messages to the other participant: {result.peer_messages}")
    print(
        "server timeline about the cut participant: "
        + ", ".join(f"{t:g} {kind}" for t, kind, _ in result.timeline)
    )
    levels = sorted({level for _, level, _ in result.evidence_during_blackout})
    kbps = [k for _, _, k in result.evidence_during_blackout]
    print(
        f"network evidence while dark: {len(result.evidence_during_blackout)} samples, "
        f"levels {levels}, kbps in max {max(kbps, default=0):.0f}"
    )


def print_browser_blackout(name: str, result: BrowserBlackoutResult) -> None:
    where = "on the wire" if result.wire else "in the server's IP stack"
    print(f"\n{name}: Chromium's link dark, dropped {where} (s after the link returned)")
    print(
        f"{'outage':<14}{'video back':>11}{'first frame':>12}{'banner ok':>10}"
        f"{'cam at peer':>12}{'mic at peer':>12}{'rejoins':>8}"
    )

    def s(value: float | None) -> str:
        return "never" if value is None else f"{value:.2f}"

    for o in result.outages:
        label = f"{o.what} {o.blackout_s:.0f} s"
        print(
            f"{label:<14}{s(o.video_back_s):>11}{s(o.first_frame_s):>12}{s(o.connected_s):>10}"
            f"{s(o.uplink_video_back_s):>12}{s(o.uplink_audio_back_s):>12}"
            f"{o.new_participant_ids:>8}"
        )
    for o in result.outages:
        print(f"{o.what} {o.blackout_s:.0f} s, s after the cut:")
        print("  banner: " + ", ".join(f"{t:g} {state}" for t, state in o.states))
        print("  page: " + "; ".join(f"{t:g} {text}" for t, text in o.console))
        what = []
        for t, kind, data in o.timeline:
            if kind in ("disconnected", "leave", "join", "connection"):
                detail = data.get("state") or data.get("reason")
                what.append(f"{t:g} {kind}" + (f" ({detail})" if detail else ""))
        print("  server timeline: " + ", ".join(what))
        levels = sorted({level for _, level, _ in o.evidence})
        print(f"  network evidence while dark: {len(o.evidence)} samples, levels {levels}")
    print(
        f"the browser in the publisher's list: at most {result.most_copies_at_peer} at once, "
        f"{result.copies_at_peer_at_end} at the end"
    )


def print_browser_thin(name: str, result: BrowserThinResult) -> None:
    def s(value: float | None) -> str:
        return "never" if value is None else f"{value:.2f}"

    print(f"\n{name}: Chromium behind {result.impairment} for {result.thin_s:.0f} s")
    print(
        f"thin link to: server pauses video {s(result.server_off_s)} s, page's video packets "
        f"stop {s(result.video_stopped_s)} s, notice shown {s(result.notice_shown_s)} s "
        f"({result.notice_text!r})"
    )
    print(
        f"clean link to: server resumes video {s(result.server_on_after_s)} s, notice hidden "
        f"{s(result.notice_hidden_after_s)} s, video decoding {s(result.video_back_after_s)} s"
    )
    a = result.audio
    if a is None:
        print("audio while paused: no paused stretch to measure")
    else:
        print(
            f"audio while paused ({a.seconds:.0f} s): {a.packets_per_s:.1f} packets/s (worst "
            f"second {a.worst_packets_per_s:.0f}), {a.samples_per_s:.0f} samples/s, lost "
            f"{a.lost_pct:.1f} %, concealed {a.concealed_pct:.2f} % ({a.concealment_events} "
            f"events); video packets {result.video_packets_while_paused}"
        )
    print(
        "notice while thin (s, shown): "
        + ", ".join(f"{t:g} {'on' if shown else 'off'}" for t, shown in result.flips_while_thin)
    )
    print("server's gate (s after thin): " + ", ".join(f"{t:g} {v}" for t, v in result.gate))


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["serve-without-red"]:
        return serve_without_red(args_in[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--scenarios", default="thin-links,blackout")
    parser.add_argument("--seconds", type=float, default=30.0, help="thin-links duration")
    parser.add_argument("--blackout", type=float, default=20.0, help="blackout length, s")
    parser.add_argument("--after", type=float, default=15.0, help="observation after it, s")
    parser.add_argument("--logs", help="keep server/client logs, reports and data here")
    parser.add_argument("--experiment", choices=("no-red",), default=None)
    parser.add_argument("--thin-kbit", type=int, default=400, help="browser-thin link rate")
    parser.add_argument("--thin-loss", type=int, default=5, help="browser-thin link loss, %%")
    args = parser.parse_args(args_in)
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")
    try:
        check_isolated()
    except NotIsolated as exc:
        print(f"refusing to run: {exc}", file=sys.stderr)
        return 2
    workdir = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="tingshen-imp-"))
    command = EXPERIMENT_SERVER if args.experiment else ("-m", "server.cli")
    out: dict[str, Any] = {"experiment": args.experiment, "scenarios": {}}
    started = time.monotonic()
    try:
        for name in scenarios:
            log(f"scenario {name}")
            if name in ("thin-links", "lossy-publisher"):
                lossy_pub = name == "lossy-publisher"
                thin = run_thin_links(
                    workdir / name,
                    seconds=args.seconds,
                    server_command=command,
                    subscribers=("clean",) if lossy_pub else ("clean", "thin", "lossy"),
                    publisher=Impairment(loss_pct=5) if lossy_pub else None,
                )
                out["scenarios"][name] = {"rows": thin_links_rows(name, thin), **thin.to_json()}
                if not args.json:
                    print_thin_links(name, thin)
            elif name == "browser-blackout":
                page = asyncio.run(
                    run_browser_blackout(
                        workdir / name,
                        outages=(("udp", args.blackout), ("all", args.blackout)),
                        observe=max(args.after, 20.0),
                    )
                )
                out["scenarios"][name] = page.to_json()
                if not args.json:
                    print_browser_blackout(name, page)
            elif name == "browser-thin":
                thin_page = asyncio.run(
                    run_browser_thin(
                        workdir / name,
                        thin=Impairment(rate_kbit=args.thin_kbit, loss_pct=args.thin_loss),
                        thin_s=args.seconds if args.seconds < 30 else 20.0,
                        server_command=command,
                    )
                )
                out["scenarios"][name] = thin_page.to_json()
                if not args.json:
                    print_browser_thin(name, thin_page)
            else:
                dark = run_blackout(
                    workdir / name,
                    blackout=args.blackout,
                    after=args.after,
                    tcp_too=name == "blackout-all",
                    server_command=command,
                )
                out["scenarios"][name] = dark.to_json()
                if not args.json:
                    print_blackout(name, dark)
    finally:
        if not args.logs:
            shutil.rmtree(workdir, ignore_errors=True)
    out["seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
    else:
        print(
            f"\n({out['seconds']:.0f} s{', experiment ' + args.experiment if args.experiment else ''})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
