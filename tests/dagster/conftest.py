"""A Dagster instance and resources pointed at the test database and the simulators."""

from collections.abc import Iterator

import dagster as dg
import pytest
from sqlalchemy import Engine

from smartplex_dagster.resources import DatabaseResource, ServiceResource, resource_key
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
        values[resource_key(name)] = ServiceResource(service=name, url=url, credential=sims.keys[name])
    return values
