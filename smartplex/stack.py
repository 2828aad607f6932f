"""``smartplex demo`` and ``smartplex run``: the webhook API, the Dagster webserver and daemon, together.

The demo adds the five simulators over a seeded media universe and a stream of realistic events
(new episodes, plays, requests), so the Dagster UI fills with sensor-triggered runs within a minute.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click

from smartplex import dagster_home, migrate
from smartplex.db import make_engine
from smartplex.processes import Supervisor, stop_on_signals, wait_for_http
from smartplex.services import SERVICES
from smartplex.settings import get_settings, service_env_names

CODE_LOCATION = "smartplex_dagster.definitions"


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def migrate_dagster(env: dict[str, str]) -> None:
    """Create (or upgrade) Dagster's own storage once, before the daemon and the webserver race to do it."""
    subprocess.run([_bin("dagster"), "instance", "migrate"], env=env, check=True, capture_output=True)


def start_daemon(supervisor: Supervisor, env: dict[str, str], log_dir: Path) -> None:
    """``dagster-daemon`` (sensors, schedules, the run queue, run retries) on the code location."""
    supervisor.start("dagster-daemon", [_bin("dagster-daemon"), "run", "-m", CODE_LOCATION], env,
                     str(log_dir / "dagster-daemon.log"))  # fmt: skip


def start_stack(supervisor: Supervisor, env: dict[str, str], *, api_port: int, dagster_port: int | None,
                log_dir: Path) -> None:  # fmt: skip
    """The API, the Dagster daemon and (unless ``dagster_port`` is None) the webserver; wait until up."""
    log_dir.mkdir(parents=True, exist_ok=True)
    migrate_dagster(env)
    supervisor.start("api", [sys.executable, "-m", "smartplex", "api", "--port", str(api_port)], env,
                     str(log_dir / "api.log"))  # fmt: skip
    start_daemon(supervisor, env, log_dir)
    if dagster_port is not None:
        supervisor.start(
            "dagster-webserver",
            [_bin("dagster-webserver"), "-h", "127.0.0.1", "-p", str(dagster_port), "-m", CODE_LOCATION],
            env,
            str(log_dir / "dagster-webserver.log"),
        )
    wait_for_http(f"http://127.0.0.1:{api_port}/healthz", 60, supervisor)
    if dagster_port is not None:
        wait_for_http(f"http://127.0.0.1:{dagster_port}/server_info", 180, supervisor)


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


def _print_urls(api_port: int, dagster_port: int, secrets_: dict[str, str], extra: list[str]) -> None:
    click.echo("")
    click.secho("SmartPlex Sync is running.", bold=True)
    click.echo(f"  Dagster UI        http://127.0.0.1:{dagster_port}  (asset graph: /asset-groups, runs: /runs)")
    click.echo(f"  Webhook API       http://127.0.0.1:{api_port}/docs")
    click.echo(f"  Status            curl -H 'Authorization: Bearer {secrets_['admin']}' "
               f"http://127.0.0.1:{api_port}/api/webhooks/status")  # fmt: skip
    click.echo(f"  Webhook URL       http://127.0.0.1:{api_port}/api/webhooks/<service>?token={secrets_['webhook']}")
    for line in extra:
        click.echo(line)
    click.echo("Ctrl-C stops everything.")


def _wait_forever(supervisor: Supervisor) -> None:
    while not (dead := supervisor.exited()):
        time.sleep(1)
    raise click.ClickException(f"a process stopped unexpectedly: {dead} (logs in the data directory's logs/)")


@click.command()
@click.option("--size", default=2000, show_default=True, help="Items in the simulated media universe.")
@click.option("--seed", default=1, show_default=True)
@click.option("--api-port", default=8765, show_default=True)
@click.option("--dagster-port", default=3000, show_default=True)
@click.option("--event-interval", default=4.0, show_default=True, help="Seconds between simulated events.")
def demo(size: int, seed: int, api_port: int, dagster_port: int, event_interval: float) -> None:
    """Run everything on SQLite against simulated services, with a stream of webhooks."""
    from smartplex.simulators.serve import run_simulators
    from smartplex.simulators.simulation import Simulation
    from smartplex.simulators.universe import Universe
    from smartplex.simulators.webhooks import WebhookSender

    stop_on_signals()
    settings = get_settings()
    data_dir = settings.data_dir
    migrate.upgrade(make_engine(settings.resolved_database_url))
    secrets_ = _demo_secrets(data_dir)
    click.echo(f"Generating a media universe of {size} items...")
    simulation = Simulation(Universe(seed=seed, size=size, now=int(time.time())))
    supervisor = Supervisor()
    stop = threading.Event()
    with run_simulators(simulation=simulation) as sims:
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
        # Every service starts enabled in the demo, so each gets a full refresh first.
        _enable_all_schedules(settings)
        try:
            start_stack(supervisor, env, api_port=api_port, dagster_port=dagster_port, log_dir=data_dir / "logs")
            simulation.webhooks = WebhookSender.from_template(
                f"http://127.0.0.1:{api_port}/api/webhooks/{{service}}?token={secrets_['webhook']}"
            )
            extra = [f"  Simulated {s.title:<10} {sims.urls[s.name]}" for s in SERVICES]
            _print_urls(api_port, dagster_port, secrets_, extra + [f"  Data directory    {data_dir}"])
            threading.Thread(target=stream_events, args=(simulation, stop, event_interval, seed), daemon=True).start()
            _wait_forever(supervisor)
        except KeyboardInterrupt:
            click.echo("\nStopping...")
        finally:
            stop.set()
            supervisor.stop()


def _enable_all_schedules(settings: Any) -> None:
    from sqlalchemy import update

    from smartplex.schema import sync_schedule

    with make_engine(settings.resolved_database_url).begin() as connection:
        connection.execute(update(sync_schedule).where(sync_schedule.c.enabled.is_(False)).values(enabled=True))


@click.command()
@click.option("--api-port", default=None, type=int, help="Default: SMARTPLEX_API_PORT (8765).")
@click.option("--dagster-port", default=3000, show_default=True)
def run(api_port: int | None, dagster_port: int) -> None:
    """Run the API and Dagster against your own Plex, Tautulli, Sonarr, Radarr and Overseerr."""
    settings = get_settings()
    configured = [s.name for s in SERVICES if settings.is_configured(s.name)]
    if not configured:
        names = ", ".join(" and ".join(service_env_names(s.name)) for s in SERVICES)
        raise click.UsageError(f"no service is configured: set at least one pair of {names}")
    missing = [name for name, value in (("SMARTPLEX_WEBHOOK_SECRET", settings.webhook_secret),
                                        ("SMARTPLEX_ADMIN_SECRET", settings.admin_secret)) if value is None]  # fmt: skip
    if missing:
        raise click.UsageError(f"set {' and '.join(missing)}: real services post webhooks over the network")
    stop_on_signals()
    api_port = api_port or settings.api_port
    env = {**os.environ, "DAGSTER_HOME": os.environ.get("DAGSTER_HOME") or str(dagster_home.prepare(settings.data_dir))}
    supervisor = Supervisor()
    try:
        start_stack(supervisor, env, api_port=api_port, dagster_port=dagster_port, log_dir=settings.data_dir / "logs")
        secrets_ = {"webhook": "<SMARTPLEX_WEBHOOK_SECRET>", "admin": "<SMARTPLEX_ADMIN_SECRET>"}
        _print_urls(api_port, dagster_port, secrets_, [f"  Syncing           {', '.join(configured)}"])
        _wait_forever(supervisor)
    except KeyboardInterrupt:
        click.echo("\nStopping...")
    finally:
        supervisor.stop()
