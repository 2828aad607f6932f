"""The real processes: the API (uvicorn) and dagster-daemon, the simulators posting real webhooks."""

import os
import socket
import time
from datetime import date, timedelta
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func, select

from smartplex import dagster_home, migrate
from smartplex.db import make_engine
from smartplex.processes import Supervisor
from smartplex.schema import overseerr_requests, plex_library_items, radarr_movies, sonarr_series, tautulli_watch_history, webhook_log
from smartplex.simulators.serve import run_simulators
from smartplex.simulators.simulation import Simulation
from smartplex.simulators.universe import Universe
from smartplex.simulators.webhooks import WebhookSender
from smartplex.stack import start_stack
from tests.conftest import ADMIN_SECRET, WEBHOOK_SECRET

pytestmark = [pytest.mark.timeout(600), pytest.mark.filterwarnings("ignore::dagster.BetaWarning")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_webhooks_from_every_source_are_synced_by_the_running_stack(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'smartplex.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    api_port = _free_port()
    simulation = Simulation(Universe(seed=5, size=300, now=int(time.time())))
    supervisor = Supervisor()
    with run_simulators(simulation=simulation) as sims:
        env = {**os.environ, **sims.env(), "SMARTPLEX_DATABASE_URL": database_url, "SMARTPLEX_DATA_DIR": str(tmp_path),
               "SMARTPLEX_WEBHOOK_SECRET": WEBHOOK_SECRET, "SMARTPLEX_ADMIN_SECRET": ADMIN_SECRET,
               "SMARTPLEX_SENSOR_INTERVAL_SECONDS": "2",
               "SMARTPLEX_HISTORY_START": (date.today() - timedelta(days=30)).isoformat(),
               "DAGSTER_HOME": str(dagster_home.prepare(tmp_path))}  # fmt: skip
        try:
            start_stack(supervisor, env, api_port=api_port, dagster_port=None, log_dir=tmp_path / "logs")
            children = set(supervisor.pids())
            simulation.webhooks = WebhookSender.from_template(
                f"http://127.0.0.1:{api_port}/api/webhooks/{{service}}?token={WEBHOOK_SECRET}"
            )
            show = simulation.add_show("End To End Show", seasons=1, episodes_per_season=2)  # sonarr, plex, tautulli
            movie = simulation.add_movie("End To End Movie")  # radarr, plex, tautulli
            play = simulation.record_play(show.episodes[0].rating_key, percent=100)  # plex, tautulli
            request = simulation.request_media(movie_id=movie.id)
            simulation.approve_request(request.id)  # overseerr

            deadline = time.monotonic() + 420
            while True:
                with engine.connect() as connection:
                    counts = dict(connection.execute(
                        select(webhook_log.c.status, func.count()).group_by(webhook_log.c.status)).all())  # fmt: skip
                    sources = set(connection.execute(select(webhook_log.c.source).distinct()).scalars())
                if sources == {"plex", "tautulli", "sonarr", "radarr", "overseerr"} and not (
                    counts.get("pending") or counts.get("dispatched")
                ):
                    break
                assert not supervisor.exited(), supervisor.exited()
                assert time.monotonic() < deadline, f"rows not processed in time: {counts}, {sources}"
                time.sleep(2)
            assert counts.get("failed", 0) == 0, counts
            with engine.connect() as connection:
                def has(table, condition) -> bool:  # type: ignore[no-untyped-def]
                    return connection.execute(select(func.count()).select_from(table).where(condition)).scalar_one() == 1

                assert has(sonarr_series, sonarr_series.c.id == show.id)
                assert has(radarr_movies, radarr_movies.c.id == movie.id)
                assert has(plex_library_items, plex_library_items.c.rating_key == str(movie.rating_key))
                assert has(tautulli_watch_history, tautulli_watch_history.c.row_id == play.id)
                assert has(overseerr_requests, overseerr_requests.c.id == request.id)
            descendants = {c.pid for pid in children for c in psutil.Process(pid).children(recursive=True)}
        finally:
            supervisor.stop()
    leftovers = [pid for pid in children | descendants if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert leftovers == []
