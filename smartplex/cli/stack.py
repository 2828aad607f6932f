"""``smartplex demo`` and ``smartplex run``: the webhook API, the Dagster webserver and daemon, together.

The demo adds the five simulators over a seeded media universe, with a second, 4K Sonarr and Radarr
holding a third of its titles, and a stream of realistic events (new episodes, plays, requests), so
the Dagster UI fills with sensor-triggered runs within a minute.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click
import httpx
from sqlalchemy import Engine

from smartplex import migrate
from smartplex.cli import dagster_home
from smartplex.cli.processes import (
    Supervisor,
    free_port,
    instance_processes,
    listener,
    port_is_free,
    stop_on_signals,
    wait_for_http,
)
from smartplex.db import make_engine
from smartplex.services import Instance
from smartplex.settings import get_settings

CODE_LOCATION = "smartplex_dagster.definitions"
#: The webhook API's OpenAPI title: how the readiness check tells our API from another server on the port.
API_TITLE = "SmartPlex Sync webhook API"
#: Shown on each run a start finds abandoned (its process is gone: Ctrl-C, a crash, a power cut).
RESTART_MESSAGE = (
    "SmartPlex found this run without a process when it started again (it was stopped or crashed "
    "while the run was in progress). Its webhooks went back to pending; a full refresh is asked for again."
)
#: Shown on each run a stop interrupts.
STOP_MESSAGE = (
    "SmartPlex was stopped while this run was in progress. Its webhooks went back to pending; a full "
    "refresh is asked for again."
)


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def migrate_dagster(env: dict[str, str]) -> None:
    """Create (or upgrade) Dagster's own storage once, before the daemon and the webserver race to do it."""
    subprocess.run([_bin("dagster"), "instance", "migrate"], env=env, check=True, capture_output=True)


def _code_location(workspace: Path | None) -> list[str]:
    """How a Dagster process finds the code: a running code server's workspace file, or the module
    (then the process starts code servers of its own)."""
    return ["-w", str(workspace)] if workspace is not None else ["-m", CODE_LOCATION]


def start_daemon(supervisor: Supervisor, env: dict[str, str], log_dir: Path, workspace: Path | None = None) -> None:
    """``dagster-daemon`` (sensors, schedules, the run queue, run retries) on the code location."""
    supervisor.start("dagster-daemon", [_bin("smartplex-dagster-daemon"), "run", *_code_location(workspace)], env,
                     str(log_dir / "dagster-daemon.log"))  # fmt: skip


#: How long the code server may take to load the definitions before the start gives up.
CODE_SERVER_STARTUP_SECONDS = 120


def start_code_server(supervisor: Supervisor, env: dict[str, str], log_dir: Path) -> Path:
    """One long-lived code server that the daemon and the webserver share; returns their workspace file.

    Given the module instead, each of them starts code servers of its own, and the daemon replaces its
    own every minute (it reloads its workspace on that clock): a new process importing the definitions,
    and the old one logging "No heartbeat received" as it exits. A server of our own loads the code
    once; the runs it launches are its children, which a stop reaches as it reaches the daemon's.
    """
    port = free_port()
    supervisor.start(
        "dagster-code-server",
        [_bin("smartplex-dagster-code-server"), "-m", CODE_LOCATION, "--location-name", "smartplex",
         "-h", "127.0.0.1", "-p", str(port)],
        env,
        str(log_dir / "dagster-code-server.log"),
    )  # fmt: skip
    workspace = Path(env["DAGSTER_HOME"]) / "smartplex-workspace.yaml"
    workspace.write_text(
        "# Written by smartplex run / demo at each start: the code server it started.\n"
        f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {port}\n      location_name: smartplex\n"
    )
    deadline = time.monotonic() + CODE_SERVER_STARTUP_SECONDS
    while not _code_server_ready(port, env):
        if supervisor.processes["dagster-code-server"].poll() is not None:
            raise click.ClickException(f"the code server stopped while loading (its log: {log_dir})")
        if time.monotonic() > deadline:
            raise click.ClickException(f"the code server did not load in {CODE_SERVER_STARTUP_SECONDS} s ({log_dir})")
        time.sleep(0.5)
    return workspace


def _code_server_ready(port: int, env: Mapping[str, str]) -> bool:
    check = [_bin("dagster"), "api", "grpc-health-check", "-p", str(port)]
    return subprocess.run(check, env=env, capture_output=True, timeout=60).returncode == 0


def start_workers(supervisor: Supervisor, env: dict[str, str], log_dir: Path, count: int) -> None:
    """``count`` Celery run workers (``smartplex worker``), for a DAGSTER_HOME with the Celery run launcher."""
    for number in range(1, count + 1):
        name = f"worker-{number}"
        supervisor.start(name, [sys.executable, "-m", "smartplex", "worker", "--name", f"{name}-{os.getpid()}@%h"],
                         env, str(log_dir / f"{name}.log"))  # fmt: skip


def check_ports(api_port: int, dagster_port: int | None) -> None:
    """Refuse to start on a port another server holds: say which, who holds it, and how to choose another."""
    wanted = [(api_port, "the webhook API", "SMARTPLEX_API_PORT", "--api-port")]
    if dagster_port is not None:
        wanted.append((dagster_port, "the Dagster UI", "SMARTPLEX_DAGSTER_PORT", "--dagster-port"))
    if api_port == dagster_port:
        raise click.UsageError(f"the webhook API and the Dagster UI cannot share port {api_port}")
    for port, what, variable, option in wanted:
        if not port_is_free(port):
            holder = listener(port)
            raise click.ClickException(
                f"port {port}, for {what}, is taken{f' by {holder}' if holder else ''}. "
                f"Stop that server, or choose another port: {variable}=... (or {option})."
            )


def is_our_api(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json().get("info", {}).get("title") == API_TITLE


def _is_dagster_webserver(response: httpx.Response) -> bool:
    return response.status_code == 200 and "dagster_webserver_version" in response.json()


def recover_runs(env: Mapping[str, str], message: str) -> str:
    """End the runs of the stack's Dagster instance left without a process: canceled with ``message``,
    their webhooks back to pending, their full refreshes asked for again, their pool slots freed.
    Returns what was done, in a line (empty when nothing was).

    Runs in a child process: the core never imports the Dagster code location (it runs it by name).
    """
    others = instance_processes(Path(env["DAGSTER_HOME"]))
    return _orphans(env, "end", "--message", message, *(["--others-alive"] if others else []))


def _orphans(env: Mapping[str, str], *args: str) -> str:
    argv = [sys.executable, "-m", "smartplex_dagster.orphans", *args]
    result = subprocess.run(argv, env=dict(env), capture_output=True, text=True)
    if result.returncode != 0:
        raise click.ClickException(f"could not settle the stack's runs:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


def start_stack(supervisor: Supervisor, env: dict[str, str], *, api_port: int, dagster_port: int | None,
                log_dir: Path, workers: int = 0) -> None:  # fmt: skip
    """The API, the Dagster daemon and (unless ``dagster_port`` is None) the webserver; wait until up.

    Before the daemon starts, the runs an earlier stop or crash left without a process are ended
    (:func:`recover_runs`), so none blocks its service.
    """
    check_ports(api_port, dagster_port)
    log_dir.mkdir(parents=True, exist_ok=True)
    migrate_dagster(env)
    home = Path(env["DAGSTER_HOME"])
    # Two daemons on one instance would both run the sensors and schedules.
    if daemons := [p for p in instance_processes(home) if "dagster-daemon" in p]:
        raise click.ClickException(
            f"a dagster-daemon already runs on {home}: {'; '.join(daemons)}. Stop it, then start again."
        )
    if report := recover_runs(env, RESTART_MESSAGE):
        click.echo(f"Runs left by the last stop: {report}")
    supervisor.start("api", [sys.executable, "-m", "smartplex", "api", "--port", str(api_port)], env,
                     str(log_dir / "api.log"))  # fmt: skip
    workspace = start_code_server(supervisor, env, log_dir)
    start_daemon(supervisor, env, log_dir, workspace)
    start_workers(supervisor, env, log_dir, workers)
    if dagster_port is not None:
        supervisor.start(
            "dagster-webserver",
            [_bin("dagster-webserver"), "-h", "127.0.0.1", "-p", str(dagster_port), *_code_location(workspace)],
            env,
            str(log_dir / "dagster-webserver.log"),
        )
    try:
        wait_for_http(f"http://127.0.0.1:{api_port}/openapi.json", 60, supervisor, accept=is_our_api)
        if dagster_port is not None:
            wait_for_http(f"http://127.0.0.1:{dagster_port}/server_info", 180, supervisor, accept=_is_dagster_webserver)
    except (RuntimeError, TimeoutError) as error:
        raise click.ClickException(f"{error} (every process's log is in {log_dir})") from error


def stop_stack(supervisor: Supervisor, env: Mapping[str, str]) -> None:
    """Stop every process, ending the runs in progress as canceled with their work given back.

    The daemon stops first, so that no sensor settles those runs as failed and no new run starts;
    then the runs in progress are marked canceled, so that their workers, stopped next, do not record
    a failure; last, :func:`recover_runs` gives back their webhooks and full refreshes and frees their
    pool slots.
    """
    if not supervisor.processes:
        return

    def cancel_runs() -> None:
        _orphans(env, "stopping", "--message", STOP_MESSAGE)

    with _signals_held():
        supervisor.stop(first="dagster-daemon", then=cancel_runs)
        if report := recover_runs(env, STOP_MESSAGE):
            click.echo(f"Runs stopped: {report}")


@contextmanager
def _signals_held() -> Iterator[None]:
    """A second Ctrl-C (or a SIGTERM on top of one) must not cut the stop short and leave runs in flight;
    the stop is bounded by its timeouts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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


def print_running(rows: list[tuple[str, str]], exports: list[tuple[str, str]]) -> None:
    """What is where, in aligned columns, then ``export`` lines for the variables the docs' commands use."""
    width = max(len(label) for label, _ in rows) + 2
    click.echo("")
    click.secho("SmartPlex Sync is running.", bold=True)
    for label, value in rows:
        click.echo(f"  {label:<{width}}{value}")
    click.echo("For the commands in docs/operations.md and docs/webhooks.md, run in another shell:")
    for name, value in exports:
        click.echo(f"  export {name}={value}")
    click.echo("Ctrl-C stops everything.")


def _rows(api_port: int, dagster_port: int) -> list[tuple[str, str]]:
    return [
        ("Dagster UI", f"http://127.0.0.1:{dagster_port}  (asset graph: /asset-groups, runs: /runs)"),
        ("Webhook API", f"http://127.0.0.1:{api_port}/docs"),
        ("Status", 'curl -H "Authorization: Bearer $ADMIN" $API/api/webhooks/status'),
        ("Webhook URL", "$API/api/webhooks/<service>[/<instance>]?token=$SMARTPLEX_WEBHOOK_SECRET"),
    ]


def _wait_forever(supervisor: Supervisor) -> None:
    while not supervisor.exited():
        time.sleep(1)
    raise click.ClickException(f"a process stopped unexpectedly:\n{supervisor.exit_report()}")


def prepare_demo_database(engine: Engine, instances: Iterable[str] = ()) -> bool:
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
def demo(
    size: int, seed: int, api_port: int | None, dagster_port: int | None, event_interval: float, no_4k: bool
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
    instances = () if no_4k else tuple(i.id for i in EXTRA_INSTANCES)
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
    with run_simulators(simulation=simulation, instances=instances) as sims:
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
            simulation.webhooks = WebhookSender.from_template(
                f"http://127.0.0.1:{api_port}/api/webhooks/{{service}}{{instance_path}}?token={secrets_['webhook']}"
            )
            rows = _rows(api_port, dagster_port)
            rows += [(f"Simulated {Instance.parse(name).title}", url) for name, url in sims.urls.items()]
            rows.append(("Data directory", str(data_dir)))
            admin = shlex.quote(secrets_["admin"])
            print_running(rows, [
                ("API", f"http://127.0.0.1:{api_port}"),
                ("ADMIN", admin),
                ("SMARTPLEX_ADMIN_SECRET", admin),
                ("SMARTPLEX_WEBHOOK_SECRET", shlex.quote(secrets_["webhook"])),
            ])  # fmt: skip
            threading.Thread(target=stream_events, args=(simulation, stop, event_interval, seed), daemon=True).start()
            _wait_forever(supervisor)
        except KeyboardInterrupt:
            click.echo("\nStopping...")
        finally:
            stop.set()
            stop_stack(supervisor, env)


@click.command()
@click.option("--api-port", default=None, type=int, help="Default: SMARTPLEX_API_PORT (8765).")
@click.option("--dagster-port", default=None, type=int, help="Default: SMARTPLEX_DAGSTER_PORT (3000).")
@click.option("--workers", default=None, type=int,
              help="Celery run workers to start here (default SMARTPLEX_LOCAL_WORKERS, 0); needs DAGSTER_HOME "
                   "with the Celery run launcher (docs/scaling.md).")  # fmt: skip
def run(api_port: int | None, dagster_port: int | None, workers: int | None) -> None:
    """Run the API and Dagster against your own Plex, Tautulli, Sonarr, Radarr and Overseerr."""
    settings = get_settings()
    configured = [i for i in settings.service_instances if settings.is_configured(i.id)]
    if not configured:
        names = ", ".join(" and ".join(i.env_names) for i in settings.service_instances)
        raise click.UsageError(f"no service is configured: set at least one pair of {names}")
    missing = [name for name, value in (("SMARTPLEX_WEBHOOK_SECRET", settings.webhook_secret),
                                        ("SMARTPLEX_ADMIN_SECRET", settings.admin_secret)) if value is None]  # fmt: skip
    if missing:
        raise click.UsageError(f"set {' and '.join(missing)}: real services post webhooks over the network")
    stop_on_signals()
    api_port = api_port or settings.api_port
    dagster_port = dagster_port or settings.dagster_port
    workers = settings.local_workers if workers is None else workers
    if workers and not os.environ.get("DAGSTER_HOME"):
        raise click.UsageError("--workers needs DAGSTER_HOME with the Celery run launcher (docs/scaling.md)")
    env = {**os.environ, "DAGSTER_HOME": os.environ.get("DAGSTER_HOME") or str(dagster_home.prepare(settings.data_dir))}
    if workers:
        from smartplex.cli.worker import celery_env

        # The daemon reads the task states the workers write: both need the same result backend.
        env = celery_env(env)
    supervisor = Supervisor()
    try:
        start_stack(supervisor, env, api_port=api_port, dagster_port=dagster_port, log_dir=settings.data_dir / "logs",
                    workers=workers)  # fmt: skip
        rows = [*_rows(api_port, dagster_port), ("Syncing", ", ".join(i.title for i in configured))]
        print_running(rows, [("API", f"http://127.0.0.1:{api_port}"), ("ADMIN", '"$SMARTPLEX_ADMIN_SECRET"')])
        _wait_forever(supervisor)
    except KeyboardInterrupt:
        click.echo("\nStopping...")
    finally:
        stop_stack(supervisor, env)
