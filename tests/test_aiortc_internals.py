"""Fails loudly when an aiortc / aioice upgrade moves a private attribute the forwarder relies on."""

from __future__ import annotations

import aiortc
import pytest

from server.sfu import internals


async def test_pinned_internals_are_present() -> None:
    assert internals.check() == []


def test_version_is_the_pinned_one() -> None:
    assert aiortc.__version__ == internals.AIORTC_VERSION


async def test_frame_tap_replaces_the_decoder_queue() -> None:
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="recvonly")
    tap = internals.install_frame_tap(transceiver.receiver)
    got: list[object] = []
    tap.on_frame = lambda codec, frame: got.append(frame)
    tap.put(("codec", "frame"))
    assert got == ["frame"]
    tap.put(None)
    tap.get()  # returns at once now: the decoder thread would end here
    await pc.close()


# -- media sockets: port range and 1:1 NAT (MediaSockets, use_media_sockets) ----------------------


def free_port_block(count: int) -> int:
    """The first port of `count` consecutive free UDP ports on 127.0.0.1, below the ephemeral
    range (so no client socket of this process can take one meanwhile)."""
    import random
    import socket

    for _ in range(200):
        first = random.randrange(20000, 32000)
        socks = []
        try:
            for port in range(first, first + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no block of free ports")


async def server_offer(plan: internals.MediaSockets | None, *, apply: bool = True):
    """A peer connection made the way the server makes its own, and its offer's candidates."""
    from aiortc import RTCConfiguration, RTCPeerConnection
    from aiortc.rtcconfiguration import RTCBundlePolicy

    internals.restrict_host_addresses(["127.0.0.1"])
    previous = internals.configure_media_sockets(plan)
    try:
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        if apply:
            internals.use_media_sockets(pc)
    finally:
        internals.configure_media_sockets(previous)
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    return pc


def candidates(pc) -> list[tuple[str, int, int]]:
    """(address, port, priority) of the host candidates in the local description."""
    found = []
    for line in pc.localDescription.sdp.splitlines():
        if line.startswith("a=candidate:"):
            fields = line.split()
            found.append((fields[4], int(fields[5]), int(fields[3])))
    return sorted(set(found))


def bound_addresses(pc) -> list[tuple[str, int]]:
    connection = pc.getTransceivers()[0].receiver.transport.transport._connection
    return [p.transport.get_extra_info("sockname")[:2] for p in connection._protocols]


async def test_media_sockets_take_ports_in_the_range_and_skip_busy_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import socket

    first = free_port_block(3)
    plan = internals.MediaSockets(ports=(first, first + 2))
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", first))  # someone else holds the first port
    pcs = []
    try:
        for _ in range(2):
            pc = await server_offer(plan)
            pcs.append(pc)
            await pc.setLocalDescription(await pc.createOffer())
        # max-bundle: one socket (one ICE component) per peer connection, two m-lines
        assert [candidates(pc) for pc in pcs] == [
            [("127.0.0.1", first + 1, candidates(pcs[0])[0][2])],
            [("127.0.0.1", first + 2, candidates(pcs[1])[0][2])],
        ]
        assert [bound_addresses(pc) for pc in pcs] == [
            [("127.0.0.1", first + 1)],
            [("127.0.0.1", first + 2)],
        ]
        # all three busy: a clear error, no random port
        third = await server_offer(plan)
        pcs.append(third)
        with pytest.raises(internals.MediaPortsExhausted):
            await third.setLocalDescription(await third.createOffer())
        assert "all 3 UDP ports on 127.0.0.1 are in use" in caplog.text
        assert bound_addresses(third) == []
        # ports come back when their peer connection closes; round robin starts after the last
        blocker.close()
        await pcs[0].close()
        fourth = await server_offer(plan)
        pcs.append(fourth)
        await fourth.setLocalDescription(await fourth.createOffer())
        assert [c[:2] for c in candidates(fourth)] == [("127.0.0.1", first)]
    finally:
        blocker.close()
        for pc in pcs:
            await pc.close()


async def test_nat_mapping_advertises_the_public_address_on_a_private_socket() -> None:
    first = free_port_block(2)
    nat = {"127.0.0.1": "203.0.113.7"}
    replace = await server_offer(internals.MediaSockets(ports=(first, first + 1), nat=nat))
    keep = await server_offer(
        internals.MediaSockets(ports=(first, first + 1), nat=nat, keep_private=True)
    )
    try:
        for pc in (replace, keep):
            await pc.setLocalDescription(await pc.createOffer())
        ((address, port, _),) = candidates(replace)
        assert address == "203.0.113.7" and first <= port <= first + 1
        assert bound_addresses(replace) == [("127.0.0.1", port)]
        found = {c[0]: c for c in candidates(keep)}
        assert set(found) == {"203.0.113.7", "127.0.0.1"}
        assert found["203.0.113.7"][1] == found["127.0.0.1"][1]  # one socket, two addresses
        assert found["203.0.113.7"][2] > found["127.0.0.1"][2]  # the public one first
        assert bound_addresses(keep) == [("127.0.0.1", found["127.0.0.1"][1])]
        # the m-line's default address is the public one too
        assert "c=IN IP4 203.0.113.7" in replace.localDescription.sdp
    finally:
        await replace.close()
        await keep.close()


async def test_media_sockets_touch_only_the_peer_connections_given() -> None:
    first = free_port_block(2)
    plan = internals.MediaSockets(ports=(first, first + 1), nat={"0.0.0.0": "203.0.113.7"})
    client = await server_offer(plan, apply=False)  # a client in the same process
    unconfigured = await server_offer(None)  # no plan: use_media_sockets does nothing
    try:
        for pc in (client, unconfigured):
            await pc.setLocalDescription(await pc.createOffer())
            ((address, port, _),) = candidates(pc)
            assert address == "127.0.0.1" and not first <= port <= first + 1
    finally:
        await client.close()
        await unconfigured.close()
