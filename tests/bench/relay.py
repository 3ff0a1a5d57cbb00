"""Relay benchmark: the RTP forwarder against aiortc's MediaRelay, one publisher, N subscribers.

    python tests/bench/relay.py [--quick] [--json] [--modes rtp,mediarelay]
                                [--subscribers 1,2,4,8,16,32] [--seconds 10] [--settle 3]
                                [--max-baseline-subscribers 8] [--logs DIR]

See tests/bench/README.md for what each column means and how CPU and latency are measured.
The server, the publisher and the subscribers run in separate processes (tests/bench/worker.py),
so psutil sees the server's CPU alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[2]
REPLY_PREFIX = "@@"  # tests/bench/worker.py
MODES = ("rtp", "mediarelay")
PROBE_NAME = "probe"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- child processes ------------------------------------------------------------------------------


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("TINGSHEN_CONFIG", None)
    for name in ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy"):
        env.pop(name, None)  # everything is on 127.0.0.1
        env.pop(name.upper(), None)
    env.update(extra or {})
    return env


class Children:
    """Every process the benchmark starts; `stop_all` ends them (quit, SIGTERM, SIGKILL)."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(
        self,
        args: list[str],
        log_path: Path,
        env: dict[str, str],
        pipes: bool,
        module: str = "tests.bench.worker",
    ) -> asyncio.subprocess.Process:
        with log_path.open("ab") as log_file:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                module,
                *args,
                stdin=asyncio.subprocess.PIPE if pipes else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if pipes else log_file,
                stderr=log_file,
                cwd=ROOT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches only us; we stop them in order
            )
        self.procs.append(proc)
        return proc

    async def stop(self, proc: asyncio.subprocess.Process, sig: int, grace: float) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 5)
        if proc in self.procs:
            self.procs.remove(proc)

    async def stop_all(self) -> None:
        await asyncio.gather(
            *(self.stop(p, signal.SIGTERM, 5) for p in list(self.procs)), return_exceptions=True
        )

    def kill_all_now(self) -> None:
        """Last resort, synchronous (the event loop may be gone)."""
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)


class Worker:
    """A publisher or subscribers process driven over JSON lines."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, children: Children) -> None:
        self.name = name
        self.proc = proc
        self.children = children
        self.pid = proc.pid
        self._lock = asyncio.Lock()
        self._seq = 0

    @classmethod
    async def start(
        cls,
        name: str,
        role: str,
        logs: Path,
        children: Children,
        module: str = "tests.bench.worker",  # tests/bench/janus.py: tests.bench.janus_worker
        args: tuple[str, ...] = (),
    ) -> Worker:
        log_path = logs / f"{name}.log"
        proc = await children.start(
            [role, *args], log_path, _child_env(), pipes=True, module=module
        )
        return cls(name, proc, children)

    async def call(self, command: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self._lock:
            if self.proc.returncode is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode})")
            self._seq += 1
            seq = self._seq
            self.proc.stdin.write((json.dumps({**command, "seq": seq}) + "\n").encode())
            await asyncio.wait_for(self.proc.stdin.drain(), timeout)

            async def reply() -> dict[str, Any]:
                assert self.proc.stdout is not None
                while True:
                    line = await self.proc.stdout.readline()
                    if not line:
                        raise RuntimeError(f"{self.name} exited while running {command['cmd']}")
                    text = line.decode(errors="replace")
                    if text.startswith(REPLY_PREFIX):
                        message = dict(json.loads(text[len(REPLY_PREFIX) :]))
                        if message.pop("seq", None) == seq:
                            return message  # else: the late reply to a command that timed out

            result = await asyncio.wait_for(reply(), timeout)
        if result.get("ok") is False and "error" in result:
            raise RuntimeError(f"{self.name} {command['cmd']}: {result['error']}")
        return result

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.call({"cmd": "quit"}, timeout=8)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.proc.wait(), 8)
        await self.children.stop(self.proc, signal.SIGTERM, 3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    mode: str
    base_url: str
    data: Path
    log_path: Path
    proc: asyncio.subprocess.Process
    ps: psutil.Process

    @property
    def token(self) -> str:
        return (self.data / "admin.token").read_text().strip()


def _http(method: str, url: str, body: Any = None, token: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


async def start_server(mode: str, logs: Path, children: Children) -> Server:
    port = free_port()
    data = logs / f"data-{mode}"
    log_path = logs / f"server-{mode}.log"
    env = _child_env({"TINGSHEN_RELAY_MODE": mode})
    args = ["exec", sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1"]
    args += ["--port", str(port), "--data", str(data)]
    proc = await children.start(args, log_path, env, pipes=False)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.returncode is not None:
            raise RuntimeError(f"server ({mode}) exited with {proc.returncode}; see {log_path}")
        try:
            await asyncio.to_thread(_http, "GET", base_url + "/readyz")
            if (data / "admin.token").is_file():
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server ({mode}) not ready after 30 s; see {log_path}")
        await asyncio.sleep(0.2)
    return Server(mode, base_url, data, log_path, proc, psutil.Process(proc.pid))


async def create_hearing(server: Server, subscribers: int) -> list[str]:
    invites = [{"role": "judge", "name": "pub"}]
    invites += [{"role": "party", "name": f"s{i + 1}"} for i in range(subscribers)]
    body = {
        "caseNumber": f"bench-{server.mode}",
        "kind": "meeting",
        "invites": invites,
        "autoAdmit": ["party", "observer"],  # no lobby: nobody is there to admit the subscribers
    }
    result = await asyncio.to_thread(
        _http, "POST", server.base_url + "/api/hearings", body, server.token
    )
    return [str(i["url"]) for i in result["invites"]]


def server_log_problems(path: Path, limit: int = 6) -> tuple[int, int, list[str]]:
    """(error lines, warning lines, a few distinct messages) in a server log."""
    errors = warnings = 0
    seen: dict[str, None] = {}
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return 0, 0, []
    for line in lines:
        is_error = " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
        is_warning = " WARNING " in line
        if is_error:
            errors += 1
        elif is_warning:
            warnings += 1
        else:
            continue
        message = line.split(": ", 1)[-1][:160]
        if len(seen) < limit:
            seen.setdefault(message, None)
    return errors, warnings, list(seen)


# -- measuring ------------------------------------------------------------------------------------


@dataclass
class Window:
    """What one measurement window saw."""

    seconds: float
    server_cpu_pct: float | None = None
    rss_mb: float | None = None
    box_busy_pct: float = 0.0
    clients_cpu_pct: float = 0.0
    other_cpu_pct: float = 0.0  # everything on the machine that is not this benchmark
    fps: list[float] = field(default_factory=list)
    probe_undecodable: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    publisher_kbps: float | None = None
    states: list[str] = field(default_factory=list)

    @property
    def min_fps(self) -> float | None:
        return min(self.fps) if self.fps else None

    def latency(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        return float(np.percentile(self.latencies_ms, q))


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _box_busy() -> tuple[float, float]:
    times = psutil.cpu_times()
    total = float(sum(times))
    idle = float(times.idle + getattr(times, "iowait", 0.0))
    return total - idle, total


async def measure(
    seconds: float,
    server: Server | None,
    publisher: Worker,
    subscribers: list[Worker],
    probe: Worker | None,
) -> Window:
    """Sample everything at the start and end of a window of `seconds`."""
    clients = [publisher, *subscribers]
    client_ps = [psutil.Process(w.pid) for w in clients]

    async def snapshot() -> tuple[
        float, float | None, list[float], tuple[float, float], dict[str, Any], list[Any]
    ]:
        stats, *statuses = await asyncio.gather(
            publisher.call({"cmd": "stats"}),
            *(w.call({"cmd": "status"}) for w in subscribers),
        )
        now = time.monotonic()
        cpu = _cpu_seconds(server.ps) if server is not None else None
        client_cpu = [_cpu_seconds(p) for p in client_ps]
        return now, cpu, client_cpu, _box_busy(), stats, statuses

    t0, cpu0, ccpu0, box0, stats0, status0 = await snapshot()
    await asyncio.sleep(seconds)
    t1, cpu1, ccpu1, box1, stats1, status1 = await snapshot()
    wall = t1 - t0
    window = Window(seconds=wall)
    if server is not None and cpu0 is not None and cpu1 is not None:
        window.server_cpu_pct = (cpu1 - cpu0) / wall * 100.0
        window.rss_mb = server.ps.memory_info().rss / 2**20
    window.clients_cpu_pct = (sum(ccpu1) - sum(ccpu0)) / wall * 100.0
    busy = box1[0] - box0[0]
    total = box1[1] - box0[1]
    window.box_busy_pct = busy / total * 100.0 * (psutil.cpu_count() or 1) if total > 0 else 0.0
    ours = window.clients_cpu_pct + (window.server_cpu_pct or 0.0)
    window.other_cpu_pct = max(window.box_busy_pct - ours, 0.0)
    window.publisher_kbps = (
        (stats1["video_bytes"] - stats0["video_bytes"]) * 8 / (stats1["t"] - stats0["t"]) / 1000
    )
    for before, after in zip(status0, status1, strict=True):
        span = after["t"] - before["t"]
        old = {s["name"]: s for s in before["subs"]}
        for sub in after["subs"]:
            first = old.get(sub["name"], {"video": 0, "undecodable": 0})
            window.fps.append((sub["video"] - first["video"]) / span)
            window.states.append(sub["state"])
            if sub["name"].startswith(PROBE_NAME) or sub["name"] == "direct-probe":
                window.probe_undecodable += sub["undecodable"] - first["undecodable"]
    if probe is not None:
        sends, arrivals = await asyncio.gather(
            publisher.call({"cmd": "sends", "since": t0 - 5.0, "until": t1}),
            probe.call({"cmd": "arrivals", "since": t0, "until": t1}),
        )
        sent_at: dict[int, float] = {}
        for counter, t in sends["sends"]:
            sent_at[int(counter)] = float(t)  # a 16-bit counter does not wrap within 15 s
        seen: set[int] = set()
        for counter, t in arrivals["arrivals"]:
            c = int(counter)
            if c in seen or c not in sent_at:
                continue
            seen.add(c)
            window.latencies_ms.append((float(t) - sent_at[c]) * 1000.0)
    return window


async def wait_video(workers: list[Worker], names: set[str], timeout: float) -> list[str]:
    """Wait until every named subscriber has received a few video frames; return the late ones."""
    deadline = time.monotonic() + timeout
    late = set(names)
    while True:
        statuses = await asyncio.gather(*(w.call({"cmd": "status"}) for w in workers))
        late = {
            s["name"]
            for st in statuses
            for s in st["subs"]
            if s["name"] in names and s["video"] < 5
        }
        if not late or time.monotonic() > deadline:
            return sorted(late)
        await asyncio.sleep(0.25)


# -- the benchmark --------------------------------------------------------------------------------


@dataclass
class Config:
    modes: list[str]
    subscribers: list[int]
    seconds: float
    settle: float
    max_baseline: int
    logs: Path


@dataclass
class Row:
    mode: str
    subscribers: int
    window: Window
    cpu_per_subscriber_pct: float | None = None
    added_p50_ms: float | None = None
    added_p99_ms: float | None = None
    late: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        def r(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "mode": self.mode,
            "subscribers": self.subscribers,
            "cpu_per_subscriber_pct": r(self.cpu_per_subscriber_pct, 3),
            "min_fps": r(self.window.min_fps, 1),
            "rss_mb": r(self.window.rss_mb, 1),
            "latency_p50_ms": r(self.added_p50_ms, 2),
            "latency_p99_ms": r(self.added_p99_ms, 2),
        }


@dataclass
class Results:
    direct: Window | None = None
    rows: list[Row] = field(default_factory=list)
    idle: dict[str, Window] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


async def run_direct(cfg: Config, children: Children) -> Window:
    """Publisher -> probe over one direct aiortc peer connection: the latency without a server."""
    log("direct baseline: publisher -> probe, no server")
    publisher = await Worker.start("direct-publisher", "publisher", cfg.logs, children)
    probe = await Worker.start("direct-probe", "subscribers", cfg.logs, children)
    try:
        offer = await publisher.call({"cmd": "direct_offer"}, timeout=20)
        answer = await probe.call({"cmd": "direct_answer", "sdp": offer["sdp"]}, timeout=20)
        result = await publisher.call({"cmd": "direct_answer", "sdp": answer["sdp"]}, timeout=25)
        if not result.get("ok"):
            raise RuntimeError(f"direct connection not up: {result}")
        late = await wait_video([probe], {"direct-probe"}, timeout=20)
        if late:
            raise RuntimeError("direct probe receives no video")
        await asyncio.sleep(cfg.settle)
        return await measure(cfg.seconds, None, publisher, [probe], probe)
    finally:
        await asyncio.gather(publisher.close(), probe.close())


async def run_mode(mode: str, cfg: Config, children: Children, results: Results) -> None:
    counts = sorted(set(cfg.subscribers))
    if mode == "mediarelay":
        skipped = [n for n in counts if n > cfg.max_baseline]
        counts = [n for n in counts if n <= cfg.max_baseline]
        if skipped:
            note = (
                f"mediarelay: skipped N={','.join(map(str, skipped))} "
                f"(--max-baseline-subscribers {cfg.max_baseline}: decoding and re-encoding per "
                "subscriber would saturate this machine)"
            )
            results.notes.append(note)
            log(note)
    if not counts:
        return
    log(f"{mode}: starting server")
    server = await start_server(mode, cfg.logs, children)
    workers: list[Worker] = []
    try:
        urls = await create_hearing(server, max(counts))
        publisher = await Worker.start(f"{mode}-publisher", "publisher", cfg.logs, children)
        workers.append(publisher)
        joined = await publisher.call({"cmd": "join", "url": urls[0], "timeout": 25}, timeout=30)
        if not joined.get("ok"):
            raise RuntimeError(f"{mode}: publisher not connected: {joined}")
        await asyncio.sleep(cfg.settle + 1.0)
        log(f"{mode}: N=0 (publisher only), {cfg.seconds:.0f} s window")
        idle = await measure(cfg.seconds, server, publisher, [], None)
        results.idle[mode] = idle
        assert idle.server_cpu_pct is not None
        probe = await Worker.start(f"{mode}-probe", "subscribers", cfg.logs, children)
        pools = [
            await Worker.start(f"{mode}-subs{i}", "subscribers", cfg.logs, children) for i in (1, 2)
        ]
        workers += [probe, *pools]
        subscriber_workers = [probe, *pools]
        have = 0
        for n in counts:
            # Subscriber 1 is the probe (it decodes); the others only count frames, split in two.
            plan: dict[int, tuple[list[str], list[str]]] = {}
            new_names: set[str] = set()
            for index in range(have, n):
                target = 0 if index == 0 else 1 + (index % 2)
                name = PROBE_NAME if index == 0 else f"s{index + 1}"
                plan.setdefault(target, ([], []))
                plan[target][0].append(urls[1 + index])
                plan[target][1].append(name)
                new_names.add(name)
            log(f"{mode}: N={n}: joining {n - have} subscriber(s)")
            replies = await asyncio.gather(
                *(
                    subscriber_workers[t].call(
                        {
                            "cmd": "join",
                            "urls": u,
                            "names": names,
                            "probe": t == 0,
                            "timeout": 20,
                        },
                        timeout=30 + 2 * len(u),
                    )
                    for t, (u, names) in plan.items()
                )
            )
            for reply in replies:
                for error in reply.get("errors", []):
                    results.notes.append(f"{mode} N={n}: join failed: {error}")
            have = n
            late = await wait_video(subscriber_workers, new_names, timeout=20 + n)
            if late:
                log(f"{mode}: N={n}: no video yet at {len(late)} subscriber(s): {late[:5]}")
            await asyncio.sleep(cfg.settle)
            log(f"{mode}: N={n}: {cfg.seconds:.0f} s window")
            window = await measure(cfg.seconds, server, publisher, subscriber_workers, probe)
            row = Row(mode, n, window, late=late)
            if window.server_cpu_pct is not None:
                row.cpu_per_subscriber_pct = (window.server_cpu_pct - idle.server_cpu_pct) / n
            direct = results.direct
            p50, p99 = window.latency(50), window.latency(99)
            if direct is not None and p50 is not None and p99 is not None:
                d50, d99 = direct.latency(50), direct.latency(99)
                if d50 is not None and d99 is not None:
                    row.added_p50_ms, row.added_p99_ms = p50 - d50, p99 - d99
            results.rows.append(row)
            log(
                f"{mode}: N={n}: server {window.server_cpu_pct:.1f} %, "
                f"per subscriber {row.cpu_per_subscriber_pct:.2f} %, min fps "
                f"{window.min_fps if window.min_fps is not None else float('nan'):.1f}, "
                f"latency p50 {p50 if p50 is not None else float('nan'):.1f} ms"
            )
    finally:
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
        await children.stop(server.proc, signal.SIGINT, 10)
        errors, warnings, messages = server_log_problems(server.log_path)
        if errors or warnings:
            note = f"{mode}: server log has {errors} error and {warnings} warning line(s)"
            if messages:
                note += ": " + " | ".join(messages)
            results.notes.append(note)


async def run(cfg: Config, results: Results) -> None:
    children = Children()
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        try:
            results.direct = await run_direct(cfg, children)
        except Exception as exc:
            results.notes.append(f"direct baseline failed: {exc!r}; added latency not computed")
            log(results.notes[-1])
        for mode in cfg.modes:
            try:
                await run_mode(mode, cfg, children, results)
            except Exception as exc:
                results.notes.append(f"{mode}: aborted: {exc!r}")
                log(results.notes[-1])
    finally:
        try:
            await asyncio.shield(children.stop_all())
        finally:
            children.kill_all_now()
            loop.remove_signal_handler(signal.SIGTERM)


# -- output ---------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    """`format(value, spec)`, or a dash as wide as the spec's width when there is no value."""
    if value is None:
        width = spec.split(".")[0]
        return "-".rjust(int(width)) if width.isdigit() else "-"
    return format(value, spec)


def slope(rows: list[Row]) -> float | None:
    """Least-squares slope of server CPU % over N (the marginal cost of one subscriber)."""
    points = [(r.subscribers, r.window.server_cpu_pct) for r in rows]
    points = [(n, c) for n, c in points if c is not None]
    if len(points) < 2:
        return None
    xs = np.array([p[0] for p in points], float)
    ys = np.array([p[1] for p in points], float)
    return float(np.polyfit(xs, ys, 1)[0])


def table(results: Results, cfg: Config) -> str:
    out: list[str] = []
    direct = results.direct
    if direct is not None:
        out.append(
            f"Direct publisher -> probe (no server): latency p50 {_fmt(direct.latency(50), '.1f')}"
            f" ms, p99 {_fmt(direct.latency(99), '.1f')} ms over {len(direct.latencies_ms)}"
            f" frames; publisher video {_fmt(direct.publisher_kbps, '.0f')} kbit/s"
        )
    for mode, idle in results.idle.items():
        out.append(
            f"{mode}: publisher only (N=0): server CPU {_fmt(idle.server_cpu_pct, '.1f')} %,"
            f" RSS {_fmt(idle.rss_mb, '.0f')} MB; publisher video"
            f" {_fmt(idle.publisher_kbps, '.0f')} kbit/s (payload)"
        )
    out.append("")
    header = (
        f"{'mode':<10} {'subs':>4} {'srv CPU%':>8} {'CPU%/sub':>8} {'min fps':>7}"
        f" {'RSS MB':>6} {'lat p50':>7} {'lat p99':>7} {'+p50 ms':>7} {'+p99 ms':>7}"
        f" {'clients%':>8} {'other%':>6}"
    )
    out.append(header)
    out.append("-" * len(header))
    for row in results.rows:
        w = row.window
        out.append(
            f"{row.mode:<10} {row.subscribers:>4} {_fmt(w.server_cpu_pct, '8.1f')}"
            f" {_fmt(row.cpu_per_subscriber_pct, '8.2f')} {_fmt(w.min_fps, '7.1f')}"
            f" {_fmt(w.rss_mb, '6.0f')} {_fmt(w.latency(50), '7.1f')} {_fmt(w.latency(99), '7.1f')}"
            f" {_fmt(row.added_p50_ms, '7.1f')} {_fmt(row.added_p99_ms, '7.1f')}"
            f" {w.clients_cpu_pct:8.0f} {w.other_cpu_pct:6.0f}"
        )
    out.append("")
    for mode in cfg.modes:
        s = slope([r for r in results.rows if r.mode == mode])
        if s is not None:
            out.append(
                f"{mode}: slope of server CPU over N (least squares): {s:.2f} % per subscriber"
            )
    cores = psutil.cpu_count() or 1
    out.append(
        f"CPU in % of one core ({cores} cores here). clients% = publisher + subscriber processes;"
        " other% = the rest of the machine (not this benchmark): figures taken while other% is"
        " high are noisy. A subscriber = one video + one audio stream. lat = the publisher hands"
        " a frame to aiortc -> the probe has decoded it; +p50/+p99 = minus the direct path."
    )
    busy = [r for r in results.rows if r.window.other_cpu_pct > 20]
    if busy:
        worst = max(r.window.other_cpu_pct for r in busy)
        out.append(
            f"warning: {len(busy)} row(s) measured while other processes used >20 % of a core"
            f" (up to {worst:.0f} %)"
        )
    for row in results.rows:
        if row.late:
            out.append(
                f"{row.mode} N={row.subscribers}: {len(row.late)} subscriber(s) got no video"
            )
        if row.window.probe_undecodable:
            out.append(
                f"{row.mode} N={row.subscribers}: {row.window.probe_undecodable} probe frame(s)"
                " with an unreadable counter"
            )
    out.extend(results.notes)
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> tuple[Config, bool, bool]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--modes", default=",".join(MODES), help="rtp,mediarelay")
    parser.add_argument("--subscribers", default=None, help="default 1,2,4,8,16,32")
    parser.add_argument("--seconds", type=float, default=None, help="window length (default 10)")
    parser.add_argument("--settle", type=float, default=None, help="settle time (default 3)")
    parser.add_argument("--max-baseline-subscribers", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="N=1,2 and short windows")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--logs", help="keep logs and data folders in this directory")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r} (choose from {', '.join(MODES)})")
    default_subs = "1,2" if args.quick else "1,2,4,8,16,32"
    try:
        subscribers = [int(n) for n in (args.subscribers or default_subs).split(",") if n.strip()]
    except ValueError:
        parser.error("--subscribers: a comma-separated list of integers")
    if not subscribers or min(subscribers) < 1 or max(subscribers) > 99:
        parser.error("--subscribers: numbers between 1 and 99")
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 10.0)
    settle = args.settle if args.settle is not None else (1.5 if args.quick else 3.0)
    keep = args.logs is not None
    logs = Path(args.logs) if keep else Path(tempfile.mkdtemp(prefix="tingshen-bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    cfg = Config(modes, subscribers, seconds, settle, args.max_baseline_subscribers, logs)
    return cfg, args.json, keep


def main(argv: list[str] | None = None) -> int:
    cfg, as_json, keep = parse_args(argv)
    results = Results()
    log(
        f"modes {','.join(cfg.modes)}, N={','.join(map(str, cfg.subscribers))}, "
        f"window {cfg.seconds:g} s, settle {cfg.settle:g} s, logs {cfg.logs}"
    )
    interrupted = False
    try:
        asyncio.run(run(cfg, results))
    except (KeyboardInterrupt, asyncio.CancelledError):
        interrupted = True
        results.notes.append("interrupted: partial results")
    if as_json:
        print(json.dumps([row.json() for row in results.rows], indent=2))
        if results.notes:
            print("\n".join(results.notes), file=sys.stderr)
    else:
        print(table(results, cfg))
    if not keep:
        shutil.rmtree(cfg.logs, ignore_errors=True)
    else:
        log(f"logs kept in {cfg.logs}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
