"""``smartplex demo``: the stack (:mod:`smartplex_cli.stack`) on SQLite against the simulators.

The simulators serve a seeded media universe, with a second, 4K Sonarr and Radarr holding a third of
its titles, and a stream of realistic events (new episodes, plays, requests) makes them send
webhooks, so the Dagster UI fills with sensor-triggered runs within a minute.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shlex
import threading
import time
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine

from smartplex import migrate
from smartplex.db import make_engine
from smartplex.instances import Instance
from smartplex.settings import get_settings
from smartplex_cli import dagster_home
from smartplex_cli.stack import check_ports, print_running, running_rows, start_stack, stop_stack, wait_forever
from smartplex_cli.supervisor import Supervisor, stop_on_signals


def _demo_secrets(data_dir: Path) -> dict[str, str]:
    """Random secrets, kept in the data directory so a restart keeps the same URLs working."""
    path = data_dir / "demo-secrets.json"
    if path.exists():
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    values = {"webhook": secrets.token_urlsafe(16), "admin": secrets.token_urlsafe(16)}
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def stream_events(simulation: Any, stop: threading.Event, interval: float, seed: int) -> None:
    """Realistic activity: new episodes and movies arrive, people watch, people ask for things."""
    rng = random.Random(seed)
    universe = simulation.universe
    while not stop.wait(interval):
        simulation.advance_clock(int(interval))
        choice = rng.random()
        try:
            if choice < 0.25:
                simulation.add_show(seasons=1, episodes_per_season=rng.randint(1, 3))
            elif choice < 0.4:
                simulation.add_movie()
            elif choice < 0.8:
                leaves = [k for k, item in universe.plex.items() if item.kind != "show"]
                simulation.record_play(rng.choice(leaves), percent=rng.choice((35, 92, 100)))
            else:
                movie = rng.choice(list(universe.movies.values()))
                request = simulation.request_media(movie_id=movie.id)
                simulation.approve_request(request.id)
        except Exception as exc:  # the demo goes on; a failed event is only noise
            click.echo(f"demo event failed: {exc}", err=True)


def prepare_demo_database(engine: Engine, instances: Iterable[Instance] = ()) -> bool:
    """Migrate the demo's database; the first time (a new database), enable every schedule, those of
    the extra ``instances`` (``sonarr/4k``) too, so each instance gets a full refresh first. Later starts
    leave the schedules as they were set. Returns whether the database was new."""
    from sqlalchemy import update

    from smartplex import schedule_state
    from smartplex.schema import sync_schedule

    new = migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    if new:
        with engine.begin() as connection:
            for instance in instances:  # an extra instance's row is otherwise made, disabled, when first needed
                schedule_state.ensure(connection, instance)
            connection.execute(update(sync_schedule).values(enabled=True))
    return new


@click.command()
@click.option("--size", default=2000, show_default=True, help="Items in the simulated media universe.")
@click.option("--seed", default=1, show_default=True)
@click.option("--api-port", default=None, type=int, help="Default: SMARTPLEX_API_PORT (8765).")
@click.option("--dagster-port", default=None, type=int, help="Default: SMARTPLEX_DAGSTER_PORT (3000).")
@click.option("--event-interval", default=4.0, show_default=True, help="Seconds between simulated events.")
@click.option("--no-4k", is_flag=True, help="Run one Sonarr and one Radarr, without the 4K instances.")
@click.option(
    "--drop-webhooks",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    metavar="RATE",
    help="Lose this share of the webhooks (0 to 1) on purpose, to watch the syncs catch up without them.",
)
def demo(
    size: int,
    seed: int,
    api_port: int | None,
    dagster_port: int | None,
    event_interval: float,
    no_4k: bool,
    drop_webhooks: float,
) -> None:
    """Run everything on SQLite against simulated services, with a stream of webhooks."""
    from smartplex_simulators import EXTRA_INSTANCES
    from smartplex_simulators.serve import run_simulators
    from smartplex_simulators.simulation import Simulation
    from smartplex_simulators.universe import Universe
    from smartplex_simulators.webhooks import WebhookSender

    stop_on_signals()
    settings = get_settings()
    api_port = api_port or settings.api_port
    dagster_port = dagster_port or settings.dagster_port
    check_ports(api_port, dagster_port)  # before the slow part, and again just before starting
    instances = () if no_4k else EXTRA_INSTANCES
    data_dir = settings.data_dir
    engine = make_engine(settings.resolved_database_url)
    try:
        prepare_demo_database(engine, instances)
    finally:
        engine.dispose()
    secrets_ = _demo_secrets(data_dir)
    click.echo(f"Generating a media universe of {size} items...")
    simulation = Simulation(Universe(seed=seed, size=size, now=int(time.time())))
    supervisor = Supervisor()
    stop = threading.Event()
    with run_simulators(simulation=simulation, extra_instances=[i.id for i in instances]) as sims:
        env = {
            **os.environ,
            **sims.env(),
            "SMARTPLEX_DATA_DIR": str(data_dir),
            "SMARTPLEX_WEBHOOK_SECRET": secrets_["webhook"],
            "SMARTPLEX_ADMIN_SECRET": secrets_["admin"],
            "DAGSTER_HOME": str(dagster_home.prepare(data_dir)),
            # The simulated library spans five years: partitions beyond that would only slow full refreshes.
            "SMARTPLEX_HISTORY_START": os.environ.get("SMARTPLEX_HISTORY_START")
            or (date.today() - timedelta(days=5 * 366)).isoformat(),
        }
        try:
            start_stack(supervisor, env, api_port=api_port, dagster_port=dagster_port, log_dir=data_dir / "logs")
            # On the universe's clock, which the event stream advances: Sonarr's and Radarr's back-off follows it.
            simulation.webhooks = WebhookSender.from_template(
                f"http://127.0.0.1:{api_port}/api/webhooks/{{kind}}{{instance_path}}?token={secrets_['webhook']}",
                clock=simulation.clock,
                drop_rate=drop_webhooks,
                seed=seed,
            )
            rows = running_rows(api_port, dagster_port)
            rows += [(f"Simulated {Instance.parse(name).title}", url) for name, url in sims.urls.items()]
            rows.append(("Data directory", str(data_dir)))
            if drop_webhooks:
                rows.append(("Webhooks lost on purpose", f"{drop_webhooks:.0%}"))
            admin = shlex.quote(secrets_["admin"])
            print_running(rows, [
                ("API", f"http://127.0.0.1:{api_port}"),
                ("ADMIN", admin),
                ("SMARTPLEX_ADMIN_SECRET", admin),
                ("SMARTPLEX_WEBHOOK_SECRET", shlex.quote(secrets_["webhook"])),
            ])  # fmt: skip
            threading.Thread(target=stream_events, args=(simulation, stop, event_interval, seed), daemon=True).start()
            wait_forever(supervisor)
        except KeyboardInterrupt:
            click.echo("\nStopping...")
        finally:
            stop.set()
            stop_stack(supervisor, env)
