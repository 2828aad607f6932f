"""The embedded instance's SQLite storage: Dagster's files, one engine per file, small run files."""

import sqlite3
from pathlib import Path

import dagster as dg
import pytest
import yaml

from smartplex.cli import dagster_home
from smartplex_dagster import sqlite_storage

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


@dg.asset
def probe() -> int:
    return 1


def _page_size(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("PRAGMA page_size").fetchone()[0])


def test_a_run_writes_its_events_through_one_engine_per_file(tmp_path: Path) -> None:
    with dg.DagsterInstance.from_config(str(dagster_home.prepare(tmp_path))) as instance:
        first = dg.materialize([probe], instance=instance)
        before = sqlite_storage.engine_for.cache_info()
        second = dg.materialize([probe], instance=instance)
        after = sqlite_storage.engine_for.cache_info()
        events = len(instance.all_logs(second.run_id))
    assert first.success and second.success
    # The second run's own event file is the one new database; every other use found its engine.
    assert after.misses - before.misses == 1
    assert after.hits - before.hits >= events


def test_a_run_event_file_has_small_pages_and_the_shared_files_keep_sqlites(tmp_path: Path) -> None:
    home = dagster_home.prepare(tmp_path)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_id = dg.materialize([probe], instance=instance).run_id
    runs = home / "history" / "runs"
    assert _page_size(runs / f"{run_id}.db") == sqlite_storage.RUN_FILE_PAGE_SIZE
    assert _page_size(runs / "index.db") == 4096
    assert _page_size(home / "history" / "runs.db") == 4096


def test_an_instance_made_by_dagsters_own_storage_opens_with_it_and_back(tmp_path: Path) -> None:
    """Existing homes (written before, with ``storage: sqlite``) keep their runs, events and assets."""
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": {"sqlite": {"base_dir": str(home)}}}))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        old = dg.materialize([probe], instance=instance).run_id
        old_events = len(instance.all_logs(old))

    assert dagster_home.prepare(tmp_path) == home
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, sqlite_storage.SqliteEventLogStorage)
        assert len(instance.all_logs(old)) == old_events
        new = dg.materialize([probe], instance=instance).run_id
        new_events = len(instance.all_logs(new))
        assert {r.run_id for r in instance.get_runs()} == {old, new}

    (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": {"sqlite": {"base_dir": str(home)}}}))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.event_log_storage) is sqlite_storage.SqliteEventLogStorage
        assert len(instance.all_logs(old)) == old_events and len(instance.all_logs(new)) == new_events
        latest = instance.get_latest_materialization_event(dg.AssetKey("probe"))
        assert latest is not None and latest.run_id == new
