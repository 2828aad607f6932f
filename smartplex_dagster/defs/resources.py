"""Resources: the product database, and one API resource per instance, configured through EnvVar.

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
from smartplex.dagster_names import DATABASE_RESOURCE, resource_key
from smartplex.db import make_engine
from smartplex.instances import Instance
from smartplex.settings import get_settings


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
    """One service instance's REST API: its URL (with any URL base path) and its API key or token."""

    instance: str  # its id, as configuration: sonarr, sonarr/4k
    url: str | None = None
    credential: str | None = None

    def client(self, **options: Any) -> ServiceClient[Any]:
        instance = Instance.parse(self.instance)
        if not self.url or not self.credential:
            raise NotConfigured(instance)
        options.setdefault("timeout", get_settings().service_timeout_seconds)
        return CLIENTS[instance.kind.name](self.url, self.credential, instance=instance, **options)


def _env(name: str) -> Any:
    # EnvVar keeps the value out of the UI; unset variables stay None so definitions still load.
    return dg.EnvVar(name) if os.environ.get(name) else None


def build_resources() -> dict[str, Any]:
    resources: dict[str, Any] = {DATABASE_RESOURCE: DatabaseResource(url=_env("SMARTPLEX_DATABASE_URL"))}
    for instance in get_settings().service_instances:
        url_var, credential_var = instance.env_names
        resources[resource_key(instance)] = ServiceResource(
            instance=instance.id, url=_env(url_var), credential=_env(credential_var)
        )
    return resources
