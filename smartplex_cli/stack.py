"""The processes ``smartplex demo`` and ``smartplex run`` start, in order, and their orderly stop.

:func:`start_stack` starts, each under :class:`~smartplex_cli.supervisor.Supervisor`:

1. ``api``: the webhook API (``smartplex api``, :mod:`webhook_api`);
2. ``dagster-code-server``: one code server for the code location (``smartplex-dagster-code-server``,
   :mod:`smartplex_dagster.runtime.code_server`), whose fork server starts the runs;
3. ``dagster-daemon``: sensors, schedules, the run queue, run retries (``smartplex-dagster-daemon``,
   :mod:`smartplex_dagster.runtime.daemon`);
4. ``worker-N``: Celery run workers, when asked (``smartplex worker``, :mod:`smartplex_cli.worker`);
5. ``dagster-webserver``: the Dagster UI.

:func:`stop_stack` stops them, ending the runs in progress as canceled with their work given back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import click
import httpx

from smartplex.dagster_names import CODE_LOCATION, DEFINITIONS_MODULE
from smartplex_cli.supervisor import (
    Supervisor,
    dagster_home_processes,
    free_port,
    listener,
    port_is_free,
    wait_for_http,
)
from webhook_api import API_TITLE

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
    return ["-w", str(workspace)] if workspace is not None else ["-m", DEFINITIONS_MODULE]


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
        [_bin("smartplex-dagster-code-server"), "-m", DEFINITIONS_MODULE, "--location-name", CODE_LOCATION,
         "-h", "127.0.0.1", "-p", str(port)],
        env,
        str(log_dir / "dagster-code-server.log"),
    )  # fmt: skip
    workspace = Path(env["DAGSTER_HOME"]) / "smartplex-workspace.yaml"
    workspace.write_text(
        "# Written by smartplex run / demo at each start: the code server it started.\n"
        f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {port}\n      location_name: {CODE_LOCATION}\n"
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
        supervisor.start(name, [sys.executable, "-m", "smartplex_cli", "worker", "--name", f"{name}-{os.getpid()}@%h"],
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
    others = dagster_home_processes(Path(env["DAGSTER_HOME"]))
    return _orphans(env, "end", "--message", message, *(["--others-alive"] if others else []))


def _orphans(env: Mapping[str, str], *args: str) -> str:
    argv = [sys.executable, "-m", "smartplex_dagster.runtime.orphans", *args]
    result = subprocess.run(argv, env=dict(env), capture_output=True, text=True)
    if result.returncode != 0:
        raise click.ClickException(f"could not settle the stack's runs:\n{result.stderr[-3000:]}")
    return result.stdout.strip()


def start_stack(supervisor: Supervisor, env: dict[str, str], *, api_port: int, dagster_port: int | None,
                log_dir: Path, workers: int = 0) -> None:  # fmt: skip
    """Start the processes the module's docstring lists: the API, the code server, the daemon, ``workers``
    Celery run workers and (unless ``dagster_port`` is None) the webserver; wait until they are up.

    Before the daemon starts, the runs an earlier stop or crash left without a process are ended
    (:func:`recover_runs`), so none keeps its library busy.
    """
    check_ports(api_port, dagster_port)
    log_dir.mkdir(parents=True, exist_ok=True)
    migrate_dagster(env)
    home = Path(env["DAGSTER_HOME"])
    # Two daemons on one instance would both run the sensors and schedules.
    if daemons := [p for p in dagster_home_processes(home) if "dagster-daemon" in p]:
        raise click.ClickException(
            f"a dagster-daemon already runs on {home}: {'; '.join(daemons)}. Stop it, then start again."
        )
    if report := recover_runs(env, RESTART_MESSAGE):
        click.echo(f"Runs left by the last stop: {report}")
    supervisor.start("api", [sys.executable, "-m", "smartplex_cli", "api", "--port", str(api_port)], env,
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


def running_rows(api_port: int, dagster_port: int) -> list[tuple[str, str]]:
    return [
        ("Dagster UI", f"http://127.0.0.1:{dagster_port}  (asset graph: /asset-groups, runs: /runs)"),
        ("Webhook API", f"http://127.0.0.1:{api_port}/docs"),
        ("Status", 'curl -H "Authorization: Bearer $ADMIN" $API/api/webhooks/status'),
        ("Webhook URL", "$API/api/webhooks/<kind>[/<instance>]?token=$SMARTPLEX_WEBHOOK_SECRET"),
    ]


def wait_forever(supervisor: Supervisor) -> None:
    while not supervisor.exited():
        time.sleep(1)
    raise click.ClickException(f"a process stopped unexpectedly:\n{supervisor.exit_report()}")
