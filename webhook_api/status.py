"""The figures behind ``GET /api/webhooks/status``, computed in SQL on either engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from smartplex.column_types import utcnow
from smartplex.latency import STAGES, percentiles
from smartplex.schema import WEBHOOK_STATUSES, sync_schedule, webhook_log
from smartplex.services import SERVICE_NAMES
from smartplex.sql_time import seconds_between

WAITING = ("pending", "dispatched")
HANDLED_BY_RUN = ("processed", "failed", "missing")


def webhook_status(connection: Connection, window: timedelta, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    since = now - window
    sources: dict[str, dict[str, Any]] = {name: _empty() for name in SERVICE_NAMES}
    _window_counts(connection, since, sources)
    _last_received(connection, since, sources)
    _latency(connection, since, sources)
    _backlog(connection, now, sources)
    totals = {key: sum(s[key] for s in sources.values()) for key in ("received", *_STATUS_KEYS, "backlog")}
    return {
        "window_hours": window.total_seconds() / 3600,
        "since": since,
        "now": now,
        "totals": totals,
        "sources": sources,
        "stages": stages(connection, since),
        "schedules": schedules(connection),
    }


_STATUS_KEYS = WEBHOOK_STATUSES


def _empty() -> dict[str, Any]:
    return {
        "received": 0,
        **{key: 0 for key in _STATUS_KEYS},
        "last_received_at": None,
        "last_event_type": None,
        "latency_p50_seconds": None,
        "latency_p95_seconds": None,
        "backlog": 0,
        "oldest_pending_age_seconds": None,
    }


def _window_counts(connection: Connection, since: datetime, sources: dict[str, dict[str, Any]]) -> None:
    counts = [func.count(case((webhook_log.c.status == s, 1))).label(s) for s in _STATUS_KEYS]
    query = (
        select(webhook_log.c.source, func.count().label("received"), *counts)
        .where(webhook_log.c.received_at >= since)
        .group_by(webhook_log.c.source)
    )
    for row in connection.execute(query).mappings():
        sources[row["source"]].update({k: row[k] for k in ("received", *_STATUS_KEYS)})


def _last_received(connection: Connection, since: datetime, sources: dict[str, dict[str, Any]]) -> None:
    ranked = (
        select(
            webhook_log.c.source,
            webhook_log.c.event_type,
            webhook_log.c.received_at,
            func.row_number()
            .over(partition_by=webhook_log.c.source, order_by=webhook_log.c.received_at.desc())
            .label("rank"),
        )
        .where(webhook_log.c.received_at >= since)
        .subquery()
    )
    query = select(ranked.c.source, ranked.c.event_type, ranked.c.received_at).where(ranked.c.rank == 1)
    for source, event_type, received_at in connection.execute(query):
        sources[source].update(last_received_at=received_at, last_event_type=event_type)


def _latency(connection: Connection, since: datetime, sources: dict[str, dict[str, Any]]) -> None:
    """Nearest-rank p50/p95 of received -> processed, over rows a sync run handled."""
    latency = seconds_between(webhook_log.c.received_at, webhook_log.c.processed_at)
    ranked = (
        select(
            webhook_log.c.source,
            latency.label("latency"),
            func.row_number().over(partition_by=webhook_log.c.source, order_by=latency).label("rank"),
            func.count().over(partition_by=webhook_log.c.source).label("n"),
        )
        .where(
            and_(
                webhook_log.c.received_at >= since,
                webhook_log.c.status.in_(HANDLED_BY_RUN),
                webhook_log.c.processed_at.is_not(None),
            )
        )
        .subquery()
    )
    # The smallest latency whose rank reaches p*n is the nearest-rank percentile.
    query = select(
        ranked.c.source,
        func.min(case((ranked.c.rank >= ranked.c.n * 0.5, ranked.c.latency))).label("p50"),
        func.min(case((ranked.c.rank >= ranked.c.n * 0.95, ranked.c.latency))).label("p95"),
    ).group_by(ranked.c.source)
    for source, p50, p95 in connection.execute(query):
        sources[source].update(latency_p50_seconds=p50, latency_p95_seconds=p95)


def _backlog(connection: Connection, now: datetime, sources: dict[str, dict[str, Any]]) -> None:
    """Rows still waiting, whatever their age, and how long the oldest has waited."""
    query = (
        select(webhook_log.c.source, func.count(), func.min(webhook_log.c.received_at))
        .where(webhook_log.c.status.in_(WAITING))
        .group_by(webhook_log.c.source)
    )
    for source, count, oldest in connection.execute(query):
        sources[source].update(backlog=count, oldest_pending_age_seconds=(now - oldest).total_seconds())


def stages(connection: Connection, since: datetime) -> dict[str, dict[str, Any]]:
    """Per stage of a webhook's path (``smartplex.latency.STAGES``), over the rows received since
    ``since`` that went through it: how many, and the nearest-rank p50 and p95 of its seconds."""
    figures = percentiles(connection, webhook_log.c.received_at >= since)
    return {
        stage.name: {
            "from": stage.start,
            "to": stage.end,
            "rows": figures[stage.name]["rows"],
            "p50_seconds": figures[stage.name][0.5],
            "p95_seconds": figures[stage.name][0.95],
        }
        for stage in STAGES
    }


def schedules(connection: Connection) -> list[dict[str, Any]]:
    rows = connection.execute(select(sync_schedule).order_by(sync_schedule.c.service)).mappings()
    return [dict(row) for row in rows]
