"""Every private Dagster name SmartPlex uses, and why.

Dagster's public API does not cover these. They are of two kinds:

- the names imported from Dagster's private modules (``dagster._…``), listed below with their reasons;
- the register at the end of this module: each private attribute of a Dagster object read or set
  (:data:`PRIVATE_ATTRIBUTES`), each private method overridden in a subclass (:data:`PRIVATE_METHODS`),
  each run-time assignment to a Dagster module or class (:data:`MONKEYPATCHES`) and each private module
  path written as a string (:data:`PRIVATE_MODULE_PATHS`), each with its reason.

``tests/dagster/test_dagster_internals.py`` and ``tests/dagster/test_private_api_fence.py`` fail, naming
the name, when an upgrade moves or changes one, and when code uses a private name that is not here
(or imports from ``dagster._`` or patches Dagster anywhere but in this module).

- ``SqliteRunStorage``: tells the embedded instance (every run a process of this machine) from a
  shared one, so that only there a run with no recorded process may be judged dead
  (:func:`smartplex_dagster.runtime.orphans.is_embedded`).
- ``JobFailureData`` / ``RunFailureReason``: a run whose worker died is failed with the reason
  Dagster's own run monitoring gives (``UNEXPECTED_TERMINATION``), which its run retries act on.
- ``RETRY_DAEMON`` and ``RETRY_CURSOR``: the name of the daemon that creates a failed run's retry,
  and the key under which it stores how far it has read the run failures; a failure behind that cursor
  has been handled, so a missing retry is not coming (:mod:`smartplex_dagster.defs.settle`).
- ``SqliteEventLogStorage``: the embedded instance keeps each run's events in a SQLite file of its own
  (``path_for_shard``), which deleting the run empties but leaves on disk (about 190 KB a run, most of
  it the schema); :func:`remove_run_event_file` removes it.
- ``DagsterSqliteStorage`` and its three storages, the directories it keeps them in,
  ``INDEX_SHARD_NAME`` and ``SQLITE_BUSY_TIMEOUT_SECONDS``: the embedded instance's storage
  (:mod:`smartplex_dagster.runtime.sqlite_storage`) is Dagster's, with the methods of the register
  replaced so that one engine serves each file and a run's event file is created with smaller pages.
  It also makes a file Dagster's way (``SqlEventLogStorageMetadata``, the migrations of
  ``get_alembic_config``, the connection strings of ``create_db_conn_string``) without reading
  Dagster's migration scripts at every check.
- ``dagster._daemon.sensor`` and ``dagster._daemon.cli.main``: ``smartplex-dagster-daemon``
  (:mod:`smartplex_dagster.runtime.daemon`) shortens the sensor daemon's loop with
  :func:`set_sensor_loop_seconds`, then runs Dagster's own daemon command.
- ``dagster._grpc.server.DagsterApiServer`` and ``dagster._cli.api.grpc_command``:
  ``smartplex-dagster-code-server`` (:mod:`smartplex_dagster.runtime.code_server`) has each code server
  start its runs' processes from a fork server with :func:`start_runs_from`, then runs Dagster's own
  ``api grpc`` command.
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


def remove_run_event_file(dagster_instance: DagsterInstance, run_id: str) -> None:
    """After ``dagster_instance.delete_run``: give the run's event file back to the disk (embedded storage)."""
    storage = dagster_instance.event_log_storage
    if not isinstance(storage, SqliteEventLogStorage):
        return  # one database for every run (PostgreSQL): deleting the run deleted its rows
    shard = Path(storage.path_for_shard(run_id))
    for path in (shard, shard.with_name(shard.name + "-wal"), shard.with_name(shard.name + "-shm")):
        path.unlink(missing_ok=True)
    storage._initialized_dbs.discard(run_id)  # noqa: SLF001 - see PRIVATE_ATTRIBUTES


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
    its constructor: a new interpreter that imports Dagster and the code location again.
    """
    from dagster._grpc.server import DagsterApiServer

    made = DagsterApiServer.__init__

    def __init__(self: DagsterApiServer, *args: Any, **kwargs: Any) -> None:
        made(self, *args, **kwargs)
        self._mp_ctx = context  # type: ignore[assignment]  # noqa: SLF001 - Dagster types it spawn-only; see PRIVATE_ATTRIBUTES

    DagsterApiServer.__init__ = __init__  # type: ignore[method-assign]


def code_server_main(argv: list[str]) -> None:
    """``dagster api grpc``'s command line, with ``argv`` (its options)."""
    from dagster._cli.api import grpc_command

    grpc_command.main(argv, prog_name="dagster api grpc")


# The register: every private thing of Dagster's used besides the imports above, named where Dagster
# defines it ("module:Class.name"), with why. The fence test fails on a use that is not here, and on an
# entry that nothing uses or that the installed Dagster no longer has.

_EVENT_LOG = "dagster._core.storage.event_log.sqlite.sqlite_event_log:SqliteEventLogStorage"
_STORAGE = "dagster._core.storage.sqlite_storage:DagsterSqliteStorage"
_SET_BY_CONSTRUCTOR = "set by SqliteStorage.__init__ as Dagster's constructor sets it, to the embedded storages"

#: Private attributes of Dagster's objects, read or set.
PRIVATE_ATTRIBUTES: dict[str, str] = {
    "dagster._core.storage.runs.sqlite.sqlite_run_storage:SqliteRunStorage._conn_string": (
        "the runs file, which the embedded storage's connect opens with the process's engine for it"
    ),
    "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage:SqliteScheduleStorage._conn_string": (
        "the schedules file, which the embedded storage's connect opens with the process's engine for it"
    ),
    f"{_EVENT_LOG}._db_lock": "held while the embedded storage's _connect sets up a file, as Dagster's own does",
    f"{_EVENT_LOG}._initialized_dbs": (
        "the files set up in this process: the embedded _connect adds those it sets up; remove_run_event_file "
        "forgets a deleted run's, so a late read finds no events rather than no table"
    ),
    f"{_STORAGE}._run_storage": _SET_BY_CONSTRUCTOR,
    f"{_STORAGE}._event_log_storage": _SET_BY_CONSTRUCTOR,
    f"{_STORAGE}._schedule_storage": _SET_BY_CONSTRUCTOR,
    f"{_STORAGE}._inst_data": _SET_BY_CONSTRUCTOR,
    "dagster._grpc.server:DagsterApiServer._mp_ctx": (
        "the multiprocessing context the code server starts each run's process with (spawn); "
        "start_runs_from sets the fork server's"
    ),
}

#: Private methods of Dagster's classes that a subclass here overrides (and may call).
PRIVATE_METHODS: dict[str, str] = {
    f"{_EVENT_LOG}._connect": "a connection to a file: the embedded storage's comes from one engine kept per file",
    f"{_EVENT_LOG}._initdb": (
        "sets up a file: the embedded storage's uses one already stamped as it is, and makes and stamps a new "
        "run file from migrations read once per process"
    ),
}

#: Run-time assignments to Dagster's modules and classes, all made in this module.
MONKEYPATCHES: dict[str, str] = {
    "dagster._daemon.sensor:MIN_INTERVAL_LOOP_TIME": (
        "the sensor daemon's loop, 5 s whatever a sensor's interval: set_sensor_loop_seconds shortens it"
    ),
    "dagster._grpc.server:DagsterApiServer.__init__": (
        "start_runs_from: Dagster's constructor, then _mp_ctx replaced, for which it has no option"
    ),
}

#: Private module paths written as strings, as "module:Class".
PRIVATE_MODULE_PATHS: dict[str, str] = {
    "dagster._core.storage.noop_compute_log_manager:NoOpComputeLogManager": (
        "the embedded instance's compute_logs (smartplex_cli.dagster_home.NO_COMPUTE_LOGS): Dagster has no "
        "public name for it, and the supervisor writing the configuration does not import Dagster"
    ),
}

#: The tag Dagster's scheduler puts on a run: the execution time of the tick that made it.
SCHEDULED_EXECUTION_TIME_TAG = ".dagster/scheduled_execution_time"
AUTO_RETRY_RUN_ID_TAG = "dagster/auto_retry_run_id"
PARENT_RUN_ID_TAG = "dagster/parent_run_id"
RETRY_DAEMON: str = EventLogConsumerDaemon.daemon_type()
RETRY_CURSOR: str = _create_cursor_key(DagsterEventType.RUN_FAILURE)

__all__ = [
    "AUTO_RETRY_RUN_ID_TAG",
    "MONKEYPATCHES",
    "PARENT_RUN_ID_TAG",
    "PRIVATE_ATTRIBUTES",
    "PRIVATE_METHODS",
    "PRIVATE_MODULE_PATHS",
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
