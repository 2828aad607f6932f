"""Connect to a service and say what answered: what ``smartplex check`` and the admin page's "Test" do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from smartplex.clients import RetryPolicy, ServiceError, client_for
from smartplex.column_types import utcnow
from smartplex.instances import Instance
from smartplex.settings import SettingsBase, service_env_names

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
    """What ``smartplex check`` does for one instance: connect, and say who answered or what failed."""
    svc = Instance.parse(service)
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
