"""Dagster's private names SmartPlex relies on: an upgrade that moves or changes one fails here, by name.

The register of private attributes, methods, run-time patches and module paths, and the fence around
all of them, are tested in ``test_private_api_fence.py``."""

import importlib
import sqlite3
from pathlib import Path

import dagster as dg
import pytest
from alembic.script import ScriptDirectory

from smartplex_dagster.runtime import dagster_internals

PRIVATE = {  # name -> the module it comes from
    "JobFailureData": "dagster._core.events",
    "RunFailureReason": "dagster._core.events",
    "SqliteEventLogStorage": "dagster._core.storage.event_log.sqlite.sqlite_event_log",
    "SqliteRunStorage": "dagster._core.storage.runs.sqlite.sqlite_run_storage",
    "SqliteScheduleStorage": "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage",
    "DagsterSqliteStorage": "dagster._core.storage.sqlite_storage",
    "INDEX_SHARD_NAME": "dagster._core.storage.event_log.sqlite.sqlite_event_log",
    "SQLITE_BUSY_TIMEOUT_SECONDS": "dagster._core.storage.sqlite",
    "SqlEventLogStorageMetadata": "dagster._core.storage.event_log.schema",
}


@pytest.mark.parametrize("name", sorted(PRIVATE))
def test_each_private_name_is_where_it_was(name: str) -> None:
    module = PRIVATE[name]
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        pytest.fail(
            f"Dagster {dg.__version__} no longer has {module}.{name}; update smartplex_dagster/runtime/dagster_internals.py ({error})"
        )
    assert getattr(dagster_internals, name) is found


def test_a_dead_worker_can_still_be_reported_as_dagster_reports_it() -> None:
    reason = dagster_internals.RunFailureReason.UNEXPECTED_TERMINATION
    data = dagster_internals.JobFailureData(error=None, failure_reason=reason)
    assert data.failure_reason is reason, "JobFailureData changed shape; update smartplex_dagster/runtime/orphans.py"


def test_the_retry_daemon_and_its_cursor_are_still_named_so() -> None:
    from dagster._daemon.auto_run_reexecution.event_log_consumer import EventLogConsumerDaemon, _create_cursor_key

    assert dagster_internals.RETRY_DAEMON == EventLogConsumerDaemon.daemon_type() == "EVENT_LOG_CONSUMER", (
        "the run-retry daemon was renamed; settle.py waits for its heartbeat by this name"
    )
    assert dagster_internals.RETRY_CURSOR == _create_cursor_key(dg.DagsterEventType.RUN_FAILURE), (
        "the retry daemon stores its cursor under another key; settle.py reads it to know a failure was handled"
    )


def test_the_scheduled_execution_time_tag_is_still_dagsters() -> None:
    from dagster._core.storage.tags import SCHEDULED_EXECUTION_TIME_TAG

    assert dagster_internals.SCHEDULED_EXECUTION_TIME_TAG == SCHEDULED_EXECUTION_TIME_TAG, (
        "Dagster renamed the tag naming a scheduled run's tick; schedules.py reads it"
    )


def test_the_retry_tags_are_still_dagsters() -> None:
    from dagster._core.storage.tags import AUTO_RETRY_RUN_ID_TAG, PARENT_RUN_ID_TAG

    assert (dagster_internals.AUTO_RETRY_RUN_ID_TAG, dagster_internals.PARENT_RUN_ID_TAG) == (
        AUTO_RETRY_RUN_ID_TAG,
        PARENT_RUN_ID_TAG,
    ), "Dagster renamed the tags linking a failed run to its retry; settle.py follows them"


def test_the_sensor_loop_is_still_a_module_constant_the_loop_reads() -> None:
    """``smartplex-dagster-daemon`` shortens the sensor daemon's loop by setting this constant, which
    only works while the loop reads it at each turn."""
    import inspect

    import dagster._daemon.sensor as sensor_daemon

    assert isinstance(sensor_daemon.MIN_INTERVAL_LOOP_TIME, int), "the sensor loop's constant moved"
    source = inspect.getsource(sensor_daemon.execute_sensor_iteration_loop)
    assert "MIN_INTERVAL_LOOP_TIME - loop_duration" in source, (
        "the sensor loop no longer sleeps by MIN_INTERVAL_LOOP_TIME; update smartplex_dagster/runtime/daemon.py"
    )
    before = dagster_internals.sensor_loop_seconds()
    try:
        dagster_internals.set_sensor_loop_seconds(1)
        assert sensor_daemon.MIN_INTERVAL_LOOP_TIME == 1
    finally:
        dagster_internals.set_sensor_loop_seconds(before)


def test_the_daemon_command_is_dagsters() -> None:
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "dagster-daemon"]
    assert script.value == "dagster._daemon.cli:main", (
        f"dagster-daemon's entry point moved to {script.value}; update dagster_internals.daemon_main"
    )


def test_a_code_server_starts_its_runs_with_the_context_given_to_start_runs_from() -> None:
    """``smartplex-dagster-code-server`` forks runs from a fork server by replacing the context Dagster's
    code server keeps (``_mp_ctx``), which only works while ``StartRun`` starts its process with it."""
    import inspect
    import logging
    import multiprocessing
    import threading

    from dagster._grpc.server import DagsterApiServer

    assert "self._mp_ctx.Process(" in inspect.getsource(DagsterApiServer.StartRun), (
        "Dagster's code server no longer starts a run's process with its _mp_ctx; update code_server.py"
    )
    context = multiprocessing.get_context("forkserver")
    made = DagsterApiServer.__init__
    try:
        dagster_internals.start_runs_from(context)
        server = DagsterApiServer(threading.Event(), logging.getLogger("test"), None)  # type: ignore[arg-type]
    finally:
        DagsterApiServer.__init__ = made  # type: ignore[method-assign]
    assert server._mp_ctx is context  # noqa: SLF001


def test_the_sqlite_storage_still_has_what_smartplex_sqlite_storage_reads_and_sets(tmp_path: Path) -> None:
    """``smartplex_dagster.runtime.sqlite_storage`` lays out the files as Dagster's storage does, and reads
    and sets the registered private attributes of its storages: each is on an instance Dagster makes."""
    runs, event_logs, schedules = dagster_internals.sqlite_storage_directories(str(tmp_path))
    assert (runs, event_logs, schedules) == (
        f"{tmp_path}/history/",
        f"{tmp_path}/history/runs/",
        f"{tmp_path}/schedules",
    ), "storage: sqlite moved its files; the embedded storage would no longer find an instance's history"
    run_storage = dagster_internals.SqliteRunStorage.from_local(runs)
    event_storage = dagster_internals.SqliteEventLogStorage(event_logs)
    schedule_storage = dagster_internals.SqliteScheduleStorage.from_local(schedules)
    storage = dagster_internals.DagsterSqliteStorage(str(tmp_path / "whole"))
    for storage_class in (dagster_internals.SqliteRunStorage, dagster_internals.SqliteScheduleStorage):
        assert callable(getattr(storage_class, "connect", None)), (  # public, on a private class: replaced there
            f"Dagster {dg.__version__} has no {storage_class.__name__}.connect; update smartplex_dagster/runtime/sqlite_storage.py"
        )
    for made in (run_storage, event_storage, schedule_storage, storage):
        on = f"{type(made).__module__}:{type(made).__qualname__}."
        for path in dagster_internals.PRIVATE_ATTRIBUTES:
            if path.startswith(on):
                assert hasattr(made, path.removeprefix(on)), (
                    f"Dagster {dg.__version__} has no {path}; update smartplex_dagster/runtime/sqlite_storage.py"
                )
    assert run_storage._conn_string == dagster_internals.sqlite_conn_string(runs, "runs")  # noqa: SLF001
    assert schedule_storage._conn_string == dagster_internals.sqlite_conn_string(schedules, "schedules")  # noqa: SLF001
    # The revision Dagster stamps on its files is the head of the migrations the embedded storage reads.
    head = ScriptDirectory.from_config(dagster_internals.dagster_migrations_config()).get_current_head()
    for name, where in (("runs", runs), ("schedules", schedules)):
        with sqlite3.connect(Path(where, f"{name}.db")) as connection:
            assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)], name
