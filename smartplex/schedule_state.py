"""``sync_schedule`` as the schedules read and write it: is a full refresh due, and its outcome.

A row belongs to one instance; functions take the :class:`~smartplex.instances.Instance`, and rows
carry its id as ``library`` (``sonarr``, ``sonarr/4k``). The default instances' rows come with the migrations; an extra
instance's row is made, from its kind's seed, the first time it is needed (:func:`ensure`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, RowMapping, and_, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from smartplex.instances import Instance
from smartplex.schema import sync_schedule


def _of(instance: Instance) -> ColumnElement[bool]:
    """The row of one instance."""
    return and_(sync_schedule.c.service == instance.kind.name, sync_schedule.c.instance == instance.name)


def instance_of(row: RowMapping | dict[str, Any]) -> Instance:
    """The instance a ``sync_schedule`` row belongs to (its ``service`` and ``instance`` columns)."""
    return Instance.of(row["service"], row["instance"])


def _row(row: RowMapping) -> dict[str, Any]:
    return {**row, "library": instance_of(row).id}


def ensure(connection: Connection, instance: Instance) -> None:
    """Make the row of an extra instance if it has none yet, from its kind's seed (the default
    instances' rows are the migrations' to make: without them, the database is not upgraded)."""
    if instance.is_default:
        return
    enabled, interval = instance.kind.schedule_seed
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(
        dialect.insert(sync_schedule)
        .values(service=instance.kind.name, instance=instance.name, enabled=enabled, interval_hours=interval)
        .on_conflict_do_nothing()
    )


def next_run_at(
    enabled: bool, interval_hours: int, last_run_at: datetime | None, now: datetime, *, running: bool = False
) -> datetime | None:
    """Never-run schedules are due now; disabled ones have no next run.

    While a full refresh runs (``running``), the next one is an interval away: the refresh counts as
    the latest run, and its end sets the time for good (:func:`settle`). A change made meanwhile
    never makes the schedule due at once.
    """
    if not enabled:
        return None
    if running:
        return now + timedelta(hours=interval_hours)
    if last_run_at is None:
        return now
    return last_run_at + timedelta(hours=interval_hours)


@dataclass(frozen=True)
class Decision:
    due: bool
    reason: str


def decide(row: dict[str, Any], now: datetime) -> Decision:
    """Whether the row asks for a full refresh now, and why (or why not)."""
    if row["sync_requested_at"] is not None:
        return Decision(True, f"sync requested at {row['sync_requested_at']:%Y-%m-%d %H:%M} UTC")
    if not row["enabled"]:
        return Decision(False, "disabled in sync_schedule: no full refresh is planned (a sync now still runs one)")
    if row["next_run_at"] is None and row["last_run_at"] is None:
        return Decision(True, "never run")
    due_at = row["next_run_at"] or next_run_at(True, row["interval_hours"], row["last_run_at"], now)
    if due_at is None or due_at <= now:
        return Decision(True, f"due since {due_at:%Y-%m-%d %H:%M} UTC")
    return Decision(False, f"not due until {due_at:%Y-%m-%d %H:%M} UTC (every {row['interval_hours']} h)")


def read(connection: Connection, instance: Instance) -> dict[str, Any] | None:
    row = connection.execute(select(sync_schedule).where(_of(instance))).mappings().first()
    return _row(row) if row else None


def mark_requested(
    connection: Connection, instance: Instance, run_key: str, now: datetime, interval_hours: int, enabled: bool = True
) -> bool:
    """A full refresh is asked for under ``run_key``, unless one is already in flight; whether this call
    took it. The schedule and the webhook sensor ("sync now") may both see a request: one takes it.
    A disabled schedule ("sync now") plans no next one."""
    return bool(
        connection.execute(
            update(sync_schedule)
            .where(and_(_of(instance), sync_schedule.c.run_key.is_(None)))
            .values(
                run_key=run_key,
                sync_requested_at=None,
                next_run_at=next_run_at(enabled, interval_hours, None, now, running=True),
            )
        ).rowcount
    )


def requested(connection: Connection) -> list[dict[str, Any]]:
    """Rows with a "sync now" waiting and no full refresh in flight."""
    query = select(sync_schedule).where(
        and_(sync_schedule.c.sync_requested_at.is_not(None), sync_schedule.c.run_key.is_(None))
    )
    return [_row(row) for row in connection.execute(query).mappings()]


def settle(connection: Connection, run_key: str, error: str | None, ended_at: datetime) -> int:
    """Record the outcome of the full refresh named by ``run_key``, and plan the next one an interval after
    its end (none while disabled); settling twice changes nothing."""
    while True:
        row = connection.execute(
            select(sync_schedule.c.enabled, sync_schedule.c.interval_hours).where(sync_schedule.c.run_key == run_key)
        ).first()
        if row is None:
            return 0
        enabled, interval_hours = row
        changed = connection.execute(
            update(sync_schedule)
            # Only as read: a change of interval or on/off since then is read again.
            .where(
                and_(
                    sync_schedule.c.run_key == run_key,
                    sync_schedule.c.enabled == enabled,
                    sync_schedule.c.interval_hours == interval_hours,
                )
            )
            .values(
                run_key=None,
                last_run_at=ended_at,
                next_run_at=next_run_at(enabled, interval_hours, ended_at, ended_at),
                run_count=sync_schedule.c.run_count + 1,
                last_status="failure" if error else "success",
                last_error=error,
            )
        ).rowcount
        if changed:
            return changed


def in_flight(connection: Connection) -> list[tuple[Instance, str]]:
    """(instance, run_key) of full refreshes whose outcome is not written yet."""
    query = select(sync_schedule.c.service, sync_schedule.c.instance, sync_schedule.c.run_key).where(
        sync_schedule.c.run_key.is_not(None)
    )
    return [(Instance.of(kind, name), key) for kind, name, key in connection.execute(query)]


def request_refresh_again(connection: Connection, run_key: str, now: datetime) -> int:
    """Ask again for the full refresh named by ``run_key``, within seconds (the webhook sensor's next tick); return 1 if it was in flight.

    A "sync now" that was pending keeps its time; otherwise the request is dated ``now``.
    """
    requested = sync_schedule.c.sync_requested_at
    return connection.execute(
        update(sync_schedule)
        .where(sync_schedule.c.run_key == run_key)
        .values(run_key=None, sync_requested_at=func.coalesce(requested, literal(now, requested.type)))
    ).rowcount


def change(
    connection: Connection, instance: Instance, *, enabled: bool | None = None, interval_hours: int | None = None
) -> dict[str, Any] | None:
    """Turn a schedule on or off and/or change its interval; ``None`` when the instance has no row."""
    ensure(connection, instance)
    row = read(connection, instance)
    if row is None:
        return None
    enabled = row["enabled"] if enabled is None else enabled
    interval = row["interval_hours"] if interval_hours is None else interval_hours
    connection.execute(
        update(sync_schedule)
        .where(_of(instance))
        .values(
            enabled=enabled,
            interval_hours=interval,
            # While a refresh runs, its end plans the next one: a change now never makes it due at once.
            next_run_at=next_run_at(
                enabled, interval, row["last_run_at"], datetime.now(UTC), running=row["run_key"] is not None
            ),
        )
    )
    return read(connection, instance)


def request_sync(connection: Connection, instance: Instance) -> dict[str, Any] | None:
    """Ask for a full refresh, started by the webhook sensor's next tick; ``None`` when the instance has no row."""
    ensure(connection, instance)
    if read(connection, instance) is None:
        return None
    connection.execute(update(sync_schedule).where(_of(instance)).values(sync_requested_at=datetime.now(UTC)))
    return read(connection, instance)
