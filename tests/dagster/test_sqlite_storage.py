"""The embedded instance's SQLite storage: Dagster's files, one engine and open connections per file, small run
files."""

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.pool import Pool

from smartplex_cli import dagster_home
from smartplex_dagster.runtime import sqlite_storage
from smartplex_dagster.runtime.dagster_internals import SQLITE_BUSY_TIMEOUT_SECONDS

pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


@dg.asset
def probe() -> int:
    return 1


def _page_size(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("PRAGMA page_size").fetchone()[0])


def _cache_info() -> tuple[int, int]:
    """Engines made (misses) and found (hits) so far, run files and shared files together."""
    caches = (sqlite_storage._run_file_engine, sqlite_storage._shared_file_engine)  # noqa: SLF001
    infos = [cache.cache_info() for cache in caches]
    return sum(i.misses for i in infos), sum(i.hits for i in infos)


def test_a_run_writes_its_events_through_one_engine_per_file(tmp_path: Path) -> None:
    with dg.DagsterInstance.from_config(str(dagster_home.prepare(tmp_path))) as instance:
        first = dg.materialize([probe], instance=instance)
        before = _cache_info()
        second = dg.materialize([probe], instance=instance)
        after = _cache_info()
        events = len(instance.all_logs(second.run_id))
    assert first.success and second.success
    # The second run's own event file is the one new database; every other use found its engine.
    assert after[0] - before[0] == 1
    assert after[1] - before[1] >= events


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


def _schema(path: Path) -> tuple[set[tuple[str, str]], list[tuple[str]]]:
    with sqlite3.connect(path) as connection:
        objects = set(connection.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"))
        return objects, connection.execute("SELECT version_num FROM alembic_version").fetchall()


def test_a_run_event_file_gets_dagsters_schema_and_revision(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "dagster.yaml").write_text(yaml.safe_dump({"storage": {"sqlite": {"base_dir": str(theirs)}}}))
    with dg.DagsterInstance.from_config(str(theirs)) as instance:
        assert type(instance.event_log_storage) is sqlite_storage.SqliteEventLogStorage
        their_run = dg.materialize([probe], instance=instance).run_id
    home = dagster_home.prepare(tmp_path / "ours")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        our_run = dg.materialize([probe], instance=instance).run_id
        assert len(instance.all_logs(our_run)) > 0
    ours = _schema(home / "history" / "runs" / f"{our_run}.db")
    assert ours == _schema(next(theirs.rglob(f"{their_run}.db")))
    assert len(ours[0]) > 20 and ours[1]  # the tables and indexes, and one revision


def test_an_existing_home_opens_without_reading_dagsters_migration_scripts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each run's process makes an instance and opens its run's file: neither reads the ~90 scripts."""
    home = dagster_home.prepare(tmp_path)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_id = dg.materialize([probe], instance=instance).run_id
        events = len(instance.all_logs(run_id))
    reads: list[object] = []
    made = ScriptDirectory.from_config
    monkeypatch.setattr(ScriptDirectory, "from_config", lambda config: reads.append(config) or made(config))
    sqlite_storage.migrations.cache_clear()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert len(instance.all_logs(run_id)) == events
        assert [r.run_id for r in instance.get_runs()] == [run_id]
        assert instance.get_latest_materialization_event(dg.AssetKey("probe")) is not None
    assert reads == []


def _journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])


def test_the_shared_files_keep_wal_and_every_file_open_connections(tmp_path: Path) -> None:
    home = dagster_home.prepare(tmp_path)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_id = dg.materialize([probe], instance=instance).run_id
        storage = instance.event_log_storage
        assert isinstance(storage, sqlite_storage.SqliteEventLogStorage)
        run_file = sqlite_storage.engine_for(
            storage.conn_string_for_shard(run_id), timeout=SQLITE_BUSY_TIMEOUT_SECONDS, run_file=True
        )
        index = sqlite_storage.engine_for(storage.conn_string_for_shard("index"), timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
        assert run_file.pool.checkedin() == 1 and index.pool.checkedin() >= 1  # left open for the next event
        with index.connect() as connection:  # and its WAL kept small, as no last close deletes it
            pages = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()
            limit = connection.exec_driver_sql("PRAGMA journal_size_limit").scalar_one()
        assert pages == sqlite_storage.SHARED_WAL_PAGES and limit == pages * 4096
    runs = home / "history" / "runs"
    assert _journal_mode(runs / f"{run_id}.db") == "delete"
    assert _journal_mode(runs / "index.db") == "wal"
    assert _journal_mode(home / "history" / "runs.db") == "wal"


def test_a_forked_child_opens_its_own_connections_and_leaves_the_parents(tmp_path: Path) -> None:
    home = dagster_home.prepare(tmp_path)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        first = dg.materialize([probe], instance=instance).run_id
        engine = sqlite_storage.engine_for(sqlite_storage.sqlite_conn_string(str(home / "history"), "runs"))
        assert engine.pool.checkedin() >= 1
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            try:
                fresh = engine.pool.checkedin() == 0
                runs = [r.run_id for r in instance.get_runs()]
                os.write(write, f"{fresh} {runs == [first]}".encode())
            finally:
                os._exit(0)
        os.close(write)
        _, status = os.waitpid(child, 0)
        answer = os.read(read, 100).decode()
        os.close(read)
        assert status == 0 and answer == "True True"
        # The parent's connections still work after the child used and dropped its own.
        second = dg.materialize([probe], instance=instance).run_id
        assert {r.run_id for r in instance.get_runs()} == {first, second}


def test_a_watch_on_a_run_sees_each_event_as_it_is_written(tmp_path: Path) -> None:
    """Dagster's live view of a run watches the run's file: each event must change it."""
    home = dagster_home.prepare(tmp_path)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.get_run_by_id(dg.materialize([probe], instance=instance).run_id)
        assert run is not None
        cursor = instance.get_records_for_run(run.run_id).cursor  # past the events already there
        seen: list[str] = []
        arrived = threading.Event()

        def callback(entry: dg.EventLogEntry, _cursor: str) -> None:
            seen.append(entry.dagster_event.message if entry.dagster_event else "")
            arrived.set()

        instance.watch_event_logs(run.run_id, cursor, callback)
        try:
            for n in range(3):
                arrived.clear()
                instance.report_engine_event(f"event {n}", run)
                assert arrived.wait(10), f"the watch did not see event {n}"
                assert seen[-1] == f"event {n}"
        finally:
            instance.end_watch_event_logs(run.run_id, callback)


@contextlib.contextmanager
def _connects() -> Iterator[list[str]]:
    """Every SQLite connection any engine opens meanwhile, by database file name."""
    opened: list[str] = []

    def record(dbapi_connection: Any, _record: Any) -> None:
        opened.append(Path(dbapi_connection.execute("PRAGMA database_list").fetchone()[2]).name)

    event.listen(Pool, "connect", record)
    try:
        yield opened
    finally:
        event.remove(Pool, "connect", record)


def test_a_run_opens_its_event_file_once(tmp_path: Path) -> None:
    """A run writes some twenty events to its file through one open connection, not one each."""
    with dg.DagsterInstance.from_config(str(dagster_home.prepare(tmp_path))) as instance:
        dg.materialize([probe], instance=instance)
        with _connects() as opened:
            run_id = dg.materialize([probe], instance=instance).run_id
            events = len(instance.all_logs(run_id))
    assert events > 10
    assert opened.count(f"{run_id}.db") == 1


def test_deleting_a_runs_events_closes_its_file(tmp_path: Path) -> None:
    """Retention removes the file after deleting the run: no connection of this process may keep it."""
    home = dagster_home.prepare(tmp_path)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_id = dg.materialize([probe], instance=instance).run_id
        storage = instance.event_log_storage
        assert isinstance(storage, sqlite_storage.SqliteEventLogStorage)
        engine = sqlite_storage.engine_for(
            storage.conn_string_for_shard(run_id), timeout=SQLITE_BUSY_TIMEOUT_SECONDS, run_file=True
        )
        assert engine.pool.checkedin() == 1
        instance.delete_run(run_id)
        assert engine.pool.checkedin() == 0
        path = home / "history" / "runs" / f"{run_id}.db"
        held = [link for link in Path("/proc/self/fd").iterdir() if os.path.realpath(link) == str(path)]
        assert held == []
