"""Prometheus metrics: one registry per app (no global state), served at ``/metrics``.

Counting is per batch, not per delivery: the hot path adds one ``inc(n)`` per batch and
channel, whatever the number of readers.

Deliberate choices:
- Every series exists from start-up, at 0: each labelled metric gets a child per declared
  channel (and event type) here. A counter that appears only at its first event makes
  ``rate()`` and alerts on it read "no data" instead of 0.
- ``ticker serve --workers N`` shares one port between N processes, so a scrape reaches
  any one of them. Then the workers write their figures to files in one directory
  (prometheus-client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``), and whichever
  answers sums them all: counters never go backwards, ``ticker_readers`` sums the live
  workers. prometheus-client picks that mode when it is first imported, so ``serve`` sets
  the variable before any worker starts; ``Metrics`` checks that the mode took.
- Separate processes on their own ports (or hosts) are separate scrape targets: Prometheus
  gives each its ``instance`` label, and ``sum by (channel)`` adds them up.
- Process metrics (``process_resident_memory_bytes``, ``process_open_fds``, CPU...) come
  from prometheus-client's process collector, for a single process only. With
  ``--workers N`` a scrape reaches any one worker, so they would describe a different
  process from one scrape to the next (the flip-flop the shared files avoid); there,
  read them from the host or the container (node exporter, cAdvisor) instead.
- Refusals are counted by channel (``-`` for routes without one, such as ``/whoami``):
  ``ticker_auth_refused_total{status="401"|"403"}`` and ``ticker_rate_limited_total``.
  Channels are the declared ones only, so a request cannot add a series.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client import values as _values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from ticker import __version__

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# The ``type`` of a stream entry (docs/streams.md): a version of an item, or its removal.
EVENT_TYPES = ("item", "remove")
# The statuses ``ticker_auth_refused_total`` counts, and its channel for other routes.
AUTH_STATUSES = ("401", "403")
NO_CHANNEL = "-"


class Metrics:
    def __init__(self, channels: Iterable[str] = (), *, multiprocess_dir: Path | None = None):
        self.multiprocess_dir = multiprocess_dir
        if multiprocess_dir is not None and not _multiprocess_values():
            raise RuntimeError(
                "metrics: prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR "
                "was set, so its figures would not be shared between workers"
            )
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._channels = frozenset(channels)
        r = self.registry
        if multiprocess_dir is None:
            ProcessCollector(registry=r)  # see above: one process only
        build = Gauge(
            "ticker_build_info",
            "The running ticker's version (always 1)",
            ["version"],
            registry=r,
            multiprocess_mode="max",  # one series for all workers, not one per pid
        )
        build.labels(__version__).set(1)
        self.auth_refused = Counter(
            "ticker_auth_refused_total",
            "Requests refused for their token: 401 (missing, unknown, lapsed) or 403 (not "
            "this channel, or not this role)",
            ["channel", "status"],
            registry=r,
        )
        self.http_requests = Counter(
            "ticker_http_requests_total",
            "Requests answered, by route template, method and status (not streams)",
            ["route", "method", "status"],
            registry=r,
        )
        self.rate_limited = Counter(
            "ticker_rate_limited_total",
            "Writes refused with 429: too many for one token",
            ["channel"],
            registry=r,
        )
        self.readers = Gauge(
            "ticker_readers",
            "Connected SSE readers",
            ["channel"],
            registry=r,
            multiprocess_mode="livesum",  # the workers that run now, not those that ran
        )
        self.published = Counter(
            "ticker_events_published_total",
            "Events written to a channel's stream by this service",
            ["channel", "type"],
            registry=r,
        )
        self.signoffs = Counter(
            "ticker_signoffs_total",
            "Items approved or rejected (signoff.py)",
            ["channel", "decision"],
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
        for channel in (*self._channels, NO_CHANNEL):
            for status in AUTH_STATUSES:
                self.child(self.auth_refused, channel, status)
            self.child(self.rate_limited, channel)
        for channel in self._channels:
            for metric in (
                self.readers,
                self.delivered,
                self.latency,
                self.cut_off,
                self.resyncs,
                self.redis_reconnects,
                self.expiry_lag,
            ):
                self.child(metric, channel)
            for event_type in EVENT_TYPES:
                self.child(self.published, channel, event_type)
            for decision in ("approved", "rejected"):
                self.child(self.signoffs, channel, decision)

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, made once: ``labels()`` takes a lock and builds a key,
        which showed up in a connect storm's profile (docs/performance.md). Label values
        are channels and event types, both bounded by the settings."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def count_refusal(self, status: int, channel: str | None) -> None:
        """Count a 401, 403 or 429 answer (any other status is not counted here)."""
        label = channel if channel in self._channels else NO_CHANNEL
        if status == 429:
            self.child(self.rate_limited, label).inc()
        elif str(status) in AUTH_STATUSES:
            self.child(self.auth_refused, label, str(status)).inc()

    def count_request(self, route: str, method: str, status: int) -> None:
        """One request answered (http/counted.py keeps the labels bounded)."""
        self.child(self.http_requests, route, method, str(status)).inc()

    def render(self) -> tuple[bytes, str]:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        # Every worker's files, summed; a fresh registry, as prometheus-client asks.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def forget_dead_workers(self) -> None:
        """Drop the live gauges of workers that are gone (a crash leaves its files; the
        worker uvicorn starts in its place calls this). Their counters stay: a total
        never goes backwards."""
        if self.multiprocess_dir is None:
            return
        for path in self.multiprocess_dir.glob("gauge_live*_*.db"):
            pid = path.stem.rsplit("_", 1)[-1]
            if pid.isdigit() and not _running(int(pid)):
                mark_process_dead(int(pid), str(self.multiprocess_dir))  # type: ignore[no-untyped-call]

    def close(self) -> None:
        """This process is leaving: its live gauges leave with it."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))  # type: ignore[no-untyped-call]


def _multiprocess_values() -> bool:
    # The value class prometheus-client chose at import: MultiProcessValue() builds one
    # named MmapedValue. Checked, because a plain one would silently count per worker.
    return getattr(_values.ValueClass, "__name__", "") == "MmapedValue"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
