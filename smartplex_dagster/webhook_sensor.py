"""The webhook sensor: turns pending ``webhook_log`` rows into at most one sync run per library per tick.

Each tick first reconciles (settles runs that ended, asks again for runs that were never created),
then claims pending rows. A library whose webhook run is still queued or running is left alone: its
new rows stay pending and join the next run once the current one ends, since the current run may
have read the service before those changes happened.
"""

import dagster as dg

from smartplex import queue, schedule_state
from smartplex.services import SERVICE_NAMES
from smartplex.settings import get_settings
from smartplex.types import utcnow
from smartplex_dagster.library import asset_key
from smartplex_dagster.outcomes import reconcile as reconcile_run
from smartplex_dagster.resources import DatabaseResource
from smartplex_dagster.run_requests import webhook_run


def reconcile(instance: dg.DagsterInstance, database: DatabaseResource) -> tuple[list[dg.RunRequest], set[str]]:
    """Settle ended runs; re-request lost ones. Returns the re-requests and the services still busy."""
    engine = database.engine
    with engine.connect() as connection:
        waiting = queue.dispatched(connection)
        refreshes = schedule_state.in_flight(connection)
    again: list[dg.RunRequest] = []
    busy: set[str] = set()
    for batch in waiting:
        state = reconcile_run(instance, engine, batch.run_key).state
        if state == "missing":
            # Claimed, but the run was never created (a crash between claim and launch). The same
            # run key makes this safe: Dagster skips a key it has already launched.
            again.append(webhook_run(batch.service, batch.run_key, batch.count, batch.first_received_at))
        if state != "settled":  # running, or failed and retried (a run whose worker died is failed first)
            busy.add(batch.service)
    for _service, run_key in refreshes:
        reconcile_run(instance, engine, run_key)  # the schedule itself asks again for a missing refresh
    return again, busy


@dg.sensor(
    name="webhook_sensor",
    description="Polls webhook_log for pending rows and starts one incremental sync per stale library.",
    minimum_interval_seconds=get_settings().sensor_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    target=[asset_key(service) for service in SERVICE_NAMES],
)
def webhook_sensor(context: dg.SensorEvaluationContext, database: DatabaseResource) -> dg.SensorResult | dg.SkipReason:
    requests, busy = reconcile(context.instance, database)
    now = utcnow()
    waiting_on_busy = 0
    with database.engine.begin() as connection:
        for group in queue.pending_groups(connection):
            if group.service in busy:
                waiting_on_busy += group.count
                continue
            claimed = queue.claim(connection, group, now)
            requests.append(webhook_run(group.service, group.run_key, claimed, group.first_received_at))
    if not requests:
        if waiting_on_busy:
            return dg.SkipReason(f"{waiting_on_busy} webhooks wait for running syncs of {', '.join(sorted(busy))}")
        return dg.SkipReason("no pending webhooks")
    return dg.SensorResult(run_requests=requests)
