"""Writing run outcomes back to ``webhook_log`` and ``sync_schedule``, from whichever pass sees them first.

The run status sensors write outcomes as runs end. They can miss runs (their first tick starts at
"now", an exception still advances their cursor, and they take a few runs per tick), so the webhook
sensor's reconciling pass settles every dispatched row and schedule whose run has ended, and asks
again for runs that were never created. Settling is conditional, so doing it twice changes nothing.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import Engine

from smartplex import queue, schedule_state
from smartplex.types import utcnow

RUN_KEY_TAG = "dagster/run_key"
WILL_RETRY_TAG = "dagster/will_retry"
TRIGGER_TAG = "smartplex/trigger"
SERVICE_TAG = "smartplex/service"
WEBHOOKS_TAG = "smartplex/webhooks"
FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
#: Dagster creates a failed run's retry within seconds; past this, the failure is recorded.
RETRY_GRACE = timedelta(minutes=10)


def find_run(instance: dg.DagsterInstance, run_key: str) -> dg.DagsterRun | None:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1)
    return runs[0] if runs else None


def failure_message(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """Why a run did not succeed, in a line or two; ``None`` for a success."""
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return None
    if run.status == dg.DagsterRunStatus.CANCELED:
        return f"run {run.run_id} was canceled"
    records = instance.get_records_for_run(
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


def ended_at(instance: dg.DagsterInstance, run: dg.DagsterRun) -> datetime:
    record = instance.get_run_record_by_id(run.run_id)
    if record is not None and record.end_time:
        return datetime.fromtimestamp(record.end_time, UTC)
    return utcnow()


def awaiting_retry(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """A failed run that Dagster will retry under the same run key, the retry not created yet.

    With run retries on, Dagster tags every failed run ``dagster/will_retry`` just *after* storing
    its failure, so an untagged failure is still undecided: recording it then would settle a batch
    whose retry is about to start (and lose the retry's outcome for a full refresh). Bounded: a retry
    that has not appeared within :data:`RETRY_GRACE` no longer holds the failure back.
    """
    if run.status != dg.DagsterRunStatus.FAILURE:
        return False
    will_retry = run.tags.get(WILL_RETRY_TAG)
    if will_retry == "false" or (will_retry is None and not instance.run_retries_enabled):
        return False
    return utcnow() - ended_at(instance, run) < RETRY_GRACE


def record_outcome(instance: dg.DagsterInstance, engine: Engine, run: dg.DagsterRun) -> int:
    """Settle whatever ``run`` was asked for (webhook rows or a scheduled refresh); return rows changed."""
    run_key = run.tags.get(RUN_KEY_TAG)
    trigger = run.tags.get(TRIGGER_TAG)
    if run_key is None or trigger not in ("webhook", "schedule") or run.status not in FINISHED:
        return 0
    if awaiting_retry(instance, run):
        return 0  # Dagster will retry it under the same run key: the retry's outcome is the one to record
    error = failure_message(instance, run)
    with engine.begin() as connection:
        if trigger == "webhook":
            return queue.settle(connection, run_key, run.run_id, error, utcnow())
        return schedule_state.settle(connection, run_key, error, ended_at(instance, run))
