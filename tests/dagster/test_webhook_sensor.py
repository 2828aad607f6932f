"""The webhook sensor with a real database: grouping, coalescing, run keys, claims, outcomes, recovery."""

import uuid
from datetime import datetime, timedelta

import dagster as dg
import pytest
from dagster._core.utils import make_new_run_id
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, update

from smartplex import webhook_queue
from smartplex.column_types import utcnow
from smartplex.dagster_names import RUN_KEY_TAG
from smartplex.instances import Instance
from smartplex.schema import sonarr_series, webhook_log
from smartplex_dagster.definitions import library_assets
from smartplex_dagster.defs.library import asset_key
from smartplex_dagster.defs.partitions import WINDOW_START_TAG
from smartplex_dagster.defs.resources import DatabaseResource
from smartplex_dagster.defs.status_sensors import sync_failed, sync_succeeded
from smartplex_dagster.defs.webhook_sensor import webhook_sensor
from smartplex_simulators import webhooks
from smartplex_simulators.serve import RunningSimulators
from tests.conftest import ADMIN, HOOK, make_settings
from tests.helpers import statuses, webhook_rows

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")

EVENTS = {  # (source, event) -> the asset it makes stale
    ("sonarr", "Download"): "sonarr", ("sonarr", "SeriesDelete"): "sonarr", ("radarr", "MovieAdded"): "radarr",
    ("plex", "library.new"): "plex", ("tautulli", "created"): "plex", ("tautulli", "watched"): "tautulli",
    ("overseerr", "MEDIA_APPROVED"): "overseerr",
}  # fmt: skip


def add_rows(
    engine: Engine, pairs: list[tuple[str, str]], *, ago: timedelta = timedelta(0), status: str = "pending"
) -> None:
    now = utcnow() - ago
    rows = [
        {"id": uuid.uuid4(), "source": s, "event_type": e, "payload": {"n": i}, "received_at": now + timedelta(microseconds=i),
         "status": status, "processed": status == "ignored"}
        for i, (s, e) in enumerate(pairs)
    ]  # fmt: skip
    with engine.begin() as connection:
        for start in range(0, len(rows), 2000):
            connection.execute(insert(webhook_log), rows[start : start + 2000])


def evaluate(
    instance: dg.DagsterInstance, database: DatabaseResource, cursor: str | None = None
) -> dg.SensorResult | dg.SkipReason:
    """One evaluation of the sensor, as a first tick (or the UI's preview): it never waits for work."""
    context = dg.build_sensor_context(instance=instance, resources={"database": database}, cursor=cursor)
    return webhook_sensor(context)


def _monday(moment: datetime) -> str:
    """The weekly partition key of ``moment``, written out."""
    return (moment.date() - timedelta(days=moment.weekday())).isoformat()


def tick(instance: dg.DagsterInstance, database: DatabaseResource) -> list[dg.RunRequest] | dg.SkipReason:
    """The run requests of one evaluation, or why it skipped (with or without an observation)."""
    result = evaluate(instance, database)
    if isinstance(result, dg.SkipReason):
        return result
    return result.skip_reason if result.skip_reason is not None else list(result.run_requests or [])


def test_idle_tick_skips(instance: dg.DagsterInstance, database: DatabaseResource) -> None:
    result = tick(instance, database)
    assert isinstance(result, dg.SkipReason) and "no pending webhooks" in result.skip_message


def test_rows_group_by_stale_library(instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine) -> None:
    add_rows(engine, list(EVENTS) * 3)
    add_rows(engine, [("sonarr", "Grab")], status="ignored")
    requests = tick(instance, database)
    by_service = {r.tags["smartplex/instance"]: r for r in requests}
    assert set(by_service) == {"sonarr", "radarr", "plex", "tautulli", "overseerr"}
    now = utcnow()
    for service, request in by_service.items():
        assert request.asset_selection == [asset_key(Instance.parse(service))]
        assert request.tags["smartplex/trigger"] == "webhook"
        # The last 7 days, in the weekly partitions that hold them.
        window_start = datetime.fromisoformat(request.tags[WINDOW_START_TAG])
        assert abs(window_start - (now - timedelta(days=7))) < timedelta(minutes=1)
        assert request.tags["dagster/asset_partition_range_start"] == _monday(window_start)
        assert request.tags["dagster/asset_partition_range_end"] == _monday(now)
        expected = sum(3 for target in EVENTS.values() if target == service)
        assert request.tags["smartplex/webhooks"] == str(expected)
    assert statuses(engine) == {"dispatched": 3 * len(EVENTS), "ignored": 1}


def test_a_storm_coalesces(instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine) -> None:
    pairs = list(EVENTS)
    add_rows(engine, [pairs[i % len(pairs)] for i in range(10_000)])
    requests = tick(instance, database)
    assert len(requests) == 5  # one per stale library, not ten thousand
    assert sum(int(r.tags["smartplex/webhooks"]) for r in requests) == 10_000
    assert statuses(engine) == {"dispatched": 10_000}


def test_run_keys_are_deterministic(instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine) -> None:
    add_rows(engine, [("radarr", "MovieAdded")] * 4)
    with engine.connect() as connection:
        first = [g.run_key for g in webhook_queue.pending_groups(connection)]
        second = [g.run_key for g in webhook_queue.pending_groups(connection)]
    assert first == second and len(first) == 1
    (request,) = tick(instance, database)
    assert request.run_key == first[0]
    with engine.connect() as connection:
        assert set(connection.execute(select(webhook_log.c.run_key)).scalars()) == {first[0]}


def test_a_replay_gets_a_fresh_run_key(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine, database_url: str, tmp_path
) -> None:  # fmt: skip
    """Through the admin API: Dagster never starts a run key twice, so a replay that kept the key
    would be skipped silently."""
    from webhook_api.app import create_app

    add_rows(engine, [("radarr", "MovieAdded")])
    (first,) = tick(instance, database)
    with engine.begin() as connection:
        webhook_queue.settle(connection, first.run_key, "run-1", "boom", utcnow())
    with TestClient(create_app(make_settings(database_url, tmp_path))) as api:
        answer = api.post("/api/admin/webhooks/replay", json={}, headers=ADMIN)
    assert answer.json() == {"replayed": 1}
    (again,) = tick(instance, database)
    assert again.run_key != first.run_key


def fake_run(instance: dg.DagsterInstance, run_key: str, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    """A run record as the daemon would have made for a request (its work is not the point here)."""
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=make_new_run_id(), status=status,
                        tags={RUN_KEY_TAG: run_key, "smartplex/trigger": "webhook"})  # fmt: skip
    instance.add_run(run)
    return run


def test_claimed_rows_are_not_claimed_again_and_new_rows_wait_for_the_running_sync(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine
) -> None:
    add_rows(engine, [("sonarr", "Download")] * 2)
    (request,) = tick(instance, database)
    run = fake_run(instance, request.run_key, dg.DagsterRunStatus.STARTED)
    add_rows(engine, [("sonarr", "EpisodeFileDelete")] * 3, ago=timedelta(seconds=-1))
    waiting = tick(instance, database)
    assert isinstance(waiting, dg.SkipReason) and "3 webhooks wait" in waiting.skip_message
    assert statuses(engine) == {"dispatched": 2, "pending": 3}

    instance.report_run_failed(run)  # the failure sensor never saw it: the reconciler settles it
    (follow_up,) = tick(instance, database)
    assert follow_up.tags["smartplex/webhooks"] == "3" and follow_up.run_key != request.run_key
    with engine.connect() as connection:
        failed = connection.execute(select(webhook_log).where(webhook_log.c.status == "failed")).mappings().all()
    assert len(failed) == 2 and all(
        r["run_id"] == run.run_id and r["processed_at"] and r["error_message"] for r in failed
    )


def test_a_lost_request_is_asked_for_again_exactly_once(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine
) -> None:
    add_rows(engine, [("radarr", "MovieAdded")] * 2)
    (lost,) = tick(instance, database)  # claimed... and the daemon crashed before launching it
    (again,) = tick(instance, database)
    assert (again.run_key, again.tags) == (lost.run_key, lost.tags)
    run = fake_run(instance, again.run_key, dg.DagsterRunStatus.STARTING)  # now it exists
    assert isinstance(tick(instance, database), dg.SkipReason)
    instance.report_run_canceled(run)
    assert isinstance(tick(instance, database), dg.SkipReason)
    assert statuses(engine) == {"failed": 2}


def test_outcome_sensors_write_back(instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine) -> None:
    add_rows(engine, [("overseerr", "MEDIA_APPROVED")] * 2 + [("radarr", "MovieAdded")])
    requests = {r.tags["smartplex/instance"]: r for r in tick(instance, database)}
    ok = fake_run(instance, requests["overseerr"].run_key, dg.DagsterRunStatus.SUCCESS)
    bad = fake_run(instance, requests["radarr"].run_key, dg.DagsterRunStatus.FAILURE)
    for sensor, run in ((sync_succeeded, ok), (sync_failed, bad)):
        event = dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_SUCCESS.value
            if run is ok
            else dg.DagsterEventType.RUN_FAILURE.value,
            job_name=run.job_name,
        )
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=instance, dagster_run=run, dagster_event=event,
            resources={"database": database},
        )  # fmt: skip
        sensor(context.for_run_failure() if run is bad else context)
    with engine.connect() as connection:
        rows = {r["source"]: r for r in connection.execute(select(webhook_log)).mappings()}
    assert (rows["overseerr"]["status"], rows["overseerr"]["processed"], rows["overseerr"]["run_id"]) == (
        "processed",
        True,
        ok.run_id,
    )
    assert (rows["radarr"]["status"], rows["radarr"]["run_id"]) == ("failed", bad.run_id)
    assert statuses(engine) == {"processed": 2, "failed": 1}


def _run(request: dg.RunRequest, instance: dg.DagsterInstance, resources: dict) -> dg.ExecuteInProcessResult:
    """Execute a sensor's request as the daemon would: same selection, same tags, its run key."""
    return dg.materialize(
        library_assets, selection=request.asset_selection, instance=instance, resources=resources,
        tags={**request.tags, RUN_KEY_TAG: request.run_key}, raise_on_error=False,
    )  # fmt: skip


@pytest.mark.parametrize("failing", [False, True], ids=["healthy", "failing"])
def test_end_to_end_sonarr_download(
    instance: dg.DagsterInstance, database: DatabaseResource, resources: dict, engine: Engine,
    sims: RunningSimulators, database_url: str, tmp_path, failing: bool,
) -> None:  # fmt: skip
    from webhook_api.app import create_app

    show = sims.simulation.add_show("Brand New Show", seasons=1, episodes_per_season=3)
    body = webhooks.sonarr_download(show.episodes[0]).body
    with TestClient(create_app(make_settings(database_url, tmp_path))) as api:
        assert api.post("/api/webhooks/sonarr", json=body, headers=HOOK).status_code == 202
    if failing:
        sims.simulation.faults["sonarr"].update(error_rate=1.0, error_status=500)

    (request,) = tick(instance, database)
    result = _run(request, instance, resources)
    assert result.success is not failing
    assert isinstance(tick(instance, database), dg.SkipReason)  # the reconciler settles it

    with engine.connect() as connection:
        (row,) = connection.execute(select(webhook_log)).mappings().all()
        series = connection.execute(select(sonarr_series).where(sonarr_series.c.id == show.id)).mappings().first()
    assert row["run_id"] == result.run_id and row["processed_at"] is not None
    if failing:
        assert row["status"] == "failed" and "500" in row["error_message"]
        assert series is None
    else:
        assert row["status"] == "processed" and row["error_message"] is None
        assert series is not None and series["episode_file_count"] == 3


def test_a_retry_that_succeeds_overrides_the_failure(engine: Engine) -> None:
    add_rows(engine, [("radarr", "MovieAdded")] * 2)
    now = utcnow()
    with engine.begin() as connection:
        (group,) = webhook_queue.pending_groups(connection)
        webhook_queue.claim(connection, group, now)
        assert webhook_queue.settle(connection, group.run_key, "first-run", "ServiceUnreachable: radarr down", now) == 2
        # Dagster's automatic retry keeps the run key; its success is the outcome that counts.
        assert webhook_queue.settle(connection, group.run_key, "retry-run", None, now) == 2
        assert webhook_queue.settle(connection, group.run_key, "late-failure", "ignored", now) == 0
    with engine.connect() as connection:
        rows = connection.execute(select(webhook_log.c.status, webhook_log.c.run_id, webhook_log.c.error_message)).all()
    assert set(rows) == {("processed", "retry-run", None)}


def test_an_old_replayed_webhook_widens_the_window_to_its_day(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine
) -> None:
    add_rows(engine, [("sonarr", "SeriesDelete")], ago=timedelta(days=10))
    (request,) = tick(instance, database)
    (received,) = [r["received_at"] for r in webhook_rows(engine)]
    start = datetime.fromisoformat(request.tags[WINDOW_START_TAG])
    assert start == received - timedelta(days=7)  # a week before the webhook: its day, and the days before
    assert request.tags["dagster/asset_partition_range_start"] == _monday(start)
    assert request.tags["dagster/asset_partition_range_end"] == _monday(utcnow())


def test_a_failure_dagster_will_retry_is_not_recorded(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine
) -> None:
    from smartplex_dagster.defs.settle import settle_run

    add_rows(engine, [("radarr", "MovieAdded")])
    (request,) = tick(instance, database)
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=make_new_run_id(), status=dg.DagsterRunStatus.FAILURE,
                        tags={RUN_KEY_TAG: request.run_key, "smartplex/trigger": "webhook",
                              "dagster/will_retry": "true"})  # fmt: skip
    instance.add_run(run)
    assert settle_run(instance, database.engine, run) == 0
    assert statuses(engine) == {"dispatched": 1}


def test_payloads_that_name_no_item_are_no_hints(engine: Engine) -> None:
    from smartplex.sync.hints import ids_of, named_items

    add_rows(engine, [("sonarr", "SeriesDelete")] * 3)
    with engine.begin() as connection:
        ids = list(connection.execute(select(webhook_log.c.id)).scalars())
        for row_id, payload in zip(
            ids, ({"series": "oops"}, {"series": {"id": True}}, {"series": {"id": 12}}), strict=True
        ):
            connection.execute(update(webhook_log).where(webhook_log.c.id == row_id).values(payload=payload))
    now = utcnow()
    with engine.connect() as connection:
        named = named_items(
            connection, Instance.parse("sonarr"), window=(now - timedelta(days=1), now + timedelta(days=1))
        )
    assert ids_of(named) == [12]


def _row(source: str, event: str, received_at) -> dict:  # type: ignore[no-untyped-def]
    return {"id": uuid.uuid4(), "source": source, "event_type": event, "payload": {}, "received_at": received_at,
            "status": "pending", "processed": False}  # fmt: skip


def test_a_claim_meets_rows_committed_while_it_runs(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine
) -> None:
    add_rows(engine, [("sonarr", "Download")] * 3, ago=timedelta(seconds=30))
    with engine.begin() as connection:
        (group,) = webhook_queue.pending_groups(connection)
        # Between the sensor's read and its claim the API commits three rows: two it stamped before the
        # group's last row (their commit was slow), one after.
        slow = _row("sonarr", "Download", group.last_received_at - timedelta(milliseconds=1))
        slow_other = _row("sonarr", "Rename", group.last_received_at - timedelta(milliseconds=1))
        fresh = _row("sonarr", "Download", utcnow())
        with engine.begin() as api:
            api.execute(insert(webhook_log), [slow, slow_other, fresh])
        # The slow row of the group's events is as old as what the claim covers and joins it (the run
        # reads the service afterwards); the others wait for the next run. Claiming again takes nothing.
        assert webhook_queue.claim(connection, group, utcnow()) == 4
        assert webhook_queue.claim(connection, group, utcnow()) == 0
    run = fake_run(instance, group.run_key, dg.DagsterRunStatus.SUCCESS)
    (follow_up,) = tick(instance, database)  # the first run is settled; the waiting rows get their own
    assert follow_up.tags["smartplex/webhooks"] == "2" and follow_up.run_key != group.run_key
    with engine.connect() as connection:
        rows = {row.id: row for row in connection.execute(select(webhook_log))}
    assert {i for i, row in rows.items() if row.run_key == follow_up.run_key} == {slow_other["id"], fresh["id"]}
    first = [row for row in rows.values() if row.run_key == group.run_key]
    assert len(first) == 4 and slow["id"] in {row.id for row in first}
    assert {(row.status, row.run_id) for row in first} == {("processed", run.run_id)}


def test_ticks_meet_a_stream_of_rows_and_claim_each_once(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine
) -> None:
    """A writer commits rows one small batch at a time (stamped a little before their commit, as the API
    does) while the sensor ticks and runs end: every row ends in exactly one run, none is lost."""
    import random
    import threading

    pairs = list(EVENTS)
    written: list[uuid.UUID] = []

    def write() -> None:
        rng = random.Random(3)
        with engine.connect() as connection:
            for _ in range(60):
                batch = [_row(*rng.choice(pairs), utcnow() - timedelta(milliseconds=rng.randint(0, 300)))
                         for _ in range(rng.randint(1, 6))]  # fmt: skip
                with connection.begin():
                    connection.execute(insert(webhook_log), batch)
                written.extend(row["id"] for row in batch)

    writer = threading.Thread(target=write)
    writer.start()
    requests: list[dg.RunRequest] = []
    while writer.is_alive() or statuses(engine).get("pending"):
        result = tick(instance, database)
        for request in [] if isinstance(result, dg.SkipReason) else result:
            requests.append(request)
            fake_run(instance, request.run_key, dg.DagsterRunStatus.SUCCESS)  # the run ends at once
    writer.join()
    tick(instance, database)  # settles the last runs

    with engine.connect() as connection:
        rows = connection.execute(select(webhook_log.c.id, webhook_log.c.run_key, webhook_log.c.status)).all()
    assert sorted(row.id for row in rows) == sorted(written)
    assert {row.status for row in rows} == {"processed"}
    claimed = {request.run_key: int(request.tags["smartplex/webhooks"]) for request in requests}
    assert len(claimed) == len(requests)  # no run key asked for twice
    per_key: dict[str, int] = {}
    for row in rows:
        per_key[row.run_key] = per_key.get(row.run_key, 0) + 1
    assert per_key == {key: count for key, count in claimed.items() if count}  # each row in the run that claimed it


def test_a_backlog_is_claimed_oldest_first_in_bounded_slices(engine: Engine) -> None:
    add_rows(engine, [("sonarr", "Download")] * 30 + [("radarr", "MovieAdded")] * 30 + [("plex", "library.new")] * 30)
    tied = utcnow()  # five rows received at the same instant: a slice never splits them
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), [_row("overseerr", "MEDIA_APPROVED", tied) for _ in range(5)])
        first = webhook_queue.pending_groups(connection, limit=40)
        assert {g.instance.id: g.count for g in first} == {"sonarr": 30, "radarr": 10}
        assert [g.run_key for g in webhook_queue.pending_groups(connection, limit=40)] == [g.run_key for g in first]
        # A library with a run in flight does not take the slice: the others' oldest rows do.
        assert {g.instance.id: g.count for g in webhook_queue.pending_groups(connection, busy={Instance.parse("sonarr")}, limit=40)} == {
            "radarr": 30, "plex": 10
        }  # fmt: skip
        assert {g.instance.id: g.count for g in webhook_queue.pending_groups(connection, busy={Instance.parse("sonarr"), Instance.parse("radarr"), Instance.parse("plex")}, limit=3)} == {
            "overseerr": 5
        }  # fmt: skip
        now = utcnow()
        slices = []
        while groups := webhook_queue.pending_groups(connection, limit=40):
            slices.append({g.instance.id: webhook_queue.claim(connection, g, now) for g in groups})
    assert slices == [{"sonarr": 30, "radarr": 10}, {"radarr": 20, "plex": 20}, {"plex": 10, "overseerr": 5}]
    assert statuses(engine) == {"dispatched": 95}


def test_ticks_observe_webhook_log_at_most_once_a_minute(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine
) -> None:
    import json

    add_rows(engine, [("sonarr", "Download")] * 2 + [("radarr", "MovieAdded")])
    now = utcnow()
    done = [_row("plex", "library.new", now - timedelta(seconds=40)) for _ in range(4)]
    for row, seconds in zip(done, (2, 4, 6, 30), strict=True):
        row.update(status="processed", processed=True, processed_at=row["received_at"] + timedelta(seconds=seconds))
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), done)

    first = evaluate(instance, database)  # no cursor: never observed
    assert isinstance(first, dg.SensorResult) and len(first.run_requests or []) == 2
    (observation,) = first.asset_events
    assert observation.asset_key == dg.AssetKey(["webhooks", "webhook_log"])
    metadata = {key: value.value for key, value in observation.metadata.items()}
    assert (metadata["pending"], metadata["dispatched"], metadata["processed"]) == (0, 3, 4)
    assert (metadata["received_sonarr"], metadata["received_radarr"], metadata["received_plex"]) == (2, 1, 4)
    # Nearest rank over 2, 4, 6 and 30 s: p50 the 2nd, p95 the 4th.
    assert abs(metadata["webhook_to_processed_p50_seconds"] - 4) < 0.01
    assert abs(metadata["webhook_to_processed_p95_seconds"] - 30) < 0.01

    for request in first.run_requests or []:
        fake_run(instance, request.run_key, dg.DagsterRunStatus.STARTED)
    again = evaluate(instance, database, cursor=first.cursor)  # observed a moment ago: nothing new
    assert isinstance(again, dg.SkipReason)
    a_while_ago = json.dumps({"observed_at": (now - timedelta(minutes=2)).timestamp()})
    later = evaluate(instance, database, cursor=a_while_ago)
    assert isinstance(later, dg.SensorResult) and later.skip_reason is not None and len(later.asset_events) == 1
    assert json.loads(later.cursor or "{}")["observed_at"] > json.loads(a_while_ago)["observed_at"]


def test_a_running_sensor_claims_as_soon_as_the_run_in_flight_is_settled(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import smartplex_dagster.defs.webhook_sensor as sensor_module

    add_rows(engine, [("sonarr", "Download")] * 2)
    (request,) = tick(instance, database)
    run = fake_run(instance, request.run_key, dg.DagsterRunStatus.STARTED)
    add_rows(engine, [("sonarr", "Rename")] * 3, ago=timedelta(seconds=-1))
    assert isinstance(tick(instance, database), dg.SkipReason)  # a one-off evaluation answers at once

    # The run is settled right after the tick's first look while it watches (as the run's success hook does,
    # while the run itself is still ending), however long the tick took to get there; and the watch is made
    # long enough for any machine, so only a tick that stops looking misses the settling.
    polls: list[bool] = []
    work_appeared = sensor_module._work_appeared

    def watched(*args: object) -> bool:
        polls.append(work_appeared(*args))
        if len(polls) == 1:
            with engine.begin() as connection:
                webhook_queue.settle(connection, request.run_key, run.run_id, None, utcnow())
        return polls[-1]

    monkeypatch.setattr(sensor_module, "_work_appeared", watched)
    monkeypatch.setattr(sensor_module, "WATCH_SECONDS", 30.0)
    # A tick of a sensor that has ticked before watches for work rather than skip at once.
    context = dg.SensorEvaluationContext(
        instance_ref=None,
        last_tick_completion_time=utcnow().timestamp(),
        instance=instance,
        resources={"database": database},
    )
    result = webhook_sensor(context)
    assert polls[:1] == [False], "the tick did not watch, or found work before the run was settled"
    assert polls[-1] is True, "the tick watched on without noticing the settled run"
    assert isinstance(result, dg.SensorResult), result
    (follow_up,) = result.run_requests or []
    assert follow_up.tags["smartplex/webhooks"] == "3" and follow_up.run_key != request.run_key


def test_sync_now_is_started_by_the_next_sensor_tick_exactly_once(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not at the schedule's next 5-minute tick; and the schedule, ticking meanwhile, does not ask again."""
    from smartplex.schema import sync_schedule
    from smartplex.settings import get_settings
    from tests.dagster.test_schedules import evaluate

    for service in ("sonarr", "radarr"):
        monkeypatch.setenv(f"SMARTPLEX_{service.upper()}_URL", "http://127.0.0.1:9")
        monkeypatch.setenv(f"SMARTPLEX_{service.upper()}_API_KEY", "key")
    get_settings.cache_clear()
    try:
        with engine.begin() as connection:
            connection.execute(
                update(sync_schedule).where(sync_schedule.c.service.in_(["sonarr", "radarr", "plex"]))
                .values(sync_requested_at=utcnow())
            )  # fmt: skip
        requests = tick(instance, database)
        assert sorted((r.tags["smartplex/instance"], r.job_name) for r in requests) == [
            ("radarr", "full_refresh"),
            ("sonarr", "full_refresh"),
        ]  # plex is not configured here: its schedule says which variables to set
        assert all(r.tags["smartplex/full_refresh"] == "true" for r in requests)
        assert isinstance(tick(instance, database), dg.SkipReason)  # asked for once
        sonarr = next(r for r in requests if r.tags["smartplex/instance"] == "sonarr")
        fake_run(instance, sonarr.run_key, dg.DagsterRunStatus.STARTED)  # as the daemon launches it
        skipped = evaluate(instance, database, "sonarr", utcnow())
        assert isinstance(skipped, dg.SkipReason)  # the refresh is in flight: no second one
    finally:
        get_settings.cache_clear()
