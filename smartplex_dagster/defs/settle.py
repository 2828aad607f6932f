"""Settling: run outcomes written back to ``webhook_log`` and ``sync_schedule``, by whichever pass sees
them first.

A webhook run settles its own rows as its sync step succeeds (:func:`settle_webhooks`, the job's
hook). The run status sensors (:mod:`.status_sensors`) write outcomes as runs end. They can miss runs (their first tick starts at
"now", an exception still advances their cursor, and they take a few runs per tick), so the webhook
sensor's reconciling pass settles every dispatched row and schedule whose run has ended, and asks
again for runs that were never created (:func:`reconcile_run`). Settling is conditional, so doing it
twice changes nothing.

A failed run that Dagster retries is not an outcome: its retry's is (:func:`deciding_run`).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import dagster as dg
from sqlalchemy import Engine

from smartplex import schedule_state, webhook_queue
from smartplex.column_types import utcnow
from smartplex.dagster_names import (
    DATABASE_RESOURCE,
    RETRY_DAEMON_SEEN_TAG,
    RUN_KEY_TAG,
    SCHEDULE_TRIGGER,
    TRIGGER_TAG,
    WEBHOOK_TRIGGER,
    WILL_RETRY_TAG,
)
from smartplex_dagster.defs.resources import DatabaseResource
from smartplex_dagster.runtime.dagster_internals import (
    AUTO_RETRY_RUN_ID_TAG,
    PARENT_RUN_ID_TAG,
    RETRY_CURSOR,
    RETRY_DAEMON,
)
from smartplex_dagster.runtime.orphans import fail_if_orphaned

FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
#: The daemon creates a failed run's retry within seconds of seeing the failure; past this, the
#: failure is recorded. Counted from the failure, or from the retry daemon's return if it was down.
RETRY_GRACE = timedelta(minutes=10)
#: Failures the retry daemon may have yet to handle that are looked through, at most.
_BACKLOG = 1000
_EPOCH = datetime.fromtimestamp(0, UTC)
_STEP_EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}


def find_run(dagster_instance: dg.DagsterInstance, run_key: str) -> dg.DagsterRun | None:
    runs = dagster_instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
    return runs[0] if runs else None


def failure_message(dagster_instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """Why a run did not succeed, in a line or two; ``None`` for a success."""
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return None
    if run.status == dg.DagsterRunStatus.CANCELED:
        return f"run {run.run_id} was canceled"
    records = dagster_instance.get_records_for_run(
        run.run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        if error is not None:
            # Dagster wraps the service's error (retries, step failure); the innermost cause says why.
            while error.cause is not None:
                error = error.cause
            return f"{error.cls_name}: {error.message.strip()}"[:2000]
    messages = [r.event_log_entry.message for r in records if r.event_log_entry.message]
    return (messages[-1] if messages else f"run {run.run_id} failed")[:2000]


def ended_at(dagster_instance: dg.DagsterInstance, run: dg.DagsterRun) -> datetime:
    """When the run ended; without a recorded end, when its record last changed (never "now")."""
    record = dagster_instance.get_run_record_by_id(run.run_id)
    if record is None:
        return _EPOCH
    if record.end_time:
        return datetime.fromtimestamp(record.end_time, UTC)
    stamp = record.update_timestamp or record.create_timestamp
    return stamp.astimezone(UTC) if stamp is not None else _EPOCH


def retry_of(dagster_instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRun | None:
    """The run Dagster created to retry ``run``, if any."""
    retry_id = run.tags.get(AUTO_RETRY_RUN_ID_TAG)
    retry = dagster_instance.get_run_by_id(retry_id) if retry_id else None
    if retry is None:  # the daemon tags the failed run only after creating the retry
        runs = dagster_instance.get_runs(filters=dg.RunsFilter(tags={PARENT_RUN_ID_TAG: run.run_id}), limit=1)
        retry = runs[0] if runs else None
    return retry


def _will_be_retried(dagster_instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether Dagster may retry the failed ``run`` (``will_retry``, or not decided yet)."""
    will_retry = run.tags.get(WILL_RETRY_TAG)
    if will_retry is None:  # tagged just *after* the failure is stored, by the run or the retry daemon
        return dagster_instance.run_retries_enabled
    return will_retry == "true"


def _retry_cursor(dagster_instance: dg.DagsterInstance) -> int | None:
    raw = dagster_instance.daemon_cursor_storage.get_cursor_values({RETRY_CURSOR}).get(RETRY_CURSOR)
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _handled(dagster_instance: dg.DagsterInstance, run: dg.DagsterRun, cursor: int) -> bool:
    """Whether the retry daemon's ``cursor`` is past ``run``'s failure event.

    Compared by looking for the event past the cursor: run-scoped storage ids (SQLite keeps one
    database per run) are not the cursor's.
    """
    if not dagster_instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE, limit=1).records:
        return False  # no failure event to go by
    pending = dagster_instance.event_log_storage.get_logs_for_all_runs_by_log_id(
        after_cursor=cursor, dagster_event_type={dg.DagsterEventType.RUN_FAILURE}, limit=_BACKLOG
    )
    return len(pending) < _BACKLOG and all(entry.run_id != run.run_id for entry in pending.values())


def _retry_may_come(
    dagster_instance: dg.DagsterInstance, run: dg.DagsterRun, cursor: int | None, now: datetime
) -> bool:
    """For a failed run Dagster may retry and has no retry yet: whether to keep waiting for one.

    ``cursor`` is the retry daemon's cursor, read before looking for the retry.
    """
    if cursor is not None and _handled(dagster_instance, run, cursor):
        return False  # the daemon has handled this failure (it creates retries before moving its cursor)
    end = ended_at(dagster_instance, run)
    heartbeat = dagster_instance.get_daemon_heartbeats().get(RETRY_DAEMON)
    if heartbeat is None:  # no retry daemon has ever run here: wait a bounded time from the failure
        return now - end < RETRY_GRACE
    if heartbeat.timestamp < end.timestamp():
        return True  # down since the failure: it handles the failure once it is back
    seen = run.tags.get(RETRY_DAEMON_SEEN_TAG)
    try:
        since = float(seen) if seen else None
    except ValueError:
        since = None
    if since is None:  # remember the daemon's first sign of life after the failure
        since = heartbeat.timestamp
        dagster_instance.add_run_tags(run.run_id, {RETRY_DAEMON_SEEN_TAG: repr(since)})
    return now - max(end, datetime.fromtimestamp(since, UTC)) < RETRY_GRACE


def deciding_run(
    dagster_instance: dg.DagsterInstance, run: dg.DagsterRun, now: datetime | None = None
) -> tuple[dg.DagsterRun, bool]:
    """The run whose outcome is ``run``'s (itself, or its retry, its retry's retry...), and whether it is
    still undecided: running, or failed with a retry to come.

    A run whose worker is gone is failed first (:func:`fail_if_orphaned`), so that Dagster retries it.
    """
    now = now or utcnow()
    seen = {run.run_id}
    while True:
        run = fail_if_orphaned(dagster_instance, run)
        if run.status not in FINISHED:
            return run, True
        if run.status != dg.DagsterRunStatus.FAILURE or not _will_be_retried(dagster_instance, run):
            return run, False
        cursor = _retry_cursor(dagster_instance)  # before looking for the retry: see _retry_may_come
        retry = retry_of(dagster_instance, run)
        if retry is None or retry.run_id in seen:
            return run, _retry_may_come(dagster_instance, run, cursor, now)
        seen.add(retry.run_id)
        run = retry


def run_stages(dagster_instance: dg.DagsterInstance, run: dg.DagsterRun) -> webhook_queue.RunStages:
    """When ``run`` was created and started (its run record), and its sync step started and ended (the
    first step start, the last step success or failure: a step retried in the run starts once)."""
    record = dagster_instance.get_run_record_by_id(run.run_id)
    if record is None:
        return webhook_queue.RunStages()
    sync_started = sync_finished = None
    for event in dagster_instance.get_records_for_run(run.run_id, of_type=_STEP_EVENTS).records:
        entry = event.event_log_entry
        kind = entry.dagster_event.event_type if entry.dagster_event else None
        if kind == dg.DagsterEventType.STEP_START:
            sync_started = sync_started or _moment(entry.timestamp)
        elif kind is not None:
            sync_finished = _moment(entry.timestamp)
    return webhook_queue.RunStages(
        run_created_at=record.create_timestamp.astimezone(UTC),
        run_started_at=_moment(record.start_time) if record.start_time else None,
        sync_started_at=sync_started,
        sync_finished_at=sync_finished,
    )


def _moment(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _settle(
    dagster_instance: dg.DagsterInstance, engine: Engine, run_key: str, trigger: str, run: dg.DagsterRun
) -> int:
    error = failure_message(dagster_instance, run)
    if trigger == WEBHOOK_TRIGGER:
        stages = run_stages(dagster_instance, run)
        with engine.begin() as connection:
            return webhook_queue.settle(connection, run_key, run.run_id, error, utcnow(), stages)
    with engine.begin() as connection:
        return schedule_state.settle(connection, run_key, error, ended_at(dagster_instance, run))


def settle_run(dagster_instance: dg.DagsterInstance, engine: Engine, run: dg.DagsterRun) -> int:
    """Settle whatever ``run`` was asked for (webhook rows or a scheduled refresh); return rows changed.

    A failure Dagster retries is settled by its retry's outcome, once the retry has ended.
    """
    run_key = run.tags.get(RUN_KEY_TAG)
    trigger = run.tags.get(TRIGGER_TAG)
    if run_key is None or trigger not in (WEBHOOK_TRIGGER, SCHEDULE_TRIGGER) or run.status not in FINISHED:
        return 0
    deciding, undecided = deciding_run(dagster_instance, run)
    if undecided:
        return 0
    return _settle(dagster_instance, engine, run_key, trigger, deciding)


def settle_succeeded_sync(dagster_instance: dg.DagsterInstance, engine: Engine, run: dg.DagsterRun) -> int:
    """Settle a webhook run's rows as processed once its sync step has succeeded (the run is still
    ending); return rows changed. The run's end settles them again, which changes nothing."""
    run_key = run.tags.get(RUN_KEY_TAG)
    if run_key is None or run.tags.get(TRIGGER_TAG) != WEBHOOK_TRIGGER:
        return 0
    stages = run_stages(dagster_instance, run)
    with engine.begin() as connection:
        return webhook_queue.settle(connection, run_key, run.run_id, None, utcnow(), stages)


@dataclass(frozen=True)
class Reconciled:
    """Where a requested run stands: ``missing`` (never created), ``waiting`` (running, or failed with a
    retry to come) or ``settled`` (its outcome is recorded). ``run`` is the run that decides it."""

    state: Literal["missing", "waiting", "settled"]
    run: dg.DagsterRun | None = None


def reconcile_run(
    dagster_instance: dg.DagsterInstance, engine: Engine, run_key: str, now: datetime | None = None
) -> Reconciled:
    """Find the run asked for under ``run_key`` and settle its outcome if it has one."""
    run = find_run(dagster_instance, run_key)
    if run is None:
        return Reconciled("missing")
    deciding, undecided = deciding_run(dagster_instance, run, now)
    if undecided:
        return Reconciled("waiting", deciding)
    trigger = run.tags.get(TRIGGER_TAG)
    if trigger in (WEBHOOK_TRIGGER, SCHEDULE_TRIGGER):
        _settle(dagster_instance, engine, run_key, trigger, deciding)
    return Reconciled("settled", deciding)


@dg.success_hook(name="settle_webhooks", required_resource_keys={DATABASE_RESOURCE})
def settle_webhooks(context: dg.HookContext) -> None:
    """A webhook run's sync step succeeded: its rows are processed now, rather than when a sensor next
    sees the run end (a sensor's next tick). Failures are left to the sensors: Dagster
    may still retry the run."""
    database: DatabaseResource = context.resources.database
    run = context.instance.get_run_by_id(context.run_id)
    if run is not None:
        settle_succeeded_sync(context.instance, database.engine, run)
