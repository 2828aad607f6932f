"""Group commit: concurrent webhook rows share one transaction; each request answers after its commit.

Requests queue their row and wait. A writer thread takes everything queued, inserts it in one
multi-row INSERT, commits, then wakes the waiters. While a group commits the next one forms, so under
load the cost of a commit (an fsync) is shared by many requests, and a lone request waits for nothing
but its own commit.

On PostgreSQL a group is one multi-row INSERT sent in autocommit mode: one statement is one
transaction, so the group costs a single round trip to the server (no BEGIN, no separate COMMIT).
With psycopg2 that statement's values are rendered by the driver itself (``mogrify``), after the
columns' own bind processing: the same literals SQLAlchemy's executemany sends, at half its cost; the
statement goes straight to the driver's cursor.
The writer keeps its connection while it is busy; one idle for longer than :data:`HOLD_SECONDS`
goes back to the pool, whose pre-ping checks it before it is used again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError, StatementError

from smartplex.schema import webhook_log
from webhook_api.errors import BadWebhook, DatabaseUnavailable

log = logging.getLogger(__name__)

_Pending = tuple[dict[str, Any], "asyncio.Future[None]"]

#: How long a writer slot keeps an idle connection without checking it again.
HOLD_SECONDS = 1.0


class _Held:
    """The connection the writer keeps between groups, and when it last committed."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.used = time.monotonic()


class WebhookWriter:
    def __init__(self, engine: Engine, *, timeout: float, batch_size: int) -> None:
        self.engine = engine
        self.timeout = timeout
        dialect = engine.dialect
        # One statement per group where the driver sends a multi-row INSERT as one statement
        # (psycopg2): then that statement is the group's whole transaction.
        self._one_statement = dialect.use_insertmanyvalues_wo_returning
        self.batch_size = min(batch_size, dialect.insertmanyvalues_page_size) if self._one_statement else batch_size
        self._max_parameters = dialect.insertmanyvalues_max_parameters
        self._render = self._one_statement and dialect.driver == "psycopg2"
        self._driver_error: Any = dialect.loaded_dbapi.Error  # the driver module's own base class
        preparer = dialect.identifier_preparer
        self._insert_into = f"INSERT INTO {preparer.format_table(webhook_log)} "
        self._columns: dict[str, tuple[str, Callable[[Any], Any] | None]] = {
            column.name: (preparer.quote(column.name), column.type.bind_processor(dialect))
            for column in webhook_log.columns
        }
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self._held: _Held | None = None  # touched on the event loop only
        # One group at a time: under load the next group forms while one commits, and grows with the
        # load. Three groups in flight were measured against one on PostgreSQL (bench/ingest.py): the
        # same throughput, for a third more CPU a request (smaller groups, each its own statement).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-writer")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="webhook-writer")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None or self._queue is None:
            return
        await self._queue.join()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)
        if self._held is not None:
            self._held.connection.close()
            self._held = None

    async def write(self, row: dict[str, Any]) -> None:
        """Return once ``row`` is committed; raise DatabaseUnavailable if that takes over the timeout."""
        assert self._queue is not None, "writer not started"
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put_nowait((row, future))
        # A row still queued when its time is up is dropped by the writer (its future is done); one
        # already in a commit may land, so a 503 can mean "stored once", never "acknowledged and lost".
        expiry = loop.call_later(self.timeout, _expire, future, self.timeout)
        try:
            await future
        finally:
            expiry.cancel()

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit_group(batch)
            except Exception:
                log.exception("webhook commit group failed")

    async def _commit_group(self, batch: list[_Pending]) -> None:
        assert self._queue is not None
        live = [(row, fut) for row, fut in batch if not fut.done()]
        try:
            if live:
                loop = asyncio.get_running_loop()
                held, self._held = self._held, None
                outcomes, self._held = await loop.run_in_executor(
                    self._executor, self._store, [r for r, _ in live], held
                )
                for (_, future), outcome in zip(live, outcomes, strict=True):
                    if future.done():
                        continue
                    if outcome is None:
                        future.set_result(None)
                    else:
                        future.set_exception(outcome)
        finally:
            for _ in batch:
                self._queue.task_done()

    def _store(self, rows: list[dict[str, Any]], held: _Held | None) -> tuple[list[Exception | None], _Held | None]:
        """Commit ``rows`` on the writer's connection (a fresh one if it has none, or sat idle); the
        connection to keep, or None after a failure (it goes back to the pool, which checks it)."""
        if held is not None and time.monotonic() - held.used > HOLD_SECONDS:
            held.connection.close()
            held = None
        try:
            if held is None:
                connection = self.engine.connect()
                if self._one_statement:
                    connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                held = _Held(connection)
        except SQLAlchemyError as exc:
            log.warning("webhook insert failed: %s", type(exc).__name__)
            error = _classify(exc) if isinstance(exc, DBAPIError) else DatabaseUnavailable(str(exc))
            return [error] * len(rows), None
        outcomes = self._commit(held.connection, rows)
        if any(isinstance(outcome, DatabaseUnavailable) for outcome in outcomes):
            held.connection.close()
            return outcomes, None
        held.used = time.monotonic()
        return outcomes, held

    def _commit(self, connection: Connection, rows: list[dict[str, Any]]) -> list[Exception | None]:
        """Insert ``rows`` together; on a row-level error, fall back to one transaction per row."""
        try:
            if self._one_statement and len(rows) * len(rows[0]) <= self._max_parameters:
                statement = self._rendered(connection, rows) if self._render else None
                if statement is not None:
                    self._execute_rendered(connection, statement)
                else:
                    connection.execute(webhook_log.insert(), rows)
                connection.commit()  # nothing to send: the statement committed itself
            else:
                with connection.begin():
                    connection.execute(webhook_log.insert(), rows)
            return [None] * len(rows)
        except DBAPIError as exc:
            _rollback(connection)
            if exc.connection_invalidated or len(rows) == 1 or _is_unavailable(exc):
                log.warning("webhook insert failed: %s", type(exc.orig).__name__)
                return [_classify(exc)] * len(rows)
        except StatementError as exc:  # a value that cannot be bound: the row's fault, not the database's
            _rollback(connection)
            if len(rows) == 1:
                return [BadWebhook(422, f"the payload cannot be stored: {exc.orig}")]
        except SQLAlchemyError as exc:
            log.warning("webhook insert failed: %s", type(exc).__name__)
            return [DatabaseUnavailable(str(exc))] * len(rows)
        return [self._commit(connection, [row])[0] for row in rows]

    def _execute_rendered(self, connection: Connection, statement: str) -> None:
        """Send the rendered INSERT on the driver's own cursor: SQLAlchemy's statement machinery costs
        more client CPU than the driver's round trip here. The connection is in autocommit mode, so
        the statement is its own transaction; a driver error is raised as SQLAlchemy's own."""
        dbapi_connection: Any = connection.connection.dbapi_connection
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute(statement)
        except self._driver_error as exc:
            raise DBAPIError.instance(
                statement, None, exc, self._driver_error,
                connection_invalidated=self.engine.dialect.is_disconnect(exc, dbapi_connection, None),
            ) from exc  # fmt: skip

    def _rendered(self, connection: Connection, rows: list[dict[str, Any]]) -> str | None:
        """The multi-row INSERT of ``rows`` with its values as literals; None if the driver cannot
        render them (SQLAlchemy then binds them, and says what is wrong with a value)."""
        names = list(rows[0])
        if any(row.keys() != rows[0].keys() for row in rows) or not all(name in self._columns for name in names):
            return None
        columns = [self._columns[name] for name in names]
        template = "(" + ",".join(["%s"] * len(columns)) + ")"
        dbapi_connection: Any = connection.connection.dbapi_connection
        if dbapi_connection.encoding != "UTF8":  # the client encoding, as PostgreSQL names it
            return None
        cursor = dbapi_connection.cursor()
        try:
            values = b",".join(
                cursor.mogrify(
                    template,
                    [
                        row[name] if process is None else process(row[name])
                        for name, (_, process) in zip(names, columns, strict=True)
                    ],
                )
                for row in rows
            )
        except Exception:  # a value the driver cannot adapt
            return None
        finally:
            cursor.close()
        return f"{self._insert_into}({', '.join(quoted for quoted, _ in columns)}) VALUES {values.decode()}"


def _expire(future: asyncio.Future[None], timeout: float) -> None:
    if not future.done():
        future.set_exception(DatabaseUnavailable(f"database did not commit within {timeout:g}s"))


def _rollback(connection: Connection) -> None:
    """End the failed statement's transaction, if the connection still has one."""
    try:
        connection.rollback()
    except SQLAlchemyError:
        pass


def _is_unavailable(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)


def _classify(exc: DBAPIError) -> Exception:
    if _is_unavailable(exc):
        return DatabaseUnavailable(f"database unavailable: {type(exc.orig).__name__}")
    return BadWebhook(422, f"the database rejected the payload: {str(exc.orig).splitlines()[0]}")
