"""Upsert paths benchmark: what PostgreSQL spends writing a full refresh's Plex rows, two ways.

Reads a simulated Plex library of ``--size`` items with SmartPlex's client, turns the items into rows
as the sync does, then writes them in batches of 2,000 into a fresh schema, twice per path (into the
empty table, then again with nothing changed):

- **the JSON document** (what the sync does): each batch encoded with ``orjson`` and unpacked by the
  server with ``json_populate_recordset`` in one ``INSERT … ON CONFLICT DO UPDATE``, the values every
  row shares (instance, server, ``synced_at``) as parameters of their own (``smartplex.sync.upsert``),
  over psycopg2;
- **binary COPY** (the baseline it is measured against): each batch streamed with psycopg 3's binary
  ``COPY`` into a temporary staging table, then the same ``INSERT … ON CONFLICT DO UPDATE … WHERE
  changed`` from it.

It prints, per path, the client's time to prepare a batch (the document, or the tuples) and the rest
of writing it (for COPY that includes psycopg's encoding of the rows, in C, as they stream), summed
over the batches. psycopg 3 is not one of SmartPlex's dependencies:

    pip install "psycopg[binary]"
    python bench/upsert_paths.py [--size 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import sys
import time
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import DEFAULT_POSTGRES_URL, drop_schema, fresh_schema  # noqa: E402
from smartplex import migrate  # noqa: E402
from smartplex.clients import CLIENTS  # noqa: E402
from smartplex.column_types import utcnow  # noqa: E402
from smartplex.db import make_engine  # noqa: E402
from smartplex.sync import SPECS  # noqa: E402
from smartplex.sync.upsert import prepare_rows, write_rows  # noqa: E402
from smartplex_simulators import run_simulators  # noqa: E402

BATCH = 2000
SPEC = SPECS["plex"]


def plex_rows(url: str, env: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The library's rows as a full refresh builds them (its side tables written on the way), and
    the values every row shares."""
    engine = make_engine(url, timeout=120)
    migrate.upgrade(engine)
    now, rows = utcnow(), []
    with CLIENTS["plex"](env["SMARTPLEX_PLEX_URL"], env["SMARTPLEX_PLEX_TOKEN"]) as client:
        with engine.begin() as connection:
            scope = {"instance": "default"}
            scope = {**SPEC.prepare(client, connection, now, scope), **scope}
        rows = [SPEC.to_row(item, scope) for item in client.iter_all()]
    engine.dispose()
    return rows, {**scope, "synced_at": now, "deleted_at": None}


def json_document(url: str, batches: list[list[dict[str, Any]]], shared: dict[str, Any]) -> tuple[float, float]:
    """The sync's own path; returns (client, server) seconds."""
    engine = make_engine(url, timeout=120)
    client = server = 0.0
    with engine.connect() as connection:
        for batch in batches:
            began = time.perf_counter()
            prepared = prepare_rows("postgresql", SPEC.table, SPEC.table_key, batch, shared)
            client += time.perf_counter() - began
            began = time.perf_counter()
            with connection.begin():
                write_rows(connection, SPEC.table, SPEC.table_key, prepared)
            server += time.perf_counter() - began
    engine.dispose()
    return client, server


def binary_copy(dsn: str, batches: list[list[dict[str, Any]]], shared: dict[str, Any]) -> tuple[float, float]:
    """psycopg 3's binary COPY into a staging table, then the upsert from it; returns (client, server)."""
    import psycopg

    from bench._copy import StagedCopy

    columns = [*shared, *batches[0][0]]
    as_tuple = itemgetter(*columns)
    client = server = 0.0
    with psycopg.connect(dsn) as connection:
        staged = StagedCopy(connection, SPEC.table.name, SPEC.table_key, columns)
        for batch in batches:
            began = time.perf_counter()
            rows = [as_tuple({**shared, **row}) for row in batch]
            client += time.perf_counter() - began
            began = time.perf_counter()
            staged.write(rows)
            server += time.perf_counter() - began
    return client, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    try:
        import psycopg  # noqa: F401
    except ImportError:
        sys.exit('psycopg 3 is needed for the COPY path: pip install "psycopg[binary]"')
    url, schema = fresh_schema(args.database_url)
    try:
        with run_simulators(size=args.size, seed=3, kinds=["plex"]) as sims:
            rows, shared = plex_rows(url, sims.env())
        batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]
        parsed = make_url(args.database_url)
        dsn = (
            f"host={parsed.host} port={parsed.port or 5432} user={parsed.username} dbname={parsed.database} "
            f"options=-csearch_path={schema}" + (f" password={parsed.password}" if parsed.password else "")
        )
        engine = make_engine(url)
        print(
            f"{len(rows)} Plex rows of {len(rows[0]) + len(shared)} columns, batches of {BATCH}; client and server seconds"
        )
        figures = {}
        for label, path in (("JSON document (the sync's)", lambda: json_document(url, batches, shared)),
                            ("binary COPY, psycopg 3", lambda: binary_copy(dsn, batches, shared))):  # fmt: skip
            with engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {SPEC.table.name}"))
            figures[label] = [path(), path()]  # into the empty table, then with nothing changed
            (c1, s1), (c2, s2) = figures[label]
            print(
                f"  {label:28} empty table: client {c1:.2f}, server {s1:.2f}  |  unchanged: client {c2:.2f}, server {s2:.2f}"
            )
        (ours, copy) = figures.values()
        for n, case in enumerate(("empty table", "unchanged")):
            print(
                f"  {case}: COPY's server time {copy[n][1] / ours[n][1]:.2f}x, client {copy[n][0] / ours[n][0]:.2f}x the sync's"
            )
        engine.dispose()
    finally:
        drop_schema(args.database_url, schema)


if __name__ == "__main__":
    main()
