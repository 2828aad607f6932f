"""One full-refresh schedule per instance, driven by its ``sync_schedule`` row: interval and on/off live in the database.

Each tick reads the row, so an admin's change applies at the next tick without reloading code.
"""

from datetime import UTC
from typing import Any

import dagster as dg

from smartplex import schedule_state
from smartplex.column_types import utcnow
from smartplex.dagster_names import DATABASE_RESOURCE, resource_key, schedule_name
from smartplex.instances import Instance
from smartplex.settings import get_settings
from smartplex_dagster.defs.resources import DatabaseResource
from smartplex_dagster.defs.run_requests import full_refresh_run, refresh_job
from smartplex_dagster.defs.settle import FINISHED, reconcile_run
from smartplex_dagster.runtime.dagster_internals import SCHEDULED_EXECUTION_TIME_TAG

#: Often enough for hour-granular intervals and a prompt "sync now".
TICK = "*/5 * * * *"


def evaluate(context: dg.ScheduleEvaluationContext, instance: Instance) -> dg.RunRequest | dg.SkipReason:
    database: DatabaseResource = context.resources.database
    api = getattr(context.resources, resource_key(instance))
    if not api.url or not api.credential:
        url_var, credential_var = instance.env_names
        return dg.SkipReason(f"{instance.title} is not configured: set {url_var} and {credential_var}")
    now = context.scheduled_execution_time or utcnow()
    with database.engine.begin() as connection:
        schedule_state.ensure(connection, instance)
        row = schedule_state.read(connection, instance)
        if row is None:
            return dg.SkipReason("no sync_schedule row: run 'smartplex db upgrade'")
    if row["run_key"]:
        reconciled = reconcile_run(context.instance, database.engine, row["run_key"])
        if reconciled.state == "missing":  # asked for, never created: ask again under the same key
            return full_refresh_run(instance, row["run_key"])
        run = reconciled.run
        if run is not None and _left_unsubmitted(run, context):
            # This tick made the run and the daemon stopped before submitting it. Dagster resumes an
            # interrupted tick and submits a run it finds made for the same request, so ask again.
            return full_refresh_run(instance, row["run_key"])
        if reconciled.state == "waiting" and run is not None:
            after = _next_after_end(row)
            if run.status not in FINISHED:
                return dg.SkipReason(f"full refresh {run.run_id} is still {run.status.value.lower()}; {after}")
            return dg.SkipReason(f"full refresh {run.run_id} failed; Dagster is retrying it; {after}")
        with database.engine.connect() as connection:
            row = schedule_state.read(connection, instance)
    decision = schedule_state.decide(row, now)  # type: ignore[arg-type]
    if not decision.due:
        return dg.SkipReason(decision.reason)
    run_key = f"schedule-{instance.slug}-{now:%Y%m%dT%H%M%S}"
    with database.engine.begin() as connection:
        taken = schedule_state.mark_requested(connection, instance, run_key, now, row["interval_hours"], row["enabled"])  # type: ignore[index]
    if not taken:
        return dg.SkipReason("the webhook sensor asked for this refresh (a sync now) a moment ago")
    context.log.info("%s full refresh: %s", instance.title, decision.reason)
    return full_refresh_run(instance, run_key)


def _left_unsubmitted(run: dg.DagsterRun, context: dg.ScheduleEvaluationContext) -> bool:
    """Whether ``run`` was made by this very tick (this execution time) and never submitted: the daemon
    was stopped between the two. Any other tick leaves it alone (a new request would be a second run)."""
    when = context.scheduled_execution_time
    made_at = run.tags.get(SCHEDULED_EXECUTION_TIME_TAG)
    return (
        run.status == dg.DagsterRunStatus.NOT_STARTED
        and when is not None
        and made_at is not None
        and (made_at == when.astimezone(UTC).isoformat())
    )


def _next_after_end(row: dict[str, Any]) -> str:
    """When the next refresh is due, for a tick that finds one running."""
    if not row["enabled"]:
        return "no next one is planned: the schedule is disabled"
    return f"the next is due {row['interval_hours']} h after it ends"


def full_refresh_schedule(instance: Instance) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=schedule_name(instance),
        description=(
            f"Full refresh of {instance.title} every interval_hours of its sync_schedule row (on/off and interval "
            "through the admin API). Checked every 5 minutes; each skipped tick says when the next refresh is due."
        ),
        cron_schedule=TICK,
        execution_timezone="UTC",
        target=refresh_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        required_resource_keys={DATABASE_RESOURCE, resource_key(instance)},
    )
    def _schedule(context: dg.ScheduleEvaluationContext):  # type: ignore[no-untyped-def]
        return evaluate(context, instance)

    return _schedule


schedules = [full_refresh_schedule(instance) for instance in get_settings().service_instances]
