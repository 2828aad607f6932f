"""``webhook_log`` as a work queue: claim pending rows for a run, settle them when the run ends.

States: ``pending`` (waiting) -> ``dispatched`` (claimed for the run named by ``run_key``) ->
``processed`` | ``failed`` (the run ended; ``run_id`` says which), or ``missing`` (the run could not
find the item the row names; ``error_message`` says which). ``ignored`` rows make nothing
stale and are finished when stored. A replay sends ``failed`` (or ``processed``) rows back to pending.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, select, tuple_, update

from smartplex.routing import stale_services
from smartplex.schema import webhook_log


@dataclass(frozen=True)
class PendingGroup:
    """Pending rows that make one service's library stale."""

    service: str
    events: tuple[tuple[str, str], ...]  # (source, event_type) pairs routed to this service
    count: int
    first_received_at: datetime
    last_received_at: datetime
    attempt: int = 0

    @property
    def run_key(self) -> str:
        """The same pending rows always give the same key, so a repeated request is a no-op."""
        identity = f"{self.service}|{self.count}|{self.first_received_at.isoformat()}|{self.last_received_at.isoformat()}"
        digest = hashlib.sha256(f"{identity}|{self.attempt}".encode()).hexdigest()
        return f"webhooks-{self.service}-{digest[:16]}"


def pending_groups(connection: Connection) -> list[PendingGroup]:
    """Pending rows grouped by the library they make stale: one indexed aggregate over pending rows."""
    query = (
        select(
            webhook_log.c.source,
            webhook_log.c.event_type,
            func.count(),
            func.min(webhook_log.c.received_at),
            func.max(webhook_log.c.received_at),
            func.max(webhook_log.c.attempt),
        )
        .where(webhook_log.c.status == "pending")
        .group_by(webhook_log.c.source, webhook_log.c.event_type)
    )
    by_service: dict[str, list[tuple[str, str, int, datetime, datetime, int]]] = defaultdict(list)
    for source, event_type, count, first, last, attempt in connection.execute(query):
        for service in stale_services(source, event_type):
            by_service[service].append((source, event_type, count, first, last, attempt))
    return [
        PendingGroup(
            service=service,
            events=tuple(sorted((s, e) for s, e, *_ in rows)),
            count=sum(r[2] for r in rows),
            first_received_at=min(r[3] for r in rows),
            last_received_at=max(r[4] for r in rows),
            attempt=max(r[5] for r in rows),
        )
        for service, rows in sorted(by_service.items())
    ]


def claim(connection: Connection, group: PendingGroup, now: datetime) -> int:
    """Mark the group's rows dispatched under its run key; rows that arrived since wait for the next tick."""
    return connection.execute(
        update(webhook_log)
        .where(
            and_(
                webhook_log.c.status == "pending",
                tuple_(webhook_log.c.source, webhook_log.c.event_type).in_(group.events),
                webhook_log.c.received_at <= group.last_received_at,
            )
        )
        .values(status="dispatched", run_key=group.run_key, dispatched_at=now)
    ).rowcount


@dataclass(frozen=True)
class Dispatched:
    """Rows handed to one run that has not been settled yet."""

    run_key: str
    service: str
    count: int
    first_received_at: datetime


def dispatched(connection: Connection) -> list[Dispatched]:
    query = (
        select(
            webhook_log.c.run_key,
            webhook_log.c.source,
            webhook_log.c.event_type,
            func.count(),
            func.min(webhook_log.c.received_at),
        )
        .where(webhook_log.c.status == "dispatched")
        .group_by(webhook_log.c.run_key, webhook_log.c.source, webhook_log.c.event_type)
    )
    services: dict[str, str] = {}
    counts: dict[str, int] = defaultdict(int)
    oldest: dict[str, datetime] = {}
    for key, source, event_type, count, first in connection.execute(query):
        # Every row of one run key makes the same service stale.
        services[key] = stale_services(source, event_type)[0]
        counts[key] += count
        oldest[key] = min(first, oldest.get(key, first))
    return [Dispatched(key, services[key], counts[key], oldest[key]) for key in sorted(services)]


def settle(connection: Connection, run_key: str, run_id: str, error: str | None, now: datetime) -> int:
    """Record a run's outcome on its rows; settling twice changes nothing.

    A success also overrides an earlier failure under the same run key: Dagster's automatic retry
    of a failed run keeps the key, and its success is the outcome that counts.
    """
    settled_from = ("dispatched",) if error else ("dispatched", "failed")
    return connection.execute(
        update(webhook_log)
        .where(and_(webhook_log.c.status.in_(settled_from), webhook_log.c.run_key == run_key))
        .values(
            status="failed" if error else "processed",
            processed=True,
            processed_at=now,
            run_id=run_id,
            error_message=error,
        )
    ).rowcount


def mark_missing(connection: Connection, notes: dict[uuid.UUID, str], run_id: str, now: datetime) -> int:
    """Finish dispatched rows whose named item the service could not return: status ``missing``,
    with the note saying what was asked for. The run's outcome then leaves them alone."""
    if not notes:
        return 0
    statement = (
        update(webhook_log)
        .where(and_(webhook_log.c.id == bindparam("row_id"), webhook_log.c.status == "dispatched"))
        .values(status="missing", processed=True, processed_at=now, run_id=run_id, error_message=bindparam("note"))
    )
    return connection.execute(statement, [{"row_id": k, "note": v} for k, v in notes.items()]).rowcount


def purge(engine: Engine, now: datetime, *, ignored_days: int, processed_days: int, batch: int = 5000) -> dict[str, int]:
    """Delete old ignored, processed and missing rows in batches; pending, dispatched and failed rows are kept."""
    # Processed rows age from when they were processed (a replay restarts the clock).
    rules = {
        "ignored": webhook_log.c.received_at < now - timedelta(days=ignored_days),
        "processed": webhook_log.c.processed_at < now - timedelta(days=processed_days),
        "missing": webhook_log.c.processed_at < now - timedelta(days=processed_days),
    }
    removed = {}
    for status, too_old in rules.items():
        removed[status] = 0
        while True:
            with engine.begin() as connection:
                ids = select(webhook_log.c.id).where(and_(webhook_log.c.status == status, too_old)).limit(batch)
                deleted = connection.execute(delete(webhook_log).where(webhook_log.c.id.in_(ids))).rowcount
            removed[status] += deleted
            if deleted < batch:
                break
    return removed


__all__ = ["Dispatched", "PendingGroup", "claim", "dispatched", "mark_missing", "pending_groups", "purge", "settle"]
