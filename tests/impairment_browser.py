"""Audio first in a real browser: Chromium behind a thin link, an aiortc publisher on a clean one.

How this works. The harness of tests/impairment.py builds two links: the publisher (the judge, an
aiortc `ClientProcess` sending 1 Mbit/s of grainy VP8 + Opus, as in the thin-links scenario) on a
clean one, and headless Chromium (the party) in its own namespace behind the other
(`NamespaceHolder` + `chromium_wrapper`). Once the page decodes the judge's video on the clean
link, the browser's link becomes thin (`tc tbf` rate + random UDP loss, both directions) for a
while, then clean again. An in-page sampler (`PAGE_SAMPLER` below) records, every 200 ms, what the
page's peer connection received (video frames and packets, audio packets, samples and concealed
samples: `RTCInboundRtpStreamStats`) and whether the `video-paused` notice is shown; a
MutationObserver on the notice records every show and hide as it happens. The server's own
decisions come from the recording's timeline (`video-gate` events).

`run_browser_thin` is what tests/test_impairment_browser_thin_functional.py and
`python tests/bench/impairment.py --scenarios browser-thin` run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.impairment import (
    BROWSER_NAME,
    SUSTAINED_FPS,
    ClientProcess,
    Impairment,
    Lab,
    ServerProcess,
    _event_time,
    browser_in_namespace,
    decoded_frame_times,
    invite_via,
    log,
    read_jsonl,
    sustained_after,
)

#: The notice's text on a page in the default language (web/js/i18n.js, zh-CN `room.videoPaused`).
NOTICE_TEXT = "视频已暂停：网络不佳（仅音频）"

#: Runs in the hearing page. `__thinSamples`, every 200 ms: {t (wall s), pc (1, 2, ... in the order
#: the page made its peer connections), state (tingshen.state), paused (tingshen.videoPaused),
#: shown (the notice is rendered), vFrames/vPackets (video framesDecoded/packetsReceived), aPackets,
#: aLost, aSamples (totalSamplesReceived), aConcealed (concealedSamples), aSilent
#: (silentConcealedSamples), aEvents (concealmentEvents)}. `__noticeFlips`: [wall s, shown, text],
#: the notice's state at the start and at every change.
PAGE_SAMPLER = """
() => {
  if (window.__thinSamples) return;
  const samples = [];
  const flips = [];
  window.__thinSamples = samples;
  window.__noticeFlips = flips;
  const notice = document.querySelector('[data-testid="video-paused"]');
  const shown = () => {
    if (!notice || notice.hidden) return false;
    const box = notice.getBoundingClientRect();
    return box.width > 0 && box.height > 0 && getComputedStyle(notice).visibility !== "hidden";
  };
  let last = shown();
  flips.push([Date.now() / 1000, last, notice ? notice.textContent : null]);
  const look = () => {
    const now = shown();
    if (now !== last) {
      last = now;
      flips.push([Date.now() / 1000, now, notice.textContent]);
    }
  };
  // the notice itself, and the room around it (it is only seen once the room is)
  new MutationObserver(look).observe(document.body, {
    attributes: true, attributeFilter: ["hidden", "class", "style"], subtree: true,
  });
  const ids = new WeakMap();
  let made = 0;
  let busy = false;
  setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      look();
      const t = window.tingshen;
      const sample = {
        t: Date.now() / 1000, pc: null, state: t.state, paused: t.videoPaused, shown: shown(),
        vFrames: 0, vPackets: 0, aPackets: 0, aLost: 0, aSamples: 0, aConcealed: 0, aSilent: 0,
        aEvents: 0,
      };
      const pc = t.pc;
      if (pc) {
        if (!ids.has(pc)) ids.set(pc, ++made);
        sample.pc = ids.get(pc);
        const stats = await pc.getStats();
        stats.forEach((s) => {
          if (s.type !== "inbound-rtp") return;
          if (s.kind === "video") {
            sample.vFrames += s.framesDecoded || 0;
            sample.vPackets += s.packetsReceived || 0;
          } else if (s.kind === "audio") {
            sample.aPackets += s.packetsReceived || 0;
            sample.aLost += s.packetsLost || 0;
            sample.aSamples += s.totalSamplesReceived || 0;
            sample.aConcealed += s.concealedSamples || 0;
            sample.aSilent += s.silentConcealedSamples || 0;
            sample.aEvents += s.concealmentEvents || 0;
          }
        });
      }
      samples.push(sample);
    } finally {
      busy = false;
    }
  }, 200);
}
"""


@dataclass
class AudioWhilePaused:
    """What the page's audio receiver did over the stretches the notice was shown while the link
    was thin (the first second of each left out: packets in flight)."""

    seconds: float
    packets_per_s: float  # Opus packets (RED or plain, one per 20 ms) that arrived
    worst_packets_per_s: float  # the lowest rate over any 1 s of those stretches
    samples_per_s: float  # totalSamplesReceived growth: 48000 is real time
    concealed_pct: float  # concealedSamples / totalSamplesReceived growth, in %
    silent_concealed_pct: float
    concealment_events: int
    lost_pct: float  # packetsLost / (packetsReceived + packetsLost) growth, in %


@dataclass
class BrowserThinResult:
    """Seconds are counted from the link becoming thin (`*_s`) or clean again (`*_after_s`)."""

    impairment: str
    thin_s: float  # how long the link was thin
    #: the notice shown (rendered, not just not-hidden), and its text then
    notice_shown_s: float | None
    notice_text: str | None
    #: the server's first `video-gate` off for the browser
    server_off_s: float | None
    #: the page's video packets stop (none for 1 s) after the server turned video off
    video_stopped_s: float | None
    #: the notice hidden again, for good, after the link recovered; the server's `video-resumed`
    notice_hidden_after_s: float | None
    server_on_after_s: float | None
    #: the judge's video decoding again in the page at 10 fps for 2 s
    video_back_after_s: float | None
    #: the notice's shows and hides while the link was thin, (s, shown)
    flips_while_thin: list[tuple[float, bool]]
    #: every `video-gate` decision about the browser, (s after thin, "on"/"off")
    gate: list[tuple[float, str]]
    #: video packets received while the notice was shown (first second of each stretch left out)
    video_packets_while_paused: int
    audio: AudioWhilePaused | None
    #: concealed audio samples (%) on the clean link before it went thin, for comparison
    audio_concealed_pct_clean: float | None
    #: peer connections the page made (1: it kept its first) and its session states seen
    peer_connections: int
    states: list[str]
    console: list[tuple[float, str]] = field(default_factory=list)
    #: the notice's text as Playwright saw it once it was visible to it (None: never visible)
    notice_seen_text: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: The thin link of the test and the benchmark: a county court's 400 kbit/s with 5 % loss.
BROWSER_THIN = Impairment(rate_kbit=400, loss_pct=5)


async def run_browser_thin(
    workdir: Path,
    thin: Impairment = BROWSER_THIN,
    before: float = 3.0,
    thin_s: float = 20.0,
    after: float = 30.0,
    video_kbps: int = 1000,
    server_command: Sequence[str] = ("-m", "server.cli"),
) -> BrowserThinResult:
    """Chromium (the party) subscribes to an aiortc publisher's 1 Mbit/s video; its link is clean,
    then `thin` for `thin_s` seconds, then clean again and watched until the notice is gone and
    the video decodes (at most `after` s)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    workdir.mkdir(parents=True, exist_ok=True)
    console: list[tuple[float, str]] = []
    with Lab(["pub", "browser"]) as lab:
        server = ServerProcess(
            workdir / "data", lab.server_addresses, workdir / "server.log", server_command
        )
        pub: ClientProcess | None = None
        try:
            hearing = server.create_hearing("judge:审判长", f"party:{BROWSER_NAME}")
            judge_url, party_url = (i["url"] for i in hearing["invites"])
            pub_link, browser_link = lab.link("pub"), lab.link("browser")
            total = 40 + before + thin_s + after
            pub = ClientProcess(
                lab,
                pub_link,
                invite_via(judge_url, pub_link, server.port),
                workdir,
                publish=("audio", "video"),
                video="grain",
                video_kbps=video_kbps,
                max_seconds=total + 60,
            )
            pub.wait_joined()
            async with browser_in_namespace(
                lab, browser_link, server, workdir, party_url, PAGE_SAMPLER, console, total + 120
            ) as page:
                if await _wait_video(page, time.time(), 30.0) is None:
                    raise RuntimeError("the page never decoded the judge's video")
                log("browser-thin: decoding the judge's video on a clean link")
                await asyncio.sleep(before)
                thin_at = time.time()
                lab.impair("browser", **asdict(thin))
                log(f"browser-thin: link {thin.describe()} for {thin_s:.0f} s")
                # what a person would see: Playwright's own idea of visible, and the text
                notice = page.get_by_test_id("video-paused")
                seen_text = None
                with contextlib.suppress(PlaywrightTimeout):
                    await notice.wait_for(state="visible", timeout=thin_s * 1000)
                    seen_text = await notice.inner_text()
                await asyncio.sleep(max(thin_at + thin_s - time.time(), 0.0))
                lab.impair("browser", **asdict(Impairment()))
                clean_at = time.time()
                log("browser-thin: link clean again")
                back = await _wait_recovered(page, clean_at, after)
                log(
                    "browser-thin: "
                    + ("not recovered" if back is None else f"recovered in {back:.1f} s")
                )
                await asyncio.sleep(1.0)
                samples: list[dict[str, Any]] = await page.evaluate("window.__thinSamples")
                flips: list[list[Any]] = await page.evaluate("window.__noticeFlips")
                end = time.time()
            pub.stop()
            server.end_hearing(hearing["id"])
            folder = server.recording_folder(hearing["id"])
        finally:
            if pub is not None:
                pub.kill()
            server.stop()
    events = read_jsonl(folder / "events.jsonl") if folder else []
    result = browser_thin_result(thin, samples, flips, events, console, thin_at, clean_at, end)
    result.notice_seen_text = seen_text
    return result


def _frames(samples: list[dict[str, Any]]) -> list[float]:
    """Video frame times from the sampler's cumulative counts (see `decoded_frame_times`)."""
    return decoded_frame_times([[s["t"], None, None, s["pc"], s["vFrames"]] for s in samples])


async def _wait_video(page: Any, since: float, timeout: float) -> float | None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        await asyncio.sleep(0.5)
        samples = await page.evaluate("window.__thinSamples || []")
        back = sustained_after(_frames(samples), since, SUSTAINED_FPS["video"], time.time())
        if back is not None:
            return back
    return None


async def _wait_recovered(page: Any, since: float, timeout: float) -> float | None:
    """Seconds from `since` until the notice is hidden and the video decodes (sustained)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        await asyncio.sleep(0.5)
        samples = await page.evaluate("window.__thinSamples || []")
        if not samples or samples[-1]["shown"]:
            continue
        back = sustained_after(_frames(samples), since, SUSTAINED_FPS["video"], time.time())
        if back is not None:
            return time.time() - since
    return None


def _delta(a: dict[str, Any], b: dict[str, Any], key: str) -> float:
    return float(b[key]) - float(a[key]) if a["pc"] == b["pc"] else 0.0


def paused_stretches(
    flips: list[list[Any]], start: float, end: float, settle: float = 1.0
) -> list[tuple[float, float]]:
    """The stretches of [start, end] during which the notice was shown, each from `settle` s
    after it appeared (packets already in flight when the server stopped still arrive)."""
    out = []
    shown_at: float | None = None
    for t, shown, _ in [*flips, [end, False, None]]:
        if shown and shown_at is None:
            shown_at = float(t)
        elif not shown and shown_at is not None:
            a, b = max(shown_at + settle, start), min(float(t), end)
            if b > a:
                out.append((a, b))
            shown_at = None
    return out


def audio_while_paused(
    samples: list[dict[str, Any]], stretches: list[tuple[float, float]]
) -> AudioWhilePaused | None:
    totals = dict.fromkeys(
        ("aPackets", "aLost", "aSamples", "aConcealed", "aSilent", "aEvents"), 0.0
    )
    seconds = 0.0
    worst: float | None = None
    for a, b in stretches:
        inside = [s for s in samples if a <= s["t"] <= b]
        for x, y in itertools.pairwise(inside):
            if x["pc"] != y["pc"]:
                continue
            seconds += y["t"] - x["t"]
            for key in totals:
                totals[key] += _delta(x, y, key)
        # the worst second: sample pairs about 1 s apart
        for i, first in enumerate(inside):
            later = next((s for s in inside[i:] if s["t"] >= first["t"] + 1.0), None)
            if later is None:
                break
            if later["pc"] == first["pc"]:
                rate = _delta(first, later, "aPackets") / (later["t"] - first["t"])
                worst = rate if worst is None else min(worst, rate)
    if seconds < 1.0:
        return None
    received = totals["aPackets"]
    return AudioWhilePaused(
        seconds=round(seconds, 1),
        packets_per_s=round(received / seconds, 1),
        worst_packets_per_s=round(worst or 0.0, 1),
        samples_per_s=round(totals["aSamples"] / seconds, 0),
        concealed_pct=round(100.0 * totals["aConcealed"] / max(totals["aSamples"], 1.0), 2),
        silent_concealed_pct=round(100.0 * totals["aSilent"] / max(totals["aSamples"], 1.0), 2),
        concealment_events=int(totals["aEvents"]),
        lost_pct=round(100.0 * totals["aLost"] / max(received + totals["aLost"], 1.0), 2),
    )


def browser_thin_result(
    thin: Impairment,
    samples: list[dict[str, Any]],
    flips: list[list[Any]],
    events: list[dict[str, Any]],
    console: list[tuple[float, str]],
    thin_at: float,
    clean_at: float,
    end: float,
) -> BrowserThinResult:
    ids = {
        str(e["data"].get("participant"))
        for e in events
        if e.get("kind") == "join" and e.get("data", {}).get("name") == BROWSER_NAME
    }
    gate = sorted(
        (round(_event_time(e) - thin_at, 2), str(e["data"].get("video")))
        for e in events
        if e.get("kind") == "video-gate" and str(e.get("data", {}).get("participant")) in ids
    )
    first_shown = next(((t, text) for t, shown, text in flips if shown and t >= thin_at), None)
    server_off = next((t for t, state in gate if state == "off" and t >= 0), None)
    stopped = None
    if server_off is not None:
        # the first moment from the server's decision on with no new video packet for 1 s
        after = [s for s in samples if s["t"] >= thin_at + server_off]
        for i, x in enumerate(after):
            y = next((s for s in after[i:] if s["t"] >= x["t"] + 1.0), None)
            if y is None:
                break
            if y["pc"] == x["pc"] and _delta(x, y, "vPackets") == 0:
                stopped = round(x["t"] - thin_at, 2)
                break
    # hidden for good: the last flip, to hidden (negative: before the link recovered)
    last = flips[-1] if flips else None
    hidden_after = None
    if last is not None and not last[1] and first_shown is not None:
        hidden_after = round(float(last[0]) - clean_at, 2)
    # the server's last word, if it was to resume (a probe while thin that failed is not it)
    server_on = gate[-1][0] if gate and gate[-1][1] == "on" else None
    frames = _frames(samples)
    back = sustained_after(frames, clean_at, SUSTAINED_FPS["video"], end)
    stretches = paused_stretches(flips, thin_at, clean_at)
    video_packets = 0
    for a, b in stretches:
        inside = [s for s in samples if a <= s["t"] <= b]
        video_packets += int(sum(_delta(x, y, "vPackets") for x, y in itertools.pairwise(inside)))
    before = [s for s in samples if s["t"] < thin_at]
    clean_audio = None
    if len(before) >= 2 and before[0]["pc"] == before[-1]["pc"]:
        clean_audio = round(
            100.0
            * _delta(before[0], before[-1], "aConcealed")
            / max(_delta(before[0], before[-1], "aSamples"), 1.0),
            2,
        )
    states: list[str] = []
    for s in samples:
        if not states or states[-1] != s["state"]:
            states.append(str(s["state"]))
    return BrowserThinResult(
        impairment=thin.describe(),
        thin_s=round(clean_at - thin_at, 1),
        notice_shown_s=None if first_shown is None else round(first_shown[0] - thin_at, 2),
        notice_text=None if first_shown is None else first_shown[1],
        server_off_s=server_off,
        video_stopped_s=stopped,
        notice_hidden_after_s=hidden_after,
        server_on_after_s=None if server_on is None else round(server_on - (clean_at - thin_at), 2),
        video_back_after_s=None if back is None else round(back - clean_at, 2),
        flips_while_thin=[
            (round(t - thin_at, 2), bool(shown)) for t, shown, _ in flips if thin_at <= t < clean_at
        ],
        gate=gate,
        video_packets_while_paused=video_packets,
        audio=audio_while_paused(samples, stretches),
        audio_concealed_pct_clean=clean_audio,
        peer_connections=len({s["pc"] for s in samples if s["pc"] is not None}),
        states=states,
        console=[(round(t - thin_at, 1), text) for t, text in console],
    )
