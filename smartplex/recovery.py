"""Giving back the work of a run that will never finish: its webhook rows, or its full refresh.

When the stack stops, or starts again after a crash, the runs it finds without a process are ended
as canceled. What they were asked to do was not done, and is not a failure to replay by hand: their
``dispatched`` rows go back to ``pending`` and their schedule asks for the refresh again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, func, literal, update

from smartplex.schema import sync_schedule, webhook_log


def requeue_webhooks(connection: Connection, run_key: str) -> int:
    """Send the rows still dispatched under ``run_key`` back to pending; return how many.

    ``attempt`` is incremented, as a replay does: the same rows would otherwise make the same run
    key again, and Dagster never starts a run key twice.
    """
    return connection.execute(
        update(webhook_log)
        .where(and_(webhook_log.c.status == "dispatched", webhook_log.c.run_key == run_key))
        .values(
            status="pending",
            dispatched_at=None,
            run_key=None,
            run_id=None,
            attempt=webhook_log.c.attempt + 1,
        )
    ).rowcount


def request_refresh_again(connection: Connection, run_key: str, now: datetime) -> int:
    """Ask again for the full refresh named by ``run_key``, at the schedule's next tick; return 1 if it was in flight.

    A "sync now" that was pending keeps its time; otherwise the request is dated ``now``.
    """
    requested = sync_schedule.c.sync_requested_at
    return connection.execute(
        update(sync_schedule)
        .where(sync_schedule.c.run_key == run_key)
        .values(run_key=None, sync_requested_at=func.coalesce(requested, literal(now, requested.type)))
    ).rowcount


__all__ = ["request_refresh_again", "requeue_webhooks"]
