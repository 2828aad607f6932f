"""The run status sensors: every sync run's outcome written back as the run ends (:mod:`.settle`)."""

import dagster as dg

from smartplex.dagster_names import TRIGGER_TAG, tagged_instance
from smartplex_dagster.defs.resources import DatabaseResource
from smartplex_dagster.defs.settle import settle_run

#: The run status sensors' pace: Dagster's own loop. Successful webhook runs settle their rows in the
#: run (``settle.settle_webhooks``); what these write can wait a few seconds, and each tick asks the code
#: server and the event log, so they do not follow the daemon's 1-second loop.
STATUS_SENSOR_INTERVAL_SECONDS = 5


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    minimum_interval_seconds=STATUS_SENSOR_INTERVAL_SECONDS,
    name="sync_succeeded",
    description="Marks the webhooks (or the schedule) behind a successful sync as processed.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def sync_succeeded(context: dg.RunStatusSensorContext, database: DatabaseResource) -> None:
    settle_run(context.instance, database.engine, context.dagster_run)
    context.log.info(summary(context.instance, context.dagster_run))


@dg.run_failure_sensor(
    name="sync_failed",
    minimum_interval_seconds=STATUS_SENSOR_INTERVAL_SECONDS,
    description="Writes the failure's message onto the webhooks (or the schedule) behind a failed sync.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def sync_failed(context: dg.RunFailureSensorContext, database: DatabaseResource) -> None:
    settle_run(context.instance, database.engine, context.dagster_run)
    context.log.info(summary(context.instance, context.dagster_run))


def summary(dagster_instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """One line in the daemon's log per ended run: what it synced, why, how many rows, how long."""
    record = dagster_instance.get_run_record_by_id(run.run_id)
    took = (
        f"{record.end_time - record.start_time:.1f} s"
        if record is not None and record.start_time and record.end_time
        else "?"
    )
    rows = "?"
    for event in dagster_instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records:
        materialization = event.asset_materialization
        if materialization is not None and "dagster/row_count" in materialization.metadata:
            rows = str(materialization.metadata["dagster/row_count"].value)
    instance = tagged_instance(run.tags)
    trigger = run.tags.get(TRIGGER_TAG, "manual")
    return f"{instance.id if instance else run.job_name} {trigger} run {run.run_id[:8]} {run.status.value.lower()}: {rows} rows, {took}"
