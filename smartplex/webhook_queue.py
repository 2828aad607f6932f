"""``webhook_log`` as a work queue, its whole lifecycle in one place: the status a row is stored with,
claiming pending rows for a run, settling them when the run ends, replaying and requeueing, purging.

States: ``pending`` (waiting) -> ``dispatched`` (claimed for the run named by ``run_key``) ->
``processed`` | ``failed`` (the run ended; ``run_id`` says which), or ``missing`` (the run could not
find the item the row names; ``error_message`` says which). ``ignored`` rows make nothing
stale and are finished when stored. A replay sends ``failed`` (or ``processed``) rows back to pending.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, bindparam, delete, func, select, tuple_, update

from smartplex.instances import Instance
from smartplex.routing import routes, stale_libraries
from smartplex.schema import webhook_log
from smartplex.settings import get_settings

#: What a webhook row is about: (source, instance, event_type), as the row's columns say.
RowEvent = tuple[str, str, str]


@dataclass(frozen=True)
class PendingGroup:
    """Pending rows that make one library (one instance's) stale."""

    instance: Instance
    events: tuple[RowEvent, ...]  # the events of rows routed to this library
    count: int
    first_received_at: datetime
    last_received_at: datetime
    attempt: int = 0

    @property
    def run_key(self) -> str:
        """The same pending rows always give the same key, so a repeated request is a no-op."""
        identity = (
            f"{self.instance.id}|{self.count}|{self.first_received_at.isoformat()}|{self.last_received_at.isoformat()}"
        )
        digest = hashlib.sha256(f"{identity}|{self.attempt}".encode()).hexdigest()
        return f"webhooks-{self.instance.slug}-{digest[:16]}"


#: Most pending rows one tick claims. A claim writes every row it takes, so this bounds a tick's work
#: (and a run's coalesced webhooks) at any backlog; the rest are claimed by the next ticks.
CLAIM_LIMIT = 10_000


def _routing() -> dict[RowEvent, Instance]:
    """Each row event that makes a library stale, and that library, over the configured instances."""
    return {
        (sender.kind.name, sender.name, event): library
        for sender, event, library in routes(get_settings().service_instances)
    }


def _row_event() -> ColumnElement[Any]:
    return tuple_(webhook_log.c.source, webhook_log.c.instance, webhook_log.c.event_type)


def _pending(libraries: Collection[Instance]) -> ColumnElement[bool]:
    """Pending rows that make one of ``libraries`` stale."""
    events = sorted(event for event, library in _routing().items() if library in libraries)
    return and_(webhook_log.c.status == "pending", _row_event().in_(events))


def pending_groups(
    connection: Connection, *, busy: Collection[Instance] = (), limit: int | None = CLAIM_LIMIT
) -> list[PendingGroup]:
    """Pending rows grouped by the library they make stale, for the libraries not ``busy`` (a run in
    flight): the ``limit`` oldest of those rows, and any received at the same instant as the last of them.

    Bounded by a watermark, the ``limit``-th oldest ``received_at``: found by walking the pending index,
    so neither query reads more than about ``limit`` rows, whatever the backlog. The same pending rows
    give the same watermark, hence the same groups and run keys.
    """
    free = [library for library in get_settings().service_instances if library not in busy]
    if not free:
        return []
    pending = _pending(free)
    if limit is not None:
        edge = connection.execute(
            select(webhook_log.c.received_at)
            .where(pending)
            .order_by(webhook_log.c.received_at)
            .offset(limit - 1)
            .limit(1)
        ).scalar()
        if edge is not None:
            pending = and_(pending, webhook_log.c.received_at <= edge)
    columns = (webhook_log.c.source, webhook_log.c.instance, webhook_log.c.event_type)
    query = (
        select(
            *columns,
            func.count(),
            func.min(webhook_log.c.received_at),
            func.max(webhook_log.c.received_at),
            func.max(webhook_log.c.attempt),
        )
        .where(pending)
        .group_by(*columns)
    )
    routing = _routing()
    by_library: dict[Instance, list[tuple[RowEvent, int, datetime, datetime, int]]] = defaultdict(list)
    for source, instance, event_type, count, first, last, attempt in connection.execute(query):
        event = (source, instance, event_type)
        by_library[routing[event]].append((event, count, first, last, attempt))
    return [
        PendingGroup(
            instance=library,
            events=tuple(sorted(r[0] for r in rows)),
            count=sum(r[1] for r in rows),
            first_received_at=min(r[2] for r in rows),
            last_received_at=max(r[3] for r in rows),
            attempt=max(r[4] for r in rows),
        )
        for library, rows in sorted(by_library.items(), key=lambda item: item[0].id)
    ]


def waiting(connection: Connection, libraries: Collection[Instance], limit: int = CLAIM_LIMIT) -> int:
    """Pending rows that make one of ``libraries`` stale, counted up to ``limit``."""
    if not libraries:
        return 0
    rows = select(webhook_log.c.id).where(_pending(libraries)).limit(limit).subquery()
    return connection.execute(select(func.count()).select_from(rows)).scalar_one()


def arrived(connection: Connection, libraries: Collection[Instance], since: datetime) -> bool:
    """Whether a pending row received since ``since`` makes one of ``libraries`` stale."""
    if not libraries:
        return False
    query = select(webhook_log.c.id).where(and_(_pending(libraries), webhook_log.c.received_at >= since)).limit(1)
    return connection.execute(query).first() is not None


def dispatched_keys(connection: Connection) -> set[str]:
    """The run keys of rows handed to a run and not settled yet."""
    query = select(webhook_log.c.run_key).where(webhook_log.c.status == "dispatched").distinct()
    return set(connection.execute(query).scalars())


def claim(connection: Connection, group: PendingGroup, now: datetime) -> int:
    """Mark the group's rows dispatched under its run key; return how many.

    A row of the group's events committed since the group was read joins the claim when it was received
    no later than the group's last row (the run reads the service after it); later rows wait.
    """
    return connection.execute(
        update(webhook_log)
        .where(
            and_(
                webhook_log.c.status == "pending",
                _row_event().in_(group.events),
                webhook_log.c.received_at <= group.last_received_at,
            )
        )
        .values(status="dispatched", run_key=group.run_key, dispatched_at=now)
    ).rowcount


@dataclass(frozen=True)
class Dispatched:
    """Rows handed to one run that has not been settled yet."""

    run_key: str
    instance: Instance
    count: int
    first_received_at: datetime


def dispatched_library(connection: Connection, run_key: str) -> Instance | None:
    """The library the rows handed to ``run_key`` make stale (one row says: they all do)."""
    query = (
        select(webhook_log.c.source, webhook_log.c.instance, webhook_log.c.event_type)
        .where(and_(webhook_log.c.status == "dispatched", webhook_log.c.run_key == run_key))
        .limit(1)
    )
    row = connection.execute(query).first()
    if row is None:
        return None
    return stale_libraries(Instance.of(row.source, row.instance), row.event_type)[0]


def dispatched_batch(connection: Connection, run_key: str) -> Dispatched | None:
    """The rows handed to ``run_key`` and not settled yet, if any."""
    query = select(func.count(), func.min(webhook_log.c.received_at)).where(
        and_(webhook_log.c.status == "dispatched", webhook_log.c.run_key == run_key)
    )
    count, first = connection.execute(query).one()
    library = dispatched_library(connection, run_key) if count else None
    return Dispatched(run_key, library, count, first) if library is not None else None


@dataclass(frozen=True)
class RunStages:
    """When the run that settles a row was created and started, and its sync step started and ended."""

    run_created_at: datetime | None = None
    run_started_at: datetime | None = None
    sync_started_at: datetime | None = None
    sync_finished_at: datetime | None = None


def settle(
    connection: Connection, run_key: str, run_id: str, error: str | None, now: datetime, stages: RunStages | None = None
) -> int:
    """Record a run's outcome on its rows; settling twice changes nothing.

    A success also overrides an earlier failure under the same run key: Dagster's automatic retry
    of a failed run keeps the key, and its success is the outcome that counts. ``stages`` go on
    every row the run handled, the ones it finished as ``missing`` included (their status stays).
    """
    settled_from = ("dispatched",) if error else ("dispatched", "failed")
    times = asdict(stages) if stages is not None else {}
    settled = connection.execute(
        update(webhook_log)
        .where(and_(webhook_log.c.status.in_(settled_from), webhook_log.c.run_key == run_key))
        .values(
            status="failed" if error else "processed",
            processed=True,
            processed_at=now,
            run_id=run_id,
            error_message=error,
            **times,
        )
    ).rowcount
    if times:
        connection.execute(
            update(webhook_log)
            .where(and_(webhook_log.c.status == "missing", webhook_log.c.run_key == run_key))
            .values(**times)
        )
    return settled


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


#: Rows a replay may send back to pending: handling finished and a run was involved.
REPLAYABLE = ("failed", "processed", "missing")


def initial_status(stale: bool, now: datetime) -> dict[str, object]:
    """A new row's lifecycle columns: ``pending`` if its event makes a library stale; otherwise
    ``ignored``, finished the moment it is stored."""
    return {"status": "pending" if stale else "ignored", "processed": not stale, "processed_at": None if stale else now}


def replay(
    connection: Connection,
    *,
    ids: Sequence[uuid.UUID] | None = None,
    source: str | None = None,
    status: str = "failed",
    since: datetime | None = None,
) -> int:
    """Send finished rows back to pending: the rows ``ids`` names (replayable ones only), or every row
    with ``status`` (from ``source``: a kind, ``sonarr``, or one instance, ``sonarr/4k``; received
    since ``since``). Returns how many changed.

    ``attempt`` goes up, which gives the rows a new run key: Dagster never starts a run key twice.
    """
    if ids is not None:
        condition = and_(webhook_log.c.id.in_(ids), webhook_log.c.status.in_(REPLAYABLE))
    else:
        parts = [webhook_log.c.status == status]
        if source is not None:
            kind, _, instance = source.partition("/")
            parts.append(webhook_log.c.source == kind)
            if instance:
                parts.append(webhook_log.c.instance == instance)
        if since is not None:
            parts.append(webhook_log.c.received_at >= since)
        condition = and_(*parts)
    return connection.execute(
        update(webhook_log)
        .where(condition)
        .values(
            status="pending",
            processed=False,
            processed_at=None,
            error_message=None,
            dispatched_at=None,
            run_key=None,
            run_id=None,
            attempt=webhook_log.c.attempt + 1,
        )
    ).rowcount


def requeue(connection: Connection, run_key: str) -> int:
    """Send the rows still dispatched under ``run_key`` back to pending (its run will never finish:
    the stack stopped or crashed under it); return how many.

    ``attempt`` is incremented, as a replay does: the same rows would otherwise make the same run
    key again, and Dagster never starts a run key twice.
    """
    return connection.execute(
        update(webhook_log)
        .where(and_(webhook_log.c.status == "dispatched", webhook_log.c.run_key == run_key))
        .values(status="pending", dispatched_at=None, run_key=None, run_id=None, attempt=webhook_log.c.attempt + 1)
    ).rowcount


def purge(
    engine: Engine, now: datetime, *, ignored_days: int, processed_days: int, batch: int = 5000
) -> dict[str, int]:
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


__all__ = [
    "CLAIM_LIMIT",
    "REPLAYABLE",
    "Dispatched",
    "PendingGroup",
    "RunStages",
    "arrived",
    "claim",
    "dispatched_batch",
    "dispatched_keys",
    "dispatched_library",
    "initial_status",
    "mark_missing",
    "pending_groups",
    "purge",
    "replay",
    "requeue",
    "settle",
    "waiting",
]
