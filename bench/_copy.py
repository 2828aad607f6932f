"""Binary COPY into a staging table, then the sync's upsert from it: the write path two benchmarks
measure against the sync's JSON document (``upsert_paths.py``, ``split_fetch.py``). It needs psycopg 3,
which is not one of SmartPlex's dependencies: ``pip install "psycopg[binary]"``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class StagedCopy:
    """Writes batches of row tuples (in ``columns``' order) into ``table`` over a psycopg 3 ``connection``."""

    def __init__(self, connection: Any, table: str, key: tuple[str, ...], columns: list[str]) -> None:
        self.connection = connection
        self.listed = ", ".join(columns)
        connection.execute(f"CREATE TEMP TABLE staging (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        self.types = [
            row[0]
            for row in connection.execute(
                "SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(%s::text[]) WITH ORDINALITY AS u(name, n)"
                " JOIN pg_attribute a ON a.attname = u.name AND a.attrelid = 'staging'::regclass ORDER BY u.n",
                (columns,),
            )
        ]
        connection.commit()
        data = [c for c in columns if c not in key and c not in ("synced_at", "deleted_at")]
        changed = " OR ".join(f"{table}.{c} IS DISTINCT FROM excluded.{c}" for c in data)
        self.upsert = (
            f"WITH merged AS (INSERT INTO {table} ({self.listed}) SELECT {self.listed} FROM staging"
            f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in data)},"
            f" synced_at = excluded.synced_at, deleted_at = NULL WHERE {changed} OR {table}.deleted_at IS NOT NULL"
            " RETURNING (xmax = 0) AS fresh) SELECT count(*) FILTER (WHERE fresh), count(*) FROM merged"
        )

    def write(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """One batch in one transaction: COPY into the staging table (emptied at commit), then the upsert."""
        with (
            self.connection.cursor() as cursor,
            cursor.copy(f"COPY staging ({self.listed}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(self.types)
            for row in rows:
                copy.write_row(row)
        self.connection.execute(self.upsert).fetchone()
        self.connection.commit()
