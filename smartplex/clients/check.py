"""Connect to a service and say what answered: what ``smartplex check`` and the admin page's "Test" do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from smartplex.clients import RetryPolicy, ServiceError, client_for
from smartplex.column_types import utcnow
from smartplex.instances import Instance
from smartplex.settings import SettingsBase

#: Seconds to wait for each request of a test, tried twice (as ``smartplex check`` does).
CHECK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ServiceCheck:
    instance: Instance
    configured: bool
    ok: bool
    checked_at: datetime
    name: str | None = None
    version: str | None = None
    library_size: int | None = None
    error: str | None = None


def check_service(settings: SettingsBase, instance: Instance, timeout: float = CHECK_TIMEOUT_SECONDS) -> ServiceCheck:
    """What ``smartplex check`` does for one instance: connect, and say who answered or what failed."""
    if not settings.is_configured(instance):
        url_var, key_var = instance.env_names
        return ServiceCheck(
            instance,
            configured=False,
            ok=False,
            checked_at=utcnow(),
            error=f"not configured: set {url_var} and {key_var}",
        )
    try:
        with client_for(instance, settings, timeout=timeout, retry=RetryPolicy(attempts=2)) as client:
            info = client.server_info()
    except ServiceError as exc:
        return ServiceCheck(instance, configured=True, ok=False, checked_at=utcnow(), error=str(exc))
    return ServiceCheck(
        instance,
        configured=True,
        ok=True,
        checked_at=utcnow(),
        name=info.name,
        version=info.version,
        library_size=info.library_size,
    )
