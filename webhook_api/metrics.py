"""Prometheus metrics: webhooks by source, event and outcome; request latency by route; the stages of a
webhook's path, from the database.

Under several worker processes (``smartplex api --workers N``) every process counts in files of its own
in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode), and ``/metrics``, whichever
worker answers it, shows the sums over every worker that has run since the server started.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartplex import catch_up
from smartplex.column_types import utcnow
from smartplex.latency import STAGES, histogram
from smartplex.routing import is_known_event
from smartplex.schema import webhook_log

_go_float: Callable[[float], str] = floatToGoString  # the library's own bucket labels (it ships no types)
_read_every_process: Callable[[CollectorRegistry, str], object] = MultiProcessCollector  # nor here

log = logging.getLogger(__name__)

#: The stage histograms cover the webhooks received this recently.
STAGE_WINDOW = timedelta(hours=1)
STAGE_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 60.0, 120.0, 300.0)
#: Most label combinations whose child series is kept at hand (looking a child up by its labels takes a lock).
CHILDREN_KEPT = 1024
#: Where each worker process writes its figures when there are several (set before any of them starts).
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


class StageHistograms(Collector):
    """``smartplex_webhook_stage_seconds{stage=...}``: each stage of a webhook's path, over the webhooks
    received in the last hour that went through it, computed from ``webhook_log`` at each scrape.

    The rows are settled by Dagster, not by the API, so no API process observes them itself: read from
    the database, every API process reports the same figures, however many there are. They describe a
    sliding window, hence a gauge histogram (its counts may fall): read a quantile straight from the
    buckets, e.g. ``histogram_quantile(0.95, max by (le, stage) (smartplex_webhook_stage_seconds_bucket))``.
    """

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def collect(self) -> Iterator[Metric]:
        if self.engine is None:
            return
        try:
            with self.engine.connect() as connection:
                figures = histogram(connection, webhook_log.c.received_at >= utcnow() - STAGE_WINDOW, STAGE_BUCKETS)
        except SQLAlchemyError as exc:  # the other metrics still matter while the database is down
            log.warning("stage histograms left out of /metrics: %s", type(exc).__name__)
            return
        family = GaugeHistogramMetricFamily(
            "smartplex_webhook_stage_seconds",
            "Seconds each stage of a webhook's path took, over the webhooks received in the last hour.",
            labels=["stage"],
        )
        for stage in STAGES:
            buckets, count, total = figures[stage.name]
            edges = [(_go_float(b), n) for b, n in zip(STAGE_BUCKETS, buckets, strict=True)]
            family.add_metric([stage.name], [*edges, ("+Inf", count)], total)
        yield family


class CatchUpGauges(Collector):
    """``smartplex_unannounced_changes{instance, window}``: changes the catch-up synced that no webhook
    announced, over 24 hours and 7 days (a sender's reliability); ``smartplex_sender_webhook_disabled``:
    1 while a sender's own health check says our webhook is disabled after failures. From the database."""

    def __init__(self, stages: StageHistograms) -> None:
        self.stages = stages  # its engine, set at the first request

    def collect(self) -> Iterator[Metric]:
        if self.stages.engine is None:
            return
        try:
            with self.stages.engine.connect() as connection:
                counts = catch_up.unannounced_counts(connection, utcnow())
                unhealthy = catch_up.unhealthy(connection)
                instances = [row["library"] for row in catch_up.rows(connection)]
        except SQLAlchemyError as exc:
            log.warning("catch-up figures left out of /metrics: %s", type(exc).__name__)
            return
        found = GaugeMetricFamily(
            "smartplex_unannounced_changes",
            "Changes the catch-up synced that no webhook had announced, per instance and window.",
            labels=["instance", "window"],
        )
        disabled = GaugeMetricFamily(
            "smartplex_sender_webhook_disabled",
            "1 while the sender's health check says our webhook is disabled after failures (Sonarr, Radarr).",
            labels=["instance"],
        )
        for instance in instances:
            for window in catch_up.WINDOWS:
                found.add_metric([instance, window], counts.get(instance, {}).get(window, 0))
            disabled.add_metric([instance], 1 if instance in unhealthy else 0)
        yield found
        yield disabled


class Metrics:
    def __init__(self) -> None:
        #: What ``/metrics`` shows.
        self.registry = CollectorRegistry()
        # With several workers the counters live in their files (prometheus_client writes there by
        # itself once the variable is set), and the registry reads every worker's files instead.
        multiprocess_dir = os.environ.get(MULTIPROCESS_DIR)
        if multiprocess_dir:
            _read_every_process(self.registry, multiprocess_dir)
        counted = None if multiprocess_dir else self.registry
        self.webhooks = Counter(
            "smartplex_webhooks",
            "Webhooks answered, by source, event type and outcome.",
            ["source", "event", "outcome"],
            registry=counted,
        )
        self.latency = Histogram(
            "smartplex_http_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=counted,
        )
        self.stages = StageHistograms()
        self.registry.register(self.stages)
        self.registry.register(CatchUpGauges(self.stages))
        self._webhook_children: dict[tuple[str, str | None, str], Counter] = {}
        self._latency_children: dict[tuple[str, str, int], Histogram] = {}

    def webhook(self, source: str, event_type: str | None, outcome: str) -> None:
        key = (source, event_type, outcome)
        child = self._webhook_children.get(key)
        if child is None:
            # Tautulli bodies are user-defined: only known event names become labels, to bound cardinality.
            event = event_type if event_type and is_known_event(source, event_type) else "other"
            child = self.webhooks.labels(source, event, outcome)
            if len(self._webhook_children) < CHILDREN_KEPT:
                self._webhook_children[key] = child
        child.inc()

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._latency_children.get(key)
        if child is None:
            child = self.latency.labels(route, method, str(status))
            if len(self._latency_children) < CHILDREN_KEPT:
                self._latency_children[key] = child
        child.observe(seconds)


class LatencyMiddleware:
    """Observes each request's latency by route, method and status; hands each answer to ``access_log``."""

    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, access_log: Callable[[Scope, int], None] | None = None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.metrics.stages.engine is None:
            # The stage histograms read the app's database, which its state names; the first request
            # (a scrape of /metrics included) is the first moment this middleware sees the app.
            state = getattr(scope.get("app"), "state", None)
            self.metrics.stages.engine = getattr(getattr(state, "smartplex", None), "engine", None)
        started = time.perf_counter()
        status = 0
        access_log = self.access_log

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if access_log is not None:
                    access_log(scope, status)
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            if not status:  # the app failed before answering: the server answers 500
                status = 500
                if access_log is not None:
                    access_log(scope, status)
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.request(template, scope["method"], status, time.perf_counter() - started)
