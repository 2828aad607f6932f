"""Webhooks lost at the sender, and the tables still equal the services without a full refresh: the
catch-up finds every change.

Real processes: the API, dagster-daemon and its runs, the simulators on the real clock. Every webhook
of the burst is lost (they go to a port nobody listens on, as when the API is down), on both engines.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import Engine, func, select

from smartplex import catch_up, migrate
from smartplex.column_types import utcnow
from smartplex.dagster_names import CATCH_UP_TRIGGER, FULL_REFRESH_TAG, TRIGGER_TAG
from smartplex.db import make_engine
from smartplex.instances import DEFAULT_INSTANCES
from smartplex.schema import catch_up_found, webhook_log
from smartplex.sync import SPECS, run_sync
from smartplex_cli import dagster_home
from smartplex_cli.stack import start_stack
from smartplex_cli.supervisor import Supervisor, free_port
from smartplex_simulators.serve import RunningSimulators, run_simulators
from smartplex_simulators.simulation import Simulation
from smartplex_simulators.universe import Universe
from smartplex_simulators.webhooks import WebhookSender
from tests.conftest import ADMIN_SECRET, WEBHOOK_SECRET
from tests.helpers import rows_behind

pytestmark = [pytest.mark.timeout(900), pytest.mark.filterwarnings("ignore::dagster.BetaWarning")]


@dataclass
class Stack:
    engine: Engine
    sims: RunningSimulators
    supervisor: Supervisor
    #: The API's base URL.
    api: str


def _behind(engine: Engine, sims: RunningSimulators) -> dict[str, int]:
    """Per kind, how many rows differ from the service, are missing, or are no longer there."""
    return {kind: sum(map(len, rows_behind(engine, sims, kind))) for kind in SPECS}


def _changes(simulation: Simulation) -> None:
    """About fifty changes across every service: additions, deletions, file changes, plays, requests,
    an edit, and a movie leaving Plex (Plex records no removal)."""
    universe: Universe = simulation.universe
    requested = {id(r.target) for r in universe.requests.values()}
    spare = [m for m in universe.movies.values() if id(m) not in requested and m.rating_key is not None]
    for index in range(4):
        simulation.add_movie(f"Lost Movie {index}")
    simulation.add_movie("Lost Wanted Movie", with_file=False)
    simulation.delete_movie(spare[0].id)  # Radarr, and a removal from Plex
    simulation.delete_movie_file(spare[1].id)
    simulation.update_movie(spare[2].id, title="An Edited Title")
    simulation.add_show("Lost Show", seasons=1, episodes_per_season=4)
    gone = next(s for s in universe.shows.values() if id(s) not in requested and s.rating_key is not None)
    simulation.delete_series(gone.id)
    show = next(s for s in universe.shows.values() if s is not gone and any(e.file_id for e in s.episodes))
    simulation.delete_episode_file(next(e for e in show.episodes if e.file_id).id)
    leaves = [i for i in universe.plex.values() if i.kind in ("movie", "episode")]
    for item, percent in zip(leaves[-12:], [100, 95, 40] * 4, strict=True):
        simulation.record_play(item.rating_key, percent=percent)
    for movie in spare[3:6]:
        request = simulation.request_media(movie_id=movie.id)
        simulation.approve_request(request.id)


@pytest.fixture
def lost_stack(database_url: str, tmp_path: Path) -> Iterator[Stack]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    supervisor = Supervisor()
    with run_simulators(simulation=Simulation(Universe(seed=41, size=300, now=None))) as sims:
        for kind, spec in SPECS.items():  # where a user starts: one full refresh behind them
            with sims.client(kind) as client:
                run_sync(engine, client, spec, None)
        with engine.begin() as connection:  # the shortest interval, to keep the test short
            for instance in DEFAULT_INSTANCES:
                catch_up.change(connection, instance, interval_minutes=1)
        env = {**os.environ, **sims.env(), "SMARTPLEX_DATABASE_URL": database_url, "SMARTPLEX_DATA_DIR": str(tmp_path),
               "SMARTPLEX_WEBHOOK_SECRET": WEBHOOK_SECRET, "SMARTPLEX_ADMIN_SECRET": ADMIN_SECRET,
               "SMARTPLEX_SENSOR_INTERVAL_SECONDS": "2",
               "SMARTPLEX_HISTORY_START": (date.today() - timedelta(days=30)).isoformat(),
               "DAGSTER_HOME": str(dagster_home.prepare(tmp_path))}  # fmt: skip
        try:
            api_port = free_port()
            start_stack(supervisor, env, api_port=api_port, dagster_port=None, log_dir=tmp_path / "logs")
            # The API is down, as far as the senders can tell: every webhook is lost.
            sims.simulation.webhooks = WebhookSender.from_template(
                f"http://127.0.0.1:{free_port()}/api/webhooks/{{kind}}"
            )
            yield Stack(engine, sims, supervisor, f"http://127.0.0.1:{api_port}")
        finally:
            supervisor.stop()
            engine.dispose()


def test_every_change_whose_webhook_was_lost_reaches_the_tables(
    lost_stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, sims, supervisor = lost_stack.engine, lost_stack.sims, lost_stack.supervisor
    _changes(sims.simulation)
    deliveries = sims.simulation.webhooks.deliveries
    assert deliveries and all(d.status is None for d in deliveries)  # not one arrived
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(webhook_log)).scalar_one() == 0
    behind = _behind(engine, sims)
    assert all(behind.values()), behind  # every table is behind its service

    changed_at = time.monotonic()
    deadline = changed_at + 480
    while any(behind.values()):
        assert not supervisor.exited(), supervisor.exited()
        assert time.monotonic() < deadline, f"tables still behind their services: {behind}"
        time.sleep(5)
        behind = _behind(engine, sims)
    caught_up_in = time.monotonic() - changed_at

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
    triggers = {run.tags.get(TRIGGER_TAG) for run in runs}
    assert triggers == {CATCH_UP_TRIGGER}, triggers  # no webhook run, no schedule: the catch-up alone
    full = [run.tags.get("smartplex/instance") for run in runs if run.tags.get(FULL_REFRESH_TAG) == "true"]
    assert set(full) <= {"plex", "overseerr"}, full  # only where a count check found a removal
    with engine.connect() as connection:
        unannounced = catch_up.unannounced_counts(connection, utcnow())
        assert connection.execute(select(func.count()).select_from(catch_up_found)).scalar_one() >= len(SPECS)
    assert all(unannounced.get(kind, {}).get("24h", 0) > 0 for kind in SPECS), unannounced
    print(f"caught up {caught_up_in:.0f} s after the changes")


def test_a_webhook_sonarr_disabled_for_a_wrong_secret_loses_nothing(lost_stack: Stack) -> None:
    """Sonarr's webhook carries a wrong secret: the API refuses it, Sonarr disables it after its grace and
    drops every event. Its health check says so; the status shows it, and every change still arrives."""
    from datetime import UTC, datetime

    import httpx

    engine, sims, supervisor, api = lost_stack.engine, lost_stack.sims, lost_stack.supervisor, lost_stack.api
    moment = [datetime.now(UTC)]
    targets = {i.id: f"{api}/api/webhooks/{i.kind.name}?token={WEBHOOK_SECRET}" for i in DEFAULT_INSTANCES}
    targets["sonarr"] = f"{api}/api/webhooks/sonarr?token=a-wrong-secret"
    sender = WebhookSender(targets, clock=lambda: moment[0])
    sender.started = moment[0] - timedelta(hours=1)  # Sonarr has run for a while
    sims.simulation.webhooks = sender
    for index in range(4):  # refused 3 minutes apart, past the 5-minute grace: disabled; the last one dropped
        moment[0] += timedelta(minutes=3 if index else 0)
        sims.simulation.add_show(f"Refused Show {index}", seasons=1, episodes_per_season=1)
    assert sender.disabled("sonarr")
    assert [d.status for d in sender.deliveries if d.instance_id == "sonarr"][:2] == [401, 401]
    assert any(d.error and "Temporarily ignoring" in d.error for d in sender.deliveries)

    deadline = time.monotonic() + 300
    while _behind(engine, sims)["sonarr"]:
        assert not supervisor.exited(), supervisor.exited()
        assert time.monotonic() < deadline, "Sonarr's table still behind"
        time.sleep(3)
    status = httpx.get(f"{api}/api/webhooks/status", headers={"Authorization": f"Bearer {ADMIN_SECRET}"}).json()
    sonarr = status["catch_up"]["sonarr"]
    assert "unavailable due to failures" in (sonarr["sender_webhook_disabled"] or ""), sonarr
    assert sonarr["unannounced_24h"] >= 4
