"""The Celery run launcher is the production instance's, and never the embedded default's."""

from pathlib import Path

import dagster as dg
import pytest
import yaml

from smartplex_cli import dagster_home
from smartplex_cli.worker import celery_env


def test_production_config_hands_runs_to_celery() -> None:
    config = yaml.safe_load(dagster_home.PRODUCTION_CONFIG.read_text())
    assert config["run_launcher"]["class"] == "CeleryRunLauncher"
    assert config["run_launcher"]["config"]["default_queue"] == "smartplex"


def test_embedded_home_keeps_the_default_run_launcher(tmp_path: Path) -> None:
    home = dagster_home.prepare(tmp_path)
    assert "run_launcher" not in dagster_home.embedded_config(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_launcher) is dg.DefaultRunLauncher


def test_result_backend_defaults_to_the_dagster_database(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"DAGSTER_PG_HOST": "db", "DAGSTER_PG_PORT": "5433", "DAGSTER_PG_USER": "u", "DAGSTER_PG_PASSWORD": "p",
           "DAGSTER_PG_DB": "dagster"}  # fmt: skip
    assert celery_env(env)["CELERY_RESULT_BACKEND"] == "db+postgresql+psycopg2://u:p@db:5433/dagster"
    assert celery_env({**env, "CELERY_RESULT_BACKEND": "redis://r/1"})["CELERY_RESULT_BACKEND"] == "redis://r/1"
    assert "CELERY_RESULT_BACKEND" not in celery_env({})
