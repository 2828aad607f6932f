"""Retention of Dagster's own records on both of its storages: old finished runs go with their event
logs; runs in flight, recent failures and recent full refreshes stay. And the clock each kind of webhook
row ages by, to the second, on both engines."""

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
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
from sqlalchemy import Engine, insert, select

from smartplex import webhook_queue
from smartplex.column_types import utcnow
from smartplex.schema import webhook_log
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


# --- webhook rows: which clock each one ages by --------------------------------------------------

IGNORED_DAYS, PROCESSED_DAYS = 7, 30
SECOND = timedelta(seconds=1)


def _webhook(status: str, received_at: datetime, processed_at: datetime | None) -> dict[str, object]:
    return {"id": uuid.uuid4(), "source": "sonarr", "event_type": "Download", "payload": {}, "status": status,
            "processed": processed_at is not None, "received_at": received_at, "processed_at": processed_at}  # fmt: skip


def _purge(engine: Engine, now: datetime) -> dict[str, int]:
    return webhook_queue.purge(engine, now, ignored_days=IGNORED_DAYS, processed_days=PROCESSED_DAYS, batch=1)


def _left(engine: Engine, rows: dict[str, dict[str, object]]) -> set[str]:
    """The names of ``rows`` still stored."""
    with engine.connect() as connection:
        ids = set(connection.execute(select(webhook_log.c.id)).scalars())
    return {name for name, row in rows.items() if row["id"] in ids}


def test_webhook_rows_age_from_when_they_were_finished_to_the_second(engine: Engine) -> None:
    """Processed and missing rows age from ``processed_at``, not from ``received_at``: a row received
    long ago and handled recently (it waited, or failed and was replayed) is kept. Ignored rows are
    finished as they are stored, so both clocks agree for them. The purge is told the time, so one
    second either side of each window is exact."""
    now = utcnow()
    processed_edge, ignored_edge = now - timedelta(days=PROCESSED_DAYS), now - timedelta(days=IGNORED_DAYS)
    long_ago = now - timedelta(days=400)
    rows = {
        # Received well outside the window, handled one second inside it: kept.
        "processed inside": _webhook("processed", now - timedelta(days=40), processed_edge + SECOND),
        "missing inside": _webhook("missing", now - timedelta(days=40), processed_edge + SECOND),
        # Handled one second outside it: gone.
        "processed outside": _webhook("processed", processed_edge - timedelta(hours=1), processed_edge - SECOND),
        "missing outside": _webhook("missing", processed_edge - timedelta(hours=1), processed_edge - SECOND),
        # Ignored rows: their own, shorter window, one second either side.
        "ignored inside": _webhook("ignored", ignored_edge + SECOND, ignored_edge + SECOND),
        "ignored outside": _webhook("ignored", ignored_edge - SECOND, ignored_edge - SECOND),
        # Never purged, however old.
        "failed": _webhook("failed", long_ago, long_ago + timedelta(minutes=1)),
        "pending": _webhook("pending", long_ago, None),
        "dispatched": _webhook("dispatched", long_ago, None),
    }
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), list(rows.values()))
    assert _purge(engine, now) == {"ignored": 1, "processed": 1, "missing": 1}
    kept = {"processed inside", "missing inside", "ignored inside", "failed", "pending", "dispatched"}
    assert _left(engine, rows) == kept
    # Two seconds on, the rows that were one second inside are one second outside.
    assert _purge(engine, now + 2 * SECOND) == {"ignored": 1, "processed": 1, "missing": 1}
    assert _left(engine, rows) == {"failed", "pending", "dispatched"}


@pytest.mark.parametrize("outcome", ["processed", "missing"])
def test_a_replay_restarts_a_finished_rows_clock(engine: Engine, outcome: str) -> None:
    """A row finished long ago and replayed has no finish time while it waits; the run that handles it
    again starts its retention afresh, whatever its first finish or its receipt said."""
    now = utcnow()
    row = _webhook(outcome, now - timedelta(days=45), now - timedelta(days=44))
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), [row])
        assert webhook_queue.replay(connection, ids=[row["id"]]) == 1
        replayed = connection.execute(select(webhook_log).where(webhook_log.c.id == row["id"])).mappings().one()
    assert (replayed["status"], replayed["processed_at"]) == ("pending", None)
    assert _purge(engine, now) == {"ignored": 0, "processed": 0, "missing": 0}

    with engine.begin() as connection:
        (group,) = webhook_queue.pending_groups(connection)
        assert webhook_queue.claim(connection, group, now) == 1
        if outcome == "missing":
            assert webhook_queue.mark_missing(connection, {row["id"]: "gone"}, "second-run", now) == 1
        assert webhook_queue.settle(connection, group.run_key, "second-run", None, now) == (outcome == "processed")
    window = timedelta(days=PROCESSED_DAYS)
    assert sum(_purge(engine, now + window - SECOND).values()) == 0
    assert _left(engine, {"replayed": row}) == {"replayed"}
    assert _purge(engine, now + window + SECOND)[outcome] == 1
    assert _left(engine, {"replayed": row}) == set()
