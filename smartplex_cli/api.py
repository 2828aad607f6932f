"""``smartplex api``: the webhook API alone (:mod:`webhook_api.serve`), refusing unsafe binds."""

from __future__ import annotations

import click

from smartplex.settings import get_settings
from webhook_api.bind import UnsafeBind, check_bind
from webhook_api.serve import serve


@click.command()
@click.option("--host", default=None, help="Address to listen on (default SMARTPLEX_API_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default SMARTPLEX_API_PORT, 8765).")
def api(host: str | None, port: int | None) -> None:
    """Run the webhook API."""
    settings = get_settings()
    host = host or settings.api_host
    port = port or settings.api_port
    try:
        warnings = check_bind(host, settings)
    except UnsafeBind as exc:
        raise click.UsageError(str(exc)) from None
    for warning in warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    click.echo(f"SmartPlex webhook API on http://{host}:{port}  (docs: /docs, status: /api/webhooks/status)")
    serve(host, port)
