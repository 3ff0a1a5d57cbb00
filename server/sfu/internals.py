"""Every place where Tingshen reaches into aiortc / aioice private state, in one module.

The forwarder works at the RTP level (see forwarder.py), which aiortc has no public API for. Each
private attribute or method used is named here, once, so that an aiortc upgrade breaks one file and
one test (tests/test_aiortc_internals.py) loudly instead of silently degrading media. The pinned
versions are in pyproject.toml.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import aioice.ice
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

#: aiortc / aioice versions whose internals this module was written against.
AIORTC_VERSION = "1.16.0"
AIOICE_VERSION = "0.13.0"

_SENDER = "_RTCRtpSender__"
_RECEIVER = "_RTCRtpReceiver__"


class FrameTap:
    """Stands in for an `RTCRtpReceiver`'s private decoder queue.

    aiortc's receiver puts every complete encoded frame (``(codec, JitterFrame)``) on a
    ``queue.Queue`` that a decoder thread drains into decoded ``av.Frame``s. The SFU never wants
    those: decoding 30 fps VP8 per publisher is wasted CPU, and an unread queue grows without bound
    (435 MB in 25 s). The tap hands each encoded frame to ``on_frame`` (the recorder) on the event
    loop thread and gives the decoder thread nothing to do until the receiver stops.
    """

    def __init__(self) -> None:
        self.on_frame: Callable[[Any, Any], None] | None = None
        self._stopped = threading.Event()
        self.frames = 0

    # Called by aiortc on the event loop thread (receiver) or on stop (None).
    def put(self, item: tuple[Any, Any] | None) -> None:
        if item is None:
            self._stopped.set()
            return
        self.frames += 1
        callback = self.on_frame
        if callback is not None:
            codec, frame = item
            callback(codec, frame)

    # Called by aiortc's decoder thread: block until the receiver stops, then end the thread.
    def get(self) -> None:
        self._stopped.wait()
        return None


def install_frame_tap(receiver: RTCRtpReceiver) -> FrameTap:
    """Replace the receiver's decoder queue by a `FrameTap`. Must run before `receive()`."""
    current = getattr(receiver, _RECEIVER + "decoder_queue")
    if not isinstance(current, queue.Queue):
        raise RuntimeError("RTCRtpReceiver decoder queue already replaced or receiver started")
    if getattr(receiver, _RECEIVER + "decoder_thread") is not None:
        raise RuntimeError("RTCRtpReceiver already started: the tap would come too late")
    tap = FrameTap()
    setattr(receiver, _RECEIVER + "decoder_queue", tap)
    return tap


def receiver_codecs(receiver: RTCRtpReceiver) -> dict[int, Any]:
    """Payload type -> negotiated `RTCRtpCodecParameters` (filled by `receive()`)."""
    codecs: dict[int, Any] = getattr(receiver, _RECEIVER + "codecs")
    return codecs


def receiver_timestamp_origin(receiver: RTCRtpReceiver) -> int | None:
    """The raw RTP timestamp aiortc maps to 0 for the frames it hands to the decoder (the tap)."""
    mapper = getattr(receiver, _RECEIVER + "timestamp_mapper")
    origin: int | None = mapper._origin
    return origin


def set_sender_report_fields(
    sender: RTCRtpSender, ntp_timestamp: int, rtp_timestamp: int, packets: int, octets: int
) -> None:
    """Feed the values aiortc's own RTCP loop puts into the sender report it sends.

    In pass-through the sender's encode loop never runs, so without this every SR would carry NTP 0
    and the receiver could not align this stream with its companion (lip sync).
    """
    setattr(sender, _SENDER + "ntp_timestamp", ntp_timestamp)
    setattr(sender, _SENDER + "rtp_timestamp", rtp_timestamp)
    setattr(sender, _SENDER + "packet_count", packets)
    setattr(sender, _SENDER + "octet_count", octets)


def header_extension_ids(transceiver: RTCRtpTransceiver) -> dict[str, int]:
    """The negotiated RTP header extension ids of a transceiver, by URI."""
    return {ext.uri: ext.id for ext in transceiver._headerExtensions}


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> Sequence[Any]:
    return transceiver._codecs


def rtp_send_function(dtls: RTCDtlsTransport) -> Callable[[bytes], bool]:
    """A synchronous "protect and send" for one DTLS transport.

    `RTCDtlsTransport._send_rtp` is a chain of three coroutines per packet (DTLS -> ICE transport ->
    aioice connection -> protocol); per forwarded packet per subscriber that is most of the cost.
    This does the same work directly: SRTP-protect with the transport's session and `sendto` on the
    nominated candidate pair's socket. Returns False when the transport is not connected (yet, or
    any more), in which case the packet is dropped as it would be by aiortc.
    """
    connected = State.CONNECTED
    ice_connection = dtls.transport._connection
    nominated: dict[int, Any] = ice_connection._nominated

    def send(data: bytes) -> bool:
        if dtls._state is not connected:
            return False
        pair = nominated.get(1)
        if pair is None:
            return False
        transport = pair.protocol.transport
        if transport is None:
            return False
        transport.sendto(dtls._tx_srtp.protect(data), pair.remote_addr)
        return True

    return send


def transport_connected(dtls: RTCDtlsTransport) -> Callable[[], bool]:
    """A cheap "is this DTLS transport connected" for the hot path."""
    connected = State.CONNECTED
    return lambda: dtls._state is connected


def restrict_host_addresses(addresses: Sequence[str]) -> None:
    """Make aioice gather host candidates on exactly these local addresses.

    aioice never offers 127.0.0.1, so a server bound to loopback (the default, and every test in a
    loopback-only namespace) would have no candidate at all. The setting is process-wide because
    aioice reads it from a module-level function.
    """
    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


def harden_remb_parsing() -> None:
    """A short REMB must be refused, not crash the connection that carried it.

    aiortc's `unpack_remb_fci` lets a `struct.error` escape on a truncated FCI; the DTLS transport's
    RTCP routing catches only ValueError, so one malformed packet (seen in the Janus fuzzing corpus)
    ends that participant's receive loop. Re-raise it as the ValueError aiortc expects.
    """
    import struct

    from aiortc import rtp

    original = rtp.unpack_remb_fci
    if getattr(original, "_tingshen_hardened", False):
        return

    def unpack_remb_fci(data: bytes) -> tuple[int, list[int]]:
        try:
            return original(data)
        except struct.error as exc:
            raise ValueError(f"truncated REMB: {exc}") from None

    unpack_remb_fci._tingshen_hardened = True  # type: ignore[attr-defined]
    rtp.unpack_remb_fci = unpack_remb_fci


def check() -> list[str]:
    """Return what is missing from the aiortc/aioice internals we rely on (empty when all is there)."""
    import aiortc

    problems: list[str] = []
    if aiortc.__version__ != AIORTC_VERSION:
        problems.append(f"aiortc {aiortc.__version__} != pinned {AIORTC_VERSION}")
    from aiortc.rtcdtlstransport import RTCCertificate

    cert = RTCCertificate.generateCertificate()
    from aiortc.rtcicetransport import RTCIceGatherer, RTCIceTransport

    dtls = RTCDtlsTransport(RTCIceTransport(RTCIceGatherer(iceServers=[])), [cert])
    receiver = RTCRtpReceiver("video", dtls)
    sender = RTCRtpSender("video", dtls)
    for name in ("decoder_queue", "decoder_thread", "codecs", "timestamp_mapper"):
        if not hasattr(receiver, _RECEIVER + name):
            problems.append(f"RTCRtpReceiver.{name}")
    if not hasattr(getattr(receiver, _RECEIVER + "timestamp_mapper", None), "_origin"):
        problems.append("TimestampMapper._origin")
    for name in ("_handle_rtp_packet", "_handle_rtcp_packet", "_send_rtcp_pli"):
        if not callable(getattr(receiver, name, None)):
            problems.append(f"RTCRtpReceiver.{name}()")
    for name in ("ntp_timestamp", "rtp_timestamp", "packet_count", "octet_count"):
        if not hasattr(sender, _SENDER + name):
            problems.append(f"RTCRtpSender.{name}")
    for name in ("_handle_rtcp_packet", "_ssrc"):
        if not hasattr(sender, name):
            problems.append(f"RTCRtpSender.{name}")
    for name in ("_state", "_tx_srtp", "_rtp_router"):
        if not hasattr(dtls, name):
            problems.append(f"RTCDtlsTransport.{name}")
    if not hasattr(dtls.transport, "_connection") or not hasattr(
        dtls.transport._connection, "_nominated"
    ):
        problems.append("aioice Connection._nominated")
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        problems.append("aioice.ice.get_host_addresses")
    return problems
