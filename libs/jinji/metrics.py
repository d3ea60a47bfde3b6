"""Prometheus metrics shared by every service: RED per route template, in-flight, DB pool.

Labels are route templates and service names only, never raw paths, tenant or user ids, so
cardinality stays bounded whatever clients send. With several worker processes set
``PROMETHEUS_MULTIPROC_DIR`` and the multiprocess collector aggregates them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from jinji.db import Database

REQUESTS = Counter(
    "jinji_http_requests_total",
    "HTTP requests handled, by route template and status code.",
    ["service", "method", "route", "status"],
)
LATENCY = Histogram(
    "jinji_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
IN_FLIGHT = Gauge(
    "jinji_http_requests_in_flight",
    "HTTP requests being handled now.",
    ["service"],
    multiprocess_mode="livesum",
)


class DbPoolCollector(Collector):
    """Reads pool state at scrape time, so the numbers are never stale."""

    def __init__(self) -> None:
        self._pools: dict[str, Database] = {}

    def register(self, service: str, db: Database) -> None:
        self._pools[service] = db

    def unregister(self, service: str) -> None:
        self._pools.pop(service, None)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "jinji_db_pool_connections",
            "Database pool connections by state (size is the configured pool size).",
            labels=["service", "state"],
        )
        for service, db in sorted(self._pools.items()):
            for state, value in db.pool_status().items():
                family.add_metric([service, state], value)
        yield family


# prometheus-client leaves this constructor unannotated.
_multiprocess_collector: Any = MultiProcessCollector
DB_POOLS = DbPoolCollector()
REGISTRY.register(DB_POOLS)


def render() -> tuple[bytes, str]:
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not multiproc_dir:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    _multiprocess_collector(registry, path=multiproc_dir)
    # Pool state is per process and read live; it is not in the multiprocess files.
    local = CollectorRegistry()
    local.register(DB_POOLS)
    return generate_latest(registry) + generate_latest(local), CONTENT_TYPE_LATEST
