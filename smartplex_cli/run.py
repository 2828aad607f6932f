"""``smartplex run``: the stack (:mod:`smartplex_cli.stack`) against your own services."""

from __future__ import annotations

import os

import click

from smartplex.settings import get_settings
from smartplex_cli import dagster_home
from smartplex_cli.stack import print_running, running_rows, start_stack, stop_stack, wait_forever
from smartplex_cli.supervisor import Supervisor, stop_on_signals


@click.command()
@click.option("--api-port", default=None, type=int, help="Default: SMARTPLEX_API_PORT (8765).")
@click.option("--dagster-port", default=None, type=int, help="Default: SMARTPLEX_DAGSTER_PORT (3000).")
@click.option("--workers", default=None, type=int,
              help="Celery run workers to start here (default SMARTPLEX_LOCAL_WORKERS, 0); needs DAGSTER_HOME "
                   "with the Celery run launcher (docs/scaling.md).")  # fmt: skip
def run(api_port: int | None, dagster_port: int | None, workers: int | None) -> None:
    """Run the API and Dagster against your own Plex, Tautulli, Sonarr, Radarr and Overseerr."""
    settings = get_settings()
    configured = [i for i in settings.service_instances if settings.is_configured(i)]
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
        from smartplex_cli.worker import celery_env

        # The daemon reads the task states the workers write: both need the same result backend.
        env = celery_env(env)
    supervisor = Supervisor()
    try:
        start_stack(supervisor, env, api_port=api_port, dagster_port=dagster_port, log_dir=settings.data_dir / "logs",
                    workers=workers)  # fmt: skip
        rows = [*running_rows(api_port, dagster_port), ("Syncing", ", ".join(i.title for i in configured))]
        print_running(rows, [("API", f"http://127.0.0.1:{api_port}"), ("ADMIN", '"$SMARTPLEX_ADMIN_SECRET"')])
        wait_forever(supervisor)
    except KeyboardInterrupt:
        click.echo("\nStopping...")
    finally:
        stop_stack(supervisor, env)
