"""Connect to a service and say what answered: ``smartplex check``, and the admin page's "Test"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import click

from smartplex.clients import RetryPolicy, ServiceError, client_for
from smartplex.services import SERVICES, get_service
from smartplex.settings import Settings, SettingsBase, service_env_names
from smartplex.types import utcnow

#: Seconds to wait for each request of a test, tried twice (as ``smartplex check`` does).
CHECK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ServiceCheck:
    service: str
    title: str
    configured: bool
    ok: bool
    checked_at: datetime
    name: str | None = None
    version: str | None = None
    library_size: int | None = None
    error: str | None = None


def check_service(settings: SettingsBase, service: str, timeout: float = CHECK_TIMEOUT_SECONDS) -> ServiceCheck:
    """What ``smartplex check`` does for one service: connect, and say who answered or what failed."""
    svc = get_service(service)
    if not settings.is_configured(service):
        url_var, key_var = service_env_names(service)
        return ServiceCheck(
            service,
            svc.title,
            configured=False,
            ok=False,
            checked_at=utcnow(),
            error=f"not configured: set {url_var} and {key_var}",
        )
    try:
        with client_for(service, settings, timeout=timeout, retry=RetryPolicy(attempts=2)) as client:
            info = client.server_info()
    except ServiceError as exc:
        return ServiceCheck(service, svc.title, configured=True, ok=False, checked_at=utcnow(), error=str(exc))
    return ServiceCheck(
        service,
        svc.title,
        configured=True,
        ok=True,
        checked_at=utcnow(),
        name=info.name,
        version=info.version,
        library_size=info.library_size,
    )


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
