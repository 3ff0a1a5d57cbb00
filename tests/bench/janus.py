"""Janus benchmark: Janus's VideoRoom under relay.py's load, alone or side by side with the forwarder.

    python tests/bench/janus.py [--compare] [--quick] [--json] [--subscribers 1,2,4,8,16,32]
                                [--seconds 10] [--settle 3] [--logs DIR]
                                [--janus /usr/bin/janus] [--janus-lib DIR] [--janus-debug-level 2]
                                [--janus-event-loops 0] [--janus-ice-address ADDR]

    # in a loopback-only network namespace, as root (how it is meant to run):
    unshare -n sh -c 'ip link set lo up; python tests/bench/janus.py'            # Janus alone
    unshare -n sh -c 'ip link set lo up; python tests/bench/janus.py --compare'  # forwarder, then Janus
    unshare -n sh -c 'ip link set lo up; python tests/bench/janus.py --quick'    # smoke run (~1 min)

`--compare` runs relay.py's `rtp` mode (the Tingshen server with the RTP forwarder) and then Janus,
with one shared direct baseline, the same N list and window, and prints both slopes and their ratio.
Run it on an otherwise idle machine (the `other%` column and the load average say how idle it was).

Needs Debian's Janus (`apt-get install janus`, 1.1.x); the script stops with that hint when it is
missing. It writes a private Janus configuration under its temporary folder (or `--logs DIR`) and
starts its own Janus process from it: only the VideoRoom plugin and the plain-HTTP transport on
127.0.0.1 at a free port; no other plugin, transport, logger or event handler; half-trickle, no
STUN/TURN; error-level logging (`--janus-debug-level`), libnice debugging off; Janus runs at the same
nice level as relay.py's server (the caller's); one event loop thread per handle, Janus's default
(`--janus-event-loops N` shares N loop threads among all handles instead: measurably cheaper).

Janus 1.1 gathers no ICE candidate on a loopback interface (`ice_enforce_list = "lo"` cannot work),
so inside the namespace the script adds a veth pair, both ends in the namespace, one with
198.18.0.1/32 (RFC 2544's benchmarking range), and Janus (`ice_enforce_list` = that address) and its
aiortc clients use that address for ICE. It is a local address, so every media packet still goes
through the kernel's loopback device, as in the Tingshen runs on 127.0.0.1. Outside a loopback-only
namespace the script refuses to start unless given `--janus-ice-address` (a non-loopback address of
this machine, used the same way; nothing is changed on the host).

What runs is relay.py's, with Janus in the server's place: the direct publisher -> probe baseline
(for the added latency), the same publisher (tests/bench/worker.py's `Publisher`: 640x480 30 fps VP8
pinned at 1.5 Mbit/s + an Opus tone), and subscribers in three processes (the probe, which decodes,
and two pools that only count encoded frames), run by tests/bench/janus_worker.py. The publisher
offers to Janus (`join` as publisher, `publish`); each subscriber is its own Janus handle and peer
connection (`join` as subscriber to the publisher's feed: Janus offers, aiortc answers, `start`). The
room is VP8 + Opus, `notify_joining` off, no periodic keyframe requests (`fir_freq` 0), no bitrate
cap, no recording.

Columns are relay.py's (tests/bench/README.md), measured by relay.py's own code: `srv CPU%` is the
Janus process's utime + stime (/proc/<pid>/stat, all threads, via psutil) over the window, in % of
one core; CPU%/sub = (X(N) - X(0)) / N; added latency = the probe's p50/p99 minus the direct path's.
Below the table: the least-squares slope of X over N per subscriber (one audio + one video stream)
and per stream (half of it), the load average, and with `--compare` the ratio forwarder / Janus.
When some N saturated the machine (a subscriber below 28 fps in any mode), the slopes over the N
where every mode kept up are printed as well. `--json` prints one object (rows, slopes, ratio, load).

What differs between the two setups (read the ratio with these in mind):
- Work per subscriber. Both SRTP-protect every packet per subscriber, rewrite its header (SSRC,
  sequence number, timestamp, extensions), keep a retransmission history, answer NACKs, pass PLIs
  upstream and send RTCP sender reports. Janus also negotiates RTX with the aiortc subscribers,
  handles their REMB, and by default hands each packet to each subscriber's own loop thread (up to a
  thread wake-up per packet per subscriber); the Tingshen server runs one Python event loop and also
  samples every participant's link onto the recording's timeline. Neither sends TWCC
  feedback (aiortc offers no transport-cc). On loopback nothing is lost, so no NACK work either way.
- Work per publisher, not per subscriber (in X(0), out of the slope): the Tingshen server also
  assembles frames and records every track (WebM segments, hashes, fsync); Janus records nothing.
  So compare slopes, not the `srv CPU%` column.
- Signalling: one Janus session over HTTP long polling for all handles; one WebSocket per
  participant for Tingshen. Idle in the measurement windows either way.
- Logging: Janus errors only; the Tingshen server at its default level. Both to a file.
- Addresses: Janus's peer connections on 198.18.0.1 (see above), Tingshen's on 127.0.0.1; both are
  local, so both go through the loopback device.
- The runs are sequential (forwarder first): load that changes between them shows in `other%`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

if __package__ in (None, ""):  # run as a script: make `tests.bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench import relay
from tests.bench.relay import (
    PROBE_NAME,
    Children,
    Config,
    Results,
    Row,
    Server,
    Worker,
    free_port,
    log,
    measure,
    wait_video,
)

JANUS_MODE = "janus"
ROOM = 1234
INSTALL_HINT = "apt-get install janus"
PLUGIN = "janus.plugin.videoroom"
LIB_CANDIDATES = (
    "/usr/lib/*/janus",
    "/usr/lib/janus",
    "/usr/local/lib/janus",
    "/opt/janus/lib/janus",
)
STEADY_FPS = 28.0  # the camera sends 30
JOIN_CONCURRENCY = 4  # as relay.py's subscriber processes join at most 4 at a time


class JanusMissing(RuntimeError):
    pass


# -- the Janus installation and its private configuration -----------------------------------------


@dataclass
class Installation:
    binary: Path
    plugin: Path  # libjanus_videoroom.so
    transport: Path  # libjanus_http.so


def find_janus(binary: str | None, lib: str | None) -> Installation:
    """The janus binary and the two shared objects the benchmark loads, or JanusMissing."""
    found = shutil.which(binary or "janus")
    if found is None:
        raise JanusMissing(
            f"janus is not installed ({binary or 'janus'} not found on PATH): {INSTALL_HINT}"
        )
    folders = [Path(lib)] if lib else [Path(p) for c in LIB_CANDIDATES for p in glob.glob(c)]
    for folder in folders:
        plugin = folder / "plugins" / "libjanus_videoroom.so"
        transport = folder / "transports" / "libjanus_http.so"
        if plugin.is_file() and transport.is_file():
            return Installation(Path(found), plugin, transport)
    raise JanusMissing(
        "janus is installed but its videoroom plugin or HTTP transport was not found in "
        f"{', '.join(map(str, folders)) or ', '.join(LIB_CANDIDATES)} (--janus-lib DIR): "
        f"{INSTALL_HINT}"
    )


# -- where Janus gathers ICE candidates ------------------------------------------------------------

# Janus 1.1 never gathers on a loopback interface: janus_ice_setup_local() skips every interface
# flagged IFF_LOOPBACK, whatever ice_enforce_list says (with only `lo` up, every handle fails with
# "Error gathering candidates" / "Error setting ICE locally"). In a loopback-only namespace the
# benchmark therefore adds a veth pair whose one end carries an address of the benchmarking range
# (198.18.0.0/15, RFC 2544) and lets Janus gather on that address only; both ends are in the
# namespace, so nothing leaves it. The clients gather on the same address (janus_worker.py), not on
# 127.0.0.1: libnice pins its sockets to their interface (IP_UNICAST_IF), so Janus's packets to
# 127.0.0.1 would leave by the veth and be lost. To a local address they go through loopback.
VETH = "tsbench0"
VETH_PEER = "tsbench1"
VETH_ADDRESS = "198.18.0.1"


def _ip(*args: str) -> None:
    ip = shutil.which("ip")
    if ip is None:
        raise JanusMissing("`ip` (iproute2) not found: apt-get install iproute2")
    done = subprocess.run([ip, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise JanusMissing(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")


def local_addresses() -> dict[str, str]:
    """Non-loopback IPv4 addresses of this network namespace: {address: interface}."""
    found: dict[str, str] = {}
    for name, addresses in psutil.net_if_addrs().items():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                found[address.address] = name
    return found


def prepare_ice_address(requested: str | None) -> tuple[str, bool]:
    """The IPv4 address Janus gathers candidates on, and whether this run created the veth pair."""
    if requested is not None:
        if requested not in local_addresses():
            raise JanusMissing(
                f"--janus-ice-address {requested}: not a non-loopback IPv4 address of this machine"
            )
        return requested, False
    interfaces = {name for _, name in socket.if_nameindex()}  # not /sys: the mounter's netns
    if not interfaces - {"lo", VETH, VETH_PEER}:  # a loopback-only namespace (ours, or a rerun)
        if VETH_ADDRESS in local_addresses():
            return VETH_ADDRESS, False
        try:
            _ip("link", "add", VETH, "type", "veth", "peer", "name", VETH_PEER)
            _ip("addr", "add", f"{VETH_ADDRESS}/32", "dev", VETH)
            _ip("link", "set", VETH_PEER, "up")
            _ip("link", "set", VETH, "up")
        except JanusMissing as exc:
            raise JanusMissing(
                f"could not add a veth pair for Janus's ICE ({exc}); Janus gathers no candidate"
                " on a loopback interface. Run as root in a loopback-only namespace"
                " (unshare -n sh -c 'ip link set lo up; python tests/bench/janus.py'), or pass"
                " --janus-ice-address with a non-loopback address of this machine"
            ) from exc
        log(f"janus: added veth pair {VETH}/{VETH_PEER} with {VETH_ADDRESS}/32 for Janus's ICE")
        return VETH_ADDRESS, True
    raise JanusMissing(
        "not in a loopback-only network namespace, and Janus gathers no ICE candidate on a loopback"
        " interface: run it as unshare -n sh -c 'ip link set lo up; python tests/bench/janus.py'"
        " (the script then adds a veth pair inside the namespace), or pass --janus-ice-address"
        f" with one of this machine's addresses ({', '.join(local_addresses()) or 'none'})"
    )


def remove_veth() -> None:
    with contextlib.suppress(JanusMissing):
        _ip("link", "del", VETH)  # takes its peer with it


def write_config(
    folder: Path,
    install: Installation,
    http_port: int,
    debug_level: int,
    ice_address: str,
    event_loops: int = 0,
) -> Path:
    """Janus 1.1 configuration (libconfig .jcfg) in `folder`; returns the main file's path.

    Each of the plugins, transports, events and loggers folders Janus scans is a private folder:
    the first two hold one symlink each, the others nothing, so nothing else can load.
    """
    folder.mkdir(parents=True, exist_ok=True)
    subfolders = {}
    for name in ("plugins", "transports", "events", "loggers"):
        sub = folder / name
        sub.mkdir(exist_ok=True)
        subfolders[name] = sub
    for sub, target in (
        (subfolders["plugins"], install.plugin),
        (subfolders["transports"], install.transport),
    ):
        link = sub / target.name
        if not link.exists():
            link.symlink_to(target)
    main = folder / "janus.jcfg"
    main.write_text(
        f"""# Written by tests/bench/janus.py for one benchmark run.
general: {{
	configs_folder = "{folder}"
	plugins_folder = "{subfolders["plugins"]}"
	transports_folder = "{subfolders["transports"]}"
	events_folder = "{subfolders["events"]}"
	loggers_folder = "{subfolders["loggers"]}"
	debug_level = {debug_level}
	event_loops = {event_loops}		# 0: Janus's default, one loop thread per handle
	debug_timestamps = true
	debug_colors = false
	server_name = "tingshen-bench"
	session_timeout = 0		# the benchmark sends no keepalives; Janus dies with it anyway
	hide_dependencies = true
}}
certificates: {{
}}
media: {{
	ipv6 = false
}}
nat: {{
	nice_debug = false
	full_trickle = false
	ice_enforce_list = "{ice_address}"
	ignore_mdns = true
}}
plugins: {{
}}
transports: {{
}}
loggers: {{
}}
events: {{
	broadcast = false
}}
"""
    )
    (folder / "janus.transport.http.jcfg").write_text(
        f"""general: {{
	events = false
	json = "compact"
	base_path = "/janus"
	http = true
	port = {http_port}
	ip = "127.0.0.1"
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
"""
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: {\n\tevents = false\n}\n")
    return main


def janus_log_problems(path: Path, limit: int = 6) -> tuple[int, int, list[str]]:
    """(error lines, warning lines, a few distinct messages) in a Janus log."""
    errors = warnings = 0
    seen: dict[str, None] = {}
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return 0, 0, []
    for line in lines:
        if "[ERR]" in line or "[FATAL]" in line:
            errors += 1
        elif "[WARN]" in line:
            warnings += 1
        else:
            continue
        message = line.split("] ", 1)[-1][:160]
        if len(seen) < limit:
            seen.setdefault(message, None)
    return errors, warnings, list(seen)


# -- the Janus API over HTTP ----------------------------------------------------------------------


class JanusError(RuntimeError):
    pass


@dataclass
class HandleEvents:
    """What Janus said about one handle (peer connection) outside of request/response."""

    webrtcup: int = 0
    hangups: list[str] = field(default_factory=list)
    slowlinks: int = 0
    media_lost: int = 0  # "media" events with receiving = false


class JanusSession:
    """One Janus session over the HTTP transport: requests by transaction, events by long poll."""

    def __init__(self, base_url: str) -> None:
        self.url = base_url.rstrip("/") + "/janus"
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=75))
        self.session_id: int | None = None
        self.handles: dict[int, HandleEvents] = {}
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._poller: asyncio.Task[None] | None = None

    async def post(self, path: str, body: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
        """Send a request; for an asynchronous one ("ack"), wait for the event that answers it."""
        transaction = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future
        try:
            async with self.http.post(
                self.url + path, json={**body, "transaction": transaction}
            ) as response:
                reply = dict(await response.json(content_type=None))
            if reply.get("janus") == "ack":
                reply = await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(transaction, None)
        if reply.get("janus") == "error":
            raise JanusError(f"{body.get('janus')}: {reply.get('error')}")
        data = reply.get("plugindata", {}).get("data", {})
        if "error" in data or "error_code" in data:
            raise JanusError(f"{body.get('body', {}).get('request')}: {data}")
        return reply

    async def info(self) -> dict[str, Any]:
        async with self.http.post(self.url, json={"janus": "info", "transaction": "i"}) as r:
            return dict(await r.json(content_type=None))

    async def open(self) -> None:
        reply = await self.post("", {"janus": "create"})
        self.session_id = int(reply["data"]["id"])
        self._poller = asyncio.create_task(self._poll())

    async def attach(self) -> int:
        reply = await self.post(f"/{self.session_id}", {"janus": "attach", "plugin": PLUGIN})
        handle = int(reply["data"]["id"])
        self.handles[handle] = HandleEvents()
        return handle

    async def message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A plugin request: (the plugin's reply data, its JSEP if any)."""
        request: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        reply = await self.post(f"/{self.session_id}/{handle}", request, timeout=30)
        return dict(reply.get("plugindata", {}).get("data", {})), reply.get("jsep")

    async def _poll(self) -> None:
        """Long-poll the session's events for as long as it lives (Janus queues them otherwise)."""
        while True:
            try:
                async with self.http.get(
                    f"{self.url}/{self.session_id}", params={"maxev": "50"}
                ) as response:
                    events = await response.json(content_type=None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log(f"janus: event poll failed: {exc!r}")
                await asyncio.sleep(0.5)
                continue
            for event in events if isinstance(events, list) else [events]:
                self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("janus")
        future = self._pending.get(str(event.get("transaction")))
        if future is not None and not future.done() and kind in ("event", "success", "error"):
            future.set_result(event)
            return
        handle = self.handles.get(int(event.get("sender") or 0))
        if handle is None:
            return
        if kind == "webrtcup":
            handle.webrtcup += 1
        elif kind == "hangup":
            handle.hangups.append(str(event.get("reason")))
        elif kind == "slowlink":
            handle.slowlinks += 1
        elif kind == "media" and event.get("receiving") is False:
            handle.media_lost += 1

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.session_id is not None:
            with contextlib.suppress(Exception):
                async with self.http.post(
                    f"{self.url}/{self.session_id}",
                    json={"janus": "destroy", "transaction": "d"},
                    timeout=aiohttp.ClientTimeout(total=3),
                ):
                    pass
        await self.http.close()


# -- the benchmark --------------------------------------------------------------------------------


@dataclass
class Options:
    install: Installation
    debug_level: int
    compare: bool
    ice_address: str = ""
    event_loops: int = 0


@dataclass
class Extra:
    """What this script reports on top of relay.py's Results."""

    janus_version: str | None = None
    load_start: tuple[float, float, float] | None = None
    load_end: tuple[float, float, float] | None = None
    mode_load: dict[str, tuple[float, float]] = field(default_factory=dict)  # 1-min: start, end


async def start_janus(cfg: Config, opts: Options, children: Children) -> Server:
    port = free_port()
    folder = cfg.logs / "janus-conf"
    main = write_config(
        folder, opts.install, port, opts.debug_level, opts.ice_address, opts.event_loops
    )
    log_path = cfg.logs / "janus.log"
    args = ["exec", str(opts.install.binary), "--config", str(main)]
    args += ["--configs-folder", str(folder), "--disable-colors"]
    proc = await children.start(args, log_path, relay._child_env(), pipes=False)
    base_url = f"http://127.0.0.1:{port}"
    server = Server(JANUS_MODE, base_url, folder, log_path, proc, psutil.Process(proc.pid))
    deadline = time.monotonic() + 30
    probe = JanusSession(base_url)
    try:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"janus exited with {proc.returncode}; see {log_path}")
            with contextlib.suppress(aiohttp.ClientError, OSError, ValueError):
                if (await probe.info()).get("janus") == "server_info":
                    return server
            if time.monotonic() > deadline:
                raise RuntimeError(f"janus not ready after 30 s; see {log_path}")
            await asyncio.sleep(0.2)
    finally:
        await probe.http.close()


async def run_janus(
    cfg: Config, opts: Options, children: Children, results: Results, extra: Extra
) -> None:
    counts = sorted(set(cfg.subscribers))
    log("janus: starting janus")
    server = await start_janus(cfg, opts, children)
    janus = JanusSession(server.base_url)
    workers: list[Worker] = []
    try:
        info = await janus.info()
        extra.janus_version = str(info.get("version_string"))
        await janus.open()
        admin = await janus.attach()
        room = {
            "request": "create",
            "room": ROOM,
            "permanent": False,
            "description": "tingshen-bench",
            "publishers": 1,
            "bitrate": 0,
            "fir_freq": 0,
            "audiocodec": "opus",
            "videocodec": "vp8",
            "notify_joining": False,
            "record": False,
        }
        await janus.message(admin, room)

        module, args = "tests.bench.janus_worker", (opts.ice_address,)
        publisher = await Worker.start(
            "janus-publisher", "publisher", cfg.logs, children, module, args
        )
        workers.append(publisher)
        handle = await janus.attach()
        joined, _ = await janus.message(
            handle, {"request": "join", "ptype": "publisher", "room": ROOM, "display": "pub"}
        )
        feed = joined["id"]
        offer = await publisher.call({"cmd": "direct_offer"}, timeout=20)
        _, answer = await janus.message(
            handle, {"request": "publish"}, {"type": "offer", "sdp": offer["sdp"], "trickle": False}
        )
        if answer is None:
            raise RuntimeError("janus: no answer to the publisher's offer")
        sending = await publisher.call(
            {"cmd": "direct_answer", "sdp": answer["sdp"], "timeout": 25}, timeout=30
        )
        if not sending.get("ok"):
            raise RuntimeError(f"janus: publisher not connected: {sending}")
        await asyncio.sleep(cfg.settle + 1.0)
        log(f"janus: N=0 (publisher only), {cfg.seconds:.0f} s window")
        idle = await measure(cfg.seconds, server, publisher, [], None)
        results.idle[JANUS_MODE] = idle
        assert idle.server_cpu_pct is not None

        probe = await Worker.start("janus-probe", "subscribers", cfg.logs, children, module, args)
        pools = [
            await Worker.start(f"janus-subs{i}", "subscribers", cfg.logs, children, module, args)
            for i in (1, 2)
        ]
        workers += [probe, *pools]
        subscriber_workers = [probe, *pools]
        gate = asyncio.Semaphore(JOIN_CONCURRENCY)

        async def subscribe(worker: Worker, name: str) -> str | None:
            async with gate:
                try:
                    handle = await janus.attach()
                    body = {
                        "request": "join",
                        "ptype": "subscriber",
                        "room": ROOM,
                        "streams": [{"feed": feed}],
                    }
                    _, offer = await janus.message(handle, body)
                    if offer is None:
                        raise RuntimeError("no offer from janus")
                    reply = await worker.call(
                        {
                            "cmd": "answer",
                            "sdp": offer["sdp"],
                            "name": name,
                            "probe": worker is probe,
                        },
                        timeout=30,
                    )
                    jsep = {"type": "answer", "sdp": reply["sdp"], "trickle": False}
                    await janus.message(handle, {"request": "start"}, jsep)
                except Exception as exc:
                    return f"{name}: {exc!r}"
            return None

        have = 0
        for n in counts:
            # Subscriber 1 is the probe (it decodes); the others only count frames, split in two.
            joins: list[tuple[Worker, str]] = []
            for index in range(have, n):
                worker = probe if index == 0 else pools[index % 2]
                joins.append((worker, PROBE_NAME if index == 0 else f"s{index + 1}"))
            log(f"janus: N={n}: joining {n - have} subscriber(s)")
            errors = await asyncio.gather(*(subscribe(w, name) for w, name in joins))
            for error in errors:
                if error:
                    results.notes.append(f"janus N={n}: join failed: {error}")
            have = n
            late = await wait_video(subscriber_workers, {name for _, name in joins}, 20 + n)
            if late:
                log(f"janus: N={n}: no video yet at {len(late)} subscriber(s): {late[:5]}")
            await asyncio.sleep(cfg.settle)
            log(f"janus: N={n}: {cfg.seconds:.0f} s window")
            window = await measure(cfg.seconds, server, publisher, subscriber_workers, probe)
            add_row(results, JANUS_MODE, n, window, idle, late)
    finally:
        # Before the clients leave: their leaving makes hangups of its own ("DTLS alert").
        handles = list(janus.handles.values())
        hangups = [reason for h in handles for reason in h.hangups]
        slowlinks = sum(h.slowlinks for h in handles)
        media_lost = sum(h.media_lost for h in handles)
        if hangups or slowlinks or media_lost:
            results.notes.append(
                f"janus: {len(hangups)} hangup(s) {sorted(set(hangups))[:3]}, {slowlinks}"
                f" slowlink event(s), {media_lost} 'media stopped' event(s) during the run"
            )
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
        await janus.close()
        await children.stop(server.proc, signal.SIGINT, 10)
        errors_, warnings, messages = janus_log_problems(server.log_path)
        if errors_ or warnings:
            note = f"janus: log has {errors_} error and {warnings} warning line(s)"
            if messages:
                note += ": " + " | ".join(messages)
            results.notes.append(note)


def add_row(
    results: Results, mode: str, n: int, window: relay.Window, idle: relay.Window, late: list[str]
) -> None:
    """relay.py's row for one window: CPU per subscriber over the N = 0 figure, added latency."""
    row = Row(mode, n, window, late=late)
    if window.server_cpu_pct is not None and idle.server_cpu_pct is not None:
        row.cpu_per_subscriber_pct = (window.server_cpu_pct - idle.server_cpu_pct) / n
    p50, p99 = window.latency(50), window.latency(99)
    direct = results.direct
    if direct is not None and p50 is not None and p99 is not None:
        d50, d99 = direct.latency(50), direct.latency(99)
        if d50 is not None and d99 is not None:
            row.added_p50_ms, row.added_p99_ms = p50 - d50, p99 - d99
    results.rows.append(row)
    fmt = relay._fmt
    log(
        f"{mode}: N={n}: server {fmt(window.server_cpu_pct, '.1f')} %, per subscriber"
        f" {fmt(row.cpu_per_subscriber_pct, '.2f')} %, min fps {fmt(window.min_fps, '.1f')},"
        f" latency p50 {fmt(p50, '.1f')} ms"
    )


async def run(cfg: Config, opts: Options, results: Results, extra: Extra) -> None:
    children = Children()
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    extra.load_start = os.getloadavg()
    try:
        try:
            results.direct = await relay.run_direct(cfg, children)
        except Exception as exc:
            results.notes.append(f"direct baseline failed: {exc!r}; added latency not computed")
            log(results.notes[-1])
        for mode in cfg.modes:
            start = os.getloadavg()[0]
            try:
                if mode == JANUS_MODE:
                    await run_janus(cfg, opts, children, results, extra)
                else:
                    await relay.run_mode(mode, cfg, children, results)
            except Exception as exc:
                results.notes.append(f"{mode}: aborted: {exc!r}")
                log(results.notes[-1])
            finally:
                extra.mode_load[mode] = (start, os.getloadavg()[0])
    finally:
        extra.load_end = os.getloadavg()
        try:
            await asyncio.shield(children.stop_all())
        finally:
            children.kill_all_now()
            loop.remove_signal_handler(signal.SIGTERM)


# -- output ---------------------------------------------------------------------------------------


def slopes(results: Results, cfg: Config, counts: list[int] | None = None) -> dict[str, float]:
    """Least-squares slope of server CPU over N per mode (over the given N only, if given)."""
    out: dict[str, float] = {}
    for mode in cfg.modes:
        rows = [r for r in results.rows if r.mode == mode]
        s = relay.slope([r for r in rows if counts is None or r.subscribers in counts])
        if s is not None:
            out[mode] = s
    return out


def steady_counts(results: Results, cfg: Config) -> list[int]:
    """The N at which, in every mode, every subscriber held STEADY_FPS: the machine kept up.

    When the clients saturate the machine (on 2 cores, around N = 32), frames are late or lost,
    and the server's cost per subscriber is no longer what it is on a machine that keeps up.
    """
    held: list[int] = []
    for n in sorted(set(cfg.subscribers)):
        rows = [r for r in results.rows if r.subscribers == n]
        fps = [r.window.min_fps for r in rows]
        if len(rows) == len(cfg.modes) and all(f is not None and f >= STEADY_FPS for f in fps):
            held.append(n)
    return held


def ratio(found: dict[str, float]) -> float | None:
    """Forwarder slope / Janus slope (both per subscriber, so per stream too)."""
    if "rtp" in found and JANUS_MODE in found and found[JANUS_MODE] > 0:
        return found["rtp"] / found[JANUS_MODE]
    return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _loads(values: tuple[float, ...] | None) -> list[float] | None:
    return None if values is None else [round(v, 2) for v in values]


def _load(values: tuple[float, float, float] | None) -> str:
    return "-" if values is None else " ".join(f"{v:.2f}" for v in values)


def report(results: Results, cfg: Config, opts: Options, extra: Extra) -> str:
    out = [relay.table(results, cfg), ""]
    found = slopes(results, cfg)
    for mode, s in found.items():
        out.append(
            f"{mode}: {s:.2f} % of a core per subscriber (audio + video) ="
            f" {s / 2:.2f} % per stream (the pair's cost halved; audio is the cheaper of the two)"
        )
    r = ratio(found)
    if r is not None:
        out.append(
            f"forwarder / Janus, slope per subscriber (so per stream): {r:.2f}"
            f" ({found['rtp']:.2f} % vs {found[JANUS_MODE]:.2f} %; < 1 means the forwarder is"
            " cheaper; 0.5 would be 'half of Janus')"
        )
    elif opts.compare:
        out.append("forwarder / Janus: no ratio (a slope is missing: see the notes above)")
    steady = steady_counts(results, cfg)
    if len(steady) >= 2 and len(steady) < len(set(cfg.subscribers)):
        held = slopes(results, cfg, steady)
        r = ratio(held)
        out.append(
            f"over the N where every subscriber held >= {STEADY_FPS:.0f} fps in every mode"
            f" (N={','.join(map(str, steady))}; above them the machine did not keep up): "
            + ", ".join(f"{m} {s:.2f} % per subscriber" for m, s in held.items())
            + (f", forwarder / Janus {r:.2f}" if r is not None else "")
        )
    if JANUS_MODE in cfg.modes:
        loops = (
            f"{opts.event_loops} event loop threads shared by all handles"
            if opts.event_loops
            else "one event loop thread per handle (Janus's default)"
        )
        out.append(
            f"Janus {extra.janus_version or '?'} ({opts.install.binary}): VideoRoom + HTTP"
            f" transport only, debug_level {opts.debug_level}, libnice debug off, {loops},"
            f" ICE only on {opts.ice_address} (Janus gathers none on lo), half-trickle, no event"
            " handlers; one session, one handle and one peer connection per subscriber. 'srv'"
            " columns are the Janus process for janus rows."
        )
    modes = "; ".join(f"{m} {a:.2f} -> {b:.2f}" for m, (a, b) in extra.mode_load.items())
    out.append(
        f"load average (1/5/15 min) at start {_load(extra.load_start)}, at end"
        f" {_load(extra.load_end)}; 1-min load at the start and end of each mode: {modes or '-'}"
    )
    return "\n".join(out)


def as_json(results: Results, cfg: Config, opts: Options, extra: Extra) -> dict[str, Any]:
    found = slopes(results, cfg)
    steady = steady_counts(results, cfg)
    held = slopes(results, cfg, steady)
    return {
        "rows": [row.json() for row in results.rows],
        "slope_pct_per_subscriber": {m: round(s, 3) for m, s in found.items()},
        "slope_pct_per_stream": {m: round(s / 2, 3) for m, s in found.items()},
        "ratio_rtp_to_janus": _round(ratio(found)),
        "steady_subscribers": steady,
        "steady_slope_pct_per_subscriber": {m: round(s, 3) for m, s in held.items()},
        "steady_ratio_rtp_to_janus": _round(ratio(held)),
        "janus_version": extra.janus_version,
        "janus_event_loops": opts.event_loops,
        "janus_ice_address": opts.ice_address,
        "loadavg_start": _loads(extra.load_start),
        "loadavg_end": _loads(extra.load_end),
        "loadavg_1min_per_mode": {m: _loads(v) for m, v in extra.mode_load.items()},
        "notes": results.notes,
    }


def parse_args(argv: list[str] | None) -> tuple[Config, Options, bool, bool]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--compare", action="store_true", help="run relay.py's rtp mode, then Janus, and compare"
    )
    parser.add_argument("--subscribers", default=None, help="default 1,2,4,8,16,32")
    parser.add_argument("--seconds", type=float, default=None, help="window length (default 10)")
    parser.add_argument("--settle", type=float, default=None, help="settle time (default 3)")
    parser.add_argument("--quick", action="store_true", help="N=1,2 and short windows")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--logs", help="keep logs, data and Janus's config in this directory")
    parser.add_argument("--janus", default=None, help="the janus binary (default: janus on PATH)")
    parser.add_argument("--janus-lib", default=None, help="folder with plugins/ and transports/")
    parser.add_argument(
        "--janus-debug-level", type=int, default=2, choices=range(0, 8), help="default 2 (errors)"
    )
    parser.add_argument(
        "--janus-event-loops",
        type=int,
        default=0,
        help="Janus's event_loops: N loop threads shared by all handles (default 0: Janus's"
        " default, one loop thread per handle)",
    )
    parser.add_argument(
        "--janus-ice-address",
        default=None,
        help="a non-loopback IPv4 address of this machine for Janus's ICE (default: in a"
        f" loopback-only namespace, {VETH_ADDRESS} on a veth pair the script adds)",
    )
    args = parser.parse_args(argv)
    try:
        install = find_janus(args.janus, args.janus_lib)
    except JanusMissing as exc:
        parser.exit(2, f"{parser.prog}: {exc}\n")
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
    logs = Path(args.logs) if keep else Path(tempfile.mkdtemp(prefix="tingshen-janus-"))
    logs.mkdir(parents=True, exist_ok=True)
    modes = ["rtp", JANUS_MODE] if args.compare else [JANUS_MODE]
    cfg = Config(modes, subscribers, seconds, settle, 0, logs)
    opts = Options(
        install,
        args.janus_debug_level,
        args.compare,
        args.janus_ice_address or "",
        args.janus_event_loops,
    )
    return cfg, opts, args.json, keep


def main(argv: list[str] | None = None) -> int:
    cfg, opts, json_out, keep = parse_args(argv)
    try:
        opts.ice_address, added_veth = prepare_ice_address(opts.ice_address or None)
    except JanusMissing as exc:
        print(f"janus.py: {exc}", file=sys.stderr)
        return 2
    results, extra = Results(), Extra()
    log(
        f"modes {','.join(cfg.modes)}, N={','.join(map(str, cfg.subscribers))}, "
        f"window {cfg.seconds:g} s, settle {cfg.settle:g} s, logs {cfg.logs}, "
        f"load {_load(os.getloadavg())}"
    )
    interrupted = False
    try:
        asyncio.run(run(cfg, opts, results, extra))
    except (KeyboardInterrupt, asyncio.CancelledError):
        interrupted = True
        results.notes.append("interrupted: partial results")
    finally:
        if added_veth:
            remove_veth()
    if json_out:
        print(json.dumps(as_json(results, cfg, opts, extra), indent=2))
    else:
        print(report(results, cfg, opts, extra))
    if not keep:
        shutil.rmtree(cfg.logs, ignore_errors=True)
    else:
        log(f"logs kept in {cfg.logs}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
