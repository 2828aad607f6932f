"""Schedules built from sync_schedule, evaluated at chosen times; retention."""

import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from dagster._core.utils import make_new_run_id
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, update

from smartplex import webhook_queue
from smartplex.column_types import utcnow
from smartplex.dagster_names import RUN_KEY_TAG, resource_key
from smartplex.instances import Instance
from smartplex.schema import sync_schedule, webhook_log
from smartplex_dagster.defs.resources import DatabaseResource, ServiceResource
from smartplex_dagster.defs.schedules import schedules
from smartplex_dagster.defs.settle import ended_at
from smartplex_dagster.runtime.dagster_internals import SCHEDULED_EXECUTION_TIME_TAG
from tests.conftest import ADMIN

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")
SCHEDULE = {s.name.removesuffix("_full_refresh"): s for s in schedules}


def evaluate(instance: dg.DagsterInstance, database: DatabaseResource, service: str, at: datetime,
             configured: bool = True) -> dg.RunRequest | dg.SkipReason:  # fmt: skip
    api = ServiceResource(instance=service, url="http://127.0.0.1:9" if configured else None,
                          credential="key" if configured else None)  # fmt: skip
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=at,
        resources={"database": database, resource_key(Instance.parse(service)): api},
    )
    data = SCHEDULE[service].evaluate_tick(context)
    return data.run_requests[0] if data.run_requests else dg.SkipReason(data.skip_message)


def set_row(engine: Engine, service: str, **values: object) -> None:
    with engine.begin() as connection:
        connection.execute(update(sync_schedule).where(sync_schedule.c.service == service).values(**values))


def row(engine: Engine, service: str) -> dict:
    with engine.connect() as connection:
        return dict(
            connection.execute(select(sync_schedule).where(sync_schedule.c.service == service)).mappings().one()
        )


NOW = datetime.now(UTC).replace(microsecond=0)


def test_disabled(instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine) -> None:
    result = evaluate(instance, database, "sonarr", NOW)  # seeded disabled
    assert isinstance(result, dg.SkipReason) and "disabled" in result.skip_message


def test_never_run_is_due_and_sets_next_run(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine
) -> None:
    request = evaluate(instance, database, "plex", NOW)  # seeded enabled, never run
    assert isinstance(request, dg.RunRequest)
    assert request.tags["smartplex/trigger"] == "schedule"
    assert request.job_name == "full_refresh" and request.tags["smartplex/full_refresh"] == "true"
    # One partition, the current week's: a full refresh reads everything, whatever its partitions.
    this_week = (utcnow().date() - timedelta(days=utcnow().weekday())).isoformat()
    assert (
        request.tags["dagster/asset_partition_range_start"]
        == request.tags["dagster/asset_partition_range_end"]
        == this_week
    )
    plex = row(engine, "plex")
    assert plex["next_run_at"] == NOW + timedelta(hours=12) and plex["run_key"] == request.run_key


def test_not_due_then_due_then_interval_change(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine
) -> None:
    set_row(engine, "tautulli", last_run_at=NOW - timedelta(hours=2), next_run_at=NOW + timedelta(hours=4))
    result = evaluate(instance, database, "tautulli", NOW)
    assert isinstance(result, dg.SkipReason) and "not due until" in result.skip_message
    assert isinstance(evaluate(instance, database, "tautulli", NOW + timedelta(hours=4)), dg.RunRequest)

    # An admin shortens the interval (the API recomputes next_run_at): applies at the next tick.
    set_row(engine, "tautulli", run_key=None, interval_hours=1, next_run_at=NOW + timedelta(hours=5))
    assert isinstance(evaluate(instance, database, "tautulli", NOW + timedelta(hours=4, minutes=5)), dg.SkipReason)
    set_row(engine, "tautulli", next_run_at=NOW + timedelta(hours=4, minutes=10))
    request = evaluate(instance, database, "tautulli", NOW + timedelta(hours=4, minutes=10))
    assert isinstance(request, dg.RunRequest)
    assert row(engine, "tautulli")["next_run_at"] == NOW + timedelta(hours=5, minutes=10)


def test_unconfigured_service_skips(instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine) -> None:
    result = evaluate(instance, database, "plex", NOW, configured=False)
    assert isinstance(result, dg.SkipReason)
    assert "SMARTPLEX_PLEX_URL" in result.skip_message and "SMARTPLEX_PLEX_TOKEN" in result.skip_message
    assert row(engine, "plex")["run_key"] is None


def test_sync_now_runs_a_disabled_service_once(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine
) -> None:
    set_row(engine, "radarr", sync_requested_at=NOW)
    request = evaluate(instance, database, "radarr", NOW)
    assert isinstance(request, dg.RunRequest)
    assert row(engine, "radarr")["sync_requested_at"] is None


def test_outcome_is_recorded_and_a_lost_request_is_repeated(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine
) -> None:
    first = evaluate(instance, database, "plex", NOW)
    assert isinstance(first, dg.RunRequest)
    again = evaluate(instance, database, "plex", NOW + timedelta(minutes=5))  # the run was never created
    assert isinstance(again, dg.RunRequest) and again.run_key == first.run_key

    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
                        tags={RUN_KEY_TAG: first.run_key, "smartplex/trigger": "schedule"})  # fmt: skip
    instance.add_run(run)
    busy = evaluate(instance, database, "plex", NOW + timedelta(minutes=10))
    assert isinstance(busy, dg.SkipReason) and "still" in busy.skip_message
    instance.report_run_failed(run)
    done = evaluate(instance, database, "plex", NOW + timedelta(minutes=15))
    assert isinstance(done, dg.SkipReason) and "not due until" in done.skip_message
    plex = row(engine, "plex")
    assert (plex["run_count"], plex["last_status"], plex["run_key"]) == (1, "failure", None)
    assert plex["last_run_at"] is not None and plex["last_error"]


def test_a_run_its_tick_made_and_never_submitted_is_asked_for_again_by_that_tick_only(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine
) -> None:
    """The daemon stopped between making a refresh's run and submitting it: the resumed tick asks for
    it again (Dagster then submits the run it finds); a later tick does not make a second one."""
    first = evaluate(instance, database, "plex", NOW)
    assert isinstance(first, dg.RunRequest)
    made = NOW.astimezone(UTC).isoformat()
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=make_new_run_id(), status=dg.DagsterRunStatus.NOT_STARTED,
                        tags={RUN_KEY_TAG: first.run_key, "smartplex/trigger": "schedule",
                              SCHEDULED_EXECUTION_TIME_TAG: made})  # fmt: skip
    instance.add_run(run)

    resumed = evaluate(instance, database, "plex", NOW)
    assert isinstance(resumed, dg.RunRequest) and resumed.run_key == first.run_key
    later = evaluate(instance, database, "plex", NOW + timedelta(minutes=5))
    assert isinstance(later, dg.SkipReason) and "still not_started" in later.skip_message
    assert row(engine, "plex")["run_key"] == first.run_key


def test_retention_deletes_exactly_the_old_finished_rows(engine: Engine) -> None:
    now = utcnow()
    rows = []
    for status in ("pending", "dispatched", "processed", "failed", "ignored", "missing"):
        for age in (1, 10, 40):
            rows.append({"id": uuid.uuid4(), "source": "sonarr", "event_type": f"{status}-{age}", "payload": {},
                         "received_at": now - timedelta(days=age), "status": status,
                         "processed": status in ("processed", "failed", "ignored", "missing"),
                         "processed_at": now - timedelta(days=age) if status != "pending" else None})  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), rows)
    removed = webhook_queue.purge(engine, now, ignored_days=7, processed_days=30, batch=1)
    assert removed == {"ignored": 2, "processed": 1, "missing": 1}
    with engine.connect() as connection:
        left = set(connection.execute(select(webhook_log.c.event_type)).scalars())
    assert left == {r["event_type"] for r in rows} - {"ignored-10", "ignored-40", "processed-40", "missing-40"}


def _scheduled_run(instance: dg.DagsterInstance, run_key: str) -> dg.DagsterRun:
    """The run Dagster makes of a schedule's request, as it starts."""
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
                        tags={RUN_KEY_TAG: run_key, "smartplex/trigger": "schedule"})  # fmt: skip
    instance.add_run(run)
    return run


def test_a_change_during_a_refresh_never_makes_it_due_and_its_end_plans_the_next(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine, client: TestClient
) -> None:
    set_row(engine, "sonarr", enabled=True)  # never run
    request = evaluate(instance, database, "sonarr", NOW)
    assert isinstance(request, dg.RunRequest)
    run = _scheduled_run(instance, request.run_key)

    # The admin changes the interval while the refresh runs (last_run_at is still null).
    changed = client.patch("/api/admin/schedules/sonarr", json={"interval_hours": 2}, headers=ADMIN)
    assert changed.status_code == 200
    assert row(engine, "sonarr")["next_run_at"] > utcnow()  # not due at once
    busy = evaluate(instance, database, "sonarr", NOW + timedelta(minutes=5))
    assert isinstance(busy, dg.SkipReason)
    assert "still started" in busy.skip_message and "next is due 2 h after it ends" in busy.skip_message

    instance.report_run_failed(run)
    ended = ended_at(instance, instance.get_run_by_id(run.run_id))  # type: ignore[arg-type]
    after = evaluate(instance, database, "sonarr", NOW + timedelta(minutes=10))  # settles the refresh
    assert isinstance(after, dg.SkipReason) and "not due until" in after.skip_message, "a second full refresh"
    sonarr = row(engine, "sonarr")
    assert (sonarr["run_key"], sonarr["run_count"]) == (None, 1)
    assert sonarr["last_run_at"] == ended and sonarr["next_run_at"] == ended + timedelta(hours=2)
    assert f"{ended + timedelta(hours=2):%Y-%m-%d %H:%M} UTC (every 2 h)" in after.skip_message


def test_a_sync_now_of_a_disabled_schedule_plans_no_next_run(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine, client: TestClient
) -> None:
    assert client.post("/api/admin/schedules/radarr/sync", headers=ADMIN).status_code == 202  # seeded disabled
    request = evaluate(instance, database, "radarr", NOW)
    assert isinstance(request, dg.RunRequest)
    assert row(engine, "radarr")["next_run_at"] is None
    run = _scheduled_run(instance, request.run_key)
    event = dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name)
    instance.report_dagster_event(event, run_id=run.run_id)
    after = evaluate(instance, database, "radarr", NOW + timedelta(minutes=5))
    assert isinstance(after, dg.SkipReason) and "disabled" in after.skip_message
    radarr = row(engine, "radarr")
    assert (radarr["last_status"], radarr["run_count"], radarr["next_run_at"]) == ("success", 1, None)


def test_the_description_says_where_the_next_due_time_shows() -> None:
    for schedule in schedules:
        assert "each skipped tick says when the next refresh is due" in (schedule.description or "")


def test_the_retention_job_rebuilds_the_rollups_its_purge_made_stale(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine
) -> None:
    """Even on an install whose status nobody reads, the daily job leaves no stale hour behind it."""
    from smartplex import webhook_rollups
    from smartplex.schema import webhook_rollup_stale
    from smartplex_dagster.defs.retention import webhook_retention

    now = utcnow()
    rows = [{"id": uuid.uuid4(), "source": "radarr", "event_type": "Download", "payload": {},
             "received_at": now - timedelta(days=age), "status": "processed", "processed": True,
             "processed_at": now - timedelta(days=age) + timedelta(seconds=3)} for age in (2, 3, 40)]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), rows)
    result = webhook_retention.execute_in_process(instance=instance, resources={"database": database})
    assert result.success
    current = int(utcnow().timestamp()) // 3600
    with engine.connect() as connection:
        stale = set(connection.execute(select(webhook_rollup_stale.c.hour)).scalars())
        figures = webhook_rollups.window(connection, now - timedelta(days=45), now)
    assert all(hour >= current for hour in stale)
    assert figures["radarr"].statuses["processed"] == 2  # the 40-day-old row was purged
