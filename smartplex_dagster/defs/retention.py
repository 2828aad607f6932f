"""Housekeeping, daily and in batches: old webhook rows, and old Dagster runs with their event logs; then
the webhook rollups of the hours that changed.

The product's tables and Dagster's storage both grow with every webhook; a home server runs for months.
Runs still in flight are never touched; sensor and schedule ticks are trimmed by Dagster itself
(``retention`` in dagster.yaml). The automation sensor's stored evaluations (why a derived asset was
recomputed, one record of up to 80 KB per tick that requests a run) go with the runs they launched:
Dagster keeps them 30 days.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg

from smartplex import catch_up, webhook_queue, webhook_rollups
from smartplex.column_types import utcnow
from smartplex.dagster_names import RETENTION_JOB, SCHEDULE_TRIGGER, TRIGGER_TAG
from smartplex.settings import get_settings
from smartplex_dagster.defs.resources import DatabaseResource
from smartplex_dagster.runtime.dagster_internals import remove_run_event_file

#: Finished runs, by how long they are kept.
#: What catch-ups found is kept this long: the status counts 7 days of it.
CATCH_UP_KEPT = timedelta(days=30)
_SUCCEEDED = [dg.DagsterRunStatus.SUCCESS]
_FAILED = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


class RetentionConfig(dg.Config):
    ignored_days: int = get_settings().retention_ignored_days
    processed_days: int = get_settings().retention_processed_days
    run_days: int = get_settings().retention_run_days
    refresh_run_days: int = get_settings().retention_refresh_run_days
    failed_run_days: int = get_settings().retention_failed_run_days


@dataclass(frozen=True)
class RunRetention:
    """Days a finished run is kept: a success (a webhook sync, a derived asset, the retention job
    itself), a scheduled full refresh's success (rarer, and the history people look back on), and a
    failure or cancellation (kept longer than a success, to be looked into)."""

    run_days: int
    refresh_run_days: int
    failed_run_days: int


def _older(
    dagster_instance: dg.DagsterInstance, statuses: list[dg.DagsterRunStatus], before: datetime
) -> list[dg.RunRecord]:
    """Runs in ``statuses`` last changed before ``before``, oldest first."""
    filters = dg.RunsFilter(statuses=statuses, updated_before=before)
    return list(dagster_instance.get_run_records(filters=filters, order_by="update_timestamp", ascending=True))


def purge_runs(dagster_instance: dg.DagsterInstance, now: datetime, keep: RunRetention) -> dict[str, int]:
    """Delete finished runs past their retention, their event logs with them; return counts by kind."""
    refresh_cutoff = now - timedelta(days=keep.refresh_run_days)
    doomed: dict[str, list[str]] = {"runs": [], "refresh_runs": [], "failed_runs": []}
    for record in _older(dagster_instance, _SUCCEEDED, now - timedelta(days=keep.run_days)):
        run = record.dagster_run
        if run.tags.get(TRIGGER_TAG) != SCHEDULE_TRIGGER:
            doomed["runs"].append(run.run_id)
        elif record.update_timestamp < refresh_cutoff:
            doomed["refresh_runs"].append(run.run_id)
    doomed["failed_runs"] = [
        r.dagster_run.run_id for r in _older(dagster_instance, _FAILED, now - timedelta(days=keep.failed_run_days))
    ]
    for run_ids in doomed.values():
        for run_id in run_ids:
            dagster_instance.delete_run(run_id)
            remove_run_event_file(dagster_instance, run_id)
    return {kind: len(run_ids) for kind, run_ids in doomed.items()}


def purge_automation_evaluations(dagster_instance: dg.DagsterInstance, now: datetime, days: int) -> None:
    """Delete the automation sensor's evaluations older than ``days``."""
    storage = dagster_instance.schedule_storage
    if storage is not None and storage.supports_auto_materialize_asset_evaluations:
        storage.purge_asset_evaluations(before=(now - timedelta(days=days)).timestamp())


@dg.op(
    description="Delete webhook rows and Dagster runs past their retention; never pending, failed or in-flight ones."
)
def purge(context: dg.OpExecutionContext, config: RetentionConfig, database: DatabaseResource) -> None:
    now = utcnow()
    removed = webhook_queue.purge(
        database.engine, now, ignored_days=config.ignored_days, processed_days=config.processed_days
    )
    runs = purge_runs(
        context.instance, now, RunRetention(config.run_days, config.refresh_run_days, config.failed_run_days)
    )
    purge_automation_evaluations(context.instance, now, config.run_days)
    with database.engine.begin() as connection:  # the status counts what catch-ups found over 7 days
        found_deleted = catch_up.purge(connection, now - CATCH_UP_KEPT)
    # The purge made its hours' rollups stale; rebuild them, and keep one stale mark per hour, even on
    # an install whose status nobody reads (readers do this too).
    rebuilt = webhook_rollups.rebuild(database.engine, utcnow(), budget=None)
    context.add_output_metadata({**{f"{status}_deleted": n for status, n in removed.items()},
                                 **{f"{kind}_deleted": n for kind, n in runs.items()},
                                 "rollup_hours_rebuilt": rebuilt, "catch_up_found_deleted": found_deleted})  # fmt: skip
    context.log.info("retention removed webhook rows %s and Dagster runs %s", removed, runs)


@dg.job(name=RETENTION_JOB, description="Delete old ignored and processed webhook rows, and old finished Dagster runs.")
def webhook_retention() -> None:
    purge()


retention_schedule = dg.ScheduleDefinition(
    job=webhook_retention,
    cron_schedule="17 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
