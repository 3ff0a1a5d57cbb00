"""Fails loudly when an aiortc / aioice upgrade moves a private attribute the forwarder relies on."""

from __future__ import annotations

import aiortc

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
