"""The webhook sensor: turns pending ``webhook_log`` rows into at most one sync run per library per tick.

Each tick first reconciles (settles runs that ended, asks again for runs that were never created),
then claims pending rows, at most ``webhook_queue.CLAIM_LIMIT`` of them. A library whose webhook run is still
queued or running is left alone: its new rows stay pending and join the next run once the current
one is settled, since the current run may have read the service before those changes happened.

The daemon (``smartplex-dagster-daemon``) looks at its sensors every second, and this sensor's ticks
are at least ``SMARTPLEX_SENSOR_INTERVAL_SECONDS`` apart. A tick of a running sensor that finds
nothing to claim does not return at once: for ``WATCH_SECONDS`` it polls ``webhook_log`` and claims
as soon as a row arrives for a library with no run in flight, or a run in flight is settled (a successful sync settles its own rows, see
``settle.settle_webhooks``) so that the rows waiting for it can go. A first tick, or one
evaluated by hand (tests, the UI's preview), returns at once.

At most once a minute a tick also records an observation of ``webhooks/webhook_log`` (rows waiting,
webhooks received per source, webhook-to-processed p50/p95), which the asset's page in the UI plots.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import Connection, and_, func, select

from smartplex import schedule_state, webhook_queue
from smartplex.column_types import utcnow
from smartplex.instances import Instance
from smartplex.kinds import KIND_NAMES
from smartplex.latency import STAGES, percentiles
from smartplex.schema import webhook_log
from smartplex.settings import get_settings
from smartplex_dagster.defs.resources import DatabaseResource
from smartplex_dagster.defs.run_requests import full_refresh_run, refresh_job, webhook_job, webhook_run
from smartplex_dagster.defs.settle import reconcile_run
from smartplex_dagster.defs.webhook_log import webhook_log_asset

#: How long a tick with nothing to claim watches for work. The daemon does not start the next tick
#: while one runs; it looks again within its 1-second loop, so between two watching ticks nobody
#: watches for a second at most. Longer watches would store fewer ticks and hold a daemon thread.
WATCH_SECONDS = 3.5
#: How often a watching tick looks: a few index probes (see :func:`_work_appeared`). A webhook that
#: arrives while a tick watches waits half of this on average before it is claimed.
POLL_SECONDS = 0.1
#: A watching tick looks this far back for new rows: the API stamps a row before its group commit.
LATE_COMMIT = timedelta(seconds=10)
#: At most one observation of webhook_log per this long.
OBSERVE_EVERY = timedelta(minutes=1)
#: The observation's latency covers rows received this long before the interval at most.
RECENT = timedelta(minutes=15)
_TOTAL = next(stage for stage in STAGES if stage.name == "total")


def reconcile_dispatched(
    dagster_instance: dg.DagsterInstance, database: DatabaseResource
) -> tuple[list[dg.RunRequest], set[Instance]]:
    """Settle ended runs; re-request lost ones. Returns the re-requests and the libraries still busy."""
    engine = database.engine
    with engine.connect() as connection:
        keys = sorted(webhook_queue.dispatched_keys(connection))
        refreshes = schedule_state.in_flight(connection)
    again: list[dg.RunRequest] = []
    busy: set[Instance] = set()
    for run_key in keys:
        state = reconcile_run(dagster_instance, engine, run_key).state
        if state == "settled":
            continue
        with engine.connect() as connection:
            # Only a lost run's rows are counted (for its request); a run in flight only names its library.
            batch = webhook_queue.dispatched_batch(connection, run_key) if state == "missing" else None
            library = batch.instance if batch is not None else webhook_queue.dispatched_library(connection, run_key)
        if batch is not None:
            # Claimed, but the run was never created (a crash between claim and launch). The same
            # run key makes this safe: Dagster skips a key it has already launched.
            again.append(webhook_run(batch.instance, run_key, batch.count, batch.first_received_at))
        if library is not None:  # running, or failed and retried (a run whose worker died is failed first)
            busy.add(library)
    for _library, run_key in refreshes:
        reconcile_run(dagster_instance, engine, run_key)  # the schedule itself asks again for a missing refresh
    return again, busy


def tick_requests(
    dagster_instance: dg.DagsterInstance, database: DatabaseResource
) -> tuple[list[dg.RunRequest], set[Instance]]:
    """Reconcile, then claim the pending rows of every library with no run in flight: one run each; and
    start the full refreshes asked for with "sync now" (rather than at their schedule's next tick)."""
    requests, busy = reconcile_dispatched(dagster_instance, database)
    now = utcnow()
    with database.engine.begin() as connection:
        for group in webhook_queue.pending_groups(connection, busy=busy):
            claimed = webhook_queue.claim(connection, group, now)
            requests.append(webhook_run(group.instance, group.run_key, claimed, group.first_received_at))
    return requests + sync_now(database), busy


def sync_now(database: DatabaseResource) -> list[dg.RunRequest]:
    """A full refresh for each "sync now" waiting, for a configured instance, with none in flight. The
    schedule would start it too, at its next 5-minute tick; whichever comes first takes it."""
    settings, now, requests = get_settings(), utcnow(), []
    with database.engine.begin() as connection:
        for row in schedule_state.requested(connection):
            library = schedule_state.instance_of(row)
            if library not in settings.service_instances:  # an instance no longer declared
                continue
            if not settings.is_configured(library):
                continue  # the schedule's skip message says which variables to set
            run_key = f"sync-now-{library.slug}-{row['sync_requested_at']:%Y%m%dT%H%M%S%f}"
            if schedule_state.mark_requested(connection, library, run_key, now, row["interval_hours"], row["enabled"]):
                requests.append(full_refresh_run(library, run_key))
    return requests


def _work_appeared(database: DatabaseResource, busy: set[Instance], keys: set[str], since: datetime) -> bool:
    """Whether a claim would now find something: a new row for a library with no run in flight, or a
    change in the runs in flight (one was settled)."""
    with database.engine.connect() as connection:
        free = [i for i in get_settings().service_instances if i not in busy]
        return (
            webhook_queue.arrived(connection, free, since)
            or _settled(connection, keys)
            or bool(schedule_state.requested(connection))
        )


def _settled(connection: Connection, keys: set[str]) -> bool:
    """Whether the rows of one of the runs in flight (by run key) were settled: none is dispatched any
    more. Only a claim (this sensor's, between watches) adds a run key, so this is the change a watch
    waits for. One probe of the dispatched rows' index per key, where listing the keys in flight reads
    every dispatched row (thousands in a storm) on every poll."""
    for key in keys:
        probe = select(webhook_log.c.id).where(webhook_log.c.status == "dispatched", webhook_log.c.run_key == key)
        if connection.execute(probe.limit(1)).first() is None:
            return True
    return False


@dg.sensor(
    name="webhook_sensor",
    description="Polls webhook_log for pending rows and starts one incremental sync per stale library.",
    minimum_interval_seconds=get_settings().sensor_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    jobs=[webhook_job, refresh_job],
)
def webhook_sensor(context: dg.SensorEvaluationContext, database: DatabaseResource) -> dg.SensorResult | dg.SkipReason:
    began = time.monotonic()
    since = utcnow() - LATE_COMMIT
    requests, busy = tick_requests(context.instance, database)
    if not requests and context.last_tick_completion_time is not None:
        with database.engine.connect() as connection:
            keys = webhook_queue.dispatched_keys(connection)
        while time.monotonic() - began < WATCH_SECONDS:
            time.sleep(POLL_SECONDS)
            if _work_appeared(database, busy, keys, since):
                requests, busy = tick_requests(context.instance, database)
                if requests:
                    break
                with database.engine.connect() as connection:
                    keys = webhook_queue.dispatched_keys(connection)
    observation, cursor = observe(database, context.cursor)
    events = [observation] if observation is not None else []
    if requests:
        return dg.SensorResult(run_requests=requests, asset_events=events, cursor=cursor)
    with database.engine.connect() as connection:
        waiting = webhook_queue.waiting(connection, busy)
    if waiting:
        more = "" if waiting < webhook_queue.CLAIM_LIMIT else " or more"
        skip = f"{waiting}{more} webhooks wait for running syncs of {', '.join(sorted(i.id for i in busy))}"
    else:
        skip = "no pending webhooks"
    if events:
        return dg.SensorResult(skip_reason=skip, asset_events=events, cursor=cursor)
    return dg.SkipReason(skip)


def observe(database: DatabaseResource, cursor: str | None) -> tuple[dg.AssetObservation | None, str | None]:
    """An observation of webhook_log, if the last one (the cursor says when) is a minute old; and the
    cursor to store with it."""
    now = utcnow()
    last = _observed_at(cursor)
    if last is not None and now - last < OBSERVE_EVERY:
        return None, None
    since = last if last is not None and now - last < 10 * OBSERVE_EVERY else now - OBSERVE_EVERY
    with database.engine.connect() as connection:
        # One count per status: each is answered from that status's partial index alone.
        counts = {
            status: connection.execute(select(func.count()).where(webhook_log.c.status == status)).scalar_one()
            for status in ("pending", "dispatched")
        }
        # Counted here rather than grouped in SQL: SQLite would group along the source index, reading
        # every row, instead of reading the interval's rows along the received_at index.
        received = Counter(
            connection.execute(select(webhook_log.c.source).where(webhook_log.c.received_at >= since)).scalars()
        )
        # Rows settled since the last observation, received in the quarter hour before it at most: the
        # received_at bound keeps the scan on its index (a row that waited longer is left out here).
        settled = and_(webhook_log.c.processed_at >= since, webhook_log.c.received_at >= since - RECENT)
        latency = percentiles(connection, settled, stages=(_TOTAL,))["total"]
    metadata: dict[str, dg.RawMetadataValue] = {
        "pending": dg.MetadataValue.int(counts.get("pending", 0)),
        "dispatched": dg.MetadataValue.int(counts.get("dispatched", 0)),
        **{f"received_{source}": dg.MetadataValue.int(received.get(source, 0)) for source in KIND_NAMES},
        "processed": dg.MetadataValue.int(latency["rows"]),
        "interval_seconds": dg.MetadataValue.float(round((now - since).total_seconds(), 1)),
    }
    for quantile, label in ((0.5, "p50"), (0.95, "p95")):
        if latency[quantile] is not None:
            metadata[f"webhook_to_processed_{label}_seconds"] = dg.MetadataValue.float(round(latency[quantile], 3))
    observation = dg.AssetObservation(asset_key=webhook_log_asset.key, metadata=metadata)
    return observation, json.dumps({"observed_at": now.timestamp()})


def _observed_at(cursor: str | None) -> datetime | None:
    try:
        value = json.loads(cursor)["observed_at"] if cursor else None
        return datetime.fromtimestamp(float(value), UTC) if value is not None else None
    except (ValueError, TypeError, KeyError):
        return None
