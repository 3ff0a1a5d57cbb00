"""The terminal's audio jitter buffer plays on past lost packets (terminal/jitter.py)."""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from terminal.jitter import CAPACITY, PREFETCH, GapSkippingJitterBuffer


def _packet(seq: int) -> RtpPacket:
    packet = RtpPacket(payload_type=111, sequence_number=seq & 0xFFFF, timestamp=seq * 960)
    packet._data = bytes([seq & 0xFF])  # type: ignore[attr-defined]
    return packet


def _play(buffer: JitterBuffer, seqs: list[int]) -> list[int]:
    """Feed packets in order; the timestamps (/960) of the frames that came out."""
    out = []
    for seq in seqs:
        _, frame = buffer.add(_packet(seq))
        if frame is not None:
            out.append(frame.timestamp // 960)
    return out


def test_every_received_frame_is_played_at_10_percent_loss() -> None:
    sent = list(range(1000))
    arrived = [s for s in sent if s % 10 != 5]  # one packet in ten lost
    ours = _play(GapSkippingJitterBuffer(), arrived)
    theirs = _play(JitterBuffer(capacity=CAPACITY, prefetch=PREFETCH), arrived)
    # all but the last PREFETCH frames (still prefetched when the stream ends) come out, in order
    assert ours == arrived[: len(ours)] and len(ours) >= len(arrived) - PREFETCH - 1
    # aiortc's own buffer discards received frames at each gap: the reason this module exists
    assert len(theirs) < 0.7 * len(arrived)


def test_a_late_packet_fills_its_gap_rather_than_being_skipped() -> None:
    buffer = GapSkippingJitterBuffer()
    order = [0, 1, 2, 3, 4, 5, 7, 8, 6, 9, 10, 11, 12, 13]  # 6 arrives after 7 and 8
    assert _play(buffer, order) == list(range(10))
    assert buffer.skipped == 0


def test_a_gap_is_skipped_once_prefetch_packets_wait_behind_it() -> None:
    buffer = GapSkippingJitterBuffer()
    played = _play(buffer, [0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14])
    assert played == [0, 1, 2, 3, 4, 5, 8, 9, 10] and buffer.skipped == 2


def test_sequence_numbers_wrap() -> None:
    seqs = [s for s in range(65530, 65560) if s != 65537]
    played = _play(GapSkippingJitterBuffer(), seqs)
    assert played == [s for s in seqs][: len(played)] and len(played) >= len(seqs) - PREFETCH - 1
