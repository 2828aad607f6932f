"""A webhook's path through a real ``dagster-daemon``: the time of each stage recorded on its row, in order;
webhook runs executed in process; a failing sync still failing its run and its rows.

The webhooks go through the real API (in process) into the product database; the daemon runs the
repository's ``dagster.yaml`` (run queue, run retries) on SQLite storage, as ``smartplex demo`` does.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from smartplex.latency import STAGE_NAMES
from smartplex.schema import sync_schedule
from smartplex_dagster.defs.run_requests import WEBHOOK_JOB
from smartplex_simulators import webhooks
from tests.conftest import ADMIN, HOOK, make_settings
from tests.helpers import webhook_rows
from tests.resilience.dagster_stack import DaemonStack, daemon_stack  # noqa: F401
from webhook_api.app import create_app

pytestmark = [
    pytest.mark.timeout(420),
    pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning"),
]

SETTLE_SECONDS = 240
#: A row's moments, in the order a webhook passes them.
MOMENTS = ("received_at", "dispatched_at", "run_created_at", "run_started_at", "sync_started_at",
           "sync_finished_at", "processed_at")  # fmt: skip


def _post_webhooks(stack: DaemonStack, api: TestClient) -> None:
    """A new show's download (Sonarr) and a new movie (Radarr), as the services announce them."""
    simulation = stack.sims.simulation
    show = simulation.add_show("Path Show", seasons=1, episodes_per_season=2)
    movie = simulation.add_movie("Path Movie")
    for source, hook in (
        ("sonarr", webhooks.sonarr_download(show.episodes[0])),
        ("radarr", webhooks.radarr_movie_added(movie)),
    ):
        assert api.post(f"/api/webhooks/{source}", json=hook.body, headers=HOOK).status_code == 202


def _settled(stack: DaemonStack) -> list[dict]:
    rows = webhook_rows(stack.engine)
    return rows if rows and all(r["status"] in ("processed", "failed", "missing") for r in rows) else []


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    """The run worker's process id, as the worker itself reported it when it started."""
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        found = re.match(r"Started process for run \(pid: (\d+)\)", record.event_log_entry.message or "")
        if found:
            return int(found.group(1))
    raise AssertionError(f"run {run_id} reported no process")


def _assert_ran_in_process(instance: dg.DagsterInstance, run_id: str) -> None:
    """The run is a webhook run whose sync step ran in the run worker's own process (no second process),
    and left the library's checks to the full refresh."""
    run = instance.get_run_by_id(run_id)
    assert run is not None and run.job_name == WEBHOOK_JOB
    steps = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records
    assert steps and {s.event_log_entry.dagster_event.pid for s in steps if s.event_log_entry.dagster_event} == {
        _worker_pid(instance, run_id)
    }
    checks = {dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED, dg.DagsterEventType.ASSET_CHECK_EVALUATION}
    assert instance.get_records_for_run(run_id, of_type=checks).records == []


def _start(stack: DaemonStack) -> None:
    with stack.engine.begin() as connection:  # webhook runs only: no full refresh is due meanwhile
        connection.execute(update(sync_schedule).values(enabled=False, sync_requested_at=None))
    stack.start_daemon()
    stack.wait_for("a first webhook_sensor tick", lambda: stack.sensor_ticks("webhook_sensor"), 120)


def test_each_stage_of_a_webhook_is_timed_in_order(
    daemon_stack: DaemonStack,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    stack = daemon_stack
    _start(stack)
    with TestClient(create_app(make_settings(database_url, tmp_path))) as api:
        _post_webhooks(stack, api)
        rows = stack.wait_for("both rows settled", lambda: _settled(stack), SETTLE_SECONDS)
        assert {r["status"] for r in rows} == {"processed"}, rows
        for row in rows:
            moments = [row[name] for name in MOMENTS]
            assert None not in moments, {name: row[name] for name in MOMENTS}
            assert moments == sorted(moments), {name: row[name] for name in MOMENTS}
            _assert_ran_in_process(stack.instance, row["run_id"])

        # The API reports each stage from the rows alone, on its status page and in /metrics.
        stages = api.get("/api/webhooks/status", headers=ADMIN).json()["stages"]
        assert set(stages) == set(STAGE_NAMES)
        for name, figures in stages.items():
            assert figures["rows"] == 2, (name, figures)
            assert 0 <= figures["p50_seconds"] <= figures["p95_seconds"], (name, figures)
        scraped = {
            (sample.labels["stage"], sample.labels["le"]): sample.value
            for family in text_string_to_metric_families(api.get("/metrics").text)
            for sample in family.samples
            if sample.name == "smartplex_webhook_stage_seconds_bucket"
        }
    assert {stage for stage, _ in scraped} == set(STAGE_NAMES)
    assert all(scraped[(stage, "+Inf")] == 2 for stage in STAGE_NAMES)

    # The sensor records observations of webhooks/webhook_log for the asset's page in the UI.
    observations = stack.instance.fetch_observations(dg.AssetKey(["webhooks", "webhook_log"]), limit=1).records
    assert observations
    metadata = observations[0].asset_observation.metadata  # type: ignore[union-attr]
    assert {"pending", "dispatched", "received_sonarr", "received_radarr"} <= set(metadata)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_failing_sync_fails_its_runs_in_process_and_its_rows(
    daemon_stack: DaemonStack,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    stack = daemon_stack
    stack.sims.simulation.faults["sonarr"].update(error_rate=1.0, error_status=500)
    _start(stack)
    with TestClient(create_app(make_settings(database_url, tmp_path))) as api:
        show = stack.sims.simulation.add_show("Failing Show", seasons=1, episodes_per_season=1)
        hook = webhooks.sonarr_download(show.episodes[0])
        assert api.post("/api/webhooks/sonarr", json=hook.body, headers=HOOK).status_code == 202
    (row,) = stack.wait_for("the row settled", lambda: _settled(stack), SETTLE_SECONDS)
    assert row["status"] == "failed" and "500" in row["error_message"], row
    runs = stack.runs_for(row["run_key"])
    # The run and Dagster's one retry of it: both failed, both in process; the retry decides the outcome.
    assert [r.status for r in runs] == [dg.DagsterRunStatus.FAILURE] * 2
    assert row["run_id"] == runs[0].run_id and "dagster/parent_run_id" in runs[0].tags
    for run in runs:
        _assert_ran_in_process(stack.instance, run.run_id)
    moments = [row[name] for name in MOMENTS]
    assert None not in moments and moments == sorted(moments), {name: row[name] for name in MOMENTS}
