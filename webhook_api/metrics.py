"""Prometheus metrics: webhooks by source, event and outcome; request latency by route."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartplex.routing import is_known_event


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhooks = Counter(
            "smartplex_webhooks",
            "Webhooks answered, by source, event type and outcome.",
            ["source", "event", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "smartplex_http_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )

    def webhook(self, source: str, event_type: str | None, outcome: str) -> None:
        # Tautulli bodies are user-defined: only known event names become labels, to bound cardinality.
        event = event_type if event_type and is_known_event(source, event_type) else "other"
        self.webhooks.labels(source, event, outcome).inc()


class LatencyMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.latency.labels(template, scope["method"], str(status)).observe(
                time.perf_counter() - started
            )
