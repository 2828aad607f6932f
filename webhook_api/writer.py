"""Group commit: concurrent webhook rows share one transaction; each request answers after its commit.

Requests queue their row and wait. A writer thread takes everything queued, inserts it in one
multi-row INSERT, commits, then wakes the waiters. While commits are in flight the next group forms,
so under load the cost of a commit (an fsync) is shared by many requests, and a lone request waits
for nothing but its own commit.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError, StatementError

from smartplex.schema import webhook_log
from webhook_api.errors import BadWebhook, DatabaseUnavailable

log = logging.getLogger(__name__)

_Pending = tuple[dict[str, Any], "asyncio.Future[None]"]


class WebhookWriter:
    def __init__(self, engine: Engine, *, timeout: float, batch_size: int, concurrency: int = 3) -> None:
        self.engine = engine
        self.timeout = timeout
        self.batch_size = batch_size
        # A few groups in flight let the database work on one while the next is sent (SQLite: one writer).
        self.concurrency = 1 if engine.dialect.name == "sqlite" else concurrency
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None
        self._groups: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="webhook-writer")

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

    async def write(self, row: dict[str, Any]) -> None:
        """Return once ``row`` is committed; raise DatabaseUnavailable if that takes over the timeout."""
        assert self._queue is not None, "writer not started"
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((row, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            # A row still queued is dropped by the writer (its future is cancelled); one already in
            # a commit may land, so a 503 can mean "stored once", never "acknowledged and lost".
            future.cancel()
            raise DatabaseUnavailable(f"database did not commit within {self.timeout:g}s") from None

    async def _run(self) -> None:
        assert self._queue is not None
        slots = asyncio.Semaphore(self.concurrency)
        while True:
            first = await self._queue.get()
            await slots.acquire()
            # Take everything that queued up while we waited for a free slot: that is the group.
            batch = [first]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            task = asyncio.create_task(self._commit_group(batch))
            self._groups.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(lambda done: self._group_done(done, slots))

    def _group_done(self, task: asyncio.Task[None], slots: asyncio.Semaphore) -> None:
        self._groups.discard(task)
        slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook commit group failed", exc_info=task.exception())

    async def _commit_group(self, batch: list[_Pending]) -> None:
        assert self._queue is not None
        live = [(row, fut) for row, fut in batch if not fut.done()]
        try:
            if live:
                loop = asyncio.get_running_loop()
                outcomes = await loop.run_in_executor(self._executor, self._commit, [r for r, _ in live])
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

    def _commit(self, rows: list[dict[str, Any]]) -> list[Exception | None]:
        """Insert ``rows`` together; on a row-level error, fall back to one transaction per row."""
        try:
            with self.engine.begin() as connection:
                connection.execute(webhook_log.insert(), rows)
            return [None] * len(rows)
        except DBAPIError as exc:
            if exc.connection_invalidated or len(rows) == 1 or _is_unavailable(exc):
                log.warning("webhook insert failed: %s", type(exc.orig).__name__)
                return [_classify(exc)] * len(rows)
        except StatementError as exc:  # a value that cannot be bound: the row's fault, not the database's
            if len(rows) == 1:
                return [BadWebhook(422, f"the payload cannot be stored: {exc.orig}")]
        except SQLAlchemyError as exc:
            log.warning("webhook insert failed: %s", type(exc).__name__)
            return [DatabaseUnavailable(str(exc))] * len(rows)
        return [self._commit([row])[0] for row in rows]


def _is_unavailable(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)


def _classify(exc: DBAPIError) -> Exception:
    if _is_unavailable(exc):
        return DatabaseUnavailable(f"database unavailable: {type(exc.orig).__name__}")
    return BadWebhook(422, f"the database rejected the payload: {str(exc.orig).splitlines()[0]}")
