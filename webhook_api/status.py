"""The figures behind ``GET /api/webhooks/status``, computed in SQL on either engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from smartplex import catch_up, schedule_state, webhook_rollups
from smartplex.column_types import utcnow
from smartplex.latency import STAGES
from smartplex.schema import WEBHOOK_STATUSES, sync_schedule, webhook_log
from smartplex.settings import get_settings
from smartplex.webhook_rollups import ALL_SOURCES, SENDER, Figures

WAITING = ("pending", "dispatched")


def webhook_status(
    connection: Connection, window: timedelta, now: datetime | None = None, instances: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Per source (each instance of a service: ``sonarr``, ``sonarr/4k``) over the window: rows by status,
    the newest, webhook -> processed p50/p95; per stage the same percentiles; the backlog, whatever its
    age. From the hourly and daily rollups (``smartplex.webhook_rollups``): exact counts, percentiles
    within one histogram bucket. ``instances``: those to list even without rows (default: the configured)."""
    now = now or utcnow()
    if instances is None:
        instances = tuple(i.id for i in get_settings().service_instances)
    since = now - window
    figures = webhook_rollups.window(connection, since, now)
    if webhook_rollups.stale_before(connection, now):  # more than a reader rebuilds: after an upgrade, say
        webhook_rollups.catch_up_in_background(connection.engine)
    # An instance no longer configured still shows while its rows are in the window.
    names = [*instances, *sorted(n for n in figures if n not in instances and n != ALL_SOURCES)]
    sources = {name: _source(figures.get(name, Figures())) for name in names}
    _backlog(connection, now, sources)
    totals = {key: sum(s[key] for s in sources.values()) for key in ("received", *WEBHOOK_STATUSES, "backlog")}
    overall = Figures()
    for each in figures.values():
        overall.add(each)
    return {
        "window_hours": window.total_seconds() / 3600,
        "since": since,
        "now": now,
        "totals": totals,
        "sources": sources,
        "stages": stages(overall),
        "schedules": schedules(connection),
        "catch_up": catch_up_status(connection, now),
    }


def catch_up_status(connection: Connection, now: datetime) -> dict[str, dict[str, Any]]:
    """Per instance: the changes its catch-up synced that no webhook announced (24 h, 7 days), its
    settings and watermark, and whether its sender says our webhook is disabled."""
    counts = catch_up.unannounced_counts(connection, now)
    return {
        row["library"]: {
            "unannounced_24h": counts.get(row["library"], {}).get("24h", 0),
            "unannounced_7d": counts.get(row["library"], {}).get("7d", 0),
            "enabled": row["enabled"],
            "interval_minutes": row["interval_minutes"],
            "watermark": row["watermark"],
            "polled_at": row["polled_at"],
            "in_flight": row["run_key"] is not None,
            "last_error": row["last_error"],
            "sender_webhook_disabled": row["health"],
            "sender_webhook_disabled_since": row["health_at"],
        }
        for row in catch_up.rows(connection)
    }


def _source(figures: Figures) -> dict[str, Any]:
    return {
        "received": figures.received,
        **{status: figures.statuses.get(status, 0) for status in WEBHOOK_STATUSES},
        "last_received_at": figures.last[0] if figures.last else None,
        "last_event_type": figures.last[1] if figures.last else None,
        # Received -> processed, over the rows a sync run handled.
        "latency_p50_seconds": figures.quantile(webhook_rollups.WHOLE_PATH, 0.5),
        "latency_p95_seconds": figures.quantile(webhook_rollups.WHOLE_PATH, 0.95),
        "backlog": 0,
        "oldest_pending_age_seconds": None,
    }


def _backlog(connection: Connection, now: datetime, sources: dict[str, dict[str, Any]]) -> None:
    """Rows still waiting, whatever their age, and how long the oldest has waited. One query per
    status, each matching a partial index, so this reads the waiting rows only."""
    oldest: dict[str, datetime] = {}
    # Grouped by an expression rather than the column: on the column, SQLite walks the whole source
    # index to save a sort instead of the partial index of the waiting rows.
    for status in WAITING:
        query = (
            select(SENDER, func.count(), func.min(webhook_log.c.received_at))
            .where(webhook_log.c.status == status)
            .group_by(SENDER)
        )
        for name, count, first in connection.execute(query):
            if name not in sources:
                sources[name] = _source(Figures())
            sources[name]["backlog"] += count
            oldest[name] = min(first, oldest.get(name, first))
    for name, first in oldest.items():
        sources[name]["oldest_pending_age_seconds"] = (now - first).total_seconds()


def stages(figures: Figures) -> dict[str, dict[str, Any]]:
    """Per stage of a webhook's path (``smartplex.latency.STAGES``), over the rows that went through
    it: how many, and the nearest-rank p50 and p95 of its seconds."""
    return {
        stage.name: {
            "from": stage.start,
            "to": stage.end,
            "rows": figures.rows(stage.name),
            "p50_seconds": figures.quantile(stage.name, 0.5),
            "p95_seconds": figures.quantile(stage.name, 0.95),
        }
        for stage in STAGES
    }


def schedules(connection: Connection) -> list[dict[str, Any]]:
    """Every schedule row, each with its instance's id as ``library``."""
    rows = connection.execute(
        select(sync_schedule).order_by(sync_schedule.c.service, sync_schedule.c.instance)
    ).mappings()
    return [{**row, "library": schedule_state.instance_of(row).id} for row in rows]
