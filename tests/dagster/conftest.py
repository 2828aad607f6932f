"""A Dagster instance and resources pointed at the test database and the simulators."""

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from smartplex.dagster_names import resource_key
from smartplex.instances import Instance
from smartplex_cli import dagster_home
from smartplex_dagster.defs.resources import DatabaseResource, ServiceResource
from smartplex_simulators.serve import RunningSimulators


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def database(database_url: str, engine: Engine) -> DatabaseResource:
    return DatabaseResource(url=database_url)


@pytest.fixture
def resources(database: DatabaseResource, sims: RunningSimulators) -> dict:
    values: dict = {"database": database}
    for name, url in sims.urls.items():
        values[resource_key(Instance.parse(name))] = ServiceResource(instance=name, url=url, credential=sims.keys[name])
    return values


@pytest.fixture
def postgres_dagster_home(postgres_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A DAGSTER_HOME with the repository's production dagster.yaml, its storage in a PostgreSQL
    database of its own (dropped afterwards)."""
    url, database = make_url(postgres_server), f"dagster_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {database}"))
    try:
        shutil.copy(dagster_home.PRODUCTION_CONFIG, tmp_path / "dagster.yaml")
        for name, value in {"HOST": url.host, "PORT": str(url.port or 5432), "USER": url.username,
                            "PASSWORD": url.password or "", "DB": database}.items():  # fmt: skip
            monkeypatch.setenv(f"DAGSTER_PG_{name}", value)
        yield tmp_path
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        admin.dispose()
