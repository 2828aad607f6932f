"""After a burst of real changes and the incremental syncs their webhooks trigger, every synced table
equals what the services' APIs return, with no full refresh in between.

Real processes: the API, dagster-daemon and its runs, the simulators with ``smartplex simulate``'s
default clock (the real one), posting each service's own webhooks.
"""

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from smartplex import migrate
from smartplex.db import make_engine
from smartplex.schema import webhook_log
from smartplex.sync import SPECS, run_sync
from smartplex_cli import dagster_home
from smartplex_cli.stack import start_stack
from smartplex_cli.supervisor import Supervisor, free_port
from smartplex_simulators.serve import RunningSimulators, run_simulators
from smartplex_simulators.simulation import Simulation
from smartplex_simulators.universe import Universe
from smartplex_simulators.webhooks import WebhookSender
from tests.conftest import ADMIN_SECRET, WEBHOOK_SECRET

pytestmark = [pytest.mark.timeout(900), pytest.mark.filterwarnings("ignore::dagster.BetaWarning")]


@dataclass
class Stack:
    engine: Engine
    sims: RunningSimulators
    supervisor: Supervisor


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    database_url = f"sqlite:///{tmp_path / 'smartplex.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    supervisor = Supervisor()
    with run_simulators(seed=9, size=300, now=None) as sims:
        for service, spec in SPECS.items():  # where a user starts: one full refresh behind them
            with sims.client(service) as client:
                run_sync(engine, client, spec, None)
        env = {**os.environ, **sims.env(), "SMARTPLEX_DATABASE_URL": database_url, "SMARTPLEX_DATA_DIR": str(tmp_path),
               "SMARTPLEX_WEBHOOK_SECRET": WEBHOOK_SECRET, "SMARTPLEX_ADMIN_SECRET": ADMIN_SECRET,
               "SMARTPLEX_SENSOR_INTERVAL_SECONDS": "2",
               "SMARTPLEX_HISTORY_START": (date.today() - timedelta(days=30)).isoformat(),
               "DAGSTER_HOME": str(dagster_home.prepare(tmp_path))}  # fmt: skip
        try:
            api_port = free_port()
            start_stack(supervisor, env, api_port=api_port, dagster_port=None, log_dir=tmp_path / "logs")
            sims.simulation.webhooks = WebhookSender.from_template(
                f"http://127.0.0.1:{api_port}/api/webhooks/{{kind}}?token={WEBHOOK_SECRET}"
            )
            yield Stack(engine, sims, supervisor)
        finally:
            supervisor.stop()
            engine.dispose()


def _burst(simulation: Simulation) -> set[str]:
    """The changes a household makes in an evening; returns the Plex ratingKeys that left Plex without
    a Plex webhook (no service announces a removal from Plex: the full refresh reconciles those)."""
    universe: Universe = simulation.universe
    requested = {id(r.target) for r in universe.requests.values()}
    spare = [m for m in universe.movies.values() if id(m) not in requested and m.rating_key is not None]
    left_plex: set[str] = set()
    for index in range(3):
        simulation.add_movie(f"Evening Movie {index}")
    for movie in spare[:2]:
        left_plex.add(str(movie.rating_key))
        simulation.delete_movie(movie.id)
    left_plex.add(str(spare[2].rating_key))
    simulation.delete_movie_file(spare[2].id)
    simulation.add_show("Evening Show", seasons=1, episodes_per_season=3)
    gone = next(s for s in universe.shows.values() if id(s) not in requested and s.rating_key is not None)
    left_plex |= {str(gone.rating_key)} | {str(e.rating_key) for e in gone.episodes if e.rating_key is not None}
    simulation.delete_series(gone.id)
    leaves = [i for i in universe.plex.values() if i.kind in ("movie", "episode")]
    for item, percent in zip(leaves[-3:], (100, 95, 40), strict=True):
        simulation.record_play(item.rating_key, percent=percent)
    target = next(m for m in universe.movies.values() if id(m) not in requested and m.rating_key is not None)
    request = simulation.request_media(movie_id=target.id)
    simulation.approve_request(request.id)
    return left_plex


def _wait_until_finished(stack: Stack, sent: int) -> dict[str, int]:
    deadline = time.monotonic() + 600
    while True:
        with stack.engine.connect() as connection:
            counts = dict(
                connection.execute(select(webhook_log.c.status, func.count()).group_by(webhook_log.c.status)).all()
            )
        if sum(counts.values()) == sent and not (counts.get("pending") or counts.get("dispatched")):
            return counts
        assert not stack.supervisor.exited(), stack.supervisor.exited()
        assert time.monotonic() < deadline, f"rows not finished in time: {counts}"
        time.sleep(2)


def _table(engine: Engine, service: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    spec = SPECS[service]
    with engine.connect() as connection:
        rows = connection.execute(select(spec.table).where(spec.table.c.deleted_at.is_(None))).mappings()
        return {tuple(r[k] for k in spec.key): dict(r) for r in rows}


def _api(sims: RunningSimulators, service: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    spec = SPECS[service]
    scope = {"server_id": sims.universe.machine_id} if service == "plex" else {}
    with sims.client(service) as client:
        rows = [{**scope, **spec.to_row(item, scope)} for item in client.iter_all()]
    return {tuple(r[k] for k in spec.key): r for r in rows}


def test_after_a_burst_of_changes_every_table_equals_the_services(stack: Stack) -> None:
    left_plex = _burst(stack.sims.simulation)
    deliveries = stack.sims.simulation.webhooks.deliveries
    assert deliveries and all(d.status == 202 for d in deliveries), deliveries
    counts = _wait_until_finished(stack, len(deliveries))
    assert set(counts) <= {"processed", "ignored"}, counts

    for service in SPECS:
        table, api = _table(stack.engine, service), _api(stack.sims, service)
        different = {key: (table.get(key), row) for key, row in api.items()
                     if key not in table or any(table[key][c] != v for c, v in row.items())}  # fmt: skip
        assert different == {}, f"{service}: rows that differ from the service: {list(different.items())[:3]}"
        extra = {key[-1] for key in table.keys() - api.keys()}
        # Only what left Plex silently may still be there (the catch-up's count check finds it at its next
        # poll, tests/test_catch_up_end_to_end.py); nothing else.
        assert extra <= (left_plex if service == "plex" else set()), f"{service}: rows the service no longer has"
