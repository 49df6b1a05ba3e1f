"""Prometheus metrics in the text exposition format, without a client library."""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# The ASGI scope key naming the route of a request answered outside the
# router (``api.ranking_path``), for the latency histogram.
ROUTE_LABEL = "trustledger.route"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.appends = 0
        self.appended_events = 0
        self.conflicts = 0
        self.ranking_path_answers = 0
        self.refusals: dict[str, int] = defaultdict(int)
        self._latency: dict[str, list[int]] = defaultdict(
            lambda: [0] * (len(LATENCY_BUCKETS_SECONDS) + 1)
        )
        self._latency_sum: dict[str, float] = defaultdict(float)

    def appended(self, events: int) -> None:
        with self._lock:
            self.appends += 1
            self.appended_events += events

    def ranking_path_answered(self) -> None:
        with self._lock:
            self.ranking_path_answers += 1

    def refused(self, code: str) -> None:
        with self._lock:
            self.refusals[code] += 1
            if code == "concurrent_update":
                self.conflicts += 1

    def observe(self, route: str, seconds: float) -> None:
        with self._lock:
            counts = self._latency[route]
            for i, bound in enumerate(LATENCY_BUCKETS_SECONDS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-1] += 1
            self._latency_sum[route] += seconds

    def render(self, *, lag_events: int, lag_seconds: float) -> str:
        with self._lock:
            lines = [
                "# TYPE trustledger_appends_total counter",
                f"trustledger_appends_total {self.appends}",
                "# TYPE trustledger_appended_events_total counter",
                f"trustledger_appended_events_total {self.appended_events}",
                "# TYPE trustledger_conflicts_total counter",
                f"trustledger_conflicts_total {self.conflicts}",
                "# TYPE trustledger_ranking_path_answers_total counter",
                f"trustledger_ranking_path_answers_total {self.ranking_path_answers}",
                "# TYPE trustledger_refusals_total counter",
                *(
                    f'trustledger_refusals_total{{code="{c}"}} {n}'
                    for c, n in sorted(self.refusals.items())
                ),
                "# TYPE trustledger_projection_lag_events gauge",
                f"trustledger_projection_lag_events {lag_events}",
                "# TYPE trustledger_projection_lag_seconds gauge",
                f"trustledger_projection_lag_seconds {lag_seconds:.3f}",
                "# TYPE trustledger_request_seconds histogram",
            ]
            for route, counts in sorted(self._latency.items()):
                for bound, count in zip(LATENCY_BUCKETS_SECONDS, counts, strict=False):
                    lines.append(
                        f'trustledger_request_seconds_bucket{{route="{route}",le="{bound}"}} {count}'
                    )
                lines.append(
                    f'trustledger_request_seconds_bucket{{route="{route}",le="+Inf"}} {counts[-1]}'
                )
                lines.append(
                    f'trustledger_request_seconds_sum{{route="{route}"}} {self._latency_sum[route]:.6f}'
                )
                lines.append(f'trustledger_request_seconds_count{{route="{route}"}} {counts[-1]}')
        return "\n".join(lines) + "\n"
