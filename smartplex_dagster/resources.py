"""Resources: the product database, and one client resource per service, configured through EnvVar.

A service whose variables are not set still loads; a run that needs it fails with a message naming
the variables to set.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import dagster as dg
from sqlalchemy import Engine

from smartplex.clients import CLIENTS, NotConfigured, ServiceClient
from smartplex.db import make_engine
from smartplex.services import SERVICES
from smartplex.settings import get_settings, service_env_names


class DatabaseResource(dg.ConfigurableResource):
    """The product database (``SMARTPLEX_DATABASE_URL``; default: the embedded SQLite file)."""

    url: str | None = None

    @property
    def engine(self) -> Engine:
        return _engine_for(self.url or get_settings().resolved_database_url)


@functools.cache
def _engine_for(url: str) -> Engine:
    """One pool per database per process: Dagster builds a fresh resource object for every tick and run."""
    return make_engine(url, timeout=30)


class ServiceResource(dg.ConfigurableResource):
    """One service's REST API: its URL (with any URL base path) and its API key or token."""

    service: str
    url: str | None = None
    credential: str | None = None

    def client(self, **options: Any) -> ServiceClient[Any]:
        if not self.url or not self.credential:
            raise NotConfigured(self.service)
        options.setdefault("timeout", get_settings().service_timeout_seconds)
        return CLIENTS[self.service](self.url, self.credential, **options)


def _env(name: str) -> Any:
    # EnvVar keeps the value out of the UI; unset variables stay None so definitions still load.
    return dg.EnvVar(name) if os.environ.get(name) else None


def resource_key(service: str) -> str:
    return f"{service}_api"


def build_resources() -> dict[str, Any]:
    resources: dict[str, Any] = {"database": DatabaseResource(url=_env("SMARTPLEX_DATABASE_URL"))}
    for service in SERVICES:
        url_var, credential_var = service_env_names(service.name)
        resources[resource_key(service.name)] = ServiceResource(
            service=service.name, url=_env(url_var), credential=_env(credential_var)
        )
    return resources
