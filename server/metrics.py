"""`GET /metrics` (Prometheus text format) for operators.

Figures are read from the live hearings when scraped, so the media hot path never touches a metric
object: forwarding counters are plain integers on the streams and slots.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from server import state


class LiveCollector(Collector):
    def __init__(self, services: state.Services) -> None:
        self.services = services

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        hearings = GaugeMetricFamily("tingshen_hearings_live", "Hearings with people in them")
        participants = GaugeMetricFamily(
            "tingshen_participants", "Connected participants", labels=["hearing", "court"]
        )
        packets_in = CounterMetricFamily(
            "tingshen_rtp_received_packets", "RTP packets received from publishers", labels=["kind"]
        )
        packets_out = CounterMetricFamily(
            "tingshen_rtp_forwarded_packets",
            "RTP packets forwarded to subscribers",
            labels=["kind"],
        )
        retransmitted = CounterMetricFamily(
            "tingshen_rtp_retransmitted_packets", "Packets re-sent on subscribers' NACKs"
        )
        keyframes = CounterMetricFamily(
            "tingshen_keyframe_requests_sent", "Keyframe requests sent to publishers"
        )
        live = list(self.services.live.values())
        hearings.add_metric([], len(live))
        received = {"audio": 0, "video": 0}
        forwarded = {"audio": 0, "video": 0}
        resent = 0
        plis = 0
        for hearing in live:
            participants.add_metric([hearing.id, hearing.hearing.court], len(hearing.connections))
            for connection in hearing.connections.values():
                peer = connection.peer
                if peer is None:
                    continue
                for stream in peer.published.values():
                    received[stream.kind] += stream.packets
                    if stream.keyframes is not None:
                        plis += stream.keyframes.sent
                for slot in peer.slots:
                    forwarded[slot.kind] += slot.packets
                    resent += slot.retransmitted
        for kind in ("audio", "video"):
            packets_in.add_metric([kind], received[kind])
            packets_out.add_metric([kind], forwarded[kind])
        retransmitted.add_metric([], resent)
        keyframes.add_metric([], plis)
        yield from (hearings, participants, packets_in, packets_out, retransmitted, keyframes)


async def metrics(request: web.Request) -> web.Response:
    from server.api import require_admin

    require_admin(request)  # hearing ids and courts are not public
    registry = request.app[REGISTRY]
    response = web.Response(body=generate_latest(registry))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)


def setup(app: web.Application, services: state.Services) -> None:
    registry = CollectorRegistry()
    registry.register(LiveCollector(services))
    app[REGISTRY] = registry
