"""``smartplex api``: the webhook API alone (:mod:`webhook_api.serve`), refusing unsafe binds."""

from __future__ import annotations

import click

from smartplex.settings import get_settings
from webhook_api.bind import UnsafeBind, check_bind
from webhook_api.serve import serve


@click.command()
@click.option("--host", default=None, help="Address to listen on (default SMARTPLEX_API_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default SMARTPLEX_API_PORT, 8765).")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes sharing the port, each with its own database connections and commit groups.",
)
def api(host: str | None, port: int | None, workers: int) -> None:
    """Run the webhook API.

    With --workers N, N processes answer on the one port: the schema is prepared once before they
    start, /metrics sums every worker's counts, and Ctrl-C or SIGTERM stops them all. One process is
    plenty for a home server; more use more cores, and N times the database connections.
    """
    settings = get_settings()
    host = host or settings.api_host
    port = port or settings.api_port
    try:
        warnings = check_bind(host, settings)
    except UnsafeBind as exc:
        raise click.UsageError(str(exc)) from None
    for warning in warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    processes = f", {workers} worker processes" if workers > 1 else ""
    click.echo(f"SmartPlex webhook API on http://{host}:{port}{processes}  (docs: /docs, status: /api/webhooks/status)")
    from webhook_api.app import SchemaBehind  # the app's own module, which the server imports anyway

    try:
        serve(host, port, workers=workers)
    except SchemaBehind as exc:  # found before the workers start: one message, no worker started
        raise click.ClickException(str(exc)) from None
