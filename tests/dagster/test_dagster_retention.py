"""Retention of Dagster's own records on both of its storages: old finished runs go with their event
logs; runs in flight, recent failures and recent full refreshes stay."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.asset_graph_view.serializable_entity_subset import SerializableEntitySubset
from dagster._core.definitions.asset_key import AssetKey
from dagster._core.definitions.declarative_automation.serialized_objects import (
    AutomationConditionEvaluation,
    AutomationConditionNodeSnapshot,
)
from dagster._core.utils import make_new_run_id

from smartplex.column_types import utcnow
from smartplex_cli import dagster_home
from smartplex_dagster.defs.retention import RunRetention, purge_automation_evaluations, purge_runs

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")
KEEP = RunRetention(run_days=7, refresh_run_days=90, failed_run_days=30)


@pytest.fixture(params=["sqlite", "postgresql"])
def instance(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    if request.param == "sqlite":
        with dg.DagsterInstance.from_config(str(dagster_home.prepare(tmp_path))) as sqlite_instance:
            yield sqlite_instance
        return
    with dg.DagsterInstance.from_config(str(request.getfixturevalue("postgres_dagster_home"))) as postgres_instance:
        yield postgres_instance


def _run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, trigger: str | None) -> str:
    tags = {"smartplex/trigger": trigger} if trigger else {}
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=make_new_run_id(), status=status, tags=tags)
    instance.add_run(run)
    instance.report_engine_event("a line of the run's log", run)
    return run.run_id


def test_old_finished_runs_go_with_their_logs_and_the_rest_stay(instance: dg.DagsterInstance) -> None:
    S, F, C, R = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED,
                  dg.DagsterRunStatus.STARTED)  # fmt: skip
    runs = {
        "webhook": _run(instance, S, "webhook"),
        "derived": _run(instance, S, None),
        "refresh": _run(instance, S, "schedule"),
        "failed": _run(instance, F, "webhook"),
        "canceled": _run(instance, C, "schedule"),
        "running": _run(instance, R, "webhook"),
        "starting": _run(instance, dg.DagsterRunStatus.STARTING, "schedule"),
    }

    def left() -> set[str]:
        return {name for name, run_id in runs.items() if instance.get_run_by_id(run_id) is not None}

    assert purge_runs(instance, utcnow() + timedelta(days=6), KEEP) == {"runs": 0, "refresh_runs": 0, "failed_runs": 0}
    assert left() == set(runs)
    assert purge_runs(instance, utcnow() + timedelta(days=8), KEEP) == {"runs": 2, "refresh_runs": 0, "failed_runs": 0}
    assert left() == {"refresh", "failed", "canceled", "running", "starting"}
    assert instance.all_logs(runs["webhook"]) == [] and instance.all_logs(runs["refresh"]) != []
    assert purge_runs(instance, utcnow() + timedelta(days=31), KEEP)["failed_runs"] == 2
    assert left() == {"refresh", "running", "starting"}
    assert purge_runs(instance, utcnow() + timedelta(days=91), KEEP)["refresh_runs"] == 1
    assert left() == {"running", "starting"}  # never a run in flight, however old


def test_a_purged_run_gives_its_disk_back_on_the_embedded_storage(tmp_path: Path) -> None:
    """The embedded instance keeps each run's events in a file of its own, which deleting the run
    leaves behind, emptied: retention removes it; the files of the runs kept stay."""
    with dg.DagsterInstance.from_config(str(dagster_home.prepare(tmp_path))) as instance:
        old = _run(instance, dg.DagsterRunStatus.SUCCESS, "webhook")
        running = _run(instance, dg.DagsterRunStatus.STARTED, "webhook")
        files = {run_id: tmp_path / "dagster" / "history" / "runs" / f"{run_id}.db" for run_id in (old, running)}
        assert all(path.exists() for path in files.values())
        assert purge_runs(instance, utcnow() + timedelta(days=8), KEEP)["runs"] == 1
        assert not files[old].exists() and files[running].exists()
        assert instance.get_run_by_id(old) is None


def test_automation_evaluations_go_with_the_runs_they_launched(instance: dg.DagsterInstance) -> None:
    storage = instance.schedule_storage
    assert storage is not None and storage.supports_auto_materialize_asset_evaluations
    catalog = AssetKey(["derived", "media_catalog"])
    requested = SerializableEntitySubset(key=catalog, value=True)
    evaluation = AutomationConditionEvaluation(
        condition_snapshot=AutomationConditionNodeSnapshot(
            class_name="AndAutomationCondition", description="", unique_id="1"
        ),
        start_timestamp=0,
        end_timestamp=1,
        true_subset=requested,
        candidate_subset=requested,
        subsets_with_metadata=[],
        child_evaluations=[],
    )
    storage.add_auto_materialize_asset_evaluations(evaluation_id=1, asset_evaluations=[evaluation.with_run_ids(set())])

    def stored() -> int:
        return len(storage.get_auto_materialize_asset_evaluations(key=catalog, limit=10))

    purge_automation_evaluations(instance, utcnow() + timedelta(days=6), KEEP.run_days)
    assert stored() == 1
    purge_automation_evaluations(instance, utcnow() + timedelta(days=8), KEEP.run_days)
    assert stored() == 0
