"""What each process counts as it works, for operators (prometheus-client): requests by route
and status, their latency, timer lag, media legs. Served with the database's own figures at
``/metrics`` (``telehealth.api.metrics``). With several worker processes (``telehealth serve
--workers N``) each writes to ``PROMETHEUS_MULTIPROC_DIR`` and a scrape sums them all."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Requests that matched no route are counted under one label, so that a scan of random paths
# cannot grow the series without bound.
UNMATCHED = "unmatched"

REQUESTS = Counter(
    "telehealth_http_requests",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "telehealth_http_request_duration_seconds",
    "Time from a request to the start of its answer, by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TIMER_LAG = Histogram(
    "telehealth_timer_fire_lag_seconds",
    "How long after its due time a timer fired",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
MEDIA_LEGS = Gauge(
    "telehealth_media_legs",
    "Media connections the service holds (relay: a participant's streams through the "
    "service; record: a recording)",
    ["kind"],
    multiprocess_mode="livesum",
)


def observe_request(method: str, route: str | None, status: int, seconds: float | None) -> None:
    template = route or UNMATCHED
    REQUESTS.labels(method, template, str(status)).inc()
    if seconds is not None:
        LATENCY.labels(method, template).observe(seconds)
