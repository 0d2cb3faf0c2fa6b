"""Prometheus metrics: one registry per app (no global state), served at ``/metrics``.

Counting is per batch, not per delivery: the hot path adds one ``inc(n)`` per batch and
channel, whatever the number of readers. Each process exports its own figures; sum them
in Prometheus (``sum by (channel)``) when running several workers or hosts.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r = self.registry
        self.readers = Gauge("ticker_readers", "Connected SSE readers", ["channel"], registry=r)
        self.published = Counter(
            "ticker_events_published_total",
            "Events written to a channel's stream by this process",
            ["channel", "type"],
            registry=r,
        )
        self.delivered = Counter(
            "ticker_events_delivered_total",
            "Events handed to readers' streams (events x readers)",
            ["channel"],
            registry=r,
        )
        self.latency = Histogram(
            "ticker_publish_to_send_seconds",
            "From the stream entry's time to its fan-out to readers",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.cut_off = Counter(
            "ticker_readers_cut_off_total",
            "Readers ended because they fell too far behind",
            ["channel"],
            registry=r,
        )
        self.resyncs = Counter(
            "ticker_readers_resynced_total",
            "Times a channel's streams were ended so readers resync (Redis lost data, or a "
            "reader fell behind the history)",
            ["channel"],
            registry=r,
        )
        self.refused = Counter(
            "ticker_readers_refused_total", "Readers turned away by a connection cap", registry=r
        )
        self.redis_reconnects = Counter(
            "ticker_redis_reconnects_total",
            "Channel readers that reconnected after a Redis error",
            ["channel"],
            registry=r,
        )
        self.redis_errors = Counter(
            "ticker_redis_errors_total",
            "Requests answered 503 because Redis was unavailable",
            registry=r,
        )
        self.expiry_lag = Histogram(
            "ticker_expiry_lag_seconds",
            "From an item's expires_at to its expire entry",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, made once: ``labels()`` takes a lock and builds a key,
        which showed up at 8 % of a connect storm. Label values are channels and event
        types, both bounded by the settings."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
