"""Client processes for the Janus benchmark: `python -m tests.bench.janus_worker ROLE ICE_ADDRESS`.

The same publisher and subscribers as tests/bench/worker.py (`Publisher`: the numbered camera and the
tone at a pinned 1.5 Mbit/s; `Subscriber`: frame taps that count complete encoded frames without
decoding, the probe decodes and reads the frame counter), driven over the same JSON-lines protocol,
with two differences:

- they are signalled the Janus way: the publisher offers (`direct_offer`, then `direct_answer` with
  Janus's answer), and each subscriber answers an offer Janus made (`answer`); tests/bench/janus.py
  carries the SDP between Janus's HTTP API and these processes;
- aioice gathers on ICE_ADDRESS, the address Janus gathers on, instead of 127.0.0.1. Janus never
  gathers on a loopback interface, and libnice pins each socket to its interface (IP_UNICAST_IF), so
  its packets to 127.0.0.1 would leave by that interface and be lost. With both ends on one local
  address, the kernel delivers every packet through the loopback device, as in relay.py's runs.

Commands: publisher `direct_offer`, `direct_answer` {sdp}, `stats`, `sends`; subscribers `answer`
{sdp, name, probe} -> {sdp}, `status`, `arrivals`; both `quit` (see tests/bench/worker.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from typing import Any

from server.sfu import internals
from tests.bench.worker import REPLY_PREFIX, Publisher, Subscriber, Subscribers, die_with_parent

logger = logging.getLogger("bench.janus_worker")


class JanusSubscribers(Subscribers):
    """Subscribers that answer an offer (Janus's) instead of joining a Tingshen hearing."""

    async def answer(self, sdp: str, name: str, probe: bool) -> dict[str, Any]:
        sub = Subscriber(name, probe=probe)
        self.subs.append(sub)
        async with self._gate:
            return {"sdp": await sub.direct_answer(sdp)}


async def handle(
    command: dict[str, Any], publisher: Publisher | None, subscribers: JanusSubscribers | None
) -> dict[str, Any]:
    name = command.get("cmd")
    if publisher is not None:
        if name == "direct_offer":
            return await publisher.direct_offer()
        if name == "direct_answer":
            return await publisher.direct_answer(command["sdp"], float(command.get("timeout", 20)))
        if name == "stats":
            return await publisher.stats()
        if name == "sends":
            return publisher.sends(command["since"], command["until"])
    if subscribers is not None:
        if name == "answer":
            return await subscribers.answer(command["sdp"], command["name"], bool(command["probe"]))
        if name == "status":
            return subscribers.status()
        if name == "arrivals":
            return subscribers.arrivals(command["since"], command["until"])
    raise ValueError(f"unknown command {name!r}")


async def serve(role: str, ice_address: str) -> None:
    internals.restrict_host_addresses([ice_address])
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    publisher = Publisher() if role == "publisher" else None
    subscribers = JanusSubscribers() if role == "subscribers" else None

    def reply(message: dict[str, Any]) -> None:
        sys.stdout.write(REPLY_PREFIX + json.dumps(message) + "\n")
        sys.stdout.flush()

    try:
        while True:
            line = await reader.readline()
            if not line:
                break  # the benchmark is gone
            command = json.loads(line)
            seq = command.get("seq")
            if command.get("cmd") == "quit":
                reply({"ok": True, "seq": seq})
                break
            try:
                result = await handle(command, publisher, subscribers)
            except Exception as exc:
                logger.exception("command %s failed", command.get("cmd"))
                result = {"ok": False, "error": repr(exc)}
            reply({**result, "seq": seq})
    finally:
        with contextlib.suppress(Exception):
            if publisher is not None:
                await asyncio.wait_for(publisher.close(), 5)
            if subscribers is not None:
                await asyncio.wait_for(subscribers.close(), 5)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("publisher", "subscribers"):
        print("usage: janus_worker publisher|subscribers ICE_ADDRESS", file=sys.stderr)
        return 2
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark stops its workers itself
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aioice").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(argv[0], argv[1]))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
