"""Batched, idempotent upserts with the dialect's ``INSERT … ON CONFLICT`` (PostgreSQL and SQLite)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, func, literal_column, null, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, other: UpsertCounts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged


def _insert(connection: Connection, table: Table) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def upsert(connection: Connection, table: Table, key: tuple[str, ...], rows: list[dict[str, Any]]) -> UpsertCounts:
    """Insert new rows, update changed ones, leave identical ones untouched (so a re-sync writes nothing).

    ``synced_at`` is set only on rows that change; a row that comes back clears its ``deleted_at``.
    One cached statement serves every batch (SQLAlchemy sends the rows as multi-row VALUES pages).
    """
    if not rows:
        return UpsertCounts()
    rows = list({tuple(r[k] for k in key): r for r in rows}.values())  # a page may repeat an item
    key_columns = [table.c[k] for k in key]
    data_columns = [c for c in rows[0] if c not in key and c not in ("synced_at", "deleted_at")]
    statement = _insert(connection, table)
    excluded = statement.excluded
    changed = or_(
        *(table.c[c].is_distinct_from(excluded[c]) for c in data_columns),
        table.c.deleted_at.is_not(None),
    )
    statement = statement.on_conflict_do_update(
        index_elements=key_columns,
        set_={**{c: excluded[c] for c in data_columns}, "synced_at": excluded.synced_at, "deleted_at": null()},
        where=changed,
    )
    if connection.dialect.name == "postgresql":
        # Rows the WHERE skipped return nothing; xmax = 0 marks a fresh insert.
        flags = connection.execute(statement.returning(literal_column("(xmax = 0)")), rows).scalars().all()
        inserted, written = sum(flags), len(flags)
    else:
        existing = connection.execute(
            select(func.count()).select_from(table).where(tuple_(*key_columns).in_([tuple(r[k] for k in key) for r in rows]))
        ).scalar_one()
        written = len(connection.execute(statement.returning(literal_column("1")), rows).all())
        inserted = len(rows) - existing
    return UpsertCounts(inserted=inserted, updated=written - inserted, unchanged=len(rows) - written)
