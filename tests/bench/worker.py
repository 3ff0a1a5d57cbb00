"""The benchmark's client processes: `python -m tests.bench.worker publisher|subscribers|exec ...`.

`publisher` and `subscribers` are driven by tests/bench/relay.py over stdin/stdout, one JSON object
per line (a command in, one reply out, carrying the command's `seq`; replies are prefixed with `@@`
so nothing else on stdout can be mistaken for one). A worker exits when its stdin closes, so it
never outlives the benchmark.

`exec` replaces itself by the given command after asking the kernel to SIGTERM it when the
benchmark dies (used to start the server: its pid, and so its CPU accounting, stays the same).

Subscribers never decode video: a `FrameTap` takes the place of each receiver's decoder queue and
counts complete encoded frames. Only the latency probe decodes its video, to read the frame counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import time
from collections import deque
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

import terminal.client
from server.sfu import internals
from terminal.client import HearingClient
from tests.bench import media

logger = logging.getLogger("bench.worker")

REPLY_PREFIX = "@@"
LOOPBACK = "127.0.0.1"


def die_with_parent() -> None:
    """Linux: deliver SIGTERM to this process when the process that started it exits."""
    parent = os.getppid()
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


async def wait_for(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


def max_bundle_configuration(*args: Any, **kwargs: Any) -> RTCConfiguration:
    kwargs.setdefault("bundlePolicy", RTCBundlePolicy.MAX_BUNDLE)
    return RTCConfiguration(*args, **kwargs)


def use_max_bundle_in_hearing_client() -> None:
    """Make `HearingClient` build its peer connection with bundlePolicy max-bundle.

    With aiortc's default ("balanced") policy, a first offer that carries two m-lines of one kind
    (the participant's own publish line and a stream from someone already publishing) leaves the
    second one on a transport that the BUNDLE step then discards: that stream never arrives. The
    server offers max-bundle, so max-bundle on the client is what the answer means anyway.
    """
    terminal.client.RTCConfiguration = max_bundle_configuration  # type: ignore[assignment,misc]


def _codecs(kind: str, mime: str) -> list[Any]:
    return [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType == mime]


# -- publisher ------------------------------------------------------------------------------------


class Publisher:
    def __init__(self) -> None:
        media.pin_vp8_bitrate()
        self.camera = media.NumberedCamera()
        self.microphone = media.ToneMicrophone()
        self.client: HearingClient | None = None
        self.pc: RTCPeerConnection | None = None

    async def join(self, url: str, timeout: float) -> dict[str, Any]:
        self.client = HearingClient.from_invite(
            url, tracks={"video": self.camera, "audio": self.microphone}
        )
        await self.client.join(timeout=timeout)
        await wait_for(lambda: self.client is not None and self.client.pc is not None, timeout)
        self.pc = self.client.pc
        return await self._wait_sending(timeout)

    async def direct_offer(self) -> dict[str, Any]:
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        video = pc.addTransceiver(self.camera, direction="sendonly")
        video.setCodecPreferences(_codecs("video", "video/VP8"))
        audio = pc.addTransceiver(self.microphone, direction="sendonly")
        audio.setCodecPreferences(_codecs("audio", "audio/opus"))
        await pc.setLocalDescription(await pc.createOffer())
        return {"sdp": pc.localDescription.sdp}

    async def direct_answer(self, sdp: str, timeout: float) -> dict[str, Any]:
        assert self.pc is not None
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        return await self._wait_sending(timeout)

    async def _wait_sending(self, timeout: float) -> dict[str, Any]:
        start = self.camera.count
        ok = await wait_for(
            lambda: (
                self.pc is not None
                and self.pc.connectionState == "connected"
                and self.camera.count > start + 5
            ),
            timeout,
        )
        state = self.pc.connectionState if self.pc is not None else "none"
        return {"ok": ok, "state": state}

    async def stats(self) -> dict[str, Any]:
        """Video payload bytes sent so far (aiortc's outbound-rtp `bytesSent`), with the time."""
        sent = 0
        if self.pc is not None:
            for transceiver in self.pc.getTransceivers():
                if transceiver.sender.track is self.camera:
                    report = await transceiver.sender.getStats()
                    for stat in report.values():
                        if getattr(stat, "type", "") == "outbound-rtp":
                            sent += int(stat.bytesSent)
        return {"t": time.monotonic(), "video_bytes": sent, "frames": self.camera.count}

    def sends(self, since: float, until: float) -> dict[str, Any]:
        return {"sends": [[c, t] for c, t in self.camera.sent if since <= t <= until]}

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
        elif self.pc is not None:
            await self.pc.close()


# -- subscribers ----------------------------------------------------------------------------------


class Subscriber:
    """One receiving participant: counts video frames; the probe also decodes and reads counters."""

    def __init__(self, name: str, probe: bool) -> None:
        self.name = name
        self.probe = probe
        self.video_frames = 0
        self.audio_frames = 0
        self.undecodable = 0
        self.arrivals: deque[tuple[int, float]] = deque(maxlen=media.FPS * 120)
        self.client: HearingClient | None = None
        self.pc: RTCPeerConnection | None = None
        self._tapped: set[int] = set()
        self._readers: dict[int, asyncio.Task[None]] = {}

    # Called in aiortc's "track" event, before the receiver starts.
    def on_track(self, kind: str, track: MediaStreamTrack, transceiver: RTCRtpTransceiver) -> None:
        receiver = transceiver.receiver
        if self.probe and kind == "video":
            if id(track) not in self._readers:
                self._readers[id(track)] = asyncio.ensure_future(self._read_probe(track))
            return
        if id(receiver) in self._tapped:
            return
        self._tapped.add(id(receiver))
        tap = internals.install_frame_tap(receiver)
        if kind == "video":

            def on_video(codec: Any, frame: Any) -> None:
                self.video_frames += 1

            tap.on_frame = on_video
        else:

            def on_audio(codec: Any, frame: Any) -> None:
                self.audio_frames += 1

            tap.on_frame = on_audio

    async def _read_probe(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                arrival = time.monotonic()
                self.video_frames += 1
                counter = media.read_counter(frame)  # type: ignore[arg-type]
                if counter is None:
                    self.undecodable += 1
                else:
                    self.arrivals.append((counter, arrival))
        except (MediaStreamError, asyncio.CancelledError):
            pass

    def hearing_callback(self, pid: str, kind: str, track: Any, transceiver: Any) -> None:
        self.on_track(kind, track, transceiver)

    async def join(self, url: str, timeout: float) -> None:
        self.client = HearingClient.from_invite(url, on_track=self.hearing_callback)
        await self.client.join(timeout=timeout)
        self.pc = self.client.pc

    async def direct_answer(self, sdp: str) -> str:
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            for transceiver in pc.getTransceivers():
                if transceiver.receiver.track is track:
                    self.on_track(track.kind, track, transceiver)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    def state(self) -> str:
        return self.pc.connectionState if self.pc is not None else "new"

    async def close(self) -> None:
        for task in self._readers.values():
            task.cancel()
        if self.client is not None:
            await self.client.close()
        elif self.pc is not None:
            await self.pc.close()


class Subscribers:
    def __init__(self) -> None:
        self.subs: list[Subscriber] = []
        self._gate = asyncio.Semaphore(4)

    async def join(self, urls: list[str], names: list[str], probe: bool, timeout: float) -> Any:
        async def one(url: str, name: str) -> str | None:
            sub = Subscriber(name, probe=probe)
            self.subs.append(sub)
            async with self._gate:
                try:
                    await sub.join(url, timeout)
                except Exception as exc:
                    logger.exception("%s: join failed", name)
                    return f"{name}: {exc!r}"
            return None

        errors = [
            e
            for e in await asyncio.gather(*(one(u, n) for u, n in zip(urls, names, strict=True)))
            if e
        ]
        return {"ok": not errors, "errors": errors}

    async def direct_answer(self, sdp: str) -> dict[str, Any]:
        sub = Subscriber("direct-probe", probe=True)
        self.subs.append(sub)
        return {"sdp": await sub.direct_answer(sdp)}

    def status(self) -> dict[str, Any]:
        return {
            "t": time.monotonic(),
            "subs": [
                {
                    "name": s.name,
                    "video": s.video_frames,
                    "audio": s.audio_frames,
                    "state": s.state(),
                    "undecodable": s.undecodable,
                }
                for s in self.subs
            ],
        }

    def arrivals(self, since: float, until: float) -> dict[str, Any]:
        out: list[list[float]] = []
        for s in self.subs:
            if s.probe:
                out.extend([c, t] for c, t in s.arrivals if since <= t <= until)
        return {"arrivals": out}

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.subs), return_exceptions=True)


# -- command loop ---------------------------------------------------------------------------------


async def serve(role: str) -> None:
    internals.restrict_host_addresses([LOOPBACK])  # aioice never offers 127.0.0.1 by itself
    use_max_bundle_in_hearing_client()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    publisher = Publisher() if role == "publisher" else None
    subscribers = Subscribers() if role == "subscribers" else None

    def reply(message: dict[str, Any]) -> None:
        sys.stdout.write(REPLY_PREFIX + json.dumps(message) + "\n")
        sys.stdout.flush()

    try:
        while True:
            line = await reader.readline()
            if not line:
                break  # the benchmark is gone
            command = json.loads(line)
            name = command.get("cmd")
            seq = command.get("seq")
            timeout = float(command.get("timeout", 20.0))
            try:
                result: dict[str, Any]
                if name == "quit":
                    reply({"ok": True, "seq": seq})
                    break
                if publisher is not None:
                    if name == "join":
                        result = await publisher.join(command["url"], timeout)
                    elif name == "direct_offer":
                        result = await publisher.direct_offer()
                    elif name == "direct_answer":
                        result = await publisher.direct_answer(command["sdp"], timeout)
                    elif name == "stats":
                        result = await publisher.stats()
                    elif name == "sends":
                        result = publisher.sends(command["since"], command["until"])
                    else:
                        raise ValueError(f"unknown command {name!r}")
                else:
                    assert subscribers is not None
                    if name == "join":
                        result = await subscribers.join(
                            command["urls"], command["names"], command["probe"], timeout
                        )
                    elif name == "direct_answer":
                        result = await subscribers.direct_answer(command["sdp"])
                    elif name == "status":
                        result = subscribers.status()
                    elif name == "arrivals":
                        result = subscribers.arrivals(command["since"], command["until"])
                    else:
                        raise ValueError(f"unknown command {name!r}")
            except Exception as exc:
                logger.exception("command %s failed", name)
                result = {"ok": False, "error": repr(exc)}
            reply({**result, "seq": seq})
    finally:
        with contextlib.suppress(Exception):
            if publisher is not None:
                await asyncio.wait_for(publisher.close(), 5)
            if subscribers is not None:
                await asyncio.wait_for(subscribers.close(), 5)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: worker publisher|subscribers|exec CMD...", file=sys.stderr)
        return 2
    role = argv[0]
    die_with_parent()
    if role == "exec":
        os.execvp(argv[1], argv[1:])
    if role not in ("publisher", "subscribers"):
        print(f"unknown role {role!r}", file=sys.stderr)
        return 2
    # The benchmark stops its workers itself: Ctrl-C in the terminal must not kill them half-way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aioice").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(role))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
