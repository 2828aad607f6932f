"""``smartplex check``: connect to each configured service and say what answered."""

from __future__ import annotations

import click

from smartplex.clients.check import CHECK_TIMEOUT_SECONDS, check_service
from smartplex.services import SERVICES
from smartplex.settings import Settings, service_env_names


@click.command()
@click.option("--timeout", default=CHECK_TIMEOUT_SECONDS, show_default=True, help="Seconds to wait for each service.")
def check(timeout: float) -> None:
    """Connect to each configured service; print its name, version and library size, or the error."""
    settings = Settings()
    results = [check_service(settings, svc.name, timeout) for svc in SERVICES if settings.is_configured(svc.name)]
    if not results:
        hints = ", ".join(f"{url}/{key}" for url, key in (service_env_names(s.name) for s in SERVICES))
        raise click.ClickException(f"no service is configured; set a URL and credential pair ({hints})")
    for result in results:
        if result.ok:
            click.echo(f"ok    {result.title:<18} {result.name} {result.version}: {result.library_size} items")
        else:
            click.echo(f"FAIL  {result.title:<18} {result.error}")
    for svc in SERVICES:
        if not settings.is_configured(svc.name):
            click.echo(f"skip  {svc.title:<18} not configured ({' and '.join(service_env_names(svc.name))})")
    if not all(result.ok for result in results):
        raise SystemExit(1)
