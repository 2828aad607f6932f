"""Run one instance's library sync: fetch a window (incremental) or everything (full refresh), upsert in batches.

Incremental runs only upsert, plus soft-delete what the service's history says is gone (Sonarr's
series, Radarr's movies). A full refresh also soft-deletes every row the service no longer lists,
and only after it has read the whole library: a full refresh that fails part way deletes nothing.
Each batch commits on its own, so a failed run leaves whole batches of correct rows behind and the
next run completes the rest.

Reading and writing overlap: a thread fetches the service's pages and turns each batch into rows
ready to send (:func:`~smartplex.sync.upsert.prepare_rows`), while the caller's thread writes the
previous batch. The database waits without holding the GIL, so the server's work runs beside the
parsing; at most a few batches wait between the two, so memory stays flat. A failure on either side
fails the sync: the other side stops, and nothing is soft-deleted.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain, islice
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Table, and_, func, select, update

from smartplex.clients import Deleted, Missing
from smartplex.column_types import utcnow
from smartplex.instances import Instance
from smartplex.kinds import get_kind
from smartplex.sync.specs import Scope, SyncSpec
from smartplex.sync.upsert import PreparedRows, UpsertCounts, prepare_rows, write_rows

#: Deletions that remove the item itself (file deletions refresh the item instead).
ITEM_DELETIONS = ("series", "movie", "plexItem", "request")


@dataclass
class SyncResult:
    instance: Instance
    full_refresh: bool
    window_start: datetime | None
    window_end: datetime | None
    fetched: int = 0
    pages: int = 0
    counts: UpsertCounts = field(default_factory=UpsertCounts)
    deleted: int = 0
    files_deleted: int = 0
    duration_seconds: float = 0.0
    row_count: int = 0
    #: Ids asked for (``hinted_ids``) or touched that the service did not return, as text.
    not_found: set[str] = field(default_factory=set)

    def metadata(self) -> dict[str, Any]:
        """What a materialization reports; the UI plots the numbers over time."""
        return {
            "dagster/row_count": self.row_count,
            "inserted": self.counts.inserted,
            "updated": self.counts.updated,
            "unchanged": self.counts.unchanged,
            "deleted": self.deleted,
            "files_deleted": self.files_deleted,
            "not_found": len(self.not_found),
            "items_fetched": self.fetched,
            "pages": self.pages,
            "duration_seconds": round(self.duration_seconds, 3),
            "full_refresh": self.full_refresh,
            "window_start": self.window_start.isoformat() if self.window_start else "",
            "window_end": self.window_end.isoformat() if self.window_end else "",
        }


@dataclass
class _Batch:
    """One batch as the fetching thread hands it over: rows ready to write, and what else it read."""

    fetched: int
    rows: PreparedRows
    gone: list[int | str]
    not_found: list[str]
    files_deleted: int


def _prepared_batches(
    items: Iterable[Any], spec: SyncSpec, scope: Scope, now: datetime, dialect: str, size: int
) -> Iterator[_Batch]:
    """Group ``items`` into batches of ``size`` and build each one's rows (runs in the fetching thread).

    Each item becomes its row as it arrives: a row holds only plain values, which the garbage
    collector does not track, while a batch of parsed items (nested JSON and all) would survive
    into its oldest generation and make every full collection longer. What every row of the run
    shares (its scope, ``synced_at``) is written once per batch, not into each row.
    """
    to_row, table, key = spec.to_row, spec.table, spec.table_key
    shared = {**scope, "synced_at": now, "deleted_at": None}
    iterator = iter(items)
    while True:
        rows: list[dict[str, Any]] = []
        gone: list[int | str] = []
        not_found: list[str] = []
        fetched = files_deleted = 0
        for item in islice(iterator, size):
            fetched += 1
            if isinstance(item, Missing):
                not_found.append(str(item.id))
            elif not isinstance(item, Deleted):
                rows.append(to_row(item, scope))
            elif item.kind in ITEM_DELETIONS:
                gone.append(item.id)
                not_found.append(str(item.id))
            else:
                files_deleted += 1
        if not fetched:
            return
        yield _Batch(fetched, prepare_rows(dialect, table, key, rows, shared), gone, not_found, files_deleted)


_DONE = object()


def _read_ahead(batches: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Run ``batches`` in a thread and hand its batches over as they are ready: the service, the
    parsing and the database then wait on each other less. At most ``depth`` batches wait, so
    memory stays flat. An exception in the thread is raised here; stopping early stops the thread."""
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        ready.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            ready.put(exc)

    thread = threading.Thread(target=produce, name="sync-read-ahead", daemon=True)
    thread.start()
    try:
        while (batch := ready.get()) is not _DONE:
            if isinstance(batch, BaseException):
                raise batch
            yield batch
    finally:
        # The consumer may stop early (a failed write): unblock the producer, then wait for it.
        stop.set()
        while thread.is_alive():
            try:
                ready.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def run_sync(
    engine: Engine,
    client: Any,
    spec: SyncSpec,
    window: tuple[datetime, datetime] | None,
    *,
    batch_size: int = 2000,
    hinted_ids: Iterable[int | str] = (),
    instance: Instance | None = None,
    parts: Sequence[Scope] = (),
) -> SyncResult:
    """Sync ``[start, end)`` when ``window`` is given, else everything (the full refresh).

    ``batch_size``: items per transaction; larger batches mean fewer commits and round trips, and a
    failed run keeps whole batches. ``hinted_ids``: ids webhooks named (see
    :mod:`smartplex.sync.hints`), fetched by id beside the window's changes; those the service does
    not have end up in :attr:`SyncResult.not_found`. ``instance`` (default: the kind's default instance):
    its rows are the only ones the sync writes, counts or soft-deletes. ``parts`` (a full refresh only):
    refresh just these parts of the library (Plex sections, ``{"section_id": "1"}``), read with the
    client's ``iter_part``; what vanished from them, and only from them, is soft-deleted.
    """
    started = time.perf_counter()
    now = utcnow()
    full = window is None
    instance = instance or Instance(get_kind(spec.kind))
    result = SyncResult(instance, full, *(window or (None, None)))
    pages_before = client.stats.pages
    with engine.connect() as connection:
        with connection.begin():
            scope: Scope = {"instance": instance.name}
            scope = {**spec.prepare(client, connection, now, scope), **scope}
            # Read before the listing is: a full refresh judges only what was live when it began, and
            # a row another run writes while it reads is not its to delete.
            unseen: set[Any] = set()
            if full:
                for part in parts or ({},):
                    unseen |= _live_keys(connection, spec, {**scope, **part})
        if window is not None:
            items = client.iter_changed(*window, also=list(hinted_ids))
        else:
            items = chain.from_iterable(client.iter_part(part) for part in parts) if parts else client.iter_all()
        batches = _prepared_batches(items, spec, scope, now, connection.dialect.name, batch_size)
        for batch in _read_ahead(batches):
            result.fetched += batch.fetched
            result.not_found.update(batch.not_found)
            result.files_deleted += batch.files_deleted
            with connection.begin():
                result.deleted += _soft_delete(connection, spec, batch.gone, scope, now)
                result.counts.add(write_rows(connection, spec.table, spec.table_key, batch.rows))
            unseen.difference_update(batch.rows.keys)
        if full:
            # The whole library was read: what was live before and is not in it, the service no longer has.
            with connection.begin():
                result.deleted += _soft_delete(connection, spec, sorted(unseen), scope, now)
        result.row_count = _live_rows(connection, spec.table, scope)
    result.pages = client.stats.pages - pages_before
    result.duration_seconds = time.perf_counter() - started
    return result


def _soft_delete(connection: Connection, spec: SyncSpec, ids: list[Any], scope: Scope, now: datetime) -> int:
    """Mark items the service says are gone (an item deleted twice counts once)."""
    table = spec.table
    deleted = 0
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        deleted += connection.execute(
            update(table)
            .where(
                and_(
                    table.c[spec.key[-1]].in_(ids[start : start + _IDS_PER_STATEMENT]),
                    table.c.deleted_at.is_(None),
                    *_in_scope(table, scope),
                )
            )
            .values(deleted_at=now, synced_at=now)
        ).rowcount
    return deleted


#: Keeps a statement that soft-deletes a whole vanished library to a size every driver takes.
_IDS_PER_STATEMENT = 5000


def _live_keys(connection: Connection, spec: SyncSpec, scope: Scope) -> set[Any]:
    """The keys of the scope's live rows: its instance's (and Plex server's) rows, by the item's own id."""
    table = spec.table
    statement = select(table.c[spec.key[-1]]).where(table.c.deleted_at.is_(None), *_in_scope(table, scope))
    return set(connection.execute(statement).scalars())


def _live_rows(connection: Connection, table: Table, scope: Scope) -> int:
    return connection.execute(
        select(func.count()).select_from(table).where(table.c.deleted_at.is_(None), *_in_scope(table, scope))
    ).scalar_one()


def _in_scope(table: Table, scope: Scope) -> list[ColumnElement[bool]]:
    """This instance's rows (and, for Plex, this server's): another's are not the run's to count or delete."""
    return [table.c[k] == v for k, v in scope.items() if k in table.c]
