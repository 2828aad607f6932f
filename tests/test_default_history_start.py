"""The default history start (2008) end to end: every other test runs on a short one (``conftest.py``).

The stack runs in processes of its own with ``SMARTPLEX_HISTORY_START`` unset, since the code location
reads it at import. On weekly partitions since 2008 (about 950), "sync now" of two services is one
materialization each, not one per week, and a webhook's incremental run covers a week or two.
"""

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from smartplex import migrate
from smartplex.dagster_names import (
    FULL_REFRESH_TAG,
    INSTANCE_TAG,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    REFRESH_JOB,
    WEBHOOK_JOB,
)
from smartplex.db import make_engine
from smartplex.schema import radarr_movies, sonarr_series, sync_schedule, webhook_log
from smartplex_cli import dagster_home
from smartplex_cli.stack import start_stack
from smartplex_cli.supervisor import Supervisor, free_port
from smartplex_simulators.serve import run_simulators
from smartplex_simulators.simulation import Simulation
from smartplex_simulators.universe import Universe
from smartplex_simulators.webhooks import WebhookSender
from tests.conftest import ADMIN_SECRET, WEBHOOK_SECRET

pytestmark = pytest.mark.timeout(600)

SERVICES = ("sonarr", "radarr")
#: The first Monday on or after 2008-01-01 (a Tuesday): weeks start on Mondays (day_offset=1).
FIRST_WEEK = "2008-01-07"
#: A run over the last 7 days covers at most two weekly partitions.
MOST_INCREMENTAL_PARTITIONS = 2

#: Run in the stack's environment: what the definitions and the Dagster instance say, as JSON. The
#: test's own process has the short history start of conftest.py, so it cannot read them itself.
INSPECT = """
import json
import dagster as dg
from smartplex.dagster_names import REFRESH_JOB, WEBHOOK_JOB
from smartplex.instances import Instance
from smartplex_dagster.defs.library import asset_key
from smartplex_dagster.defs.partitions import PARTITIONS
from smartplex_dagster.definitions import defs

PLANNED, DONE = dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, dg.DagsterEventType.ASSET_MATERIALIZATION
out = {"partitions": PARTITIONS.get_num_partitions(), "first": {}, "runs": []}
for name in %(services)r:
    assets_def = defs.resolve_assets_def(asset_key(Instance.parse(name)))
    out["first"][name] = assets_def.partitions_def.get_first_partition_key()
with dg.DagsterInstance.get() as instance:
    for job in (REFRESH_JOB, WEBHOOK_JOB):
        for record in instance.get_run_records(dg.RunsFilter(job_name=job)):
            run = record.dagster_run
            planned = 0
            for event in instance.get_records_for_run(run.run_id, of_type=PLANNED).records:
                data = event.event_log_entry.dagster_event.event_specific_data
                planned += len(data.partitions_subset) if data.partitions_subset is not None else 1
            done = instance.get_records_for_run(run.run_id, of_type=DONE).records
            out["runs"].append({"job": job, "status": run.status.value, "tags": dict(run.tags), "planned": planned,
                                "materialized": [e.event_log_entry.asset_materialization.partition for e in done]})
print(json.dumps(out))
"""


def _inspect(env: dict[str, str]) -> dict:
    code = INSPECT % {"services": SERVICES}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _wait(what: str, done, supervisor: Supervisor, seconds: float, state=None) -> None:  # type: ignore[no-untyped-def]
    """Poll ``done`` until it is true; fail if a process of the stack exits or time runs out (then say
    what ``state`` returns)."""
    deadline = time.monotonic() + seconds
    while not done():
        assert not supervisor.exited(), f"{supervisor.exited()}\n{supervisor.exit_report()}"
        assert time.monotonic() < deadline, f"{what}: not after {seconds:.0f} s: {state() if state else ''}"
        time.sleep(0.5)


def _live_rows(engine: Engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table).where(table.c.deleted_at.is_(None)))


def _schedules(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as connection:
        rows = connection.execute(select(sync_schedule.c.service, sync_schedule.c.last_status)).all()
    return {service: status for service, status in rows if service in SERVICES}


def _radarr_webhooks(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        query = select(webhook_log.c.status, func.count()).where(webhook_log.c.source == "radarr")
        return dict(connection.execute(query.group_by(webhook_log.c.status)).all())


def test_sync_now_and_a_webhook_on_the_default_history_start(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'smartplex.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    # Items added over five years, most of them before any short history start would begin.
    simulation = Simulation(Universe(seed=21, size=120, now=int(time.time())))
    supervisor = Supervisor()
    # No SMARTPLEX_* variable of this process (the short history start among them) reaches the stack.
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMARTPLEX_")}
    api_port = free_port()
    with run_simulators(simulation=simulation, kinds=SERVICES) as sims:
        env |= {**sims.env(), "SMARTPLEX_DATABASE_URL": database_url, "SMARTPLEX_DATA_DIR": str(tmp_path),
                "SMARTPLEX_WEBHOOK_SECRET": WEBHOOK_SECRET, "SMARTPLEX_ADMIN_SECRET": ADMIN_SECRET,
                "SMARTPLEX_SENSOR_INTERVAL_SECONDS": "1", "DAGSTER_HOME": str(dagster_home.prepare(tmp_path))}  # fmt: skip
        try:
            start_stack(supervisor, env, api_port=api_port, dagster_port=None, log_dir=tmp_path / "logs")
            api = f"http://127.0.0.1:{api_port}"
            for service in SERVICES:
                response = httpx.post(
                    f"{api}/api/admin/schedules/{service}/sync", headers={"Authorization": f"Bearer {ADMIN_SECRET}"}
                )
                assert response.status_code == 202, response.text
            succeeded = dict.fromkeys(SERVICES, "success")
            _wait(
                "the full refreshes",
                lambda: _schedules(engine) == succeeded,
                supervisor,
                300,
                lambda: _schedules(engine),
            )
            assert _live_rows(engine, sonarr_series) == len(simulation.universe.shows)
            assert _live_rows(engine, radarr_movies) == len(simulation.universe.movies)

            # Radarr's webhooks for a new movie (added, then downloaded) make an incremental run.
            simulation.webhooks = WebhookSender({"radarr": f"{api}/api/webhooks/radarr?token={WEBHOOK_SECRET}"})
            movie = simulation.add_movie("Default History Start")
            _wait(
                "the webhooks",
                lambda: (rows := _radarr_webhooks(engine)) and not (rows.get("pending") or rows.get("dispatched")),
                supervisor,
                180,
                lambda: _radarr_webhooks(engine),
            )
            assert _radarr_webhooks(engine) == {"processed": 2}
            with engine.connect() as connection:
                assert connection.scalar(select(func.count()).where(radarr_movies.c.id == movie.id)) == 1
            seen = _inspect(env)
        finally:
            supervisor.stop()
            engine.dispose()

    assert seen["first"] == dict.fromkeys(SERVICES, FIRST_WEEK)
    # Weeks since 2008: a refresh over every partition would plan and record this many.
    assert seen["partitions"] > 900, seen["partitions"]
    now = datetime.now(UTC).date()
    this_week = (now - timedelta(days=now.weekday())).isoformat()

    refreshes = [run for run in seen["runs"] if run["job"] == REFRESH_JOB]
    assert sorted(run["tags"][INSTANCE_TAG] for run in refreshes) == sorted(SERVICES)
    for run in refreshes:
        assert run["status"] == "SUCCESS", run
        assert run["tags"][FULL_REFRESH_TAG] == "true"
        # One materialization, of this week, not one per week since 2008.
        assert (run["planned"], len(run["materialized"])) == (1, 1)
        assert run["materialized"] == [this_week]
        assert run["tags"][PARTITION_RANGE_START_TAG] == run["tags"][PARTITION_RANGE_END_TAG] == this_week

    incremental = [run for run in seen["runs"] if run["job"] == WEBHOOK_JOB]
    assert incremental, seen["runs"]
    for run in incremental:
        assert run["status"] == "SUCCESS", run
        assert run["tags"][INSTANCE_TAG] == "radarr"
        assert FULL_REFRESH_TAG not in run["tags"]
        assert 1 <= len(run["materialized"]) <= MOST_INCREMENTAL_PARTITIONS, run["materialized"]
        assert run["planned"] == len(run["materialized"])
        assert run["materialized"][-1] == this_week
