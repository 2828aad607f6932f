"""The queries behind the admin page and its JSON twins, one function each, so a page and its twin
show the same rows in the same order for the same filters.

- the schedules (``/admin/schedules``, ``GET /api/admin/schedules``): :func:`list_schedules`, each with
  its instance's catch-up beside it (the rows ``GET /api/admin/catch-up`` lists too);
- the webhook rows (``/admin/webhooks``, ``GET /api/admin/webhooks``): :class:`WebhookFilter` and
  :func:`list_webhooks`, with :func:`count_webhooks`, :func:`event_types` and :func:`webhook_row` for the
  page's total, its event filter and a row's own page;
- webhooks over time (the overview's charts, ``charts.py``): :func:`received_over_time`;
- the last webhook run of each instance (the overview's cards): :func:`last_webhook_runs`.

The overview's figures (its catch-up counts and sender warnings included) and ``GET /api/webhooks/status``
share ``webhook_api.status.webhook_status``;
a service check and its twin share ``smartplex.clients.check.check_service``. Changes (a schedule,
"sync now", a replay) go through ``smartplex.schedule_state`` and ``smartplex.webhook_queue`` from the
page and the API alike. This module imports nothing from the routes, so they can import it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select

from smartplex import catch_up, schedule_state, webhook_rollups
from smartplex.column_types import utcnow
from smartplex.instances import Instance
from smartplex.kinds import KIND_NAMES
from smartplex.latency import HANDLED_BY_RUN
from smartplex.schema import webhook_log
from webhook_api.status import schedules

# --- schedules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """One instance's full-refresh schedule: its ``sync_schedule`` row (with ``library``, the instance's
    id) and what it plans now; and its catch-up, the ``catch_up_state`` row (``None`` for an instance no
    longer configured: nothing polls it)."""

    instance: Instance
    row: dict[str, Any]
    plan: str
    catch_up: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {**self.row, "plan": self.plan, "catch_up": self.catch_up}


def list_schedules(
    connection: Connection, instances: Sequence[Instance], now: datetime | None = None
) -> list[Schedule]:
    """Every schedule: those of ``instances`` in their order (the overview's, not the alphabet's), each
    row made first if missing (its catch-up's too), then those of instances no longer configured. Needs a
    transaction."""
    now = now or utcnow()
    for instance in instances:
        schedule_state.ensure(connection, instance)
    catch_up.ensure(connection, instances)
    polled = {row["library"]: row for row in catch_up.rows(connection)}
    order = {instance: i for i, instance in enumerate(instances)}
    found: list[Schedule] = []
    for row in schedules(connection):
        instance = schedule_state.instance_of(row)
        plan = schedule_state.decide(row, now).reason
        found.append(Schedule(instance, row, plan, polled.get(instance.id) if instance in order else None))
    found.sort(key=lambda schedule: order.get(schedule.instance, len(order)))
    return found


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
            # A time without a zone is UTC, as the page's form and the API's query say.
            since = self.since if self.since.tzinfo else self.since.replace(tzinfo=UTC)
            parts.append(webhook_log.c.received_at >= since)
        return parts


#: The highest page number the list and its twin take: an offset either database can hold.
MAX_PAGE = 1_000_000
#: The listing's columns: everything but the payload, which only a row's own page shows.
LIST_COLUMNS = [c for c in webhook_log.c if c.name != "payload"]


def list_webhooks(
    connection: Connection,
    where: WebhookFilter = WebhookFilter(),
    *,
    page: int = 1,
    page_size: int = 100,
    with_payload: bool = True,
) -> list[dict[str, Any]]:
    """Page ``page`` (from 1) of the webhook rows ``where`` selects, ``page_size`` a page, newest first
    (rows received at the same instant by id, so pages never overlap)."""
    columns = list(webhook_log.c) if with_payload else LIST_COLUMNS
    query = (
        select(*columns)
        .order_by(webhook_log.c.received_at.desc(), webhook_log.c.id)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
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
    """The event types stored (of one source, as :class:`WebhookFilter` takes it), for the list's filter."""
    query = select(webhook_log.c.event_type).distinct().order_by(webhook_log.c.event_type).limit(limit)
    for part in WebhookFilter(source=source).where():
        query = query.where(part)
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
    """Per source (each of ``instances``, by id; default: each kind's default instance), webhooks received
    in each of the last ``buckets`` periods of length ``bucket`` (whole hours or whole days, aligned to
    UTC), the current one last, counted by status."""
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


def last_webhook_runs(connection: Connection, instances: Sequence[Instance]) -> dict[Instance, dict[str, Any]]:
    """Per instance, the run that handled its most recently received webhook: run id, outcome, when."""
    found: dict[Instance, dict[str, Any]] = {}
    for sender in instances:
        # One short index walk per instance (newest first) instead of ranking the whole table.
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
            found[sender] = dict(row)
    return found
