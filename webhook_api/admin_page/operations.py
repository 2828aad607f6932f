"""The queries and changes behind the admin page and its JSON twins, one function each.

``change_schedule``, ``request_sync``, ``replay`` and ``list_webhooks`` hold the statements of the admin
API's handlers (``webhook_api/routes/admin.py``), so the page and the API change the same rows in the
same way; the handlers can call them. Validation stays with the API's models (``ScheduleChange``,
``Replay``), which the page uses too. This module imports nothing from the routes, so they can.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select

from smartplex import webhook_rollups
from smartplex.column_types import utcnow

# --- schedules ----------------------------------------------------------------------------------
from smartplex.instances import Instance
from smartplex.kinds import KIND_NAMES
from smartplex.latency import HANDLED_BY_RUN
from smartplex.schema import webhook_log

# --- schedules ----------------------------------------------------------------------------------


# --- webhook rows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookFilter:
    """What the webhook list is narrowed to; every field optional."""

    source: str | None = None
    status: str | None = None
    event_type: str | None = None
    since: datetime | None = None

    def where(self) -> list[ColumnElement[bool]]:
        parts: list[ColumnElement[bool]] = []
        if self.source is not None:
            # A kind (``sonarr``: every instance of it), or one instance (``sonarr/4k``, ``sonarr/default``).
            kind, _, instance = self.source.partition("/")
            parts.append(webhook_log.c.source == kind)
            if instance:
                parts.append(webhook_log.c.instance == instance)
        if self.status is not None:
            parts.append(webhook_log.c.status == self.status)
        if self.event_type is not None:
            parts.append(webhook_log.c.event_type == self.event_type)
        if self.since is not None:
            parts.append(webhook_log.c.received_at >= self.since)
        return parts


#: The listing's columns: everything but the payload, which only a row's own page shows.
LIST_COLUMNS = [c for c in webhook_log.c if c.name != "payload"]


def list_webhooks(
    connection: Connection,
    where: WebhookFilter = WebhookFilter(),
    *,
    limit: int = 100,
    offset: int = 0,
    with_payload: bool = True,
) -> list[dict[str, Any]]:
    """Webhook rows, newest first."""
    columns = list(webhook_log.c) if with_payload else LIST_COLUMNS
    query = select(*columns).order_by(webhook_log.c.received_at.desc(), webhook_log.c.id).limit(limit).offset(offset)
    for part in where.where():
        query = query.where(part)
    return [dict(row) for row in connection.execute(query).mappings()]


def count_webhooks(connection: Connection, where: WebhookFilter = WebhookFilter()) -> int:
    query = select(func.count()).select_from(webhook_log)
    for part in where.where():
        query = query.where(part)
    return int(connection.execute(query).scalar_one())


def webhook_row(connection: Connection, webhook_id: uuid.UUID) -> dict[str, Any] | None:
    row = connection.execute(select(webhook_log).where(webhook_log.c.id == webhook_id)).mappings().first()
    return dict(row) if row else None


def event_types(connection: Connection, source: str | None = None, limit: int = 200) -> list[str]:
    """The event types stored (of one source), for the list's filter."""
    query = select(webhook_log.c.event_type).distinct().order_by(webhook_log.c.event_type).limit(limit)
    if source is not None:
        query = query.where(webhook_log.c.source == source)
    return [event for (event,) in connection.execute(query)]


# --- webhooks over time -------------------------------------------------------------------------


@dataclass
class Bucket:
    start: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def received_over_time(
    connection: Connection,
    *,
    bucket: timedelta,
    buckets: int,
    now: datetime | None = None,
    instances: Sequence[str] | None = None,
) -> dict[str, list[Bucket]]:
    """Per source (each of ``instances``, by id; default: the five default instances), webhooks received in each of the last ``buckets`` periods of length ``bucket`` (whole
    hours or whole days, aligned to UTC), the current one last, counted by status."""
    now = now or utcnow()
    size = int(bucket.total_seconds())
    if size not in (webhook_rollups.HOUR, webhook_rollups.DAY):
        raise ValueError(f"periods are whole hours or whole days, not {bucket}")
    first = int(now.timestamp()) // size - buckets + 1
    series = {
        source: [Bucket(datetime.fromtimestamp((first + i) * size, UTC)) for i in range(buckets)]
        for source in (instances if instances is not None else KIND_NAMES)
    }
    since = datetime.fromtimestamp(first * size, UTC)
    for piece in webhook_rollups.pieces(connection, since, now, largest=size):
        position = piece.start // size - first
        if piece.source in series and 0 <= position < buckets:  # a row from a clock ahead of ours is left out
            counts = series[piece.source][position].counts
            for status, count in piece.statuses.items():
                counts[status] = counts.get(status, 0) + count
    return series


# --- the last sync of each library --------------------------------------------------------------


def last_webhook_runs(connection: Connection, instances: Sequence[str] = KIND_NAMES) -> dict[str, dict[str, Any]]:
    """Per source (each of ``instances``, by id), the run that handled its most recently received webhook:
    run id, outcome, when."""
    found: dict[str, dict[str, Any]] = {}
    for source in instances:
        sender = Instance.parse(source)
        # One short index walk per source (newest first) instead of ranking the whole table.
        row = (
            connection.execute(
                select(
                    webhook_log.c.run_id,
                    webhook_log.c.status,
                    webhook_log.c.processed_at,
                    webhook_log.c.error_message,
                    webhook_log.c.received_at,
                )
                .where(
                    and_(
                        webhook_log.c.source == sender.kind.name,
                        webhook_log.c.instance == sender.name,
                        webhook_log.c.status.in_(HANDLED_BY_RUN),
                        webhook_log.c.run_id.is_not(None),
                    )
                )
                .order_by(webhook_log.c.received_at.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        if row is not None:
            found[source] = dict(row)
    return found
