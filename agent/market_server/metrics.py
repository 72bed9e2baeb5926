"""The marketplace's Prometheus metrics: queue depth and what became of every lease (from the database, so
every server process of a scaled-out marketplace reports the same figures: aggregate them with max, not
sum), and this process's API latency by route (a histogram per process: sum them).

Served by `market serve --metrics-port` on their own address and port, with the same rules as the agent's
(agent/metrics/server.py): loopback by default, a bearer token from a file beyond it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from sparecycles.agent.market_server.market import Marketplace
from sparecycles.protocol.market import JobState, LeaseState

# Latency buckets for an API whose calls take milliseconds and whose long polls take up to ~10 s.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiLatency:
    """A histogram of request durations by method and route template (never by raw path: job ids and
    addresses would make a series per request)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.histogram = Histogram(
            "sparecycles_market_request_duration_seconds",
            "Time the marketplace took to answer, by method and route (this server process).",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )

    def middleware(self, app: App) -> App:
        async def timed(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            try:
                await app(scope, receive, send)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                self.histogram.labels(scope["method"], template).observe(time.perf_counter() - started)

        return timed


def count_metrics(jobs: dict[str, int], leases: dict[str, int]) -> list[Metric]:
    queue = GaugeMetricFamily(
        "sparecycles_market_jobs", "Jobs in each state (queued: the queue depth).", labels=["state"]
    )
    for job_state in JobState:
        queue.add_metric([job_state.value], jobs.get(job_state.value, 0))
    outcomes = GaugeMetricFamily(
        "sparecycles_market_leases",
        "Leases by what became of them; their sum is every assignment ever made (database-wide).",
        labels=["state"],
    )
    for lease_state in LeaseState:
        outcomes.add_metric([lease_state.value], leases.get(lease_state.value, 0))
    return [queue, outcomes]


def market_gatherer(market: Marketplace, latency: ApiLatency) -> Callable[[], Awaitable[list[Metric]]]:
    async def gather() -> list[Metric]:
        jobs, leases = await asyncio.to_thread(market.state_counts)
        return [*count_metrics(jobs, leases), *latency.registry.collect()]

    return gather
