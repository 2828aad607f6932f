"""``smartplex check``: connect to each configured service and say what answered."""

from __future__ import annotations

import click

from smartplex.clients import RetryPolicy, ServiceError, client_for
from smartplex.services import SERVICES
from smartplex.settings import Settings, service_env_names


@click.command()
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for each service.")
def check(timeout: float) -> None:
    """Connect to each configured service; print its name, version and library size, or the error."""
    settings = Settings()
    configured = [s for s in SERVICES if settings.is_configured(s.name)]
    if not configured:
        hints = ", ".join(f"{url}/{key}" for url, key in (service_env_names(s.name) for s in SERVICES))
        raise click.ClickException(f"no service is configured; set a URL and credential pair ({hints})")
    failed = False
    for svc in configured:
        try:
            with client_for(svc.name, settings, timeout=timeout, retry=RetryPolicy(attempts=2)) as client:
                info = client.server_info()
        except ServiceError as exc:
            failed = True
            click.echo(f"FAIL  {svc.title:<18} {exc}")
            continue
        click.echo(f"ok    {svc.title:<18} {info.name} {info.version}: {info.library_size} items")
    for svc in SERVICES:
        if svc not in configured:
            click.echo(f"skip  {svc.title:<18} not configured ({' and '.join(service_env_names(svc.name))})")
    if failed:
        raise SystemExit(1)
