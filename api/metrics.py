"""The service's Prometheus metrics, through ``prometheus_client``.

Each ``Service`` has a registry of its own (tests run many services in one
process). With several API workers (``serve --workers N``) the supervisor
sets ``PROMETHEUS_MULTIPROC_DIR`` and every worker writes its samples there;
``/metrics``, answered by whichever worker, then adds up all of them
(prometheus_client's multiprocess mode), so a scrape sees the whole server.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import msgspec
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric

LATENCY_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# The ASGI scope key naming the route of a request answered outside the
# router (``api.ranking_path``), for the latency histogram.
ROUTE_LABEL = "trustledger.route"
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# The refusals a process keeps to show an operator (the counts cover all).
RECENT_REFUSALS_MAX = 50


class Refusal(msgspec.Struct, frozen=True):
    """One problem answered: when, its status and code, the route and the key."""

    at: datetime
    status: int
    code: str
    route: str | None
    key_id: str | None


def shared_samples_dir() -> tuple[Path, bool]:
    """The folder the workers about to start will share their samples in: the
    operator's ``PROMETHEUS_MULTIPROC_DIR`` emptied of an earlier run's files,
    or a new temporary one (True: made here, to be removed after)."""
    given = multiprocess_dir()
    if given is None:
        return Path(tempfile.mkdtemp(prefix="trustledger-metrics-")), True
    given.mkdir(parents=True, exist_ok=True)
    for stale in given.glob("*.db"):
        stale.unlink()
    return given, False


def multiprocess_dir() -> Path | None:
    """Where the workers of one server write their samples, if they share them."""
    value = os.environ.get(MULTIPROCESS_DIR_ENV)
    return Path(value) if value else None


class Metrics:
    def __init__(self) -> None:
        self.shared = multiprocess_dir() is not None
        # Shared samples go to files whatever the registry; this one is only
        # where this process's metrics are declared (and, alone, read).
        self.registry = CollectorRegistry()
        r = self.registry
        self._appends = Counter("trustledger_appends", "Appends accepted", registry=r)
        self._appended_events = Counter(
            "trustledger_appended_events", "Events written by appends", registry=r
        )
        self._conflicts = Counter(
            "trustledger_conflicts", "Appends refused as concurrent_update", registry=r
        )
        self._ranking_path = Counter(
            "trustledger_ranking_path_answers",
            "Penalty calls answered by the ranking engine's hot path",
            registry=r,
        )
        self._refusals = Counter(
            "trustledger_refusals", "Refusals by problem code", ["code"], registry=r
        )
        self._latency = Histogram(
            "trustledger_request_seconds",
            "Request latency by route and status",
            ["route", "status"],
            buckets=LATENCY_BUCKETS_SECONDS,
            registry=r,
        )
        self._lag_events = Gauge(
            "trustledger_projection_lag_events",
            "Events in the log the view has not folded yet",
            registry=r,
            multiprocess_mode="max",  # workers added up: the worst lag any saw
        )
        self._lag_seconds = Gauge(
            "trustledger_projection_lag_seconds",
            "How long ago the oldest unfolded event was recorded",
            registry=r,
            multiprocess_mode="max",  # workers added up: the worst lag any saw
        )
        if not self.shared:
            ProcessCollector(registry=r)  # CPU, memory, open files of this process
        self.recent_refusals: deque[Refusal] = deque(maxlen=RECENT_REFUSALS_MAX)

    @property
    def ranking_path_answers(self) -> int:
        return int(self._ranking_path._value.get())

    def appended(self, events: int) -> None:
        self._appends.inc()
        self._appended_events.inc(events)

    def ranking_path_answered(self) -> None:
        self._ranking_path.inc()

    def refused(self, refusal: Refusal) -> None:
        self._refusals.labels(code=refusal.code).inc()
        if refusal.code == "concurrent_update":
            self._conflicts.inc()
        self.recent_refusals.append(refusal)  # deque appends are atomic: no lock

    def refusals_by_code(self) -> dict[str, int]:
        """Every problem answered since the server started, by code (all workers')."""
        counts: dict[str, int] = {}
        for metric in self._collected():
            if metric.name != "trustledger_refusals":
                continue
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.value:
                    code = sample.labels["code"]
                    counts[code] = counts.get(code, 0) + int(sample.value)
        return counts

    def observe(self, route: str, status: int, seconds: float) -> None:
        self._latency.labels(route=route, status=str(status)).observe(seconds)

    def render(self, *, lag_events: int, lag_seconds: float) -> bytes:
        """The exposition text: this process's metrics, or every worker's."""
        self._lag_events.set(lag_events)
        self._lag_seconds.set(lag_seconds)
        return generate_latest(self._readable())

    def _readable(self) -> CollectorRegistry:
        """This process's registry, or one gathering every worker's samples."""
        if not self.shared:
            return self.registry
        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
        return combined

    def _collected(self) -> Iterable[Metric]:
        return self._readable().collect()
