"""Shared fixtures: every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from smartplex import migrate
from smartplex.db import make_engine
from smartplex.settings import Settings, SettingsBase
from smartplex_simulators.serve import RunningSimulators, run_simulators
from smartplex_simulators.simulation import Simulation
from smartplex_simulators.universe import Universe
from tests.requirements import require_or_skip

FIXTURES = Path(__file__).parent / "fixtures"
POSTGRES_URL = os.environ.get("SMARTPLEX_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")

WEBHOOK_SECRET = "hook-secret-123"
ADMIN_SECRET = "admin-secret-456"


def load_fixture(*parts: str) -> Any:
    return json.loads(FIXTURES.joinpath(*parts).read_text())


@pytest.fixture(scope="session")
def postgres_server() -> str:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        url = make_url(POSTGRES_URL).render_as_string()
        require_or_skip(f"PostgreSQL not reachable at {url}: {exc} (set SMARTPLEX_TEST_POSTGRES_URL)")
    return POSTGRES_URL


def _postgres_schema_url(base: str) -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards, so tests never see each other's rows.

    The schema is dropped even if the server restarted meanwhile (pool_pre_ping replaces the dead connection).
    """
    schema = f"sp_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, pool_pre_ping=True)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield (
            make_url(base)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'smartplex.db'}"
    else:
        yield from _postgres_schema_url(request.getfixturevalue("postgres_server"))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database."""
    engine = make_engine(database_url, timeout=5)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> SettingsBase:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": tmp_path,
        "webhook_secret": WEBHOOK_SECRET,
        "admin_secret": ADMIN_SECRET,
        "db_timeout_seconds": 2.0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def instance_env(*declared: str, urls: dict[str, str] | None = None, **variables: str) -> dict[str, str]:
    """The variables that declare extra instances (``sonarr:4k``), each with a URL (from ``urls`` by
    instance id, else an address nothing listens on) and a key; ``variables`` add or override."""
    from smartplex.instances import Instance

    env = {"SMARTPLEX_INSTANCES": ",".join(declared)}
    for entry in declared:
        instance = Instance.parse(entry.replace(":", "/"))
        url_var, key_var = instance.env_names
        env[url_var] = (urls or {}).get(instance.id, "http://127.0.0.1:9")
        env[key_var] = f"{instance.slug}-key"
    return env | variables


@pytest.fixture
def declare(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., dict[str, str]]]:
    """``declare("sonarr:4k", ...)``: set :func:`instance_env`'s variables for this test; every
    ``get_settings()`` after it sees them."""
    from smartplex.settings import get_settings

    def apply(*declared: str, **options: Any) -> dict[str, str]:
        env = instance_env(*declared, **options)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        return env

    yield apply
    get_settings.cache_clear()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, engine: Engine) -> SettingsBase:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def client(settings: SettingsBase) -> Iterator[TestClient]:
    from webhook_api.app import create_app

    with TestClient(create_app(settings)) as test_client:
        yield test_client


ADMIN = {"Authorization": f"Bearer {ADMIN_SECRET}"}
HOOK = {"Authorization": f"Bearer {WEBHOOK_SECRET}"}


# Dagster's range runs record one materialization per partition; a short history keeps tests quick
# (tests/test_default_history_start.py runs on the default 2008 start). Set before smartplex_dagster is imported.
os.environ.setdefault("SMARTPLEX_HISTORY_START", (date.today() - timedelta(days=60)).isoformat())


# Simulators whose clock is the real clock, so Dagster's daily partitions line up with their data.
DAY = 86_400


@pytest.fixture
def sims() -> Iterator[RunningSimulators]:
    with run_simulators(simulation=Simulation(Universe(seed=11, size=400, now=int(time.time())))) as running:
        yield running


@pytest.fixture
def sims_ten_days_ago() -> Iterator[RunningSimulators]:
    """Simulators whose clock starts ten days back: mutations there fall outside a 7-day window."""
    universe = Universe(seed=12, size=400, now=int(time.time()) - 10 * DAY)
    with run_simulators(simulation=Simulation(universe)) as running:
        yield running
