"""Dagster's SQLite storage for the embedded default, lighter on every event and every run.

Dagster's SQLite storages build a new SQLAlchemy engine for each query and each event they write,
and an engine's first connection reads the database's settings before it runs anything; a run
writes about twenty events, so this came to about a quarter of a small full refresh's run
(``make bench-overhead``). Each run also gets an event file of its own, created with SQLite's 4 KB
pages: about 150 KB a run, most of it the empty schema.

Before any use of a file, and in every process that makes an instance, Dagster's storages also
check the file's schema revision against the newest of Dagster's migrations; alembic finds that one by
importing all of its ~90 migration scripts again: about 15 ms for each of the three shared files
whenever a process (a run's, say) makes an instance, the same for each run file a process opens, and
about 50 ms to stamp each new run file.

Here each database file keeps one engine, without a pool (connections are still opened and closed
for each use, as Dagster's are, so the daemon, the webserver and the runs share the files as
before), and a run's event file is created with 1 KB pages (about 65 KB a run). A file that already
carries a revision is used as it is, as Dagster would after its check; a new run file is stamped
from migration scripts read once per process. The files and their layout are Dagster's own: an
instance made with Dagster's storage opens with this one, and back. Configured by
:mod:`smartplex.cli.dagster_home` as the embedded instance's ``storage``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.pool import NullPool

from smartplex_dagster.dagster_internals import (
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

#: Page size of a new run's event file (SQLite's default is 4096).
RUN_FILE_PAGE_SIZE = 1024


@functools.lru_cache(maxsize=64)
def engine_for(conn_string: str, *, timeout: float | None = None, page_size: int | None = None) -> Engine:
    """One engine per database file and settings, for the life of the process.

    With no pool, an engine holds no connection, so a cached one costs nothing between uses and is
    safe to carry into a forked process. ``page_size`` applies to a file SQLite creates on the
    engine's connection; on an existing file SQLite ignores it.
    """
    engine = create_engine(
        conn_string, poolclass=NullPool, connect_args={} if timeout is None else {"timeout": timeout}
    )
    if page_size is not None:

        @event.listens_for(engine, "connect")
        def _page_size(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA page_size = {int(page_size)}")

    return engine


@functools.cache
def _migrations() -> ScriptDirectory:
    """Dagster's migration scripts, read once per process (alembic reads them again for every check)."""
    return ScriptDirectory.from_config(dagster_migrations_config())


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
                    # WAL first, and no sync per table: each CREATE commits by itself, and WAL with
                    # synchronous=NORMAL stays consistent through a crash (it may lose the last commits).
                    connection.execute(text("PRAGMA journal_mode=WAL"))
                    connection.execute(text("PRAGMA synchronous=NORMAL"))
                    SqlEventLogStorageMetadata.create_all(connection)
                    MigrationContext.configure(connection).stamp(_migrations(), "head")
                    connection.commit()
                    return
                except DatabaseError:
                    connection.rollback()  # made at the same moment by another process: Dagster's own
                    # setup below waits for it and retries
        super()._initdb(engine, for_index_shard)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = engine_for(
                self.conn_string_for_shard(shard),
                timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
                page_size=None if shard == INDEX_SHARD_NAME else RUN_FILE_PAGE_SIZE,
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
