"""Split fetch benchmark: what reading a Plex library in two processes, and writing it with binary COPY, would buy.

A measurement for a design not built. The sync reads a service in one process: its fetching thread
parses the pages and builds the rows while a second thread writes. The fetch alone is already one
core's worth of Python, so the full refresh cannot beat it by much more than the GIL lets the writer
hide. This script deals the library's pages round-robin to one or two worker processes; each
fetches and parses its pages and writes its rows the sync's way (rows built in a read-ahead thread,
upserted in batches of 2,000), either as the sync's JSON document over psycopg2 or with psycopg 3's
binary COPY into a staging table and the same upsert from it. No deletions, no Dagster: only what
the split changes. Into the empty table, each round:

- the fetch alone, one process (the baseline: ``bench/sync_full_refresh.py``'s, for Plex alone);
- the JSON document, one process and two;
- binary COPY, one process and two (when psycopg 3 is installed: ``pip install "psycopg[binary]"``).

The workers are forked from a fork server that imported the sync's modules, as the code server's
runs are, so their start-up is not counted against them.

    python bench/split_fetch.py [--size 100000] [--rounds 2] [--database-url URL]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from collections.abc import Iterator
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import DEFAULT_POSTGRES_URL, drop_schema, fresh_schema  # noqa: E402

BATCH = 2000
#: What each worker process starts with, imported once by the fork server.
PRELOAD = ["smartplex.clients", "smartplex.db", "smartplex.sync", "sqlalchemy", "psycopg2"]


def _share(client: Any, part: int, parts: int) -> list[tuple[str, int, int]]:
    """(section key, Plex type, offset) of every page of the library, dealt round-robin: this part's pages."""
    pages = []
    for section, plex_type in client._section_types():
        total = client._page(section["key"], plex_type, {}, 0, 0)["totalSize"]
        pages += [(section["key"], plex_type, offset) for offset in range(0, total, client.page_size)]
    return pages[part::parts]


def _items(client: Any, pages: list[tuple[str, int, int]]) -> Iterator[Any]:
    from smartplex.clients.models import PlexItem

    for key, plex_type, offset in pages:
        for data in client._page(key, plex_type, {}, offset, client.page_size).get("Metadata", ()):
            yield PlexItem.from_api(data, key)


def worker(job: dict[str, Any]) -> tuple[int, float]:
    """Fetch this part's pages and write them as ``job["write"]`` says; the items read and the seconds taken."""
    from smartplex.clients import CLIENTS

    started = time.perf_counter()
    with CLIENTS["plex"](job["plex_url"], job["plex_token"]) as client:
        scope = {"instance": "default", "server_id": client.machine_identifier()}
        items = _items(client, _share(client, job["part"], job["parts"]))
        if job["write"] == "json":
            count = _write_json(job["url"], items, scope)
        elif job["write"] == "copy":
            count = _write_copy(job["dsn"], items, scope)
        else:
            count = sum(1 for _ in items)
    return count, time.perf_counter() - started


def _write_json(url: str, items: Iterator[Any], scope: dict[str, Any]) -> int:
    """The sync's own path (``smartplex.sync.engine``), less its deletions."""
    from smartplex.column_types import utcnow
    from smartplex.db import make_engine
    from smartplex.sync import SPECS
    from smartplex.sync.engine import _prepared_batches, _read_ahead
    from smartplex.sync.upsert import write_rows

    spec, count = SPECS["plex"], 0
    engine = make_engine(url)
    with engine.connect() as connection:
        for batch in _read_ahead(_prepared_batches(items, spec, scope, utcnow(), "postgresql", BATCH)):
            with connection.begin():
                write_rows(connection, spec.table, spec.table_key, batch.rows)
            count += batch.fetched
    engine.dispose()
    return count


def _write_copy(dsn: str, items: Iterator[Any], scope: dict[str, Any]) -> int:
    """Rows as tuples, binary COPY into a staging table, then the sync's upsert from it."""
    import psycopg

    from bench._copy import StagedCopy
    from smartplex.column_types import utcnow
    from smartplex.sync import SPECS
    from smartplex.sync.engine import _read_ahead

    spec = SPECS["plex"]
    shared = {**scope, "synced_at": utcnow(), "deleted_at": None}
    columns: list[str] = []

    def batches() -> Iterator[list[tuple[Any, ...]]]:
        while chunk := list(islice(items, BATCH)):
            rows = [spec.to_row(item, scope) for item in chunk]
            if not columns:
                columns.extend([*shared, *rows[0]])
            values = itemgetter(*columns[len(shared) :])
            yield [(*shared.values(), *values(row)) for row in rows]

    count = 0
    with psycopg.connect(dsn) as connection:
        staged: StagedCopy | None = None
        for batch in _read_ahead(batches()):
            staged = staged or StagedCopy(connection, spec.table.name, spec.table_key, columns)
            staged.write(batch)
            count += len(batch)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000, help="size of the generated library")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    try:
        import psycopg  # noqa: F401

        paths = ["json", "copy"]
    except ImportError:
        print('psycopg 3 is not installed: the COPY path is left out (pip install "psycopg[binary]")')
        paths = ["json"]

    from smartplex.db import make_engine
    from smartplex.migrate import upgrade
    from smartplex_simulators import run_simulators

    url, schema = fresh_schema(args.database_url)
    parsed = make_url(args.database_url)
    dsn = (
        f"host={parsed.host} port={parsed.port or 5432} user={parsed.username} dbname={parsed.database}"
        f" options=-csearch_path={schema}" + (f" password={parsed.password}" if parsed.password else "")
    )
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    engine = make_engine(url)
    try:
        upgrade(engine)
        with run_simulators(size=args.size, seed=3, kinds=["plex"]) as sims:
            env = sims.env()
            base = {
                "url": url,
                "dsn": dsn,
                "plex_url": env["SMARTPLEX_PLEX_URL"],
                "plex_token": env["SMARTPLEX_PLEX_TOKEN"],
            }

            def run(write: str, parts: int) -> tuple[int, float]:
                if write != "none":
                    with engine.begin() as connection:
                        connection.execute(text("TRUNCATE plex_library_items"))
                jobs = [{**base, "write": write, "part": part, "parts": parts} for part in range(parts)]
                started = time.perf_counter()
                with context.Pool(parts) as pool:
                    results = pool.map(worker, jobs)
                return sum(count for count, _ in results), time.perf_counter() - started

            items, seconds = run("none", 1)  # the simulator's first render of each page is not ours to count
            print(f"{items} Plex items; first walk {seconds:.2f}s")
            ratios: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                _, alone = run("none", 1)
                print(f"  fetch alone, one process: {alone:.2f}s")
                for write in paths:
                    for parts in (1, 2):
                        written, seconds = run(write, parts)
                        label = f"{'JSON document' if write == 'json' else 'binary COPY'}, {parts} process{'es' * (parts > 1)}"
                        ratios.setdefault(label, []).append(seconds / alone)
                        print(f"  {label:28} {seconds:.2f}s = {seconds / alone:.2f}x the fetch alone ({written} rows)")
            print("summary: " + "; ".join(f"{k} {min(v):.2f}-{max(v):.2f}x" for k, v in ratios.items()))
    finally:
        engine.dispose()
        drop_schema(args.database_url, schema)


if __name__ == "__main__":
    main()
