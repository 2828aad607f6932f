"""Run status sensors: write each sync's outcome back as soon as its run ends."""

import dagster as dg

from smartplex_dagster.outcomes import record_outcome
from smartplex_dagster.resources import DatabaseResource


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="sync_succeeded",
    description="Marks the webhooks (or the schedule) behind a successful sync as processed.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def sync_succeeded(context: dg.RunStatusSensorContext, database: DatabaseResource) -> None:
    record_outcome(context.instance, database.engine, context.dagster_run)


@dg.run_failure_sensor(
    name="sync_failed",
    description="Writes the failure's message onto the webhooks (or the schedule) behind a failed sync.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def sync_failed(context: dg.RunFailureSensorContext, database: DatabaseResource) -> None:
    record_outcome(context.instance, database.engine, context.dagster_run)
