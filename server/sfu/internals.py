"""Every place where Tingshen reaches into aiortc / aioice private state, in one module.

The forwarder works at the RTP level (see forwarder.py), which aiortc has no public API for. Each
private attribute or method used is named here, once, so that an aiortc upgrade breaks one file and
one test (tests/test_aiortc_internals.py) loudly instead of silently degrading media. The pinned
versions are in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aioice.ice
import aioice.turn
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

#: aiortc / aioice versions whose internals this module was written against.
AIORTC_VERSION = "1.16.0"
AIOICE_VERSION = "0.13.0"

_SENDER = "_RTCRtpSender__"
_RECEIVER = "_RTCRtpReceiver__"
_PC = "_RTCPeerConnection__"

logger = logging.getLogger(__name__)


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


# -- media sockets: a UDP port range and 1:1 NAT (settings `media_ports`, `nat_1_1_mapping`) ----


class MediaPortsExhausted(RuntimeError):
    """Every UDP port of `media_ports` is in use on a media address."""


#: RFC 8445 5.1.2.1: two host candidates of one component need distinct local preferences.
_PUBLIC_PREFERENCE = 65535
_PRIVATE_PREFERENCE = 65534


def _host_candidate(component: int, host: str, port: int, preference: int) -> Candidate:
    """A host candidate built exactly as aioice's `get_component_candidates` builds one."""
    return Candidate(
        foundation=candidate_foundation("host", "udp", host),
        component=component,
        transport="udp",
        priority=candidate_priority(component, "host", preference),
        host=host,
        port=port,
        type="host",
    )


class MediaSockets:
    """Where the server's media sockets bind, and which addresses its offers advertise.

    How this works. aioice 0.13 makes a component's host candidates in
    `Connection.get_component_candidates`: for each local address it binds a UDP socket on port 0
    (whatever the kernel picks) and advertises the address and port it got. `install` replaces that
    method *on one `Connection` instance* (a server peer connection's, see `use_media_sockets`) by
    `gather`, which does the host part itself and hands the rest back to aioice:

    - one UDP socket per local media address, bound to the first free port of `ports` after the
      last one handed out on that address (round robin: a port just freed is not reused at once,
      so late packets meant for its previous owner do not reach a new participant). A busy port
      (EADDRINUSE) is skipped. When every port is busy it logs an error and, if no address got a
      socket, raises `MediaPortsExhausted`: the offer fails and the participant is told its media
      failed. It never falls back to a random port.
    - a host candidate per socket. For a local address with a 1:1 NAT mapping the candidate carries
      the public address and the same port (and, with `keep_private`, the private one too, at a
      lower priority); the socket stays bound to the private address, which is where the NAT
      forwards the public one. Checks and media go out of the same socket, so the NAT's reverse
      translation gives them the public address as their source.
    - server-reflexive candidates (a STUN server among the server's `ice_servers`) are asked for on
      these sockets as aioice would; relayed ones (TURN) come from aioice's own method, unchanged
      (its socket towards the TURN server is an ordinary outgoing one, not in the range).

    Everything else of aioice (pairing, checks, consent, the sockets' protocol) is untouched. Peer
    connections not passed to `use_media_sockets` (the test clients and the terminal in the same
    process) keep aioice's behaviour.
    """

    def __init__(
        self,
        ports: tuple[int, int] | None = None,
        nat: Mapping[str, str] | None = None,
        keep_private: bool = False,
    ) -> None:
        #: Inclusive UDP port range for host sockets; None: any port (the kernel's choice).
        self.ports = ports
        #: Local address -> public address advertised in its place; "0.0.0.0" / "::" stand for
        #: any local address of that family.
        self.nat = dict(nat or {})
        self.keep_private = keep_private
        self._next: dict[str, int] = {}  # per local address: offset of the next port to try

    def public_address(self, local: str) -> str | None:
        """The address a 1:1 NAT makes `local` reachable at, if one is configured."""
        return self.nat.get(local) or self.nat.get("::" if ":" in local else "0.0.0.0")

    def bind(self, address: str) -> socket.socket:
        """A UDP socket bound to `address` on a free port of the range (any port without one).

        Raises `MediaPortsExhausted` when every port of the range is busy, `OSError` when the
        address cannot be bound at all (not local, permission).
        """
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        if self.ports is None:
            candidates = [0]
            start = 0
        else:
            low, high = self.ports
            candidates = list(range(low, high + 1))
            start = self._next.get(address, 0)
        count = len(candidates)
        for i in range(count):
            offset = (start + i) % count
            port = candidates[offset]
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((address, port))
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE and self.ports is not None:
                    logger.debug("media port %s:%d is busy, trying the next", address, port)
                    continue
                raise
            self._next[address] = (offset + 1) % count
            return sock
        assert self.ports is not None
        raise MediaPortsExhausted(
            f"media_ports {self.ports[0]}-{self.ports[1]}: all {count} UDP ports on {address} "
            "are in use, so a participant gets no media socket there (widen media_ports)"
        )

    def install(self, connection: aioice.ice.Connection) -> None:
        """Make this aioice `Connection` gather its host candidates through `gather`."""
        if getattr(connection, "_tingshen_media_sockets", None) is self:
            return
        original = connection.get_component_candidates  # aioice's, bound to this connection
        connection.get_component_candidates = functools.partial(  # type: ignore[method-assign]
            self.gather, connection, original
        )
        connection._tingshen_media_sockets = self  # type: ignore[attr-defined]

    async def gather(
        self,
        connection: aioice.ice.Connection,
        original: Callable[..., Any],
        component: int,
        addresses: list[str],
        timeout: int = 5,
    ) -> list[Candidate]:
        """Stands in for `Connection.get_component_candidates(component, addresses, timeout)`."""
        loop = asyncio.get_running_loop()
        candidates: list[Candidate] = []
        protocols: list[aioice.ice.StunProtocol] = []
        exhausted: list[str] = []
        for address in addresses:
            try:
                sock = self.bind(address)
            except MediaPortsExhausted as exc:
                logger.error("%s", exc)
                exhausted.append(address)
                continue
            except OSError as exc:
                logger.warning("media: could not bind to %s - %s", address, exc)
                continue
            try:
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_RCVBUF, aioice.turn.UDP_SOCKET_BUFFER_SIZE
                )
                _, protocol = await loop.create_datagram_endpoint(
                    lambda: aioice.ice.StunProtocol(connection), sock=sock
                )
            except OSError as exc:
                sock.close()
                logger.warning("media: could not use a socket on %s - %s", address, exc)
                continue
            host, port = sock.getsockname()[:2]
            public = self.public_address(host)
            private = _host_candidate(
                component,
                host,
                port,
                _PRIVATE_PREFERENCE if public is not None else _PUBLIC_PREFERENCE,
            )
            protocol.local_candidate = private  # what the socket is: used to pair and check
            protocols.append(protocol)
            if public is None:
                candidates.append(private)
            else:
                candidates.append(_host_candidate(component, public, port, _PUBLIC_PREFERENCE))
                if self.keep_private:
                    candidates.append(private)
        connection._protocols += protocols
        if exhausted and not protocols:
            raise MediaPortsExhausted(
                f"no free media port on {', '.join(exhausted)}: see the error logged above"
            )

        extra = [original(component=component, addresses=[], timeout=timeout)]  # TURN, if any
        stun_server = connection.stun_server
        if stun_server is not None:
            for protocol in protocols:
                if ":" not in protocol.local_candidate.host:  # aioice asks over IPv4 only
                    extra.append(_reflexive_candidate(protocol, stun_server, timeout))
        for found in await asyncio.gather(*extra):
            candidates += found
        return candidates

    def describe(self) -> str:
        parts = []
        if self.ports is not None:
            low, high = self.ports
            parts.append(
                f"UDP ports {low}-{high} ({high - low + 1} participants at once per address)"
            )
        for local, public in self.nat.items():
            shown = "every local address" if local in ("0.0.0.0", "::") else local
            keep = ", private address too" if self.keep_private else ""
            parts.append(f"1:1 NAT {shown} advertised as {public}{keep}")
        return "; ".join(parts) or "aioice defaults"


async def _reflexive_candidate(
    protocol: aioice.ice.StunProtocol, stun_server: tuple[str, int], timeout: float
) -> list[Candidate]:
    try:
        candidate, _ = await asyncio.wait_for(
            aioice.ice.server_reflexive_candidate(protocol, stun_server), timeout
        )
    except Exception as exc:  # aioice drops a failed STUN query silently; say why, quietly
        logger.debug("media: no server-reflexive candidate: %r", exc)
        return []
    return [candidate]


_media_sockets: MediaSockets | None = None


def configure_media_sockets(plan: MediaSockets | None) -> MediaSockets | None:
    """Set the plan `use_media_sockets` applies from now on (process-wide, like the host
    addresses; the app sets it from its settings). Returns the previous plan."""
    global _media_sockets
    previous, _media_sockets = _media_sockets, plan
    return previous


def use_media_sockets(pc: RTCPeerConnection) -> None:
    """Give a server peer connection's media sockets the configured ports and advertised addresses.

    Call right after creating the peer connection. Its ICE transport does not exist yet (aiortc
    makes it with the first transceiver), so this wraps the peer connection's private `__gather`
    (which every `setLocalDescription` awaits before it writes candidates into the SDP) to install
    the plan on each of its aioice connections first. A no-op when no plan is configured.
    """
    plan = _media_sockets
    if plan is None:
        return
    gather = getattr(pc, _PC + "gather")
    transports = getattr(pc, _PC + "iceTransports")

    async def gather_on_media_sockets() -> None:
        for transport in transports:
            plan.install(transport._connection)
        await gather()

    setattr(pc, _PC + "gather", gather_on_media_sockets)


#: An incoming check on a pair whose own check is still in progress re-sends that check's request at
#: once, at most this often per pair.
TRIGGERED_RESEND_INTERVAL = 0.2


def prompt_triggered_checks(pc: RTCPeerConnection) -> None:
    """Answer a peer's connectivity check with one of our own at once (RFC 8445 section 7.3.1.4).

    aioice starts a triggered check only for a pair that is Waiting, Frozen or Failed. For a pair
    whose check is In-Progress it leaves the transaction to its retransmission timer (0.5, 1.5, 3.5,
    7.5, 15.5 s after it began). After an outage of the client's link, a rejoining browser's checks
    reach us at once, but our own check on that pair (sent into the dark) only goes out again at
    its next retransmission: up to ~8 s before the pair succeeds and the controlling side (the
    server) can nominate it. The RFC cancels the In-Progress transaction and checks again; we
    re-send the pending request now instead (same transaction, so its response completes the check).

    Like `use_media_sockets`, installed on each aioice connection from the pc's `__gather`.
    """
    gather = getattr(pc, _PC + "gather")
    transports = getattr(pc, _PC + "iceTransports")

    async def gather_and_prompt() -> None:
        for transport in transports:
            _install_triggered_resend(transport._connection)
        await gather()

    setattr(pc, _PC + "gather", gather_and_prompt)


def _install_triggered_resend(connection: aioice.ice.Connection) -> None:
    if getattr(connection, "_tingshen_triggered_resend", False):
        return
    check_incoming = connection.check_incoming
    resent: dict[int, float] = {}

    def check_incoming_and_resend(message: Any, addr: tuple[str, int], protocol: Any) -> None:
        check_incoming(message, addr, protocol)
        now = time.monotonic()
        for pair in connection._check_list:
            if pair.protocol is not protocol or pair.remote_addr != addr:
                continue
            if pair.state != aioice.ice.CandidatePair.State.IN_PROGRESS:
                return
            if now - resent.get(id(pair), 0.0) < TRIGGERED_RESEND_INTERVAL:
                return
            resent[id(pair)] = now
            for transaction in list(protocol.transactions.values()):
                if getattr(transaction, "_Transaction__addr", None) == addr:
                    protocol.send_stun(transaction._Transaction__request, addr)  # type: ignore[attr-defined]
            return

    connection.check_incoming = check_incoming_and_resend  # type: ignore[method-assign]
    connection._tingshen_triggered_resend = True  # type: ignore[attr-defined]


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
    problems += _check_media_sockets()
    problems += _check_red_and_jitter(dtls)
    return problems


def _check_red_and_jitter(dtls: RTCDtlsTransport) -> list[str]:
    """What server/sfu/red_transport.py and terminal/jitter.py touch (they keep their own code
    beside the objects they wrap; the pins are checked here with the rest)."""
    from aiortc.jitterbuffer import JitterBuffer

    problems: list[str] = []
    audio = RTCRtpReceiver("audio", dtls)
    for name in ("remote_streams", "jitter_buffer"):
        if not hasattr(audio, _RECEIVER + name):
            problems.append(f"RTCRtpReceiver.{name}")
    if not isinstance(getattr(audio, _RECEIVER + "jitter_buffer", None), JitterBuffer):
        problems.append("RTCRtpReceiver's audio jitter buffer is not a JitterBuffer")
    for name in ("_origin", "_packets", "_capacity", "_prefetch", "remove"):
        if not hasattr(JitterBuffer(capacity=16, prefetch=4), name):
            problems.append(f"JitterBuffer.{name}")
    router = dtls._rtp_router
    for name in ("route_rtp", "ssrc_table", "mid_table"):
        if not hasattr(router, name):
            problems.append(f"RtpRouter.{name}")
    if not callable(getattr(dtls, "_send_rtp", None)):
        problems.append("RTCDtlsTransport._send_rtp()")
    return problems


def _check_media_sockets() -> list[str]:
    """What `MediaSockets` / `use_media_sockets` rely on in aiortc and aioice."""
    import inspect

    problems: list[str] = []
    pc = RTCPeerConnection()
    if not inspect.iscoroutinefunction(getattr(pc, _PC + "gather", None)):
        problems.append("RTCPeerConnection.__gather()")
    if not isinstance(getattr(pc, _PC + "iceTransports", None), set):
        problems.append("RTCPeerConnection.__iceTransports")
    # __gather must be reached through the instance (self.__gather()), or wrapping it does nothing
    set_local = inspect.getsource(RTCPeerConnection.setLocalDescription)
    if "await self.__gather()" not in set_local:
        problems.append("RTCPeerConnection.setLocalDescription awaits self.__gather()")
    gather_source = inspect.getsource(aioice.ice.Connection.gather_candidates)
    if "self.get_component_candidates(" not in gather_source:
        problems.append("aioice Connection.gather_candidates calls self.get_component_candidates")
    parameters = list(inspect.signature(aioice.ice.Connection.get_component_candidates).parameters)
    if parameters != ["self", "component", "addresses", "timeout"]:
        problems.append(f"aioice Connection.get_component_candidates{tuple(parameters)}")
    connection = aioice.ice.Connection(ice_controlling=True)
    for name in ("_protocols", "stun_server"):
        if not hasattr(connection, name):
            problems.append(f"aioice Connection.{name}")
    if "local_candidate" not in inspect.getsource(aioice.ice.StunProtocol):
        problems.append("aioice StunProtocol.local_candidate")
    for name in ("StunProtocol", "server_reflexive_candidate"):
        if not callable(getattr(aioice.ice, name, None)):
            problems.append(f"aioice.ice.{name}")
    if not isinstance(getattr(aioice.turn, "UDP_SOCKET_BUFFER_SIZE", None), int):
        problems.append("aioice.turn.UDP_SOCKET_BUFFER_SIZE")
    return problems
