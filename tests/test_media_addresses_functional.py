"""The server's media behind a 1:1 NAT, and its media port range, with real aiortc clients.

How this works. The suite runs in its own network namespace (`unshare -n`, as root). The server's
media sockets bind to 127.0.0.1 (the *private* address) within `media_ports`; 127.0.0.2 plays the
*public* address of a 1:1 NAT: nothing listens there, and only an nftables DNAT rule forwards UDP
sent to it onto the private address. Two more rules make the namespace behave like the Internet
between a court's NAT and a participant behind an ordinary firewall:

- the private address is not reachable from outside: UDP to the server's media ports that was not
  forwarded by the NAT is dropped (counter `direct`);
- clients accept nothing unsolicited: a packet from the server's media ports that would open a new
  flow is dropped (counter `unsolicited`); replies on a flow a client opened pass, and the NAT's
  reverse translation gives them the public address as their source.

So media flows only if the server advertises the public address *and* the NAT forwards it, which
is what the four cases check (counter `forwarded` counts packets the NAT delivered).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.app import create_app
from server.settings import Settings
from terminal.client import HearingClient
from tests.conftest import RunningServer, free_port
from tests.impairment import NotIsolated, check_isolated
from tests.media import ColourTrack, Received, ToneTrack, close_to, drain

pytestmark = pytest.mark.media

PRIVATE = "127.0.0.1"
PUBLIC = "127.0.0.2"
#: Below the kernel's ephemeral ports (32768-), so no client socket can fall into the range.
PORTS = (31000, 31019)
TABLE = "tingshen_nat1to1"
RED = (220, 30, 30)


@pytest.fixture
def isolated() -> None:
    try:
        check_isolated()
    except NotIsolated as exc:
        pytest.skip(str(exc))


def nft(*args: str, script: str | None = None) -> str:
    done = subprocess.run(
        ["nft", *args], input=script, capture_output=True, text=True, timeout=10, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"nft {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


class Nat:
    """The 1:1 NAT (with or without its port forward) and the firewalls around it."""

    def __init__(self, forward: bool, private_reachable: bool = False) -> None:
        ports = f"{PORTS[0]}-{PORTS[1]}"
        dnat = f"ip daddr {PUBLIC} udp dport {ports} dnat to {PRIVATE}" if forward else ""
        # a client inside the court's network reaches the private address (counted, not dropped)
        direct = "" if private_reachable else "drop"
        self.script = f"""
table ip {TABLE} {{
    counter forwarded {{}}
    counter direct {{}}
    counter unsolicited {{}}
    chain nat_out {{
        type nat hook output priority -100; policy accept;
        {dnat}
    }}
    chain guard {{
        type filter hook output priority 0; policy accept;
        ip daddr {PRIVATE} udp dport {ports} ct status dnat counter name "forwarded" accept
        ip daddr {PRIVATE} udp dport {ports} counter name "direct" {direct}
        udp sport {ports} ct state new counter name "unsolicited" drop
    }}
}}
"""

    def __enter__(self) -> Nat:
        nft("delete", "table", "ip", TABLE) if TABLE in nft("list", "tables") else None
        nft("-f", "-", script=self.script)
        return self

    def __exit__(self, *exc: object) -> None:
        nft("delete", "table", "ip", TABLE)

    def packets(self, counter: str) -> int:
        out = json.loads(nft("-j", "list", "counter", "ip", TABLE, counter))
        (entry,) = [x["counter"] for x in out["nftables"] if "counter" in x]
        return int(entry["packets"])


@asynccontextmanager
async def running_server(tmp_path: Path, **values: Any) -> AsyncIterator[RunningServer]:
    """The `server` fixture of conftest.py, with media settings of the test's choosing."""
    port = free_port()
    values.setdefault("media_ports", f"{PORTS[0]}-{PORTS[1]}")
    settings = Settings(
        host="127.0.0.1", port=port, data=tmp_path / "data", render_after_hearing=False, **values
    )
    runner = web.AppRunner(create_app(settings), shutdown_timeout=2)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", settings.data, settings, runner.app)
    finally:
        await runner.cleanup()


def offered_candidates(client: HearingClient) -> list[tuple[str, int]]:
    """(address, port) of every candidate in the server's last offer."""
    assert client.pc is not None and client.pc.remoteDescription is not None
    found = set()
    for line in client.pc.remoteDescription.sdp.splitlines():
        if line.startswith("a=candidate:"):
            fields = line.split()
            found.add((fields[4], int(fields[5])))
    return sorted(found)


def nominated_server_address(client: HearingClient) -> tuple[str, int] | None:
    """The server address the client's ICE agent nominated (aioice private state)."""
    assert client.pc is not None
    transceivers = client.pc.getTransceivers()
    if not transceivers:
        return None
    pair = transceivers[0].receiver.transport.transport._connection._nominated.get(1)
    return None if pair is None else (str(pair.remote_addr[0]), int(pair.remote_addr[1]))


async def wait_until(predicate: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return bool(predicate())


async def hearing_through(tmp_path: Path, nat: Nat, window: float, **values: Any) -> dict[str, Any]:
    """A judge publishes red video and a tone, a party watches, both through the NAT."""
    async with running_server(tmp_path, **values) as server:
        hearing = await server.create_hearing("judge:审判长", "party:甲")
        urls = [i["url"] for i in hearing["invites"]]
        got: dict[str, Received] = defaultdict(Received)

        def on_track(pid: str, kind: str, track: Any, transceiver: Any) -> None:
            got[pid].tasks.append(asyncio.ensure_future(drain(track, got[pid])))

        judge = HearingClient.from_invite(
            urls[0], tracks={"video": ColourTrack(RED), "audio": ToneTrack()}
        )
        party = HearingClient.from_invite(urls[1], on_track=on_track)
        started = time.monotonic()
        try:
            judge_id = (await judge.join())["participant"]["id"]
            await party.join()
            flowing = await wait_until(
                lambda: close_to(got[judge_id].last_rgb, RED) and got[judge_id].audio_frames > 25,
                window,
            )
            seconds = time.monotonic() - started
            before = got[judge_id].video_frames
            await asyncio.sleep(2)  # media keeps flowing, through the NAT
            return {
                "flowing": flowing,
                "seconds": round(seconds, 2),
                "video_frames": got[judge_id].video_frames,
                "video_frames_last_2s": got[judge_id].video_frames - before,
                "states": [c.pc.connectionState if c.pc else None for c in (judge, party)],
                "offered": [offered_candidates(c) for c in (judge, party)],
                "nominated": [nominated_server_address(c) for c in (judge, party)],
                "counters": {n: nat.packets(n) for n in ("forwarded", "direct", "unsolicited")},
            }
        finally:
            for client in (judge, party):
                await client.close()
            for received in got.values():
                for task in received.tasks:
                    task.cancel()


def in_range(port: int) -> bool:
    return PORTS[0] <= port <= PORTS[1]


@pytest.mark.usefixtures("isolated")
async def test_media_flows_through_a_1_1_nat_to_the_advertised_public_address(
    tmp_path: Path,
) -> None:
    with Nat(forward=True) as nat:
        result = await hearing_through(tmp_path, nat, 20, nat_1_1_mapping=PUBLIC)
    print(f"\n1:1 NAT, public address only: {result}")
    assert result["flowing"], result
    assert result["video_frames_last_2s"] >= 30, result
    assert result["states"] == ["connected", "connected"]
    for offered in result["offered"]:  # only the public address, on a port of the range
        assert [a for a, _ in offered] == [PUBLIC] and all(in_range(p) for _, p in offered)
    assert result["offered"][0] != result["offered"][1]  # one port per participant
    for nominated, offered in zip(result["nominated"], result["offered"], strict=True):
        assert nominated in offered
    # 2 s of the judge's audio alone is 100 packets: media, not only the checks, went via the NAT
    assert result["counters"]["forwarded"] > 150, result
    assert result["counters"]["direct"] == 0  # the private address was never even tried


@pytest.mark.parametrize(
    ("where", "nat", "via"),
    [
        ("outside", {"forward": True}, PUBLIC),
        # inside the court's network, a NAT that does not loop back ("hairpin") to itself
        ("inside", {"forward": False, "private_reachable": True}, PRIVATE),
    ],
)
@pytest.mark.usefixtures("isolated")
async def test_keep_private_host_offers_both_addresses(
    tmp_path: Path, where: str, nat: dict[str, bool], via: str
) -> None:
    with Nat(**nat) as firewall:
        result = await hearing_through(
            tmp_path, firewall, 20, nat_1_1_mapping={PRIVATE: PUBLIC}, keep_private_host=True
        )
    print(f"\n1:1 NAT, private address kept, clients {where}: {result}")
    assert result["flowing"], result
    assert result["video_frames_last_2s"] >= 30, result
    for offered in result["offered"]:  # one socket, advertised under both addresses
        assert sorted(a for a, _ in offered) == [PRIVATE, PUBLIC]
        assert len({p for _, p in offered}) == 1 and all(in_range(p) for _, p in offered)
    assert [a for a, _ in result["nominated"]] == [via, via]
    counter = "forwarded" if via == PUBLIC else "direct"
    assert result["counters"][counter] > 150, result


@pytest.mark.usefixtures("isolated")
async def test_no_media_when_the_nat_does_not_forward_the_public_address(tmp_path: Path) -> None:
    with Nat(forward=False) as nat:
        result = await hearing_through(tmp_path, nat, 8, nat_1_1_mapping=PUBLIC)
    print(f"\n1:1 NAT without its port forward: {result}")
    assert not result["flowing"] and result["video_frames"] == 0, result
    assert "connected" not in result["states"]
    assert [a for o in result["offered"] for a, _ in o] == [PUBLIC, PUBLIC]
    assert result["counters"]["forwarded"] == 0 and result["counters"]["unsolicited"] > 0


@pytest.mark.usefixtures("isolated")
async def test_no_media_behind_the_nat_without_the_mapping(tmp_path: Path) -> None:
    """What the setting is for: the private address the server would offer is unreachable."""
    with Nat(forward=True) as nat:
        result = await hearing_through(tmp_path, nat, 8)
    print(f"\n1:1 NAT, server advertising its private address: {result}")
    assert not result["flowing"] and result["video_frames"] == 0, result
    assert "connected" not in result["states"]
    for offered in result["offered"]:  # still the port range, on the private address
        assert [a for a, _ in offered] == [PRIVATE] and all(in_range(p) for _, p in offered)
    assert result["counters"]["direct"] > 0 and result["counters"]["forwarded"] == 0


@pytest.mark.usefixtures("isolated")
async def test_a_full_port_range_refuses_media_with_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One port, two participants: the second is told its media failed; no random port."""
    first_port = PORTS[0]
    async with running_server(tmp_path, media_ports=str(first_port)) as server:
        hearing = await server.create_hearing("judge:审判长", "party:甲")
        judge, party = (
            HearingClient.from_invite(i["url"], tracks={"audio": ToneTrack()})
            for i in hearing["invites"]
        )
        try:
            await judge.join()
            assert judge.pc is not None
            assert await wait_until(lambda: judge.pc.connectionState == "connected", 10)
            await party.join()
            await asyncio.wait_for(party.closed.wait(), 10)
            assert party._ws.close_reason == "media-failed"
            assert judge.pc.connectionState == "connected"  # the first is not disturbed
            assert offered_candidates(judge) == [(PRIVATE, first_port)]
        finally:
            for client in (judge, party):
                await client.close()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert (
        f"media_ports {first_port}-{first_port}: all 1 UDP ports on {PRIVATE} are in use, "
        "so a participant gets no media socket there (widen media_ports)"
    ) in errors
