"""aiortc's `MediaRelay` behind the same interfaces as the forwarder: the benchmark's baseline only.

`MediaRelay` decodes each published track once and re-encodes it for every subscriber (~33 % of a
core per subscriber here). It exists so that `tests/bench/relay.py` can measure the forwarder against
it in one run (`relay_mode = "mediarelay"`); it is never the production path.
"""

from __future__ import annotations

import asyncio
import logging

from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaBlackhole, MediaRelay

from server.sfu.forwarder import PublishedStream, SenderSlot

logger = logging.getLogger(__name__)


class RelayedStream(PublishedStream):
    """A published track that the receiver decodes (no tap, no RTP hook)."""

    def __init__(self, *args: object, relay: MediaRelay, **kwargs: object) -> None:
        self.relay = relay
        self._sink: MediaBlackhole | None = None
        self._sink_task: asyncio.Future[None] | None = None
        self._sink_stop: asyncio.Future[None] | None = None
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def _hook_receiver(self) -> None:
        pass

    def start_sink(self) -> None:
        """Keep reading the decoded track even with no subscriber (else it queues without bound)."""
        track = self.receiver.track
        if track is None or self._sink is not None:
            return
        self._sink = MediaBlackhole()
        self._sink.addTrack(self.relay.subscribe(track, buffered=False))
        self._sink_task = asyncio.ensure_future(self._sink.start())

    def subscribe(self, slot: SenderSlot) -> None:
        if slot not in self.outputs:
            self.outputs.append(slot)

    def unsubscribe(self, slot: SenderSlot) -> None:
        if slot in self.outputs:
            self.outputs.remove(slot)

    def close(self) -> None:
        super().close()
        if self._sink_task is not None:
            self._sink_task.cancel()  # MediaBlackhole.start only spawns its readers
        if self._sink is not None:
            self._sink_stop = asyncio.ensure_future(self._sink.stop())


class RelayedSlot(SenderSlot):
    """A subscriber transceiver whose sender encodes the relayed, decoded track itself."""

    def _hook_sender(self) -> None:
        pass  # aiortc's own NACK / PLI handling applies: it has an encoder

    def activate(self) -> None:
        pass

    def attach(self, source: PublishedStream) -> None:
        self.source = source
        source.subscribe(self)


def relay_track(relay: MediaRelay, stream: PublishedStream) -> MediaStreamTrack:
    track = stream.receiver.track
    assert track is not None, "a stream is published only once its track exists"
    return relay.subscribe(track, buffered=False)
