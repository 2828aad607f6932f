"""Catch-up benchmark: what an idle poll costs, and a catch-up after an hour's gap against the full refresh.

Run by hand: ``.venv/bin/python bench/catch_up.py`` (about a minute). Against the simulators (served by
threads of this process, on the real clock) and a fresh PostgreSQL schema (``--database-url``; ``sqlite``
for a temporary SQLite file), it

1. runs each kind's full refresh (the baseline, timed in the same run);
2. polls each kind ``--polls`` times with nothing changed (after a first poll that keeps the Sonarr and
   Radarr listings' digests): requests per poll, and this thread's CPU per poll (``thread_time``: the
   client, the comparison and the database driver; the simulators' threads are not counted), median;
3. makes about ``--changes`` changes no webhook announces (movies and series added, edited, deleted and
   losing files; plays; requests), with every watermark an hour back, and times each kind's catch-up:
   the poll and the run it asks for, as the sensor and the asset do them.

Targets (docs/benchmarks.md): an idle poll <= 2 requests per instance (per library section for Plex) and
<= 50 ms of our CPU; a catch-up after an hour's gap with 200 changes <= 5% of that instance's full refresh.

    python bench/catch_up.py [--size 5000] [--polls 20] [--changes 200] [--no-removals] [--database-url URL|sqlite]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import update  # noqa: E402

from bench._common import DEFAULT_POSTGRES_URL, drop_schema, fresh_schema  # noqa: E402
from smartplex import catch_up, migrate  # noqa: E402
from smartplex.column_types import utcnow  # noqa: E402
from smartplex.db import make_engine  # noqa: E402
from smartplex.instances import Instance  # noqa: E402
from smartplex.kinds import get_kind  # noqa: E402
from smartplex.schema import catch_up_state  # noqa: E402
from smartplex.sync import SPECS, run_sync  # noqa: E402
from smartplex_simulators import run_simulators  # noqa: E402
from smartplex_simulators.simulation import Simulation  # noqa: E402
from smartplex_simulators.universe import Universe  # noqa: E402


def _changes(simulation: Simulation, count: int, removals: bool = True) -> None:
    """About ``count`` changes across every kind, in the proportions of a busy evening; without
    ``removals``, none that takes anything away (deletions, lost files)."""
    universe = simulation.universe
    requested = {id(r.target) for r in universe.requests.values()}
    spare = [m for m in universe.movies.values() if id(m) not in requested and m.rating_key is not None]
    shows = [s for s in universe.shows.values() if id(s) not in requested and s.rating_key is not None]
    share = max(1, count // 10)
    for index in range(share):
        simulation.add_movie(f"Bench Movie {index}")
    for movie in spare[:share]:
        simulation.update_movie(movie.id, title=f"{movie.title} (edited)")
    for movie in spare[share : 2 * share] if removals else ():
        simulation.delete_movie_file(movie.id)
    for movie in spare[2 * share : 2 * share + share // 2] if removals else ():
        simulation.delete_movie(movie.id)
    for index in range(share // 2):
        simulation.add_show(f"Bench Show {index}", seasons=1, episodes_per_season=2)
    for show in shows[: share // 2] if removals else ():
        simulation.delete_series(show.id)
    leaves = [i for i in universe.plex.values() if i.kind in ("movie", "episode")]
    for item in leaves[-3 * share :]:
        simulation.record_play(item.rating_key, percent=100)
    for movie in spare[3 * share : 3 * share + share]:
        request = simulation.request_media(movie_id=movie.id)
        simulation.approve_request(request.id)


def _catch_up(engine, sims, kind: str) -> tuple[float, catch_up.Finding]:  # type: ignore[no-untyped-def]
    instance = Instance(get_kind(kind))
    began, now = time.perf_counter(), utcnow()
    with sims.client(kind) as client:
        finding = catch_up.look(engine, client, instance, now)
    run_key = None if finding.idle else "bench"
    with engine.begin() as connection:
        catch_up.record_poll(connection, finding, now, run_key)
    if run_key is not None:
        with engine.connect() as connection:
            claim = catch_up.claimed(connection, instance, run_key)
        assert claim is not None
        with sims.client(kind) as client:
            window = None if claim.full else (claim.since, utcnow())
            parts = [{"section_id": section} for section in claim.sections] if claim.full else []
            result = run_sync(engine, client, SPECS[kind], window, hinted_ids=claim.ids, instance=instance, parts=parts)
        with engine.begin() as connection:
            catch_up.finish(connection, instance, run_key, "bench", result.counts.inserted + result.counts.updated, now)
    return time.perf_counter() - began, finding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=5000, help="Plex items (movies + episodes)")
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES_URL, help="PostgreSQL URL, or 'sqlite'")
    parser.add_argument("--no-removals", action="store_true", help="changes that take nothing away")
    args = parser.parse_args()

    schema = None
    if args.database_url == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='catch-up-bench-')}/bench.db"
    else:
        url, schema = fresh_schema(args.database_url)
    engine = make_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as connection:
        catch_up.ensure(connection, [Instance(get_kind(kind)) for kind in SPECS])
    try:
        with run_simulators(simulation=Simulation(Universe(seed=5, size=args.size, now=None))) as sims:
            print(f"catch-up benchmark: {args.size} Plex items, {engine.dialect.name}")
            full: dict[str, float] = {}
            for kind, spec in SPECS.items():
                with sims.client(kind) as client:
                    began = time.perf_counter()
                    result = run_sync(engine, client, spec, None)
                    full[kind] = time.perf_counter() - began
                print(f"  full refresh {kind:<10} {full[kind] * 1000:8.0f} ms  {result.row_count} rows")
            sections = 0
            print(
                f"\nidle poll, median of {args.polls} (target: <= 2 requests per instance or Plex section, <= 50 ms CPU)"
            )
            for kind in SPECS:
                _catch_up(engine, sims, kind)  # the first poll keeps the listings' digests
                requests, cpu, wall = [], [], []
                for _ in range(args.polls):
                    with sims.client(kind) as client:
                        began, began_cpu = time.perf_counter(), time.thread_time()
                        finding = catch_up.look(engine, client, Instance(get_kind(kind)), utcnow())
                        cpu.append(time.thread_time() - began_cpu)
                        wall.append(time.perf_counter() - began)
                        requests.append(client.stats.requests)
                        if kind == "plex":
                            sections = len(client.sections())
                    assert finding.idle, finding
                per = (
                    f"{statistics.median(requests) / sections:.1f} per section ({sections} sections)"
                    if kind == "plex"
                    else ""
                )
                print(f"  {kind:<10} requests {statistics.median(requests):4.0f} {per:<28} CPU {statistics.median(cpu) * 1000:6.1f} ms"
                      f"  wall {statistics.median(wall) * 1000:6.1f} ms")  # fmt: skip

            with engine.begin() as connection:  # an hour's gap: every watermark an hour back
                connection.execute(update(catch_up_state).values(watermark=utcnow() - timedelta(hours=1)))
            _changes(sims.simulation, args.changes, removals=not args.no_removals)
            print(f"\ncatch-up after an hour's gap and ~{args.changes} changes (target: <= 5% of the full refresh)")
            for kind in SPECS:
                seconds, finding = _catch_up(engine, sims, kind)
                refreshed = f"sections {', '.join(finding.sections)}" if finding.sections else "everything"
                what = f"refresh of {refreshed} (counts differ)" if finding.full else f"{finding.changes} changes"
                print(
                    f"  {kind:<10} {seconds * 1000:8.0f} ms  {what:<30} {seconds / full[kind]:6.1%} of its full refresh"
                )
    finally:
        engine.dispose()
        if schema is not None:
            drop_schema(args.database_url, schema)


if __name__ == "__main__":
    main()
