"""Batched, idempotent upserts with the dialect's ``INSERT … ON CONFLICT`` (PostgreSQL and SQLite)."""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, DateTime, Table, bindparam, func, literal_column, null, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import Text

from smartplex.column_types import UTCDateTime
from smartplex.instances import DEFAULT_INSTANCE


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: UpsertCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged


@dataclass(frozen=True)
class PreparedRows:
    """A batch made ready to write, without the database: keys deduplicated and, for PostgreSQL,
    encoded as the one JSON document the statement unpacks. Building it is the CPU-heavy half of
    an upsert, so a sync can do it in its fetching thread while the previous batch is written.

    ``shared``: the values every row of the batch has (a sync's instance, Plex server, ``synced_at``),
    sent once as parameters rather than once per row. ``keys``: each row's key columns that are not
    shared (a tuple of them, or the one value when there is one).
    """

    rows: list[dict[str, Any]]
    document: str | None = None
    shared: dict[str, Any] = field(default_factory=dict)
    keys: Collection[Any] = ()


def upsert(
    connection: Connection,
    table: Table,
    key: tuple[str, ...],
    rows: list[dict[str, Any]],
) -> UpsertCounts:
    """Insert new rows, update changed ones, leave identical ones untouched (so a re-sync writes nothing).

    ``synced_at`` is set only on rows that change; a row that comes back clears its ``deleted_at``.
    Rows of a synced table that name no instance are the default instance's.
    """
    if "instance" in table.c and "instance" not in key:
        key = ("instance", *key)
        rows = [{"instance": DEFAULT_INSTANCE, **row} for row in rows]
    prepared = prepare_rows(connection.dialect.name, table, key, rows)
    return write_rows(connection, table, key, prepared)


def prepare_rows(
    dialect: str, table: Table, key: tuple[str, ...], rows: list[dict[str, Any]], shared: dict[str, Any] | None = None
) -> PreparedRows:
    """:func:`upsert`'s work that needs no connection (``dialect``: ``connection.dialect.name``).

    ``shared``: columns every row takes the same value of, left out of ``rows`` (see
    :class:`PreparedRows`). Raises on a value the column cannot take as it is (a naive datetime),
    before anything is written.
    """
    shared = shared or {}
    if not rows:
        return PreparedRows([], shared=shared)
    if overlap := shared.keys() & rows[0].keys():
        raise ValueError(f"{sorted(overlap)} given both per row and shared")
    key_of = itemgetter(*(k for k in key if k not in shared))  # a page may repeat an item; the last one read wins
    deduplicated = {key_of(r): r for r in rows}
    if len(deduplicated) < len(rows):
        rows = list(deduplicated.values())
    keys = deduplicated.keys()
    if dialect != "postgresql":
        return PreparedRows([{**shared, **r} for r in rows] if shared else rows, keys=keys)
    _refuse_naive(table, rows)
    _refuse_naive(table, [shared])
    try:
        document = orjson.dumps(rows, default=_json_value, option=orjson.OPT_UTC_Z).decode()
    except orjson.JSONEncodeError as exc:
        raise (exc.__cause__ or exc) from None  # the value's own complaint, not orjson's summary
    return PreparedRows(rows, document, shared, keys)


def write_rows(connection: Connection, table: Table, key: tuple[str, ...], prepared: PreparedRows) -> UpsertCounts:
    """Write a batch :func:`prepare_rows` made for this connection's dialect (see :func:`upsert`)."""
    rows = prepared.rows
    if not rows:
        return UpsertCounts()
    if prepared.document is not None:
        shared = prepared.shared
        statement = _postgresql_statement(table, key, tuple(rows[0]), tuple(shared))
        parameters = {"rows": prepared.document, **{_shared_name(c): v for c, v in shared.items()}}
        inserted, written = connection.execute(statement, parameters).one()
        return UpsertCounts(inserted=inserted, updated=written - inserted, unchanged=len(rows) - written)
    return _upsert_sqlite(connection, table, key, rows)


def _refuse_naive(table: Table, rows: list[dict[str, Any]]) -> None:
    """orjson writes a naive datetime without an offset, which PostgreSQL would read in its own zone:
    refused, as :class:`UTCDateTime` refuses it."""
    for name in rows[0]:
        column = table.c.get(name)
        if column is None or not isinstance(column.type, UTCDateTime | DateTime):
            continue
        if any(isinstance(value, datetime) and value.tzinfo is None for value in map(itemgetter(name), rows)):
            raise ValueError("naive datetime given to a timestamptz column; use an aware UTC datetime")


def _on_conflict(statement: Any, table: Table, key: tuple[str, ...], columns: list[str]) -> Any:
    """``ON CONFLICT (key) DO UPDATE`` the data columns, only where one differs or the row was deleted."""
    excluded = statement.excluded
    data_columns = [c for c in columns if c not in key and c not in ("synced_at", "deleted_at")]
    changed = or_(
        *(table.c[c].is_distinct_from(excluded[c]) for c in data_columns),
        table.c.deleted_at.is_not(None),
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c[k] for k in key],
        set_={**{c: excluded[c] for c in data_columns}, "synced_at": excluded.synced_at, "deleted_at": null()},
        where=changed,
    )


_POSTGRESQL: Dialect = postgresql.dialect()  # type: ignore[no-untyped-call]


@functools.lru_cache(maxsize=64)
def _postgresql_statement(
    table: Table,
    key: tuple[str, ...],
    columns: tuple[str, ...],
    shared: tuple[str, ...],
) -> Executable:
    """The whole batch travels as one JSON document that the server unpacks with ``json_populate_recordset``.

    One parameter instead of one per value: the server parses a string literal rather than a
    statement with thousands of values, and the client's work is one C-speed ``orjson.dumps``
    (the syncing process is busy parsing what the service sends; COPY's text would cost it more).
    The ``shared`` columns are parameters of their own. Built once per table and column lists:
    every batch of a sync runs the same statement.
    """
    row_type: ColumnElement[Any] = literal_column(f"NULL::{_POSTGRESQL.identifier_preparer.format_table(table)}")
    unpacked = func.json_populate_recordset(row_type, bindparam("rows", type_=Text))
    source = unpacked.table_valued(*(table.c[c] for c in columns))
    values = [bindparam(_shared_name(c), type_=table.c[c].type) for c in shared] + [source.c[c] for c in columns]
    every = (*shared, *columns)
    statement = postgresql.insert(table).from_select(list(every), select(*values))
    # Rows the WHERE skipped return nothing; xmax = 0 marks a fresh insert.
    merged = (
        _on_conflict(statement, table, key, list(every)).returning(literal_column("(xmax = 0)").label("fresh")).cte()
    )
    return select(func.count().filter(merged.c.fresh), func.count()).select_from(merged)


def _shared_name(column: str) -> str:
    return f"shared_{column}"


def _json_value(value: Any) -> str:
    """What orjson cannot write itself (it writes datetimes as RFC 3339, with their offset) is no column value."""
    raise TypeError(f"{type(value).__name__} is not a column value")


def _upsert_sqlite(
    connection: Connection, table: Table, key: tuple[str, ...], rows: list[dict[str, Any]]
) -> UpsertCounts:
    """SQLite binds values locally, so plain executemany is already cheap; one cached statement serves every batch."""
    key_columns = [table.c[k] for k in key]
    statement = _on_conflict(sqlite.insert(table), table, key, list(rows[0]))
    existing = connection.execute(
        select(func.count())
        .select_from(table)
        .where(tuple_(*key_columns).in_([tuple(r[k] for k in key) for r in rows]))
    ).scalar_one()
    written = len(connection.execute(statement.returning(literal_column("1")), rows).all())
    inserted = len(rows) - existing
    return UpsertCounts(inserted=inserted, updated=written - inserted, unchanged=len(rows) - written)
