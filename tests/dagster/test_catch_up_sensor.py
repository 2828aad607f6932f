"""The catch-up sensor with a real database, real simulators and a Dagster instance: idle polls launch no
run and store nothing in Dagster; a change no webhook announced becomes one catch-up run, whose success
moves the watermark; a failed one leaves it."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest
from sqlalchemy import Engine, update

from smartplex import catch_up
from smartplex.dagster_names import CATCH_UP_JOB, CATCH_UP_TRIGGER, RUN_KEY_TAG, TRIGGER_TAG, resource_key
from smartplex.instances import Instance
from smartplex.schema import catch_up_state, radarr_movies
from smartplex.settings import get_settings
from smartplex.sync import SPECS, run_sync
from smartplex_dagster.definitions import library_assets
from smartplex_dagster.defs.catch_up import catch_up_sensor
from smartplex_dagster.defs.resources import DatabaseResource, ServiceResource
from smartplex_dagster.defs.run_requests import catch_up_job
from smartplex_simulators import RunningSimulators, run_simulators
from smartplex_simulators.simulation import Simulation
from smartplex_simulators.universe import Universe

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning")
RADARR = Instance.parse("radarr")


@pytest.fixture
def live_sims(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningSimulators]:
    """Simulators on the real clock, and the settings pointing at them."""
    with run_simulators(simulation=Simulation(Universe(seed=31, size=300, now=None))) as running:
        for name, value in running.env().items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        yield running
    get_settings.cache_clear()


@pytest.fixture
def resources(database: DatabaseResource, live_sims: RunningSimulators) -> dict:
    values: dict = {"database": database}
    for name, url in live_sims.urls.items():
        values[resource_key(Instance.parse(name))] = ServiceResource(
            instance=name, url=url, credential=live_sims.keys[name]
        )
    return values


def _full_sync(engine: Engine, sims: RunningSimulators) -> None:
    """Where a user starts: every library synced once."""
    for kind, spec in SPECS.items():
        with sims.client(kind) as client:
            run_sync(engine, client, spec, None)


def _evaluate(instance: dg.DagsterInstance, database: DatabaseResource) -> dg.SensorResult | dg.SkipReason:
    return catch_up_sensor(dg.build_sensor_context(instance=instance, resources={"database": database}))


def _make_due(engine: Engine) -> None:
    """As if each instance's interval had gone by."""
    with engine.begin() as connection:
        connection.execute(update(catch_up_state).values(polled_at=None))


def _execute(request: dg.RunRequest, resources: dict, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions(assets=library_assets, jobs=[catch_up_job], resources=resources)
    assert request.job_name == CATCH_UP_JOB and request.asset_selection is not None
    job = defs.resolve_job_def(CATCH_UP_JOB).get_subset(
        asset_selection=set(request.asset_selection), asset_check_selection=set()
    )
    tags = {**request.tags, RUN_KEY_TAG: request.run_key or ""}
    return job.execute_in_process(tags=tags, instance=instance, raise_on_error=False)


def test_idle_polls_launch_no_run_and_store_nothing_in_dagster(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine, live_sims: RunningSimulators
) -> None:
    _full_sync(engine, live_sims)
    for _ in range(12):
        _make_due(engine)
        result = _evaluate(instance, database)
        assert isinstance(result, dg.SkipReason), result
        assert result.skip_message is not None and "nothing changed" in result.skip_message
    assert instance.get_runs_count() == 0
    assert (
        instance.event_log_storage.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_OBSERVATION)) == []
    )
    with engine.connect() as connection:
        rows = catch_up.rows(connection)
    assert {r["library"] for r in rows} == {i.id for i in get_settings().service_instances}
    assert all(r["watermark"] is not None and r["run_key"] is None and r["last_error"] is None for r in rows)


def test_a_change_no_webhook_announced_becomes_one_catch_up_run(
    instance: dg.DagsterInstance,
    database: DatabaseResource,
    engine: Engine,
    live_sims: RunningSimulators,
    resources: dict,
) -> None:
    _full_sync(engine, live_sims)
    _evaluate(instance, database)  # the first poll: the Sonarr and Radarr listings' digests
    movie = live_sims.simulation.add_movie("Unannounced", with_file=False)  # no webhook target: none sent
    _make_due(engine)
    result = _evaluate(instance, database)
    assert isinstance(result, dg.SensorResult) and len(result.run_requests or []) == 1, result
    request = (result.run_requests or [])[0]
    assert request.tags[TRIGGER_TAG] == CATCH_UP_TRIGGER and request.tags["smartplex/instance"] == "radarr"
    assert isinstance(_evaluate(instance, database), dg.SkipReason)  # in flight: not polled again meanwhile
    with engine.connect() as connection:
        mark = catch_up.read(connection, RADARR)["watermark"]  # type: ignore[index]

    assert _execute(request, resources, instance).success
    with engine.connect() as connection:
        state = catch_up.read(connection, RADARR)
        found = catch_up.unannounced_counts(connection, state["polled_at"])  # type: ignore[index]
        assert connection.execute(radarr_movies.select().where(radarr_movies.c.id == movie.id)).first() is not None
    assert state is not None and state["run_key"] is None and state["watermark"] > mark
    assert found["radarr"] == {"24h": 1, "7d": 1}


def test_a_failed_catch_up_run_leaves_the_watermark_and_is_looked_at_again(
    instance: dg.DagsterInstance,
    database: DatabaseResource,
    engine: Engine,
    live_sims: RunningSimulators,
    resources: dict,
) -> None:
    _full_sync(engine, live_sims)
    _evaluate(instance, database)
    live_sims.simulation.add_movie("Unlucky", with_file=False)
    _make_due(engine)
    result = _evaluate(instance, database)
    assert isinstance(result, dg.SensorResult)
    with engine.connect() as connection:
        mark = catch_up.read(connection, RADARR)["watermark"]  # type: ignore[index]
    live_sims.simulation.faults["radarr"].update(error_rate=1.0)  # the run cannot read Radarr
    assert not _execute((result.run_requests or [])[0], resources, instance).success
    live_sims.simulation.faults["radarr"].clear()
    _evaluate(instance, database)  # lets go of the failed run
    with engine.connect() as connection:
        state = catch_up.read(connection, RADARR)
    assert state is not None and state["run_key"] is None and state["watermark"] == mark and state["last_error"]
    _make_due(engine)
    again = _evaluate(instance, database)
    assert isinstance(again, dg.SensorResult) and len(again.run_requests or []) == 1  # the same change, found again


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the sensor's time, whatever the engine
def test_hung_services_leave_the_rest_to_the_next_tick(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine, live_sims: RunningSimulators
) -> None:
    """Dagster gives an evaluation 60 s: a tick stops starting polls after its budget, and the instances
    left are polled at the next tick rather than the tick failing."""
    import time

    _full_sync(engine, live_sims)
    for hung in ("sonarr", "radarr"):  # each poll waits out its timeout twice
        live_sims.simulation.faults[hung].update(timeout_rate=1.0, hang_seconds=30.0)
    began = time.monotonic()
    result = _evaluate(instance, database)
    took = time.monotonic() - began
    assert isinstance(result, dg.SkipReason) and "overseerr: polled at the next tick" in (result.skip_message or "")
    assert took < 55, took
    with engine.connect() as connection:
        rows = {r["library"]: r for r in catch_up.rows(connection)}
    assert rows["overseerr"]["polled_at"] is None and rows["radarr"]["last_error"]
    for hung in ("sonarr", "radarr"):
        live_sims.simulation.faults[hung].clear()
    assert "overseerr" in (_evaluate(instance, database).skip_message or "").split("nothing changed: ")[-1]  # type: ignore[union-attr]


def test_a_webhook_sonarr_disables_is_caught_up_at_once(
    instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine, live_sims: RunningSimulators
) -> None:
    """Between polls the sensor asks Sonarr's health once a minute; when it names our webhook disabled,
    the poll is due at once (Sonarr drops every event meanwhile), and then every minute."""
    from datetime import UTC, datetime, timedelta

    from smartplex_dagster.defs import catch_up as sensor_module
    from smartplex_simulators.webhooks import WebhookSender

    _full_sync(engine, live_sims)
    assert isinstance(_evaluate(instance, database), dg.SkipReason)  # every instance polled: nothing due now
    moment = [datetime.now(UTC)]
    sender = WebhookSender.from_template("http://127.0.0.1:9/api/webhooks/{kind}", clock=lambda: moment[0])
    sender.started = moment[0] - timedelta(hours=1)
    live_sims.simulation.webhooks = sender
    for _ in range(3):  # failures past Sonarr's 5-minute grace: it disables the webhook
        live_sims.simulation.add_show(None, seasons=1, episodes_per_season=1)
        moment[0] += timedelta(minutes=3)
    assert sender.disabled("sonarr")
    sensor_module._health_checked.clear()  # a minute later
    result = _evaluate(instance, database)
    assert isinstance(result, dg.SensorResult), result
    assert [r.tags["smartplex/instance"] for r in result.run_requests or []] == ["sonarr"]
    with engine.connect() as connection:
        state = catch_up.read(connection, Instance.parse("sonarr"))
    assert state is not None and "unavailable due to failures" in (state["health"] or "")
