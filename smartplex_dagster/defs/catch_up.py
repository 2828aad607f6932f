"""The catch-up sensor: every instance's service, polled on its interval for what changed that no webhook
brought; a run for what it finds, none for an idle poll (see :mod:`smartplex.catch_up`).

An idle poll writes one row of the product database (``polled_at``, the watermark) and the sensor's
skipped tick, which Dagster deletes after a day (``dagster.yaml``): Dagster's storage does not grow with
idle polls. An instance is polled at once when this process starts (the stack was down, and everything
sent meanwhile lost), and every minute while its sender's health check says our webhook is disabled.
"""

from __future__ import annotations

import time
from typing import Any

import dagster as dg

from smartplex import catch_up
from smartplex.clients import CLIENTS, ArrClient, RetryPolicy, ServiceError, client_for
from smartplex.column_types import utcnow
from smartplex.dagster_names import WILL_RETRY_TAG
from smartplex.instances import Instance
from smartplex.settings import get_settings
from smartplex_dagster.defs.resources import DatabaseResource
from smartplex_dagster.defs.run_requests import catch_up_job, catch_up_run
from smartplex_dagster.defs.settle import FINISHED, RETRY_GRACE, ended_at, failure_message, find_run, retry_of

#: When this code location was loaded: an instance last polled before it is polled at once.
STARTED_AT = utcnow()
#: A poll is one or two requests: it waits less, and retries less, than a sync.
_POLL_TIMEOUT = 10.0
_POLL_RETRY = RetryPolicy(attempts=2)
#: When each instance's health was last asked for, in this process (monotonic seconds).
_health_checked: dict[str, float] = {}
#: A tick stops starting polls after this long; the instances left are polled at the next tick. A hung
#: service costs a poll about 2 x 10 s, and Dagster gives a sensor's evaluation 60 s.
_TICK_BUDGET = 25.0
#: A run asked for but not created in this long (the tick's result was lost) is asked for again by a new poll.
_LOST_AFTER = RETRY_GRACE


def _settle_in_flight(dagster_instance: dg.DagsterInstance, database: DatabaseResource) -> None:
    """Let go of catch-up runs that ended without finishing: the watermark stays, the next poll looks again."""
    now = utcnow()
    with database.engine.connect() as connection:
        flying = catch_up.in_flight(connection)
    for library, run_key in flying:
        run = find_run(dagster_instance, run_key)
        error: str | None
        if run is None:
            with database.engine.connect() as connection:
                polled = (catch_up.read(connection, library) or {}).get("polled_at")
            if polled is not None and now - polled < _LOST_AFTER:
                continue  # asked for in a tick that has not launched it yet
            error = "the catch-up run was never created"
        elif run.status not in FINISHED:
            continue
        elif run.status == dg.DagsterRunStatus.SUCCESS:
            error = None  # finished by the run itself; nothing left to do unless it was not
        else:
            retrying = run.tags.get(WILL_RETRY_TAG) == "true" and retry_of(dagster_instance, run) is None
            if retrying and now - ended_at(dagster_instance, run) < RETRY_GRACE:
                continue
            error = failure_message(dagster_instance, run)
        with database.engine.begin() as connection:
            catch_up.abandon(connection, library, run_key, error)


def _check_health(instances: list[Instance], rows: dict[str, dict[str, Any]], database: DatabaseResource) -> None:
    """Between polls, ask each healthy Sonarr and Radarr, once a minute, whether it has disabled our
    webhook (one small request): from the moment it says so, it drops every event, and a poll is due at once."""
    now = time.monotonic()
    for library in instances:
        row = rows[library.id]
        says_so = issubclass(CLIENTS[library.kind.name], ArrClient)  # its health check names disabled webhooks
        if not says_so or not row["enabled"] or row["health"] or row["run_key"]:
            continue
        if now - _health_checked.get(library.id, float("-inf")) < catch_up.UNHEALTHY_INTERVAL.total_seconds():
            continue
        with database.engine.connect() as connection:
            if not catch_up.follows(connection, library):
                continue
        _health_checked[library.id] = now
        try:
            with client_for(library, timeout=_POLL_TIMEOUT, retry=_POLL_RETRY) as client:
                assert isinstance(client, ArrClient)
                failures = client.notification_failures()
        except ServiceError:
            continue  # the poll will say why
        if failures:
            with database.engine.begin() as connection:
                catch_up.record_health(connection, library, "; ".join(failures), utcnow())


def poll(library: Instance, database: DatabaseResource) -> tuple[dg.RunRequest | None, str]:
    """Poll one instance: a run request for what it found, or none; and a line for the tick."""
    now = utcnow()
    try:
        with client_for(library, timeout=_POLL_TIMEOUT, retry=_POLL_RETRY) as client:
            finding = catch_up.look(database.engine, client, library, now)
    except ServiceError as exc:
        with database.engine.begin() as connection:
            catch_up.record_error(connection, library, str(exc), now)
        return None, f"{library.id}: {exc}"
    run_key = None if finding.idle else f"catch-up-{library.slug}-{now:%Y%m%dT%H%M%S%f}"
    with database.engine.begin() as connection:
        catch_up.record_poll(connection, finding, now, run_key)
    if run_key is None:
        return None, f"{library.id} ({finding.reason})" if finding.reason else library.id
    refreshed = f"a refresh of sections {', '.join(finding.sections)}" if finding.sections else "a full refresh"
    what = f"{refreshed}: {finding.reason}" if finding.full else f"{finding.changes} changed items"
    return catch_up_run(library, run_key, finding.since, finding.full, finding.sections), f"{library.id}: {what}"


@dg.sensor(
    name="catch_up_sensor",
    description="Polls each service for what changed since its watermark, and syncs what no webhook brought.",
    minimum_interval_seconds=75,  # a stored tick (about 730 bytes) every 75 s: 0.84 MB a day, deleted after a day
    default_status=dg.DefaultSensorStatus.RUNNING,
    jobs=[catch_up_job],
)
def catch_up_sensor(context: dg.SensorEvaluationContext, database: DatabaseResource) -> dg.SensorResult | dg.SkipReason:
    settings = get_settings()
    configured = [i for i in settings.service_instances if settings.is_configured(i)]
    with database.engine.begin() as connection:
        catch_up.ensure(connection, configured)
    _settle_in_flight(context.instance, database)
    now = utcnow()
    with database.engine.connect() as connection:
        rows = {row["library"]: row for row in catch_up.rows(connection)}
    _check_health([i for i in configured if i.id in rows], rows, database)
    with database.engine.connect() as connection:
        rows = {row["library"]: row for row in catch_up.rows(connection)}
        due = [i for i in configured if i.id in rows and catch_up.is_due(rows[i.id], now, STARTED_AT)]
        waiting = {i for i in due if catch_up.waiting_webhooks(connection, i)}
    requests: list[dg.RunRequest] = []
    lines: list[str] = []
    idle: list[str] = []
    began = time.monotonic()
    for library in due:
        if time.monotonic() - began > _TICK_BUDGET:
            lines.append(f"{library.id}: polled at the next tick (this one took {time.monotonic() - began:.0f} s)")
            continue
        if library in waiting:
            lines.append(f"{library.id}: webhooks wait for their sync; polled after it")
            continue
        request, line = poll(library, database)
        (idle if request is None else lines).append(line)
        if request is not None:
            requests.append(request)
    # Terse: Dagster stores each tick's message, a tick a minute.
    summary = "; ".join([*lines, *(["nothing changed: " + ", ".join(idle)] if idle else [])]) or "none due"
    if requests:
        return dg.SensorResult(run_requests=requests)
    return dg.SkipReason(summary)
