"""Network impairment harness: thin, lossy and broken links between clients and a real server.

How this works. The test process runs in its own loopback-only network namespace (the suite runs
under `unshare -n`, as root). There the harness builds one *link* per client: a veth pair whose
server end (`tsimpNs`, 10.77.N.1/30) stays in the test's namespace and whose client end
(`tsimpNc`, 10.77.N.2/30) is moved into the client's own namespace. Each client is a subprocess
started under `unshare -n` (`python -m tests.impairment client ...`); it says `ns-ready` once it
runs in its fresh namespace, the harness moves the veth end into it by PID and configures it with
`nsenter`, then sends `go`, and only then does the client join through `terminal.client.HearingClient`
with `ice_addresses=[10.77.N.2]`. The server runs as a subprocess (`python -m server.cli serve`)
listening on 0.0.0.0 of the test's namespace and offering ICE candidates on the server ends only.
No address outside 10.77.0.0/16 and loopback is ever used, and the harness refuses to touch a
namespace that has any interface other than `lo` and its own veths (run it under `unshare -n`).

Impairments, per link and per direction:
- rate: `tc tbf` on the egress of each veth end (downlink on the server end, uplink on the client
  end, set inside the client's namespace with `nsenter`);
- loss: nftables `numgen random mod 100 < P drop` on UDP in the test namespace's input (uplink)
  and output (downlink) hooks, matched on the server end's name; TCP (signalling) is untouched;
- blackout: drop all UDP (or all traffic) both ways, then remove the rule;
- `wire=True`: the same drops on the veth itself (netdev ingress/egress hooks on the server end),
  where nobody's send fails (an inet-hook drop makes the server's own sendto fail with EPERM).
Each link has its own pair of nft chains (`lN_in`, `lN_out`) that are flushed and refilled when
the link's state changes; the table `inet tingshen_impair` goes away on teardown.

Each client writes, when told to stop (or at its deadline), a JSON report: what it sent (per frame:
wall time, and the RTP-clock pts for audio), what it received per publisher and kind (arrival wall
time per decoded frame, and the pts for audio), the server messages it got (e.g. `video-paused`),
its peer connection's state changes and when its socket closed. All processes share the machine's
wall clock, so the harness lines their timelines up with `time.time()`.

`run_thin_links` and `run_blackout` are the scenarios the tests (tests/test_impairment_functional.py)
and the benchmark (tests/bench/impairment.py) run; the `*_figures` functions turn reports into the
measured figures. Every wait is bounded in time and every loop in count; everything a scenario
starts is stopped in `finally` (children killed, veths deleted, nft table deleted, server stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "tsimp"  # our veth names: tsimp<N>s (server end), tsimp<N>c (client end)
TABLE = "tingshen_impair"
SUBNET = "10.77"  # 10.77.N.0/30 per link; nothing else is ever addressed
AUDIO_FRAME = 960  # Opus 20 ms at 48 kHz: the pts step of one audio frame
AUDIO_FPS = 50
TOOLS = ("ip", "tc", "nft", "nsenter", "unshare")


def log(message: str) -> None:
    print(f"[impairment {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class NotIsolated(RuntimeError):
    """The harness would touch a network namespace that is not a private test namespace."""


def _run(*cmd: str, timeout: float = 10.0, check: bool = True) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _interfaces() -> list[str]:
    out = _run("ip", "-o", "link", "show")
    return [m.group(1) for m in re.finditer(r"^\d+:\s+([^:@\s]+)", out, re.MULTILINE)]


def check_isolated() -> None:
    """Raise `NotIsolated` unless we are root in a namespace holding only `lo` and our veths."""
    if sys.platform != "linux" or os.geteuid() != 0:
        raise NotIsolated("needs root on Linux (the suite runs under `unshare -n` as root)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise NotIsolated(f"missing tools: {', '.join(missing)}")
    foreign = [i for i in _interfaces() if i != "lo" and not i.startswith(PREFIX)]
    if foreign:
        raise NotIsolated(
            f"not a private network namespace (interfaces {foreign}): "
            "run under `unshare -n sh -c 'ip link set lo up; ...'`"
        )


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("TINGSHEN_CONFIG", None)
    for name in ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy", "no_proxy"):
        env.pop(name, None)
        env.pop(name.upper(), None)
    return env


# -- links and impairments --------------------------------------------------------------------------


@dataclass
class Impairment:
    """What a link does to packets. Rate applies to everything; loss and blackout to UDP (media,
    ICE, DTLS) unless `tcp_too`."""

    rate_kbit: int | None = None
    loss_pct: int = 0
    blackout: bool = False
    tcp_too: bool = False
    #: drop on the wire (netdev hooks on the server end of the veth: ingress for the uplink,
    #: egress for the downlink) instead of in the server's IP stack. An inet-hook drop of an
    #: outgoing packet makes the server's own `sendto` fail with EPERM, which tells aioice at once
    #: that a path is dead; a real link that dies says nothing to either side.
    wire: bool = False

    def describe(self) -> str:
        parts = []
        if self.rate_kbit:
            parts.append(f"{self.rate_kbit} kbit/s")
        if self.loss_pct:
            parts.append(f"{self.loss_pct} % loss")
        if self.blackout:
            parts.append("blackout" + (" (all)" if self.tcp_too else " (udp)"))
        if self.wire and (self.blackout or self.loss_pct):
            parts.append("on the wire")
        return " + ".join(parts) or "clean"


@dataclass
class Link:
    index: int
    name: str
    impairment: Impairment = field(default_factory=Impairment)
    pid: int | None = None  # the client process whose namespace holds the client end

    @property
    def server_if(self) -> str:
        return f"{PREFIX}{self.index}s"

    @property
    def client_if(self) -> str:
        return f"{PREFIX}{self.index}c"

    @property
    def server_address(self) -> str:
        return f"{SUBNET}.{self.index}.1"

    @property
    def client_address(self) -> str:
        return f"{SUBNET}.{self.index}.2"


class Lab:
    """The links of one scenario in the test's namespace; a context manager that tears all down."""

    def __init__(self, names: Sequence[str]) -> None:
        self.links = {name: Link(i + 1, name) for i, name in enumerate(names)}
        self._up = False
        self._wire: set[int] = set()  # links whose netdev (on the wire) chains exist

    def __enter__(self) -> Lab:
        check_isolated()
        self._cleanup()  # leftovers of an interrupted run in this same namespace
        self._up = True
        try:
            _run("ip", "link", "set", "lo", "up")
            _run("nft", "add", "table", "inet", TABLE)
            for hook in ("input", "output"):
                _run(
                    "nft",
                    f"add chain inet {TABLE} {hook} "
                    f"{{ type filter hook {hook} priority -10; policy accept; }}",
                )
            for link in self.links.values():
                self._create(link)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def link(self, name: str) -> Link:
        return self.links[name]

    @property
    def server_addresses(self) -> list[str]:
        return [link.server_address for link in self.links.values()]

    def _create(self, link: Link) -> None:
        _run("ip", "link", "add", link.server_if, "type", "veth", "peer", "name", link.client_if)
        _run("ip", "addr", "add", f"{link.server_address}/30", "dev", link.server_if)
        _run("ip", "link", "set", link.server_if, "up")
        n = link.index
        _run("nft", f"add chain inet {TABLE} l{n}_in")
        _run("nft", f"add chain inet {TABLE} l{n}_out")
        _run("nft", f'add rule inet {TABLE} input iifname "{link.server_if}" jump l{n}_in')
        _run("nft", f'add rule inet {TABLE} output oifname "{link.server_if}" jump l{n}_out')

    def attach(self, link: Link, pid: int) -> None:
        """Move the client end into `pid`'s namespace and bring it up there."""
        own = os.readlink("/proc/self/ns/net")
        for _ in range(50):  # the child said ns-ready, so this is a formality; bounded anyway
            if os.readlink(f"/proc/{pid}/ns/net") != own:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"process {pid} is still in our network namespace")
        _run("ip", "link", "set", link.client_if, "netns", str(pid))
        ns = ("nsenter", "-t", str(pid), "-n")
        _run(*ns, "ip", "link", "set", "lo", "up")
        _run(*ns, "ip", "addr", "add", f"{link.client_address}/30", "dev", link.client_if)
        _run(*ns, "ip", "link", "set", link.client_if, "up")
        # Every server address is reached through this one veth (and so through its impairments).
        _run(*ns, "ip", "route", "add", "default", "via", link.server_address)
        link.pid = pid
        self.apply(link)

    def impair(self, name: str, **changes: Any) -> None:
        link = self.links[name]
        for key, value in changes.items():
            if not hasattr(link.impairment, key):
                raise TypeError(key)
            setattr(link.impairment, key, value)
        self.apply(link)

    def apply(self, link: Link) -> None:
        """Make the kernel do what `link.impairment` says (idempotent)."""
        imp, n = link.impairment, link.index
        if imp.wire or n in self._wire:
            self._apply_wire(link)
        for chain in (f"l{n}_in", f"l{n}_out"):
            _run("nft", f"flush chain inet {TABLE} {chain}")
            if imp.wire:
                continue  # dropped on the wire instead
            match = "" if imp.tcp_too else "meta l4proto udp "
            if imp.blackout:
                _run("nft", f"add rule inet {TABLE} {chain} {match}drop")
            if imp.loss_pct:
                _run(
                    "nft",
                    f"add rule inet {TABLE} {chain} meta l4proto udp "
                    f"numgen random mod 100 < {int(imp.loss_pct)} drop",
                )
        self._shape(link.server_if, imp.rate_kbit, ())
        if link.pid is not None:
            self._shape(link.client_if, imp.rate_kbit, ("nsenter", "-t", str(link.pid), "-n"))

    def _apply_wire(self, link: Link) -> None:
        """The link's blackout and loss as drops on the veth itself (`Impairment.wire`): netdev
        chains bound to the server end, made the first time a link asks for them. IPv4 only,
        so ARP still works, as it would between the server and its router when the WAN dies."""
        n, imp = link.index, link.impairment
        chains = {f"l{n}_wire_in": "ingress", f"l{n}_wire_out": "egress"}
        if n not in self._wire:
            _run("nft", "add", "table", "netdev", TABLE)
            for chain, hook in chains.items():
                _run(
                    "nft",
                    f"add chain netdev {TABLE} {chain} {{ type filter hook {hook} "
                    f'device "{link.server_if}" priority -10; policy accept; }}',
                )
            self._wire.add(n)
        for chain in chains:
            _run("nft", f"flush chain netdev {TABLE} {chain}")
            if not imp.wire:
                continue
            match = "meta protocol ip " + ("" if imp.tcp_too else "ip protocol udp ")
            if imp.blackout:
                _run("nft", f"add rule netdev {TABLE} {chain} {match}drop")
            if imp.loss_pct:
                _run(
                    "nft",
                    f"add rule netdev {TABLE} {chain} meta protocol ip ip protocol udp "
                    f"numgen random mod 100 < {int(imp.loss_pct)} drop",
                )

    @staticmethod
    def _shape(dev: str, rate_kbit: int | None, ns: tuple[str, ...]) -> None:
        if rate_kbit:
            _run(
                *ns,
                *("tc", "qdisc", "replace", "dev", dev, "root", "tbf"),
                *("rate", f"{rate_kbit}kbit", "burst", "16kb", "latency", "200ms"),
            )
        else:
            _run(*ns, "tc", "qdisc", "del", "dev", dev, "root", check=False)

    def close(self) -> None:
        if self._up:
            self._up = False
            self._wire.clear()
            self._cleanup()

    @staticmethod
    def _cleanup() -> None:
        for name in _interfaces():
            if name.startswith(PREFIX):
                _run("ip", "link", "del", name, check=False)
        _run("nft", "delete", "table", "inet", TABLE, check=False)
        _run("nft", "delete", "table", "netdev", TABLE, check=False)


# -- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`python -m server.cli serve` on 0.0.0.0 of the test namespace, ICE on the links only."""

    def __init__(
        self,
        data: Path,
        ice_addresses: list[str],
        log_path: Path,
        command: Sequence[str] = ("-m", "server.cli"),
    ) -> None:
        self.data = data
        self.port = free_port()
        env = child_env()
        env["TINGSHEN_ICE_ADDRESSES"] = json.dumps(ice_addresses)
        env["TINGSHEN_RENDER_AFTER_HEARING"] = "false"
        env["TINGSHEN_NETWORK_SAMPLE_SECONDS"] = "2"
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                *(sys.executable, *command, "serve", "--host", "0.0.0.0"),
                *("--port", str(self.port), "--data", str(data)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            cwd=ROOT,
            env=env,
        )
        try:
            self._wait_live()
        except BaseException:
            self.stop()
            raise

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_live(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.base_url + "/livez", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start within 30 s")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        token = (self.data / "admin.token").read_text().strip()
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.loads(response.read() or b"null")

    def create_hearing(self, *invites: str) -> dict[str, Any]:
        """A hearing with invitations "ROLE:NAME", every role let in at once (no lobby)."""
        from signaling.roles import Role

        body = {
            "caseNumber": "（2026）川3332刑初7号",
            "kind": "hearing",
            "invites": [{"role": r, "name": n} for r, _, n in (i.partition(":") for i in invites)],
            "autoAdmit": [r.value for r in Role],
        }
        return dict(self.api("POST", "/api/hearings", body))

    def end_hearing(self, hearing_id: str) -> None:
        self.api("POST", f"/api/hearings/{hearing_id}/end")

    def recording_folder(self, hearing_id: str, timeout: float = 15.0) -> Path | None:
        """The hearing's recording folder, once its manifest has its `end` entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            base = self.data / "recordings" / hearing_id
            folders = sorted(base.iterdir()) if base.is_dir() else []
            for folder in folders:
                if any(e.get("type") == "end" for e in read_jsonl(folder / "manifest.jsonl")):
                    return folder
            time.sleep(0.2)
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def invite_via(url: str, link: Link, port: int) -> str:
    """The invitation link as seen from the client's side of `link`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, f"{link.server_address}:{port}", *parts[2:]))


# -- client processes -------------------------------------------------------------------------------


class ClientProcess:
    """One client subprocess in its own namespace, on `link`."""

    def __init__(
        self,
        lab: Lab,
        link: Link,
        invite: str,
        workdir: Path,
        publish: Sequence[str] = (),
        video: str = "colour",
        video_kbps: int | None = None,
        max_seconds: float = 180.0,
    ) -> None:
        self.link = link
        self.out = workdir / f"client-{link.name}.json"
        self._log = (workdir / f"client-{link.name}.log").open("ab")
        args = [
            *("unshare", "-n", sys.executable, "-m", "tests.impairment", "client"),
            *("--invite", invite, "--out", str(self.out), "--address", link.client_address),
            *("--publish", ",".join(publish), "--video", video, "--name", link.name),
            *("--max-seconds", str(max_seconds)),
        ]
        if video_kbps:
            args += ["--video-kbps", str(video_kbps)]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=ROOT,
            env=child_env(),
            bufsize=0,
        )
        self._buffer = b""
        self.participant_id: str | None = None
        try:
            self._expect("ns-ready", 30)
            lab.attach(link, self.proc.pid)
            self._send("go")
        except BaseException:
            self.kill()
            raise

    def _send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")

    def _expect(self, word: str, timeout: float) -> str:
        """Wait for the child's line starting with `word`; return the rest of it."""
        stdout = self.proc.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        for _ in range(1000):  # bounded: a few reads per line
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                text = line.decode(errors="replace")
                if text.startswith(word):
                    return text[len(word) :].strip()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([stdout], [], [], left)
            if not ready:
                break
            chunk = os.read(stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"client {self.link.name} exited ({self.proc.poll()})")
            self._buffer += chunk
        raise RuntimeError(f"client {self.link.name}: no {word!r} within {timeout} s")

    def wait_joined(self, timeout: float = 30.0) -> str:
        self.participant_id = self._expect("joined", timeout)
        return self.participant_id

    def stop(self, timeout: float = 20.0) -> dict[str, Any]:
        """Tell the client to leave, wait for it, and return its report."""
        with contextlib.suppress(OSError, ValueError):
            self._send("stop")
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"client {self.link.name} did not stop within {timeout} s: killed")
        self.kill()
        try:
            report = json.loads(self.out.read_text())
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"client {self.link.name} wrote no report: {exc}") from None
        return dict(report)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        self._log.close()


# -- figures ------------------------------------------------------------------------------------


@dataclass
class Delivery:
    received: int
    expected: int

    @property
    def pct(self) -> float:
        return 100.0 * self.received / self.expected if self.expected else 0.0


def audio_delivery(frames: list[list[float]], start: float, end: float) -> Delivery:
    """Audio frames that arrived in [start, end) against the frames the publisher sent over the
    same stretch of media time: the decoded frames carry the stream's RTP clock (pts), which
    advances by 960 per 20 ms frame, so expected = (last pts - first pts) / 960 + 1."""
    pts = sorted({int(p) for t, p in frames if start <= t < end})
    if not pts:
        return Delivery(0, int((end - start) * AUDIO_FPS))
    return Delivery(len(pts), (pts[-1] - pts[0]) // AUDIO_FRAME + 1)


def rtp_delivery(samples: list[list[float]], start: float, end: float) -> Delivery:
    """Packets that reached the client's RTP stack in [start, end], from its cumulative
    (time, packetsReceived, packetsLost) samples: received / (received + lost)."""
    inside = [s for s in samples if start <= s[0] <= end]
    if len(inside) < 2:
        return Delivery(0, 0)
    (_, r0, l0), (_, r1, l1) = inside[0], inside[-1]
    received = int(r1 - r0)
    return Delivery(received, max(received + int(l1 - l0), received))


def count_between(times: list[float], start: float, end: float) -> int:
    return sum(1 for t in times if start <= t < end)


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest time in [start, end] between events (the window's edges count as events)."""
    inside = sorted(t for t in times if start <= t <= end)
    edges = [start, *inside, end]
    return max(b - a for a, b in itertools.pairwise(edges))


def per_second(times: list[float], start: float, end: float, step: float = 1.0) -> list[int]:
    """Frames per `step` seconds over [start, end)."""
    bins = [0] * max(int((end - start) / step), 0)
    for t in times:
        k = int((t - start) / step)
        if start <= t and 0 <= k < len(bins):
            bins[k] += 1
    return bins


def sustained_after(
    times: list[float], after: float, min_fps: float, until: float, hold: float = 2.0
) -> float | None:
    """The first frame at or after `after` from which frames keep coming at `min_fps` or more for
    `hold` seconds (every half second of it at that rate): a burst of stale frames is not media
    coming back. None if that never happens before `until`."""
    step = 0.5
    later = sorted(t for t in times if after <= t < until)
    for start in later[:5000]:
        if start + hold > until:
            return None
        bins = per_second(later, start, start + hold, step)
        if all(n >= min_fps * step for n in bins):
            return start
    return None


@dataclass
class SubscriberFigures:
    """One subscriber's view of one publisher over the measurement window."""

    name: str
    impairment: str
    window_s: float
    audio_delivered_pct: float
    audio_received: int
    audio_expected: int
    #: the same ratio against the publisher's own count of frames sent in the window (wall clock)
    audio_vs_sent_pct: float
    #: from the first audio frame on, start-up included
    audio_whole_pct: float
    audio_loss_worst_second_pct: float
    #: Opus packets (one per frame) that reached the client's RTP stack, before aiortc's jitter
    #: buffer: what the server and the link delivered, i.e. what a correct receiver could play
    audio_rtp_pct: float | None  # None: no packets in the window (e.g. video paused throughout)
    video_rtp_pct: float | None
    video_fps_min: int
    video_fps_mean: float
    #: the longest stretch of the window without a decoded video frame (a stall), seconds
    video_longest_gap_s: float
    video_sent_fps: float
    video_paused: bool
    paused_at_s: list[float]
    resumed_at_s: list[float]
    messages: list[str]


def subscriber_figures(
    sub: dict[str, Any],
    pub: dict[str, Any],
    impairment: str,
    start: float,
    end: float,
) -> SubscriberFigures:
    got = sub["received"].get(pub["participant"], {})
    audio: list[list[float]] = got.get("audio", [])
    video: list[float] = got.get("video", [])
    delivery = audio_delivery(audio, start, end)
    sent_audio = count_between([t for t, _ in pub["sent"].get("audio", [])], start, end)
    first_audio = min((t for t, _ in audio), default=start)
    whole = audio_delivery(audio, first_audio, end)
    worst = 0.0
    for second in range(int(end - start)):
        s = audio_delivery(audio, start + second, start + second + 1)
        if s.expected:
            worst = max(worst, 100.0 - s.pct)
    rtp = sub.get("rtp", {}).get(pub["participant"], {})
    audio_rtp = rtp_delivery(rtp.get("audio", []), start, end)
    video_rtp = rtp_delivery(rtp.get("video", []), start, end)
    fps = per_second(video, start, end)
    sent_video = count_between(pub["sent"].get("video", []), start, end)
    joined = sub["joined_at"]
    paused = [round(t - joined, 1) for t, kind, _ in sub["messages"] if kind == "video-paused"]
    resumed = [round(t - joined, 1) for t, kind, _ in sub["messages"] if kind == "video-resumed"]
    return SubscriberFigures(
        name=sub["name"],
        impairment=impairment,
        window_s=round(end - start, 1),
        audio_delivered_pct=round(delivery.pct, 2),
        audio_received=delivery.received,
        audio_expected=delivery.expected,
        audio_vs_sent_pct=round(
            100.0 * count_between([t for t, _ in audio], start, end) / max(sent_audio, 1), 2
        ),
        audio_whole_pct=round(whole.pct, 2),
        audio_loss_worst_second_pct=round(worst, 1),
        audio_rtp_pct=round(audio_rtp.pct, 2) if audio_rtp.expected else None,
        video_rtp_pct=round(video_rtp.pct, 2) if video_rtp.expected else None,
        video_fps_min=min(fps, default=0),
        video_fps_mean=round(statistics.fmean(fps), 1) if fps else 0.0,
        video_longest_gap_s=round(longest_gap(video, start, end), 2),
        video_sent_fps=round(sent_video / max(end - start, 1e-9), 1),
        video_paused=bool(paused),
        paused_at_s=paused,
        resumed_at_s=resumed,
        messages=sorted({kind for _, kind, _ in sub["messages"]}),
    )


@dataclass
class TrackCoverage:
    """How the recording's segments of one track cover [start, end] (the measurement span)."""

    track_id: str
    kind: str
    segments: int
    first_start_s: float  # relative to the span's start (negative: before it)
    last_end_s: float  # relative to the span's end (negative: before it)
    max_gap_s: float  # the largest hole between two consecutive segments
    head_gap_s: float
    tail_gap_s: float
    drops: int
    lost: int

    @property
    def worst_gap_s(self) -> float:
        return max(self.max_gap_s, self.head_gap_s, self.tail_gap_s)


def _utc(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def recording_coverage(
    folder: Path, participant_id: str, start: float, end: float
) -> list[TrackCoverage]:
    manifest = read_jsonl(folder / "manifest.jsonl")
    tracks = {
        e["track_id"]: e["kind"]
        for e in manifest
        if e.get("type") == "track" and e.get("participant_id") == participant_id
    }
    out = []
    for track_id, kind in sorted(tracks.items()):
        spans = sorted(
            (_utc(e["start"]), _utc(e["end"]))
            for e in manifest
            if e.get("type") == "segment" and e.get("track_id") == track_id
        )
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(spans)]
        out.append(
            TrackCoverage(
                track_id=track_id,
                kind=kind,
                segments=len(spans),
                first_start_s=round(spans[0][0] - start, 2) if spans else float("nan"),
                last_end_s=round(spans[-1][1] - end, 2) if spans else float("nan"),
                max_gap_s=round(max(gaps, default=0.0), 2),
                head_gap_s=round(max(spans[0][0] - start, 0.0), 2) if spans else end - start,
                tail_gap_s=round(max(end - spans[-1][1], 0.0), 2) if spans else end - start,
                drops=sum(
                    1 for e in manifest if e.get("type") == "drop" and e.get("track_id") == track_id
                ),
                lost=sum(
                    1 for e in manifest if e.get("type") == "lost" and e.get("track_id") == track_id
                ),
            )
        )
    return out


# -- scenarios ----------------------------------------------------------------------------------


@dataclass
class ThinLinksResult:
    """One publisher on a clean link; subscribers on a clean, a 512 kbit/s + 5 % and a 10 % link."""

    subscribers: dict[str, SubscriberFigures]
    recording: list[TrackCoverage]
    recording_found: bool
    gate_events: list[dict[str, Any]]
    network_events: int
    publisher_video_kbps: float
    window: tuple[float, float]
    publisher_link: str
    #: audio frames in the publisher's recorded segments / audio frames it sent, whole hearing
    recorded_audio_pct: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


THIN_LINKS: dict[str, Impairment] = {
    "clean": Impairment(),
    "thin": Impairment(rate_kbit=512, loss_pct=5),
    "lossy": Impairment(loss_pct=10),
}


def run_thin_links(
    workdir: Path,
    seconds: float = 30.0,
    settle: float = 4.0,
    subscribers: Sequence[str] = ("clean", "thin", "lossy"),
    video_kbps: int = 1000,
    server_command: Sequence[str] = ("-m", "server.cli"),
    publisher: Impairment | None = None,
) -> ThinLinksResult:
    """Scenario (a)+(b): every subscriber of one hearing on its own link, measured together."""
    workdir.mkdir(parents=True, exist_ok=True)
    names = ["pub", *subscribers]
    with Lab(names) as lab:
        server = ServerProcess(
            workdir / "data", lab.server_addresses, workdir / "server.log", server_command
        )
        clients: dict[str, ClientProcess] = {}
        try:
            hearing = server.create_hearing(
                "judge:审判长", *(f"party:{name}" for name in subscribers)
            )
            invites = [i["url"] for i in hearing["invites"]]
            for name in subscribers:
                lab.impair(name, **asdict(THIN_LINKS[name]))
            if publisher is not None:
                lab.impair("pub", **asdict(publisher))
            pub_link = lab.link("pub")
            clients["pub"] = ClientProcess(
                lab,
                pub_link,
                invite_via(invites[0], pub_link, server.port),
                workdir,
                publish=("audio", "video"),
                video="grain",
                video_kbps=video_kbps,
            )
            clients["pub"].wait_joined()
            for name, url in zip(subscribers, invites[1:], strict=True):
                link = lab.link(name)
                clients[name] = ClientProcess(
                    lab, link, invite_via(url, link, server.port), workdir
                )
            for name in subscribers:
                clients[name].wait_joined()
            joined = time.time()
            log(f"thin links: all joined; measuring for {seconds:.0f} s")
            time.sleep(seconds)
            end = time.time() - 1.0
            reports = {name: clients[name].stop() for name in subscribers}
            reports["pub"] = clients["pub"].stop()
            server.end_hearing(hearing["id"])
            folder = server.recording_folder(hearing["id"])
        finally:
            for client in clients.values():
                client.kill()
            server.stop()
    start = joined + settle
    pub = reports["pub"]
    figures = {
        name: subscriber_figures(
            reports[name], pub, THIN_LINKS.get(name, Impairment()).describe(), start, end
        )
        for name in subscribers
    }
    events = read_jsonl(folder / "events.jsonl") if folder else []
    # the publisher's video bitrate at the server, from the network samples
    kbps = [
        float(e["data"].get("kbpsIn") or 0)
        for e in events
        if e.get("kind") == "network" and e["data"].get("participantId") == pub["participant"]
    ]
    manifest = read_jsonl(folder / "manifest.jsonl") if folder else []
    audio_tracks = {
        e["track_id"]
        for e in manifest
        if e.get("type") == "track"
        and e.get("participant_id") == pub["participant"]
        and e.get("kind") == "audio"
    }
    recorded = sum(
        int(e.get("frames", 0))
        for e in manifest
        if e.get("type") == "segment" and e.get("track_id") in audio_tracks
    )
    return ThinLinksResult(
        subscribers=figures,
        recording=recording_coverage(folder, pub["participant"], start, end) if folder else [],
        recording_found=folder is not None,
        gate_events=[e for e in events if e.get("kind") == "video-gate"],
        network_events=sum(1 for e in events if e.get("kind") == "network"),
        publisher_video_kbps=round(statistics.median(kbps), 0) if kbps else 0.0,
        window=(start, end),
        publisher_link=(publisher or Impairment()).describe(),
        recorded_audio_pct=round(100.0 * recorded / max(len(pub["sent"]["audio"]), 1), 2),
    )


@dataclass
class Recovery:
    """When media came back after the link returned (seconds after the blackout rule went)."""

    direction: str  # "down" (server -> impaired participant) or "up" (impaired -> server -> peer)
    kind: str
    seconds: float | None  # None: not back (sustained) within the observation time
    first_frame_s: float | None  # the first frame at all after the link returned
    during_blackout: int  # frames that still arrived during the blackout (expected: ~0)
    fps_after: float  # mean rate over the last 5 s of the observation


#: "media is back": audio at half its rate, video at a third of the camera's 30 fps, for 2 s
SUSTAINED_FPS = {"audio": 25.0, "video": 10.0}


@dataclass
class BlackoutResult:
    blackout_s: float
    tcp_too: bool
    recoveries: list[Recovery]
    impaired_states: list[tuple[float, str]]  # (seconds after blackout start, connection state)
    impaired_socket_closed_at: float | None
    impaired_messages: list[tuple[float, str]]
    peer_messages: list[tuple[float, str]]
    timeline: list[tuple[float, str, dict[str, Any]]]  # server events about the impaired one
    #: the server's network samples of the impaired participant while its link was dark:
    #: (seconds after the cut, level, kbps in)
    evidence_during_blackout: list[tuple[float, str, float]]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def recovery(self, direction: str, kind: str) -> float | None:
        return next(
            r.seconds for r in self.recoveries if r.direction == direction and r.kind == kind
        )


def run_blackout(
    workdir: Path,
    before: float = 6.0,
    blackout: float = 20.0,
    after: float = 12.0,
    tcp_too: bool = False,
    server_command: Sequence[str] = ("-m", "server.cli"),
) -> BlackoutResult:
    """Scenario (c): two participants publish and subscribe; one link goes dark for `blackout`."""
    workdir.mkdir(parents=True, exist_ok=True)
    with Lab(["peer", "cut"]) as lab:
        server = ServerProcess(
            workdir / "data", lab.server_addresses, workdir / "server.log", server_command
        )
        clients: dict[str, ClientProcess] = {}
        try:
            hearing = server.create_hearing("judge:审判长", "party:县法院")
            invites = [i["url"] for i in hearing["invites"]]
            for name, url in zip(("peer", "cut"), invites, strict=True):
                link = lab.link(name)
                clients[name] = ClientProcess(
                    lab,
                    link,
                    invite_via(url, link, server.port),
                    workdir,
                    publish=("audio", "video"),
                    max_seconds=before + blackout + after + 60,
                )
                clients[name].wait_joined()
            time.sleep(before)
            cut_at = time.time()
            lab.impair("cut", blackout=True, tcp_too=tcp_too)
            log(f"blackout: link cut for {blackout:.0f} s ({'all' if tcp_too else 'udp'})")
            time.sleep(blackout)
            lab.impair("cut", blackout=False)
            back_at = time.time()
            time.sleep(after)
            reports = {name: c.stop() for name, c in clients.items()}
            server.end_hearing(hearing["id"])
            folder = server.recording_folder(hearing["id"])
        finally:
            for client in clients.values():
                client.kill()
            server.stop()
    cut, peer = reports["cut"], reports["peer"]
    recoveries = []
    for direction, receiver, sender in (("down", cut, peer), ("up", peer, cut)):
        got = receiver["received"].get(sender["participant"], {})
        for kind in ("audio", "video"):
            times = [t[0] if isinstance(t, list) else t for t in got.get(kind, [])]
            back = sustained_after(times, back_at, SUSTAINED_FPS[kind], back_at + after)
            first = min((t for t in times if t >= back_at), default=None)
            recoveries.append(
                Recovery(
                    direction=direction,
                    kind=kind,
                    seconds=None if back is None else round(back - back_at, 2),
                    first_frame_s=None if first is None else round(first - back_at, 2),
                    during_blackout=count_between(times, cut_at + 1.0, back_at),
                    fps_after=round(
                        count_between(times, back_at + after - 5, back_at + after) / 5, 1
                    ),
                )
            )
    events = read_jsonl(folder / "events.jsonl") if folder else []
    timeline = []
    evidence = []
    for e in events:
        data = e.get("data", {})
        who = data.get("participant") or data.get("participantId")
        at = round(_event_time(e) - cut_at, 1)
        if who != cut["participant"]:
            continue
        if e.get("kind") != "network":
            timeline.append((at, str(e.get("kind")), data))
        elif 1.0 <= at <= blackout:
            evidence.append((at, str(data.get("level")), float(data.get("kbpsIn") or 0.0)))
    closed = cut.get("socket_closed_at")
    return BlackoutResult(
        blackout_s=blackout,
        tcp_too=tcp_too,
        recoveries=recoveries,
        impaired_states=[(round(t - cut_at, 1), s) for t, s in cut["states"]],
        impaired_socket_closed_at=None if closed is None else round(closed - cut_at, 1),
        impaired_messages=_gate_messages(cut, cut_at),
        peer_messages=_gate_messages(peer, cut_at),
        timeline=timeline,
        evidence_during_blackout=evidence,
    )


def _gate_messages(report: dict[str, Any], zero: float) -> list[tuple[float, str]]:
    """The messages a client got, but the judge's periodic `quality` ones."""
    return [(round(t - zero, 1), kind) for t, kind, _ in report["messages"] if kind != "quality"]


def _event_time(event: dict[str, Any]) -> float:
    t = event.get("t")
    if isinstance(t, int | float):
        return float(t)
    at = event.get("at")
    if isinstance(at, int | float):
        return float(at)
    if isinstance(at, str):
        with contextlib.suppress(ValueError):
            return _utc(at)
    return 0.0


# -- a browser behind a link -----------------------------------------------------------------------


class NamespaceHolder:
    """A process that only holds a fresh network namespace (`unshare -n sleep`).

    Chromium cannot say `ns-ready` as the harness's own clients do, so the link's client end goes
    into the holder's namespace (by its PID, like a client's) and Chromium is started in there
    through `nsenter -t PID -n` (`chromium_wrapper`). No named namespace (`ip netns add`) is made:
    /run/netns belongs to the machine, not to the test."""

    def __init__(self, lab: Lab, link: Link, max_seconds: float = 600.0) -> None:
        self.link = link
        self.proc = subprocess.Popen(
            ["unshare", "-n", "sh", "-c", f"echo ns-ready; exec sleep {int(max_seconds)}"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
        )
        try:
            stdout = self.proc.stdout
            assert stdout is not None
            ready, _, _ = select.select([stdout], [], [], 10)
            line = stdout.readline() if ready else b""
            if line.strip() != b"ns-ready":
                raise RuntimeError(f"namespace holder for {link.name} did not start ({line!r})")
            lab.attach(link, self.proc.pid)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        if self.proc.stdout is not None:
            with contextlib.suppress(OSError):
                self.proc.stdout.close()


def chromium_wrapper(folder: Path, holder: NamespaceHolder, chromium: Path) -> Path:
    """An executable for Playwright's `launch(executable_path=...)` that runs Chromium in the
    holder's namespace. Playwright keeps its pipe transport (the pipe's descriptors pass through
    nsenter's exec) and its own side stays in the test's namespace, so cutting the link never cuts
    the test's hold on the browser."""
    path = folder / f"chromium-in-{holder.link.name}"
    path.write_text(
        f'#!/bin/sh\nexec nsenter -t {holder.pid} -n -- {shlex.quote(str(chromium))} "$@"\n'
    )
    path.chmod(0o755)
    return path


#: Runs in the hearing page: every 200 ms, what the page shows and what its peer connection
#: decoded. Each sample: [wall time s, tingshen.state, the banner's data-state, which
#: RTCPeerConnection (1, 2, ... in the order the page made them), video framesDecoded of that one,
#: its iceConnectionState, our participant id, how many others the page lists].
PAGE_SAMPLER = """
() => {
  if (window.__linkSamples) return;
  const samples = [];
  window.__linkSamples = samples;
  const ids = new WeakMap();
  let made = 0;
  let busy = false;
  setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const t = window.tingshen;
      const pc = t.pc;
      let which = null;
      let frames = null;
      if (pc) {
        if (!ids.has(pc)) ids.set(pc, ++made);
        which = ids.get(pc);
        frames = 0;
        const stats = await pc.getStats();
        stats.forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
        });
      }
      const banner = document.querySelector('[data-testid="connection-state"]');
      samples.push([
        Date.now() / 1000, t.state, banner ? banner.dataset.state ?? null : null, which, frames,
        pc ? pc.iceConnectionState : null, t.self ? t.self.id : null, t.participants.length,
      ]);
    } finally {
      busy = false;
    }
  }, 200);
}
"""


def decoded_frame_times(samples: list[list[Any]]) -> list[float]:
    """Frame arrival times rebuilt from the page's cumulative framesDecoded samples: the frames
    decoded between two samples of the same peer connection, spread evenly over that interval
    (a new peer connection starts counting from zero)."""
    times: list[float] = []
    for a, b in itertools.pairwise(samples):
        if a[3] is None or a[3] != b[3] or a[4] is None or b[4] is None:
            continue
        n = int(b[4]) - int(a[4])
        if n <= 0:
            continue
        step = (b[0] - a[0]) / n
        times.extend(a[0] + step * (k + 1) for k in range(min(n, 1000)))
    return times


@dataclass
class BrowserOutage:
    """One outage of the browser's link and how the page came back. Times in seconds after the
    link returned, unless said otherwise."""

    what: str  # "udp" (signalling TCP stays up) or "all"
    blackout_s: float
    #: the other participant's video decoding again in the page, sustained (10 fps for 2 s)
    video_back_s: float | None
    first_frame_s: float | None  # the first frame the page decoded after the link returned
    frames_during_blackout: int  # decoded from 1 s after the cut to the link's return
    #: the page's banner back to `connected` (after it had left it), s after the link returned
    connected_s: float | None
    #: the browser's camera and microphone at the other participant again (sustained)
    uplink_video_back_s: float | None
    uplink_audio_back_s: float | None
    #: the banner's states (`data-state`), (s after the cut, state); "-" is no banner
    states: list[tuple[float, str]]
    #: new RTCPeerConnections the page made (0: the one it had carried on)
    new_peer_connections: int
    new_participant_ids: int  # rejoins the server saw (each join is a new participant id)
    #: the session's own log lines: state changes and why a connection was dropped
    console: list[tuple[float, str]]
    #: the server's timeline about the browser's participant(s), (s after the cut, kind, data)
    timeline: list[tuple[float, str, dict[str, Any]]]
    #: network samples of the browser's participant while its link was dark: (s, level, state)
    evidence: list[tuple[float, str, str]]


@dataclass
class BrowserBlackoutResult:
    wire: bool  # dropped on the wire (True) or in the server's IP stack
    outages: list[BrowserOutage]
    #: the most entries the other participant listed at once for the browser's invitation (name)
    most_copies_at_peer: int
    copies_at_peer_at_end: int
    most_others_in_page: int  # the most participants the page listed at once (1: just the peer)
    peer_error: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


BROWSER_NAME = "县法院"


@contextlib.asynccontextmanager
async def browser_in_namespace(
    lab: Lab,
    link: Link,
    server: ServerProcess,
    workdir: Path,
    invite_url: str,
    sampler: str,
    console: list[tuple[float, str]],
    max_seconds: float,
) -> AsyncIterator[Any]:
    """Headless Chromium in `link`'s own namespace (a holder process keeps it; Playwright drives
    Chromium through an nsenter wrapper, so cutting the link never cuts the test's control of the
    browser): the page on `invite_url` through `link`, joined, `sampler` running in it, the page's
    `[session]` console lines collected in `console`."""
    from playwright.async_api import async_playwright

    from tests.browser import CHROMIUM, FLAGS

    holder = NamespaceHolder(lab, link, max_seconds=max_seconds)
    try:
        wrapper = chromium_wrapper(workdir, holder, CHROMIUM)
        async with async_playwright() as p:
            # the page is served over plain http from the link's address: Chromium grants the
            # camera (getUserMedia) only to a secure context, which that origin is not
            origin = f"http://{link.server_address}:{server.port}"
            browser = await p.chromium.launch(
                executable_path=str(wrapper),
                args=[*FLAGS, f"--unsafely-treat-insecure-origin-as-secure={origin}"],
                headless=True,
            )
            try:
                page = await (await browser.new_context()).new_page()
                page.on(
                    "console",
                    lambda m: (
                        console.append((time.time(), m.text))
                        if m.text.startswith("[session]")
                        else None
                    ),
                )
                await page.goto(invite_via(invite_url, link, server.port))
                await page.get_by_test_id("join-button").click()
                await page.evaluate(sampler)
                yield page
            finally:
                await browser.close()
    finally:
        holder.stop()


async def run_browser_blackout(
    workdir: Path,
    outages: Sequence[tuple[str, float]] = (("udp", 20.0), ("all", 20.0)),
    before: float = 4.0,
    observe: float = 30.0,
    wire: bool = True,
) -> BrowserBlackoutResult:
    """Headless Chromium (the party, in its own namespace) and an aiortc publisher (the judge, on a
    clean link) in one hearing; the browser's link goes dark for each `outages` entry in turn
    ("udp": all UDP dropped, signalling TCP up; "all": every packet dropped), and after each the
    page is watched until the judge's video decodes again (sustained) for at most `observe` s.
    The drops are on the wire (`Impairment.wire`) unless `wire` is false."""
    workdir.mkdir(parents=True, exist_ok=True)
    console: list[tuple[float, str]] = []
    marks: list[tuple[str, float, float, float]] = []  # (what, cut at, back at, watched until)
    with Lab(["peer", "browser"]) as lab:
        server = ServerProcess(workdir / "data", lab.server_addresses, workdir / "server.log")
        peer: ClientProcess | None = None
        try:
            hearing = server.create_hearing("judge:审判长", f"party:{BROWSER_NAME}")
            judge_url, party_url = (i["url"] for i in hearing["invites"])
            total = sum(seconds + observe for _, seconds in outages)
            peer_link, browser_link = lab.link("peer"), lab.link("browser")
            peer = ClientProcess(
                lab,
                peer_link,
                invite_via(judge_url, peer_link, server.port),
                workdir,
                publish=("audio", "video"),
                max_seconds=total + 120,
            )
            peer.wait_joined()
            async with browser_in_namespace(
                lab, browser_link, server, workdir, party_url, PAGE_SAMPLER, console, total + 180
            ) as page:
                if await _watch_page(page, time.time(), 30.0) is None:
                    raise RuntimeError("the page never decoded the judge's video")
                log("browser: joined, decoding the judge's video")
                await asyncio.sleep(before)
                for what, seconds in outages:
                    cut_at = time.time()
                    lab.impair("browser", blackout=True, tcp_too=what == "all", wire=wire)
                    log(f"browser: link cut for {seconds:.0f} s ({what})")
                    await asyncio.sleep(seconds)
                    lab.impair("browser", blackout=False, tcp_too=False)
                    back_at = time.time()
                    back = await _watch_page(page, back_at, observe)
                    log(
                        "browser: link back; video "
                        + ("never back" if back is None else f"back after {back - back_at:.1f} s")
                    )
                    await asyncio.sleep(3.0)  # the uplink and the timeline settle
                    marks.append((what, cut_at, back_at, time.time()))
                samples: list[list[Any]] = await page.evaluate("window.__linkSamples")
            report = peer.stop()
            server.end_hearing(hearing["id"])
            folder = server.recording_folder(hearing["id"])
        finally:
            if peer is not None:
                peer.kill()
            server.stop()
    events = read_jsonl(folder / "events.jsonl") if folder else []
    return _browser_blackout_result(samples, console, report, events, marks, wire)


async def _watch_page(page: Any, since: float, timeout: float) -> float | None:
    """Poll the page's samples until video is decoding, sustained, from `since` on and the page
    says `connected`; return when decoding came back (None: not within `timeout`)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        await asyncio.sleep(0.5)
        samples: list[list[Any]] = await page.evaluate("window.__linkSamples || []")
        recent = [s for s in samples if s[0] >= since - 0.5]
        back = sustained_after(
            decoded_frame_times(recent), since, SUSTAINED_FPS["video"], time.time()
        )
        if back is not None and recent and recent[-1][1] == "connected":
            return back
    return None


def _browser_blackout_result(
    samples: list[list[Any]],
    console: list[tuple[float, str]],
    peer: dict[str, Any],
    events: list[dict[str, Any]],
    marks: list[tuple[str, float, float, float]],
    wire: bool,
) -> BrowserBlackoutResult:
    frames = decoded_frame_times(samples)
    our_ids = {str(s[6]) for s in samples if s[6]}
    named = {
        str(e["data"].get("participant"))
        for e in events
        if e.get("kind") == "join" and e.get("data", {}).get("name") == BROWSER_NAME
    }
    ids = our_ids | named
    # what the peer received from the browser, whichever participant id it had at the time
    uplink: dict[str, list[float]] = {"audio": [], "video": []}
    for owner, kinds in peer["received"].items():
        if owner in ids:
            for kind in uplink:
                uplink[kind] += [t[0] if isinstance(t, list) else t for t in kinds.get(kind, [])]
    outages = []
    for what, cut_at, back_at, until in marks:
        inside = [s for s in samples if cut_at - 0.5 <= s[0] <= until]
        states: list[tuple[float, str]] = []
        for s in inside:
            state = s[2] or "-"
            if not states or states[-1][1] != state:
                states.append((round(s[0] - cut_at, 1), state))
        left = next((s[0] for s in inside if s[2] != "connected"), None)
        connected = None
        if left is not None:
            connected = next((s[0] for s in inside if s[0] > left and s[2] == "connected"), None)
        before = {s[3] for s in samples if s[0] < cut_at and s[3] is not None}
        made = {s[3] for s in inside if s[3] is not None} - before
        ids_before = {s[6] for s in samples if s[0] < cut_at and s[6]}
        ids_after = {s[6] for s in inside if s[6]} - ids_before
        back = sustained_after(frames, back_at, SUSTAINED_FPS["video"], until)
        first = min((t for t in frames if t >= back_at), default=None)
        timeline = []
        evidence = []
        for e in events:
            data = e.get("data", {})
            who = str(data.get("participant") or data.get("participantId") or "")
            at = _event_time(e)
            if who not in ids or not cut_at - 0.5 <= at <= until:
                continue
            if e.get("kind") == "network":
                if at <= back_at:
                    evidence.append(
                        (round(at - cut_at, 1), str(data.get("level")), str(data.get("state")))
                    )
            else:
                timeline.append((round(at - cut_at, 1), str(e.get("kind")), data))
        up = {
            kind: sustained_after(times, back_at, SUSTAINED_FPS[kind], until)
            for kind, times in uplink.items()
        }
        outages.append(
            BrowserOutage(
                what=what,
                blackout_s=round(back_at - cut_at, 1),
                video_back_s=None if back is None else round(back - back_at, 2),
                first_frame_s=None if first is None else round(first - back_at, 2),
                frames_during_blackout=count_between(frames, cut_at + 1.0, back_at),
                connected_s=None if connected is None else round(connected - back_at, 2),
                uplink_video_back_s=None
                if up["video"] is None
                else round(up["video"] - back_at, 2),
                uplink_audio_back_s=None
                if up["audio"] is None
                else round(up["audio"] - back_at, 2),
                states=states,
                new_peer_connections=len(made),
                new_participant_ids=len(ids_after),
                console=[
                    (round(t - cut_at, 1), text) for t, text in console if cut_at <= t <= until
                ],
                timeline=timeline,
                evidence=evidence,
            )
        )
    # the peer's list of the others, replayed from the server's messages
    present: dict[str, str] = {}
    most = 0
    for _, kind, data in peer["messages"]:
        if kind == "participant-joined" and isinstance(data.get("participant"), dict):
            p = data["participant"]
            present[str(p.get("id"))] = str(p.get("name"))
        elif kind == "participant-left":
            present.pop(str(data.get("participantId")), None)
        most = max(most, sum(1 for name in present.values() if name == BROWSER_NAME))
    return BrowserBlackoutResult(
        wire=wire,
        outages=outages,
        most_copies_at_peer=most,
        copies_at_peer_at_end=sum(1 for name in present.values() if name == BROWSER_NAME),
        most_others_in_page=max((int(s[7]) for s in samples), default=0),
        peer_error=peer.get("error"),
    )


# -- the client subprocess ------------------------------------------------------------------------


def _client_main(args: argparse.Namespace) -> int:
    """Runs in the child's own namespace (started under `unshare -n`)."""
    print("ns-ready", flush=True)
    # Wait (bounded) until the harness has moved our veth in and configured it.
    line = b""
    deadline = time.monotonic() + 30
    while not line.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([0], [], [], max(deadline - time.monotonic(), 0))
        chunk = os.read(0, 1) if ready else b""
        if not chunk:
            break
        line += chunk
    if line.strip() != b"go":
        print("no go from the harness", file=sys.stderr)
        return 2
    import asyncio

    return asyncio.run(_client(args))


async def _client(args: argparse.Namespace) -> int:
    import asyncio
    import fractions
    import logging

    import numpy as np
    from aiortc import MediaStreamTrack
    from aiortc.mediastreams import MediaStreamError
    from av import AudioFrame, VideoFrame

    from terminal.client import HearingClient
    from tests.media import VIDEO_CLOCK, ColourTrack, ToneTrack

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    if args.video_kbps:
        from aiortc.codecs import vpx

        # The publisher's encoder at a fixed rate, whatever the server's REMB says: a thin link
        # then has more video to carry than it can.
        vpx.DEFAULT_BITRATE = vpx.MIN_BITRATE = vpx.MAX_BITRATE = args.video_kbps * 1000

    report: dict[str, Any] = {
        "name": args.name,
        "participant": None,
        "joined_at": None,
        "left_at": None,
        "sent": {"audio": [], "video": []},
        "received": {},
        "rtp": {},
        "messages": [],
        "states": [],
        "socket_closed_at": None,
        "error": None,
    }
    sent = report["sent"]

    class CountedTone(ToneTrack):
        async def recv(self) -> AudioFrame:
            frame = await super().recv()
            sent["audio"].append([round(time.time(), 4), frame.pts])
            return frame

    class CountedColour(ColourTrack):
        async def recv(self) -> VideoFrame:
            frame = await super().recv()
            sent["video"].append(round(time.time(), 4))
            return frame

    class GrainCamera(MediaStreamTrack):
        """320x240 at 30 fps: a moving gradient with fresh grain on every frame, hard enough that
        aiortc's VP8 encoder (CBR) spends its whole budget."""

        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            rng = np.random.default_rng(7)
            self._grain = [rng.integers(0, 32, (240, 320), dtype=np.uint8) for _ in range(31)]
            yy, xx = np.mgrid[0:240, 0:320]
            self._gradient = (((xx + yy) // 2) % 256 // 2).astype(np.uint8)
            self._start: float | None = None
            self._count = 0

        async def recv(self) -> VideoFrame:
            if self._start is None:
                self._start = time.monotonic()
            delay = self._start + self._count / 30 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            n = self._count
            image = np.empty((360, 320), np.uint8)
            shifted = np.roll(self._gradient, (n * 4) % 320, axis=1)
            np.add(shifted, self._grain[n % len(self._grain)], out=image[:240])
            image[240:] = 128
            frame = VideoFrame.from_ndarray(image, format="yuv420p")
            frame.pts = n * VIDEO_CLOCK // 30
            frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
            self._count += 1
            sent["video"].append(round(time.time(), 4))
            return frame

    tracks: dict[str, MediaStreamTrack] = {}
    publish = [k for k in args.publish.split(",") if k]
    if "audio" in publish:
        tracks["audio"] = CountedTone()
    if "video" in publish:
        tracks["video"] = GrainCamera() if args.video == "grain" else CountedColour((200, 90, 30))

    drains: set[asyncio.Task[None]] = set()
    seen: set[int] = set()

    async def drain(owner: str, kind: str, track: MediaStreamTrack) -> None:
        into = report["received"].setdefault(owner, {}).setdefault(kind, [])
        try:
            for _ in range(10_000_000):
                frame = await track.recv()
                now = round(time.time(), 4)
                into.append([now, frame.pts] if kind == "audio" else now)
        except MediaStreamError:
            pass

    async def rtp_stats(owner: str, kind: str, receiver: Any) -> None:
        """What reached our RTP stack (before aiortc's jitter buffer): cumulative packets received
        and lost, once a second (public `RTCRtpReceiver.getStats()`)."""
        into = report["rtp"].setdefault(owner, {}).setdefault(kind, [])
        for _ in range(100_000):
            stats = await receiver.getStats()
            for s in stats.values():
                if getattr(s, "type", "") == "inbound-rtp":
                    into.append([round(time.time(), 4), s.packetsReceived, s.packetsLost])
            await asyncio.sleep(1.0)

    def on_track(owner: str, kind: str, track: MediaStreamTrack, transceiver: Any) -> None:
        if id(track) in seen:
            return
        seen.add(id(track))
        drains.add(asyncio.create_task(drain(owner, kind, track)))
        drains.add(asyncio.create_task(rtp_stats(owner, kind, transceiver.receiver)))

    client = HearingClient.from_invite(
        args.invite, tracks=tracks, on_track=on_track, ice_addresses=[args.address]
    )
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    try:
        welcome = await client.join(timeout=20)
        report["participant"] = welcome["participant"]["id"]
        report["joined_at"] = time.time()
        pc = client.pc
        assert pc is not None
        report["states"].append([time.time(), pc.connectionState])

        @pc.on("connectionstatechange")
        def _state() -> None:
            report["states"].append([time.time(), pc.connectionState])

        print("joined", report["participant"], flush=True)

        async def messages() -> None:
            for _ in range(1_000_000):
                message = await client.messages.get()
                kind = str(message.get("type"))
                small = {k: v for k, v in message.items() if k != "type" and k != "sdp"}
                report["messages"].append(
                    [time.time(), kind, small if len(str(small)) < 400 else {}]
                )

        async def socket_watch() -> None:
            await client.closed.wait()
            report["socket_closed_at"] = time.time()

        helpers = [asyncio.create_task(messages()), asyncio.create_task(socket_watch())]
        deadline = time.monotonic() + args.max_seconds
        for _ in range(100_000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = await asyncio.wait_for(stdin.readline(), left)
            except TimeoutError:
                break
            if not line or line.strip() == b"stop":
                break
        report["left_at"] = time.time()
        for task in helpers:
            task.cancel()
    except Exception as exc:  # the report says what went wrong; the harness decides
        report["error"] = f"{type(exc).__name__}: {exc}"
        print(f"client failed: {report['error']}", file=sys.stderr, flush=True)
    finally:
        try:
            await asyncio.wait_for(client.close(), 10)
        except Exception as exc:
            print(f"close: {exc!r}", file=sys.stderr)
        for task in drains:
            task.cancel()
        tmp = Path(args.out + ".part")
        tmp.write_text(json.dumps(report))
        tmp.replace(args.out)
    return 0 if report["error"] is None else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.impairment")
    sub = parser.add_subparsers(dest="command", required=True)
    client = sub.add_parser("client", help="one client in its own namespace (run by the harness)")
    client.add_argument("--invite", required=True)
    client.add_argument("--out", required=True)
    client.add_argument("--address", required=True, help="the local address ICE may use")
    client.add_argument("--publish", default="", help="audio,video or empty (subscribe only)")
    client.add_argument("--video", choices=("colour", "grain"), default="colour")
    client.add_argument("--video-kbps", type=int, default=None)
    client.add_argument("--name", default="client")
    client.add_argument("--max-seconds", type=float, default=180.0)
    args = parser.parse_args(argv)
    return _client_main(args)


if __name__ == "__main__":
    sys.exit(main())
