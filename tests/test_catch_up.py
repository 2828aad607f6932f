"""The catch-up, against the simulators over real HTTP, on both engines: a poll finds what each service
changed that no webhook brought, its run makes the table equal the service, an idle poll finds nothing
(in one or two requests), a failed read changes nothing, and the watermark moves only past what was synced."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from smartplex import catch_up
from smartplex.clients import ServiceError
from smartplex.column_types import utcnow
from smartplex.instances import DEFAULT_INSTANCES, Instance
from smartplex.kinds import get_kind
from smartplex.schema import catch_up_found, catch_up_state, webhook_log
from smartplex.sync import SPECS, run_sync
from smartplex_simulators import RunningSimulators, run_simulators
from smartplex_simulators.simulation import Simulation
from smartplex_simulators.universe import Universe
from tests.helpers import live_rows, rows_behind

Change = Callable[[Simulation], None]


@pytest.fixture
def live_sims() -> Iterator[RunningSimulators]:
    """Simulators on the real clock (a catch-up compares the services' times with its watermark), no webhooks."""
    with run_simulators(simulation=Simulation(Universe(seed=21, size=300, now=None))) as running:
        yield running


def _instance(kind: str) -> Instance:
    return Instance(get_kind(kind))


def _full_sync(engine: Engine, sims: RunningSimulators, kinds: tuple[str, ...] = tuple(SPECS)) -> None:
    for kind in kinds:
        with sims.client(kind) as client:
            run_sync(engine, client, SPECS[kind], None)


def _differences(engine: Engine, sims: RunningSimulators, kind: str) -> dict[str, Any]:
    differ, extra = rows_behind(engine, sims, kind)
    return {"differ": differ[:5], "extra": extra[:5]}


def _table(engine: Engine, kind: str) -> dict[Any, dict[str, Any]]:
    return live_rows(engine, kind)


def _catch_up(engine: Engine, sims: RunningSimulators, kind: str) -> catch_up.Finding:
    """One poll and, if it found something, the run it asks for, as the sensor and the asset do them."""
    instance = _instance(kind)
    now = utcnow()
    with engine.begin() as connection:
        catch_up.ensure(connection, [instance])
    with sims.client(kind) as client:
        finding = catch_up.look(engine, client, instance, now)
    run_key = None if finding.idle else f"test-{now.timestamp()}"
    with engine.begin() as connection:
        catch_up.record_poll(connection, finding, now, run_key)
    if run_key is None:
        return finding
    with engine.connect() as connection:
        claim = catch_up.claimed(connection, instance, run_key)
    assert claim is not None
    with sims.client(kind) as client:
        window = None if claim.full else (claim.since, utcnow())
        parts = [{"section_id": section} for section in claim.sections] if claim.full else []
        result = run_sync(engine, client, SPECS[kind], window, hinted_ids=claim.ids, instance=instance, parts=parts)
    with engine.begin() as connection:
        changes = result.counts.inserted + result.counts.updated + result.deleted
        assert catch_up.finish(connection, instance, run_key, "run-1", changes, utcnow())
    return finding


def _synced_at(engine: Engine, plex_type: str) -> dict[str, Any]:
    table = SPECS["plex"].table
    with engine.connect() as connection:
        rows = connection.execute(select(table.c.rating_key, table.c.synced_at).where(table.c.type == plex_type))
        return dict(rows.tuples().all())


def _movie_section(sims: RunningSimulators) -> str:
    with sims.client("plex") as client:
        return next(str(s["key"]) for s in client.sections() if s["type"] == "movie")


def _spare_movie(sims: RunningSimulators) -> Any:
    requested = {id(r.target) for r in sims.universe.requests.values()}
    return next(m for m in sims.universe.movies.values() if id(m) not in requested and m.rating_key is not None)


def _spare_show(sims: RunningSimulators) -> Any:
    requested = {id(r.target) for r in sims.universe.requests.values()}
    return next(s for s in sims.universe.shows.values() if id(s) not in requested and s.rating_key is not None)


def _sonarr(sims: RunningSimulators) -> None:
    sims.simulation.add_show("Caught Show", seasons=1, episodes_per_season=2)
    sims.simulation.delete_series(_spare_show(sims).id)
    show = next(s for s in sims.universe.shows.values() if any(e.file_id for e in s.episodes))
    sims.simulation.delete_episode_file(next(e for e in show.episodes if e.file_id).id)


def _radarr(sims: RunningSimulators) -> None:
    sims.simulation.add_movie("Caught Movie", with_file=False)
    movie = _spare_movie(sims)
    sims.simulation.update_movie(movie.id, title="Renamed Movie")
    others = [m for m in sims.universe.movies.values() if m is not movie and m.file_id is not None]
    sims.simulation.delete_movie_file(others[0].id)
    sims.simulation.delete_movie(others[1].id)


def _plex(sims: RunningSimulators) -> None:
    sims.simulation.add_movie("Caught Plex Movie")
    leaves = [i for i in sims.universe.plex.values() if i.kind in ("movie", "episode")]
    sims.simulation.record_play(leaves[0].rating_key, percent=100)


def _plex_removal(sims: RunningSimulators) -> None:
    sims.simulation.delete_movie(_spare_movie(sims).id)  # Plex records no removal: the count check finds it


def _tautulli(sims: RunningSimulators) -> None:
    leaves = [i for i in sims.universe.plex.values() if i.kind in ("movie", "episode")]
    for item, percent in zip(leaves[:3], (100, 95, 40), strict=True):
        sims.simulation.record_play(item.rating_key, percent=percent)


def _overseerr(sims: RunningSimulators) -> None:
    request = sims.simulation.request_media(movie_id=_spare_movie(sims).id)
    sims.simulation.approve_request(request.id)


CHANGES: dict[str, tuple[str, Callable[[RunningSimulators], None]]] = {
    "sonarr": ("sonarr", _sonarr),
    "radarr": ("radarr", _radarr),
    "plex": ("plex", _plex),
    "plex-removal": ("plex", _plex_removal),
    "tautulli": ("tautulli", _tautulli),
    "overseerr": ("overseerr", _overseerr),
}


@pytest.mark.parametrize("case", sorted(CHANGES))
def test_changes_no_webhook_announced_reach_the_table(engine: Engine, live_sims: RunningSimulators, case: str) -> None:
    kind, change = CHANGES[case]
    _full_sync(engine, live_sims)
    assert _catch_up(engine, live_sims, kind).idle  # nothing changed since the full refresh
    episodes_synced = _synced_at(engine, "episode")
    change(live_sims)
    assert _differences(engine, live_sims, kind) != {"differ": [], "extra": []}  # the table is behind
    finding = _catch_up(engine, live_sims, kind)
    assert not finding.idle and (finding.full or finding.unannounced > 0)  # a full refresh counts when it ends
    assert finding.full == (case == "plex-removal")
    if case == "plex-removal":  # a refresh of the movie section alone: the show section's rows are untouched
        assert finding.sections == [_movie_section(live_sims)]
        assert _synced_at(engine, "episode") == episodes_synced
    assert _differences(engine, live_sims, kind) == {"differ": [], "extra": []}
    assert _catch_up(engine, live_sims, kind).idle  # synced: the overlap sees it again, and it is not a change
    with engine.connect() as connection:
        counts = catch_up.unannounced_counts(connection, utcnow())
    assert counts[kind]["24h"] >= 1 and counts[kind]["7d"] == counts[kind]["24h"]


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_an_idle_poll_is_one_or_two_requests(engine: Engine, live_sims: RunningSimulators, kind: str) -> None:
    _full_sync(engine, live_sims)
    _catch_up(engine, live_sims, kind)  # the first poll of Sonarr/Radarr keeps the listing's digest
    with engine.connect() as connection:
        before = catch_up.read(connection, _instance(kind))
    assert before is not None and before["watermark"] is not None
    with live_sims.client(kind) as client:
        finding = catch_up.look(engine, client, _instance(kind), utcnow())
        requests = client.stats.requests
    assert finding.idle
    sections = 2  # the simulated Plex has a movie and a show section: the section list, then two each
    assert requests == {"plex": 1 + 2 * sections, "sonarr": 2, "radarr": 2}.get(kind, 1)


def test_a_webhook_and_the_catch_up_apply_a_change_once(engine: Engine, live_sims: RunningSimulators) -> None:
    """The webhook's run synced the change: the catch-up finds the row as the service has it, and no run."""
    _full_sync(engine, live_sims)
    _catch_up(engine, live_sims, "radarr")
    movie = live_sims.simulation.add_movie("Announced Movie", with_file=False)
    with engine.begin() as connection:
        connection.execute(insert(webhook_log).values(source="radarr", event_type="MovieAdded",
                                                      payload={"movie": {"id": movie.id}}, status="processed",
                                                      processed=True))  # fmt: skip
    with live_sims.client("radarr") as client:  # the webhook's run
        run_sync(engine, client, SPECS["radarr"], (utcnow() - timedelta(days=7), utcnow()), hinted_ids=[movie.id])
    before = _table(engine, "radarr")
    finding = _catch_up(engine, live_sims, "radarr")
    assert finding.idle and _table(engine, "radarr") == before


def test_a_failed_read_deletes_nothing_and_keeps_the_watermark(engine: Engine, live_sims: RunningSimulators) -> None:
    _full_sync(engine, live_sims)
    _catch_up(engine, live_sims, "overseerr")
    with engine.connect() as connection:
        mark = catch_up.read(connection, _instance("overseerr"))["watermark"]  # type: ignore[index]
    live_sims.simulation.universe.requests.clear()  # the service now lists no request at all ...
    live_sims.simulation.faults["overseerr"].update(error_rate=1.0)  # ... but cannot be read
    before = _table(engine, "overseerr")
    with pytest.raises(ServiceError), live_sims.client("overseerr", retry=_one_try()) as client:
        catch_up.look(engine, client, _instance("overseerr"), utcnow())
    with engine.begin() as connection:
        catch_up.record_error(connection, _instance("overseerr"), "unreachable", utcnow())
    assert _table(engine, "overseerr") == before
    with engine.connect() as connection:
        assert catch_up.read(connection, _instance("overseerr"))["watermark"] == mark  # type: ignore[index]


def test_a_crash_mid_catch_up_loses_nothing(engine: Engine, live_sims: RunningSimulators) -> None:
    """The run's process died before it synced: the watermark stays, the next poll finds the same changes."""
    _full_sync(engine, live_sims)
    _catch_up(engine, live_sims, "sonarr")
    live_sims.simulation.add_show("Crash Show", seasons=1, episodes_per_season=2)
    instance, now = _instance("sonarr"), utcnow()
    with live_sims.client("sonarr") as client:
        finding = catch_up.look(engine, client, instance, now)
    with engine.begin() as connection:
        mark = catch_up.read(connection, instance)["watermark"]  # type: ignore[index]
        catch_up.record_poll(connection, finding, now, "lost-run")
    # A restart: a new engine, the run ended without finishing; the sensor lets go of it.
    engine.dispose()
    with engine.begin() as connection:
        assert catch_up.read(connection, instance)["run_key"] == "lost-run"  # type: ignore[index]
        catch_up.abandon(connection, instance, "lost-run", "the run's worker died")
        assert catch_up.read(connection, instance)["watermark"] == mark  # type: ignore[index]
        assert not catch_up.finish(connection, instance, "lost-run", "run-x", 1, utcnow())  # no longer in flight
    again = _catch_up(engine, live_sims, "sonarr")
    assert sorted(again.ids, key=str) == sorted(finding.ids, key=str) and not again.idle
    assert _differences(engine, live_sims, "sonarr") == {"differ": [], "extra": []}
    with engine.connect() as connection:
        assert catch_up.read(connection, instance)["watermark"] > mark  # type: ignore[index]


def test_an_instance_is_due_on_its_interval_at_start_and_every_minute_while_unhealthy() -> None:
    now, started = utcnow(), utcnow() - timedelta(hours=1)
    row = {
        "enabled": True,
        "run_key": None,
        "polled_at": now - timedelta(minutes=2),
        "interval_minutes": 5,
        "health": None,
    }
    assert not catch_up.is_due(row, now, started)
    assert catch_up.is_due({**row, "polled_at": now - timedelta(minutes=5)}, now, started)
    assert catch_up.is_due({**row, "polled_at": None}, now, started)
    assert catch_up.is_due(row, now, now - timedelta(seconds=1))  # polled before this process started
    assert catch_up.is_due({**row, "health": "Notifications unavailable due to failures: SmartPlex"}, now, started)
    assert not catch_up.is_due({**row, "enabled": False, "polled_at": None}, now, started)
    assert not catch_up.is_due({**row, "run_key": "k", "polled_at": None}, now, started)


def test_the_state_has_a_row_per_instance(engine: Engine) -> None:
    with engine.begin() as connection:
        catch_up.ensure(connection, DEFAULT_INSTANCES)
        catch_up.ensure(connection, DEFAULT_INSTANCES)  # again: nothing new
        rows = connection.execute(select(catch_up_state)).mappings().all()
        assert {(r["service"], r["instance"]) for r in rows} == {(i.kind.name, i.name) for i in DEFAULT_INSTANCES}
        assert all(r["enabled"] and r["interval_minutes"] == 5 and r["watermark"] is None for r in rows)
        assert connection.execute(select(catch_up_found)).first() is None


def _one_try() -> Any:
    from smartplex.clients import RetryPolicy

    return RetryPolicy(attempts=1)


def test_the_api_starting_makes_every_instance_due(engine: Engine, database_url: str, tmp_path: Any) -> None:
    """Whatever the senders posted while the API was down is lost: its start brings every poll forward."""
    from fastapi.testclient import TestClient

    from tests.conftest import make_settings
    from webhook_api.app import create_app

    with engine.begin() as connection:
        catch_up.ensure(connection, DEFAULT_INSTANCES)
        connection.execute(catch_up_state.update().values(polled_at=utcnow()))
        connection.execute(
            catch_up_state.update().where(catch_up_state.c.service == "plex").values(run_key="in-flight")
        )
    with TestClient(create_app(make_settings(database_url, tmp_path))):
        pass
    with engine.connect() as connection:
        polled = {r["service"]: r["polled_at"] for r in catch_up.rows(connection)}
    assert polled.pop("plex") is not None  # a run in flight: its poll comes after it
    assert polled and all(at is None for at in polled.values())


def test_a_disabled_webhook_is_read_from_the_senders_health_check(engine: Engine, live_sims: RunningSimulators) -> None:
    """Sonarr disables a failing webhook and says so in /api/v3/health: the poll keeps its message (the
    status and the admin page show it), and the instance is then polled every minute."""
    from datetime import UTC, datetime

    from smartplex_simulators.webhooks import WebhookSender

    moment = [datetime.now(UTC)]
    sender = WebhookSender.from_template("http://127.0.0.1:9/api/webhooks/{kind}", clock=lambda: moment[0])
    sender.started = moment[0] - timedelta(hours=1)  # past Sonarr's first quarter hour
    live_sims.simulation.webhooks = sender
    _full_sync(engine, live_sims, ("sonarr",))
    for _ in range(3):  # failures over more than the 5-minute grace: the connection is disabled
        live_sims.simulation.add_show(None, seasons=1, episodes_per_season=1)
        moment[0] += timedelta(minutes=3)
    assert sender.disabled("sonarr")
    finding = _catch_up(engine, live_sims, "sonarr")
    assert finding.health is not None and "unavailable due to failures" in finding.health
    with engine.connect() as connection:
        message, since = catch_up.unhealthy(connection)["sonarr"]
        row = catch_up.read(connection, _instance("sonarr"))
    assert message == finding.health and since is not None and row is not None
    assert catch_up.is_due(
        {**row, "polled_at": utcnow() - timedelta(seconds=61)}, utcnow(), utcnow() - timedelta(hours=1)
    )
    assert _differences(engine, live_sims, "sonarr") == {"differ": [], "extra": []}  # and the shows it dropped are in

    live_sims.simulation.webhooks = WebhookSender({})  # the webhook fixed: healthy again
    _catch_up(engine, live_sims, "sonarr")
    with engine.connect() as connection:
        assert "sonarr" not in catch_up.unhealthy(connection)
