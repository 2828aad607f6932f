"""``smartplex check``: connect to each configured instance of each service and say what answered."""

from __future__ import annotations

import click

from smartplex.clients.check import CHECK_TIMEOUT_SECONDS, check_service
from smartplex.settings import Settings


@click.command()
@click.option("--timeout", default=CHECK_TIMEOUT_SECONDS, show_default=True, help="Seconds to wait for each service.")
def check(timeout: float) -> None:
    """Connect to each configured service instance; print its name, version and library size, or the error."""
    settings = Settings()
    instances = settings.service_instances
    results = [check_service(settings, i, timeout) for i in instances if settings.is_configured(i)]
    if not results:
        hints = ", ".join("/".join(i.env_names) for i in instances)
        raise click.ClickException(f"no service is configured; set a URL and credential pair ({hints})")
    width = max(18, *(len(i.title) for i in instances))
    for result in results:
        if result.ok:
            click.echo(
                f"ok    {result.instance.title:<{width}} {result.name} {result.version}: {result.library_size} items"
            )
        else:
            click.echo(f"FAIL  {result.instance.title:<{width}} {result.error}")
    for instance in instances:
        if not settings.is_configured(instance):
            click.echo(f"skip  {instance.title:<{width}} not configured ({' and '.join(instance.env_names)})")
    if not all(result.ok for result in results):
        raise SystemExit(1)
