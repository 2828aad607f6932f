"""Dagster's SQLite storage for the embedded default, lighter on every event and every run.

What Dagster's own SQLite storages spend on a small full refresh's run (``make bench-overhead``):

- a new SQLAlchemy engine for each query and each event written, whose first connection reads the
  database's settings before it runs anything (a run writes about twenty events);
- a new connection for each use of a file, and with it, in WAL mode, a checkpoint of the file's WAL
  (and its deletion) each time the last connection closes: most writes pay for one;
- before the first use of a file in a process, and whenever a process (a run's, say) makes an
  instance, a check of the file's schema revision against the newest of Dagster's migrations,
  which alembic finds by importing all of its ~90 migration scripts again (about 15 ms a file;
  about 50 ms to make and stamp each run's event file);
- each run's event file in SQLite's 4 KB pages: about 150 KB a run, most of it the empty schema.

Here:

- the three shared files (runs, schedules, the events index) keep one engine each with a small pool
  of open connections, as SQLAlchemy does for a SQLite file by default. In WAL mode readers and
  the one writer still share them across processes; the WAL, which no last close deletes any more,
  is kept to about 1 MB; a process that forks (none of the embedded stack's does, after opening
  them) leaves its connections to the parent;
- a run's event file is created with 512-byte pages in SQLite's default (rollback) journal mode
  rather than WAL: a commit writes the file itself, so closing costs no checkpoint, and the file
  changes with every event, which is what Dagster's live view of a run (a watch on the file) waits
  for. Its engine keeps one open connection, so a run's twenty-odd events do not each open the file
  and read its schema again; a process keeps the engines of the last ``RUN_FILES_OPEN`` run files
  it used (a run's worker, its own; the daemon and the UI, the runs they look at), and deleting a
  run's events closes them in that process before retention removes the file;
- a file that already carries a schema revision is used as it is, as Dagster would after its
  check, and a new run file is stamped from migration scripts read once per process.

The files and their layout are Dagster's own: an instance made with Dagster's storage opens with
this one, and back. Configured by :mod:`smartplex_cli.dagster_home` as the embedded instance's
``storage``. The private methods of Dagster's storages replaced here, and their private attributes
read or set, are in the register of :mod:`smartplex_dagster.runtime.dagster_internals`.
"""

from __future__ import annotations

import functools
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.exc import DatabaseError

from smartplex_dagster.runtime.dagster_internals import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    DagsterSqliteStorage,
    SqlEventLogStorageMetadata,
    SqliteEventLogStorage,
    SqliteRunStorage,
    SqliteScheduleStorage,
    dagster_migrations_config,
    sqlite_conn_string,
    sqlite_storage_directories,
)

#: Page size of a new run's event file (SQLite's default is 4096; 512 is its least): the file holds
#: some 25 tables and indexes of one page each, mostly empty, beside about 30 KB of events.
RUN_FILE_PAGE_SIZE = 512
#: Run files whose engine (and one open connection) a process keeps: a connection left open to a file
#: that another process then removes holds its disk space until it is closed, so this bounds that too.
RUN_FILES_OPEN = 64
#: Open connections a process keeps to each shared file: the daemon's threads share them.
SHARED_FILE_CONNECTIONS = 2
#: A shared file's WAL is checkpointed every this many pages (SQLite's default: 1000, 4 MB in 4 KB
#: pages), and cut back to that size once the checkpoint restarts it: with connections kept open,
#: no last close checkpoints and deletes it.
SHARED_WAL_PAGES = 256


def engine_for(conn_string: str, *, timeout: float | None = None, run_file: bool = False) -> Engine:
    """The process's engine for a database file (one per file and settings), with open connections,
    which a forked child leaves to its parent."""
    return (_run_file_engine if run_file else _shared_file_engine)(conn_string, timeout)


@functools.lru_cache(maxsize=RUN_FILES_OPEN)  # an engine dropped from here closes as it is collected
def _run_file_engine(conn_string: str, timeout: float | None) -> Engine:
    # One connection kept; a second thread using the file at the same moment opens one of its own.
    engine = create_engine(conn_string, pool_size=1, connect_args={**_timeout(timeout), "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _page_size(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA page_size = {RUN_FILE_PAGE_SIZE}")  # a new file only

    _open_engines.add(engine)
    return engine


@functools.lru_cache(maxsize=16)  # three files an instance; run files have a cache of their own
def _shared_file_engine(conn_string: str, timeout: float | None) -> Engine:
    engine = create_engine(
        conn_string,
        pool_size=SHARED_FILE_CONNECTIONS,
        connect_args={**_timeout(timeout), "check_same_thread": False},  # the pool hands each to one thread
    )

    @event.listens_for(engine, "connect")
    def _bounded_wal(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint = {SHARED_WAL_PAGES}")
        dbapi_connection.execute(f"PRAGMA journal_size_limit = {SHARED_WAL_PAGES * 4096}")

    _open_engines.add(engine)
    return engine


def _timeout(timeout: float | None) -> dict[str, Any]:
    return {} if timeout is None else {"timeout": timeout}


#: Held weakly: an engine the cache lets go of is closed with its connections.
_open_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _leave_connections_to_parent() -> None:
    """In a forked child: new pools, without touching (or closing) the parent's connections."""
    for engine in list(_open_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_leave_connections_to_parent)


@functools.cache
def migrations() -> ScriptDirectory:
    """Dagster's migration scripts and their revision map, read once per process (alembic reads them
    again for every check); the runs' fork server reads them before its first run (``run_preload``)."""
    script = ScriptDirectory.from_config(dagster_migrations_config())
    script.get_current_head()  # builds the revision map, which stamping a new run file walks
    return script


def _stamped(connection: Connection) -> bool:
    """Whether the database carries a schema revision: Dagster made it, and its check would stop here."""
    return MigrationContext.configure(connection).get_current_revision() is not None


def _made(conn_string: str, *tables: str) -> bool:
    """Whether the file exists, carries a schema revision and has ``tables``."""
    if not Path(conn_string.removeprefix("sqlite:///")).exists():
        return False
    with engine_for(conn_string).connect() as connection:
        return _stamped(connection) and all(inspect(connection).has_table(table) for table in tables)


class _RunStorage(SqliteRunStorage):
    @classmethod
    def from_local(cls, base_dir: str, inst_data: Any = None) -> _RunStorage:
        conn_string = sqlite_conn_string(base_dir, "runs")
        if _made(conn_string, "instance_info"):  # the last table Dagster's own setup adds
            return cls(conn_string, inst_data)
        return super().from_local(base_dir, inst_data)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with engine_for(self._conn_string).connect() as connection, connection.begin():
            yield connection


class _ScheduleStorage(SqliteScheduleStorage):
    @classmethod
    def from_local(cls, base_dir: str, inst_data: Any = None) -> _ScheduleStorage:
        conn_string = sqlite_conn_string(base_dir, "schedules")
        if _made(conn_string):
            return cls(conn_string, inst_data)
        return super().from_local(base_dir, inst_data)  # type: ignore[return-value]

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with engine_for(self._conn_string).connect() as connection, connection.begin():
            yield connection


class _EventLogStorage(SqliteEventLogStorage):
    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        with engine.connect() as connection:
            if _stamped(connection):
                return
            if not for_index_shard:  # a new run file: Dagster's schema, stamped with its newest revision
                try:
                    # One transaction: the driver would commit each CREATE by itself.
                    connection.exec_driver_sql("BEGIN")
                    SqlEventLogStorageMetadata.create_all(connection)
                    MigrationContext.configure(connection).stamp(migrations(), "head")
                    connection.commit()
                    return
                except DatabaseError:
                    connection.rollback()  # made at the same moment by another process: Dagster's own
                    # setup below waits for it and retries
        super()._initdb(engine, for_index_shard)

    def delete_events(self, run_id: str) -> None:
        """Dagster's, then this process's connections to the run's file closed: the file is about to go
        (retention removes it), and an open connection would keep its disk space."""
        super().delete_events(run_id)
        _run_file_engine(self.conn_string_for_shard(run_id), SQLITE_BUSY_TIMEOUT_SECONDS).dispose()

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = engine_for(
                self.conn_string_for_shard(shard),
                timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
                run_file=shard != INDEX_SHARD_NAME,
            )
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as connection, connection.begin():
                yield connection


class SqliteStorage(DagsterSqliteStorage):
    """Dagster's ``storage: sqlite`` with the storages above (config: ``base_dir``, as Dagster's)."""

    def __init__(self, base_dir: str, inst_data: Any = None) -> None:
        runs, event_logs, schedules = sqlite_storage_directories(base_dir)
        self.base_dir = base_dir
        self._run_storage = _RunStorage.from_local(runs)
        self._event_log_storage = _EventLogStorage(event_logs)
        self._schedule_storage = _ScheduleStorage.from_local(schedules)
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> SqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
