"""Redundant audio (RFC 2198, "RED") for Opus: the payload format and its SDP negotiation.

How this works. On a lossy link each audio packet the server sends a subscriber may also carry
copies of the one or two Opus packets before it. A receiver that lost packet *n* gets it back from
packet *n+1* (or *n+2*) before its jitter buffer ever sees the gap, without a retransmission round
trip. Browsers decode RED natively (Chromium negotiates `red/48000/2`); the terminal's client
unwraps it in front of aiortc's receiver (terminal/red_receiver.py).

A RED payload is a list of block headers then the blocks, oldest first, the primary last::

    redundant header (4 bytes): F=1 | block PT (7) | timestamp offset (14) | block length (10)
    primary header   (1 byte):  F=0 | block PT (7)

RFC 2198 carries no sequence numbers for the redundant blocks: like libwebrtc, both ends take the
block *k* places before the primary to be the packet *k* sequence numbers earlier. The sender
therefore only includes packets whose sequence numbers run on without a gap up to the primary.

Negotiation: the server (always the offerer) lists `red/48000/2` on the audio m-lines it sends on;
an answer that keeps it may receive RED. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: RFC 2198 field limits: a redundant block's timestamp offset has 14 bits and its length 10 bits.
MAX_TIMESTAMP_OFFSET = (1 << 14) - 1
MAX_BLOCK_LENGTH = (1 << 10) - 1
#: At most this many redundant blocks are read from one packet (a bound on hostile input).
MAX_BLOCKS = 8
#: The payload type offered for RED when the m-line leaves it free (Chromium's choice).
PREFERRED_PAYLOAD_TYPE = 63


@dataclass(frozen=True, slots=True)
class Block:
    payload_type: int
    timestamp_offset: int  # primary timestamp minus this block's; 0 for the primary
    data: bytes


def encode(primary_pt: int, primary: bytes, redundant: Sequence[tuple[int, bytes]]) -> bytes:
    """A RED payload: `redundant` is [(timestamp offset, Opus payload)], oldest first.

    Blocks that do not fit the header fields are left out (never truncated)."""
    headers = bytearray()
    blocks: list[bytes] = []
    for offset, data in redundant:
        if not 0 < offset <= MAX_TIMESTAMP_OFFSET or not 0 < len(data) <= MAX_BLOCK_LENGTH:
            continue
        headers += (0x80000000 | (primary_pt << 24) | (offset << 10) | len(data)).to_bytes(4, "big")
        blocks.append(data)
    headers.append(primary_pt & 0x7F)
    return bytes(headers) + b"".join(blocks) + primary


def decode(payload: bytes) -> list[Block]:
    """The blocks of a RED payload, oldest first, primary last. ValueError if malformed."""
    headers: list[tuple[int, int, int]] = []
    pos = 0
    while True:
        if pos >= len(payload):
            raise ValueError("RED payload ends inside its headers")
        first = payload[pos]
        if not first & 0x80:
            primary_pt = first & 0x7F
            pos += 1
            break
        if pos + 4 > len(payload):
            raise ValueError("RED block header truncated")
        if len(headers) >= MAX_BLOCKS:
            raise ValueError(f"more than {MAX_BLOCKS} redundant blocks")
        word = int.from_bytes(payload[pos : pos + 4], "big")
        headers.append(((word >> 24) & 0x7F, (word >> 10) & 0x3FFF, word & 0x3FF))
        pos += 4
    out: list[Block] = []
    for pt, offset, length in headers:
        if pos + length > len(payload):
            raise ValueError("RED block longer than the payload")
        out.append(Block(pt, offset, payload[pos : pos + length]))
        pos += length
    out.append(Block(primary_pt, 0, payload[pos:]))
    return out


# -- SDP ---------------------------------------------------------------------------------------

_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/(\d+)")


def _sections(sdp: str) -> list[list[str]]:
    """The session part, then one list of lines per m-line."""
    out: list[list[str]] = [[]]
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            out.append([])
        out[-1].append(line)
    return out


def _join(sections: Iterable[list[str]]) -> str:
    return "\r\n".join(line for section in sections for line in section)


def _rtpmaps(section: list[str]) -> dict[int, str]:
    """payload type -> lower-case encoding name of one m-line."""
    out: dict[int, str] = {}
    for line in section:
        match = _RTPMAP.match(line)
        if match:
            out[int(match.group(1))] = match.group(2).lower()
    return out


def _attribute(section: list[str], name: str) -> str | None:
    prefix = f"a={name}:"
    return next((line[len(prefix) :] for line in section if line.startswith(prefix)), None)


def _direction(section: list[str]) -> str:
    for line in section:
        if line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            return line[2:]
    return "sendrecv"


def _add_format(
    section: list[str], pt: int, rtpmap: str, fmtp: str, first: bool = False
) -> list[str]:
    """Add a format to an m-line: last, or `first` (the answerer's sender uses the first)."""
    fields = section[0].split(" ")
    formats = [str(pt), *fields[3:]] if first else [*fields[3:], str(pt)]
    out = [" ".join([*fields[:3], *formats])]
    out.extend(section[1:])
    # after the last rtpmap/fmtp line, where readers expect the format attributes
    last = max(
        (i for i, line in enumerate(out) if line.startswith(("a=rtpmap:", "a=fmtp:"))),
        default=len(out) - 1,
    )
    out[last + 1 : last + 1] = [f"a=rtpmap:{pt} {rtpmap}", f"a=fmtp:{pt} {fmtp}"]
    return out


def offer_red(sdp: str, receive: bool = True) -> str:
    """Offer RED on every audio m-line of an offer.

    On the m-lines the offerer only receives on (a publisher's microphone) RED goes first, which
    asks the answerer to send it (a browser sends the first codec of the answer); the offerer
    unwraps it before its recorder and forwarder see the packets. `receive=False` leaves those
    m-lines plain Opus. On the m-lines the offerer sends on it is merely allowed."""
    sections = _sections(sdp)
    for index, section in enumerate(sections[1:], start=1):
        if not section[0].startswith("m=audio "):
            continue
        receiving = _direction(section) == "recvonly"
        if receiving and not receive:
            continue
        maps = _rtpmaps(section)
        if "red" in maps.values():
            continue
        opus = next((pt for pt, name in maps.items() if name == "opus"), None)
        if opus is None:
            continue
        pt = PREFERRED_PAYLOAD_TYPE
        if pt in maps:
            pt = next(p for p in range(96, 128) if p not in maps)
        sections[index] = _add_format(section, pt, "red/48000/2", f"{opus}/{opus}", first=receiving)
    return _join(sections)


def red_payload_type(sdp: str, mid: str) -> int | None:
    """The RED payload type an answer (or offer) keeps on the m-line `mid`, if any."""
    for section in _sections(sdp)[1:]:
        if _attribute(section, "mid") != mid or section[0].split(" ")[1] == "0":
            continue
        formats = set(section[0].split(" ")[3:])
        return next(
            (pt for pt, name in _rtpmaps(section).items() if name == "red" and str(pt) in formats),
            None,
        )
    return None


def answer_red(offer: str, answer: str) -> str:
    """Keep the offer's RED on the answer's audio m-lines, in the offer's place (first or last).

    For a client whose SDP stack does not know RED (aiortc) but which unwraps what it receives and
    wraps what it sends itself (server/sfu/red_transport.py)."""
    offered = _sections(offer)[1:]
    sections = _sections(answer)
    for index, section in enumerate(sections[1:], start=1):
        if index - 1 >= len(offered) or not section[0].startswith("m=audio "):
            continue
        if section[0].split(" ")[1] == "0" or _direction(section) == "inactive":
            continue
        source = offered[index - 1]
        maps = _rtpmaps(source)
        red = next((pt for pt, name in maps.items() if name == "red"), None)
        if red is None or red in _rtpmaps(section):
            continue
        fmtp = next(
            (line.split(" ", 1)[1] for line in source if line.startswith(f"a=fmtp:{red} ")), ""
        )
        if not fmtp:
            continue
        first = source[0].split(" ")[3:4] == [str(red)]
        sections[index] = _add_format(section, red, "red/48000/2", fmtp, first=first)
    return _join(sections)


def codec_payload_type(sdp: str, mid: str, name: str) -> int | None:
    """The payload type of codec `name` (e.g. "opus") on the m-line `mid`, if listed."""
    for section in _sections(sdp)[1:]:
        if _attribute(section, "mid") == mid:
            return next((pt for pt, n in _rtpmaps(section).items() if n == name.lower()), None)
    return None


def red_payload_types(sdp: str) -> dict[str, int]:
    """mid -> RED payload type for each audio m-line of a description that lists RED."""
    out: dict[str, int] = {}
    for section in _sections(sdp)[1:]:
        if not section[0].startswith("m=audio "):
            continue
        mid = _attribute(section, "mid")
        red = next((pt for pt, name in _rtpmaps(section).items() if name == "red"), None)
        if mid is not None and red is not None:
            out[mid] = red
    return out
