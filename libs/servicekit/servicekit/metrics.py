"""Prometheus metrics with the exact names dashboards and alerts expect; one registry per app."""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response

#: Latency buckets (seconds) for HTTP requests.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Outcomes of a consumed message.
CONSUME_OUTCOMES = ("ok", "retried", "dead_lettered", "duplicate")


class Metrics:
    """The metrics of one service instance, registered in their own registry."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("service", "method", "route", "status")
        self.http_requests = Counter(
            "http_requests_total", "HTTP requests served", labels, registry=self.registry
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            labels,
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.published = Counter(
            "messaging_published_total",
            "Events published and confirmed by the broker",
            ("service", "event"),
            registry=self.registry,
        )
        self.consumed = Counter(
            "messaging_consumed_total",
            "Events consumed, by outcome (ok|retried|dead_lettered|duplicate)",
            ("service", "event", "outcome"),
            registry=self.registry,
        )
        self.outbox_pending = Gauge(
            "outbox_pending", "Outbox rows not yet published", ("service",), registry=self.registry
        )
        self.cache_requests = Counter(
            "cache_requests_total",
            "Cache lookups, by outcome (hit|miss|error)",
            ("service", "outcome"),
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "dependency_up",
            "1 when a dependency answered its last check (readiness probe or scrape), else 0",
            ("service", "dependency"),
            registry=self.registry,
        )
        self.unavailable = Counter(
            "dependency_unavailable_total",
            "Requests answered 503 because a dependency could not be reached",
            ("service", "dependency"),
            registry=self.registry,
        )
        self.outbox_pending.labels(service=service).set(0)
        # Labelled children, looked up once: ``labels()`` validates and hashes on every call. The keys
        # are bounded (route templates, methods, statuses, cache outcomes).
        self._http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._cache_children: dict[str, Any] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request and record its latency."""
        key = (method, route, status)
        children = self._http_children.get(key)
        if children is None:
            labels = {"service": self.service, "method": method, "route": route, "status": str(status)}
            children = (self.http_requests.labels(**labels), self.http_duration.labels(**labels))
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_published(self, event: str) -> None:
        """Count one confirmed publication."""
        self.published.labels(service=self.service, event=event).inc()

    def count_unavailable(self, dependency: str) -> None:
        """Count one request answered 503 because *dependency* was unreachable."""
        self.unavailable.labels(service=self.service, dependency=dependency).inc()

    def set_dependencies(self, results: dict[str, str]) -> None:
        """``dependency_up`` from check results (name -> ``ok`` or the failure)."""
        for name, result in results.items():
            self.dependency_up.labels(service=self.service, dependency=name).set(1 if result == "ok" else 0)

    def count_consumed(self, event: str, outcome: str) -> None:
        """Count one consumed delivery with its outcome."""
        self.consumed.labels(service=self.service, event=event, outcome=outcome).inc()

    def count_cache(self, outcome: str) -> None:
        """Count one cache lookup (hit, miss or error)."""
        child = self._cache_children.get(outcome)
        if child is None:
            child = self._cache_children[outcome] = self.cache_requests.labels(
                service=self.service, outcome=outcome
            )
        child.inc()

    def set_outbox_pending(self, value: int) -> None:
        """Report how many outbox rows wait to be published."""
        self.outbox_pending.labels(service=self.service).set(value)

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``."""
    metrics: Metrics = request.app.state.metrics
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:  # every dependency, required or not: degraded ones show (and alert) here
        from servicekit.health import run_checks

        metrics.set_dependencies(await run_checks(runtime.dependency_checks(), runtime.check_timeout))
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
