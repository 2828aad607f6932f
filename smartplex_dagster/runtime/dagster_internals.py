"""Every name SmartPlex takes from Dagster's private modules (``dagster._…``), and why.

Dagster's public API does not cover these; each is pinned by ``tests/dagster/test_dagster_internals.py``,
which fails with a message naming the name when an upgrade moves or changes one. Nothing else in the
project imports from ``dagster._``.

- ``SqliteRunStorage``: tells the embedded instance (every run a process of this machine) from a
  shared one, so that only there a run with no recorded process may be judged dead
  (:func:`smartplex_dagster.runtime.orphans.is_embedded`).
- ``JobFailureData`` / ``RunFailureReason``: a run whose worker died is failed with the reason
  Dagster's own run monitoring gives (``UNEXPECTED_TERMINATION``), which its run retries act on.
- ``RETRY_DAEMON`` and ``RETRY_CURSOR``: the name of the daemon that creates a failed run's retry,
  and the key under which it stores how far it has read the run failures; a failure behind that cursor
  has been handled, so a missing retry is not coming (:mod:`smartplex_dagster.defs.outcomes`).
- ``SqliteEventLogStorage``: the embedded instance keeps each run's events in a SQLite file of its own
  (``path_for_shard``), which deleting the run empties but leaves on disk (about 190 KB a run, most of
  it the schema); :func:`remove_run_event_file` removes it, and forgets that the storage had set it
  up (``_initialized_dbs``), so a late read of the deleted run finds no events rather than no table.
- ``DagsterSqliteStorage`` and its three storages (``SqliteRunStorage.connect``,
  ``SqliteScheduleStorage.connect``, ``SqliteEventLogStorage._connect`` with ``_initdb``,
  ``_db_lock`` and ``_initialized_dbs``), the directories it keeps them in, ``INDEX_SHARD_NAME`` and
  ``SQLITE_BUSY_TIMEOUT_SECONDS``: the embedded instance's storage
  (:mod:`smartplex_dagster.runtime.sqlite_storage`) is Dagster's, with those methods reusing one engine per
  file and a run's event file created with smaller pages. It also makes a file Dagster's way
  (``SqlEventLogStorageMetadata``, the migrations of ``get_alembic_config``, the connection strings
  of ``create_db_conn_string``) without reading Dagster's migration scripts at every check, and
  replaces the storages' ``from_local`` and ``_initdb`` for files already made.
- ``dagster._daemon.sensor.MIN_INTERVAL_LOOP_TIME`` and ``dagster._daemon.cli.main``: the sensor
  daemon looks at its sensors once every 5 seconds (that constant), whatever their interval, so a
  library whose run was settled just after a tick waited up to 5 s for the next. ``smartplex-dagster-daemon``
  (:mod:`smartplex_dagster.runtime.daemon`) sets the loop with :func:`set_sensor_loop_seconds`, then runs
  Dagster's own daemon command; each sensor's minimum interval still spaces its ticks.
- ``DagsterApiServer._mp_ctx`` and ``dagster._cli.api.grpc_command``: Dagster's code server starts
  each run's process with the ``multiprocessing`` context it keeps there, always spawn (a new
  interpreter importing Dagster and the code location). ``smartplex-dagster-code-server``
  (:mod:`smartplex_dagster.runtime.code_server`) gives it a forkserver context with :func:`start_runs_from`,
  then runs Dagster's own ``api grpc`` command.
- ``SCHEDULED_EXECUTION_TIME_TAG``: the tick that made a schedule's run. A run that tick made and
  never submitted (the daemon stopped in between) is asked for again when Dagster resumes the tick
  (:mod:`smartplex_dagster.defs.schedules`).
- ``AUTO_RETRY_RUN_ID_TAG`` / ``PARENT_RUN_ID_TAG``: the tags Dagster puts on a failed run and on its
  retry, the only link between the two. They are plain strings, written here as such; the test checks
  they are still Dagster's.
"""

from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

from alembic.config import Config
from dagster import DagsterEventType, DagsterInstance
from dagster._core.events import JobFailureData, RunFailureReason
from dagster._core.storage.event_log.schema import SqlEventLogStorageMetadata
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sql import get_alembic_config
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS, create_db_conn_string
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._daemon.auto_run_reexecution.event_log_consumer import EventLogConsumerDaemon, _create_cursor_key


def remove_run_event_file(instance: DagsterInstance, run_id: str) -> None:
    """After ``instance.delete_run``: give the run's event file back to the disk (embedded storage)."""
    storage = instance.event_log_storage
    if not isinstance(storage, SqliteEventLogStorage):
        return  # one database for every run (PostgreSQL): deleting the run deleted its rows
    shard = Path(storage.path_for_shard(run_id))
    for path in (shard, shard.with_name(shard.name + "-wal"), shard.with_name(shard.name + "-shm")):
        path.unlink(missing_ok=True)
    storage._initialized_dbs.discard(run_id)  # noqa: SLF001 - see the module's docstring


def sqlite_conn_string(base_dir: str, name: str) -> str:
    """The connection string of ``name``.db under ``base_dir``, as Dagster's SQLite storages write it."""
    return create_db_conn_string(base_dir, name)


def dagster_migrations_config() -> Config:
    """The alembic configuration of Dagster's storage migrations (one set for all of its storages)."""
    return get_alembic_config(sqlite_event_log.__file__)


def sqlite_storage_directories(base_dir: str) -> tuple[str, str, str]:
    """Where ``storage: sqlite`` keeps the runs, the run event files and the schedules under ``base_dir``."""
    return _runs_directory(base_dir), _event_logs_directory(base_dir), _schedule_directory(base_dir)


# The daemon's modules are imported where they are used: a run worker imports this module too, and
# does not need them.


def set_sensor_loop_seconds(seconds: int) -> None:
    """How often this process's sensor daemon looks at its sensors (Dagster's own: 5 s)."""
    import dagster._daemon.sensor as sensor_daemon

    sensor_daemon.MIN_INTERVAL_LOOP_TIME = seconds


def sensor_loop_seconds() -> int:
    import dagster._daemon.sensor as sensor_daemon

    return sensor_daemon.MIN_INTERVAL_LOOP_TIME


def daemon_main() -> None:
    """``dagster-daemon``'s command line."""
    from dagster._daemon.cli import main

    main()


def start_runs_from(context: BaseContext) -> None:
    """Code servers made in this process start their runs' processes with ``context``.

    Dagster's code server starts each run's process with ``multiprocessing``'s spawn context, fixed in
    its constructor (``_mp_ctx``): a new interpreter that imports Dagster and the code location again.
    """
    from dagster._grpc.server import DagsterApiServer

    made = DagsterApiServer.__init__

    def __init__(self: DagsterApiServer, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self._mp_ctx = context  # noqa: SLF001 - see the module's docstring

    DagsterApiServer.__init__ = __init__  # type: ignore[method-assign]


def code_server_main(argv: list[str]) -> None:
    """``dagster api grpc``'s command line, with ``argv`` (its options)."""
    from dagster._cli.api import grpc_command

    grpc_command.main(argv, prog_name="dagster api grpc")


#: The tag Dagster's scheduler puts on a run: the execution time of the tick that made it.
SCHEDULED_EXECUTION_TIME_TAG = ".dagster/scheduled_execution_time"
AUTO_RETRY_RUN_ID_TAG = "dagster/auto_retry_run_id"
PARENT_RUN_ID_TAG = "dagster/parent_run_id"
RETRY_DAEMON: str = EventLogConsumerDaemon.daemon_type()
RETRY_CURSOR: str = _create_cursor_key(DagsterEventType.RUN_FAILURE)

__all__ = [
    "AUTO_RETRY_RUN_ID_TAG",
    "PARENT_RUN_ID_TAG",
    "RETRY_CURSOR",
    "RETRY_DAEMON",
    "INDEX_SHARD_NAME",
    "SCHEDULED_EXECUTION_TIME_TAG",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "DagsterSqliteStorage",
    "JobFailureData",
    "RunFailureReason",
    "SqlEventLogStorageMetadata",
    "SqliteEventLogStorage",
    "SqliteRunStorage",
    "SqliteScheduleStorage",
    "code_server_main",
    "daemon_main",
    "dagster_migrations_config",
    "remove_run_event_file",
    "sensor_loop_seconds",
    "set_sensor_loop_seconds",
    "sqlite_conn_string",
    "sqlite_storage_directories",
    "start_runs_from",
]
