"""Sync benchmark: a full refresh from the five simulators into PostgreSQL, against the server's own ceiling.

Run by hand: ``.venv/bin/python bench/sync_full_refresh.py`` (about 3-5 minutes on 2 cores). It

1. shapes a universe to the target counts (default 100k Plex items: 20k movies, 5k series and their
   episodes; 20k Tautulli plays; 5k Overseerr requests) and a tenth-size one, and serves each from
   this process;
2. walks every service twice without a database: the first walk leaves the simulators' rendered
   JSON cached (a real server answers from its own database; a Python simulator's first render
   is not ours to count), the second gives the fetch-and-parse rate;
3. runs the full refresh of all five services (``run_sync`` with no window) in one child process
   per size, one service after another, into a fresh schema: items/s end to end and the child's
   peak RSS at each size (the simulators, which hold the universe, stay in this process and out of
   the figure); at the large size, it then repeats the fetch alone and the full refresh (into
   emptied tables) back to back, ``--pairs`` pairs in all, since the machine's speed drifts between
   runs by more than the difference measured, and the ratio printed is the pairs' median; with each
   pair, the CPU the syncing process, PostgreSQL and the simulators spent, and the least time that
   CPU allows spread over every core (whether the machine or the order of the work limits); then it
   empties the tables and runs the five services at once, one process each, as the Dagster daemon
   launches one run per service;
4. times the server-side ceiling in the same database: ``INSERT INTO copy SELECT * FROM table
   ON CONFLICT (key) DO UPDATE ...`` of the same rows, into an empty copy with the same indexes;
5. makes about 200 changes (new, edited and deleted movies and series, plays, requests) a week and
   a day after the library's last change; walks the 7-day window twice without a database, as in 2
   (the first walk while the simulators filter what changed, the second the fetch-and-parse time),
   then times the 7-day incremental sync in a child;
6. lists the same Plex library with python-plexapi in a child (``section.all()`` for every
   section plus ``searchEpisodes()`` for the show sections, its default page size): the peer
   baseline, what people use today to read a Plex library.

It prints the figures, the share of the ceiling (context: the simulators and the client share the
machine with the server), and the ratios against their targets: the full refresh (fetch, parse, upsert, soft-delete) <= 1.25x the fetch-and-parse-only
time; the Plex full refresh >= 5x python-plexapi's listing rate; peak RSS at the large size <= 1.5x
that at the small one; incremental sync <= 5% of the full refresh's time.

    python bench/sync_full_refresh.py [--plex-items 100000] [--movies 20000] [--series 5000]
        [--plays 20000] [--requests 5000] [--small 10000] [--changes 200] [--database-url URL]
        [--batch-size N] [--pairs 3] [--profile PREFIX] [--no-plexapi]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import DEFAULT_POSTGRES_URL, drop_schema, fresh_schema  # noqa: E402
from smartplex_simulators import Simulation, Universe, run_simulators  # noqa: E402
from smartplex_simulators.universe import DAY, Movie, Show  # noqa: E402

#: Services in the order a sync runs them.
KINDS = ("plex", "tautulli", "sonarr", "radarr", "overseerr")
#: Shares of generated items that get a file (hence a Plex item), as the universe draws them.
MOVIE_FILE_SHARE, EPISODE_FILE_SHARE = 0.92, 0.9


# ----- the universe, shaped to the target counts ---------------------------------------------------


@dataclass(frozen=True)
class Shape:
    plex_items: int
    movies: int
    series: int
    plays: int
    requests: int

    def scaled(self, plex_items: int) -> Shape:
        f = plex_items / self.plex_items
        return Shape(plex_items, *(max(1, round(n * f)) for n in (self.movies, self.series, self.plays, self.requests)))

    @property
    def episodes(self) -> int:
        """Generated episodes: Plex holds the movies and episodes with a file, plus the series."""
        in_plex = self.plex_items - MOVIE_FILE_SHARE * self.movies - self.series
        return max(self.series, round(in_plex / EPISODE_FILE_SHARE))


class ShapedUniverse(Universe):
    """The generated universe with the benchmark's counts of series, plays and requests.

    ``Universe(size)`` draws about 33 episodes per series, ``size // 2`` plays and ``size // 50``
    requests; this keeps its generator and changes only those three numbers.
    """

    def __init__(self, shape: Shape, *, seed: int, now: int) -> None:
        self._shape = shape
        self._per_show = shape.episodes / shape.series
        self._shape_rng = random.Random(seed * 7919 + 1)
        size = shape.movies + shape.episodes
        super().__init__(seed=seed, size=size, now=now, movie_share=shape.movies / size)
        self._top_up_requests()

    def _new_show(self, at: int, title: str | None, seasons: int, per_season: int, *, import_files: bool) -> Show:
        if self._generating:  # 1-3 seasons whose episodes average the target per series
            seasons = self._shape_rng.randint(1, 3)
            per_season = max(1, round(self._per_show / 2 * self._shape_rng.uniform(0.5, 1.5)))
        return super()._new_show(at, title, seasons, per_season, import_files=import_files)

    def _generate_plays(self, count: int, rng: random.Random) -> None:
        super()._generate_plays(self._shape.plays, rng)

    def _top_up_requests(self) -> None:
        """Add requests as the generator draws them until there are ``shape.requests``."""
        rng = self._shape_rng
        requested = {(r.target.kind, r.target.id) for r in self.requests.values()}
        targets = [t for t in (*self.movies.values(), *self.shows.values()) if (t.kind, t.id) not in requested]
        missing = max(0, self._shape.requests - len(self.requests))
        for target in rng.sample(targets, min(len(targets), missing)):
            created = rng.randrange(min(target.added, self.now - 2 * DAY), self.now - DAY)
            status = rng.choice((1, 2, 2, 2, 3))
            updated = created + rng.randrange(0, 3 * DAY) if status != 1 else created
            request = self._request(target, rng.choice(self.users[1:]), created, updated, status)
            request.modified_by = self.users[0] if status != 1 else None
        self.requests = dict(sorted(self.requests.items()))


def universe_counts(u: Universe) -> dict[str, int]:
    return {
        "plex items": len(u.plex),
        "  movies in plex": sum(1 for i in u.plex.values() if i.kind == "movie"),
        "  series in plex": sum(1 for i in u.plex.values() if i.kind == "show"),
        "  episodes in plex": sum(1 for i in u.plex.values() if i.kind == "episode"),
        "radarr movies": len(u.movies),
        "sonarr series": len(u.shows),
        "tautulli plays": len(u.plays),
        "overseerr requests": len(u.requests),
    }


# ----- the database --------------------------------------------------------------------------------


def migrate(url: str) -> None:
    from smartplex.db import make_engine
    from smartplex.migrate import upgrade

    engine = make_engine(url, timeout=60)
    upgrade(engine)
    engine.dispose()


def server_ceiling(url: str) -> dict[str, dict[str, float]]:
    """Per synced table: ``INSERT … SELECT … ON CONFLICT DO UPDATE`` of its rows into an empty copy."""
    from smartplex.sync import SPECS

    engine = create_engine(url)
    results: dict[str, dict[str, float]] = {}
    with engine.connect() as connection:
        for service in KINDS:
            spec = SPECS[service]
            table, copy = spec.table.name, f"ceiling_{spec.table.name}"
            columns = [c.name for c in spec.table.columns]
            updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in spec.table_key)
            with connection.begin():
                connection.execute(text(f"CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)"))
            statement = text(
                f"INSERT INTO {copy} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM {table} "
                f"ON CONFLICT ({', '.join(spec.table_key)}) DO UPDATE SET {updates}"
            )
            started = time.perf_counter()
            with connection.begin():
                rows = connection.execute(statement).rowcount
            seconds = time.perf_counter() - started
            results[service] = {"rows": rows, "seconds": seconds}
            with connection.begin():
                connection.execute(text(f"DROP TABLE {copy}"))
    engine.dispose()
    return results


# ----- the sync, in a child process ----------------------------------------------------------------


def peak_rss_kb() -> int:
    """This process's peak RSS in KiB since it started its program.

    ``/proc/self/status`` ``VmHWM``, not ``getrusage``: Linux carries ``ru_maxrss`` across ``exec``,
    so a child forked from this (large) parent would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Sync every service once (full refresh, or the given window); report times and peak RSS."""
    from smartplex.clients import CLIENTS
    from smartplex.db import make_engine
    from smartplex.sync import SPECS, run_sync

    if spec.get("fetch_only"):
        return fetch_only(spec)
    if spec.get("plexapi"):
        return plexapi_listing(spec)
    engine = make_engine(spec["url"], timeout=120)
    with engine.connect():  # connect (and import the driver) before the baseline
        pass
    gc.collect()
    baseline_kb = peak_rss_kb()
    window = _window(spec)
    services: dict[str, Any] = {}
    started, cpu = time.perf_counter(), time.process_time()
    for service in spec.get("services", KINDS):
        with CLIENTS[service](spec["urls"][service], spec["keys"][service]) as client:
            options = {"batch_size": spec["batch_size"]} if spec.get("batch_size") else {}
            result = run_sync(engine, client, SPECS[service], window, **options)
        services[service] = {"fetched": result.fetched, "seconds": result.duration_seconds, "pages": result.pages,
                             "inserted": result.counts.inserted, "updated": result.counts.updated,
                             "unchanged": result.counts.unchanged, "deleted": result.deleted,
                             "row_count": result.row_count}  # fmt: skip
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.dispose()
    return {"services": services, "seconds": total, "cpu": cpu, "baseline_kb": baseline_kb,
            "maxrss_kb": peak_rss_kb()}  # fmt: skip


def _window(spec: dict[str, Any]) -> tuple[datetime, datetime] | None:
    if not spec.get("window"):
        return None
    start, end = spec["window"]
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)


def fetch_only(spec: dict[str, Any]) -> dict[str, Any]:
    """Walk every service's ``iter_all()`` (``iter_changed()`` over the spec's window) without a
    database: the fetch-and-parse share of a sync. With ``rows``, also turn the items into the rows
    and documents the sync would send, in its fetching thread, and send none: what the sync costs
    before the database does anything."""
    from smartplex.clients import CLIENTS
    from smartplex.column_types import utcnow
    from smartplex.db import make_engine
    from smartplex.sync import SPECS
    from smartplex.sync.engine import _prepared_batches, _read_ahead

    window = _window(spec)
    engine = make_engine(spec["url"]) if spec.get("rows") else None
    services: dict[str, Any] = {}
    started, cpu = time.perf_counter(), time.process_time()
    for service in spec.get("services", KINDS):
        with CLIENTS[service](spec["urls"][service], spec["keys"][service]) as client:
            began = time.perf_counter()
            items = client.iter_all() if window is None else client.iter_changed(*window)
            if engine is None:
                fetched = sum(1 for _ in items)
            else:
                sync, now = SPECS[service], utcnow()
                with engine.begin() as connection:  # the scope (Plex: the server's id), as the sync reads it
                    scope = {**sync.prepare(client, connection, now, {"instance": "default"}), "instance": "default"}
                batches = _prepared_batches(items, sync, scope, now, "postgresql", spec.get("batch_size") or 2000)
                fetched = sum(batch.fetched for batch in _read_ahead(batches))
            services[service] = {"fetched": fetched, "seconds": time.perf_counter() - began}
    return {"services": services, "seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
            "maxrss_kb": peak_rss_kb()}  # fmt: skip


def plexapi_listing(spec: dict[str, Any]) -> dict[str, Any]:
    """python-plexapi reading the whole Plex library: every section's items, and the shows' episodes."""
    from plexapi.server import PlexServer

    started = time.perf_counter()
    server = PlexServer(spec["urls"]["plex"], spec["keys"]["plex"])
    items = 0
    for section in server.library.sections():
        if section.TYPE not in ("movie", "show"):
            continue
        items += len(section.all())
        if section.TYPE == "show":
            items += len(section.searchEpisodes())
    return {"items": items, "seconds": time.perf_counter() - started}


def run_child(spec: dict[str, Any], profile: str | None = None) -> dict[str, Any]:
    """One child's result, with the CPU the rest of the machine spent while it ran (see :class:`OtherCpu`)."""
    with OtherCpu(postgres=_is_local(spec["url"])) as other:
        result = run_children([spec], profile)[0]
    return {**result, "postgres_cpu": other.postgres, "simulators_cpu": other.simulators}


def _is_local(url: str) -> bool:
    return make_url(url).host in (None, "", "localhost", "127.0.0.1", "::1")


class OtherCpu:
    """CPU seconds spent beside a child: by PostgreSQL's processes on this machine (read from ``/proc``
    every 20 ms, since a child's backends end with it) and by this process, whose threads serve the
    simulators (less the sampling thread's own). With the child's own CPU, what a run cost the machine."""

    _TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, *, postgres: bool) -> None:
        self._watch_postgres = postgres
        self.postgres: float | None = None
        self.simulators = 0.0
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._sampler_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="postgres-cpu", daemon=True)

    def __enter__(self) -> OtherCpu:
        self._own = resource.getrusage(resource.RUSAGE_SELF)
        if self._watch_postgres:
            self._first = self._postgres_cpu()
            self._last = dict(self._first)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._watch_postgres:
            self._stop.set()
            self._thread.join()
            self._last.update(self._postgres_cpu())
            self.postgres = sum(cpu - self._first.get(pid, 0.0) for pid, cpu in self._last.items())
        own = resource.getrusage(resource.RUSAGE_SELF)
        spent = own.ru_utime + own.ru_stime - self._own.ru_utime - self._own.ru_stime
        self.simulators = max(0.0, spent - self._sampler_cpu)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._last.update(self._postgres_cpu())
        self._sampler_cpu = time.thread_time()

    @classmethod
    def _postgres_cpu(cls) -> dict[int, float]:
        """User and system CPU of every ``postgres`` process, by pid."""
        found = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:  # ended since the listing
                continue
            name, _, rest = stat.partition(b") ")
            if name.endswith(b"(postgres"):
                fields = rest.split()
                found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / cls._TICK
        return found


def run_children(specs: list[dict[str, Any]], profile: str | None = None) -> list[dict[str, Any]]:
    """Run one child per spec, all at once; their results in order."""
    children = []
    for n, spec in enumerate(specs):
        command = [sys.executable]
        if profile:
            command += ["-m", "cProfile", "-o", profile if len(specs) == 1 else f"{profile}.{n}"]
        command += [str(Path(__file__).resolve()), "--child", json.dumps(spec)]
        children.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for child_process in children:
        out, err = child_process.communicate()
        if child_process.returncode != 0:
            sys.stderr.write(err)
            raise SystemExit(f"child failed ({child_process.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def in_parallel(spec: dict[str, Any]) -> dict[str, Any]:
    """The full refresh as the daemon runs it: one process per service, all at once; wall-clock time."""
    started = time.perf_counter()
    results = run_children([{**spec, "services": [service]} for service in KINDS])
    services = {k: v for result in results for k, v in result["services"].items()}
    return {"services": services, "seconds": time.perf_counter() - started,
            "maxrss_kb": max(r["maxrss_kb"] for r in results)}  # fmt: skip


def empty_tables(url: str) -> None:
    from smartplex.sync import SPECS

    engine = create_engine(url)
    with engine.begin() as connection:
        names = ", ".join(SPECS[service].table.name for service in KINDS)
        connection.execute(text(f"TRUNCATE {names}"))
    engine.dispose()


# ----- the incremental changes ----------------------------------------------------------------------


def make_changes(simulation: Simulation, count: int, seed: int) -> dict[str, int]:
    """About ``count`` changes, 8 days after the library's last one, a few minutes apart."""
    rng = random.Random(seed)
    u = simulation.universe
    simulation.advance_clock(8 * DAY)
    # A mix like a busy week: (mutation, share of the changes).
    mix = [("add_movie", 0.20), ("update_movie", 0.20), ("record_play", 0.30), ("request_media", 0.10),
           ("approve_request", 0.075), ("add_show", 0.05), ("delete_movie", 0.025),
           ("delete_movie_file", 0.025), ("delete_series", 0.025)]  # fmt: skip
    plan = [name for name, share in mix for _ in range(max(1, round(count * share)))]
    rng.shuffle(plan)
    done: dict[str, int] = {}
    for n, name in enumerate(plan):
        if n % 10 == 0:
            simulation.advance_clock(600)
        if name == "add_movie":
            simulation.add_movie()
        elif name == "update_movie":
            movie = rng.choice([m for m in u.movies.values() if m.rating_key is not None])
            simulation.update_movie(movie.id, title=f"{movie.title} (Director's Cut)")
        elif name == "record_play":
            leaf = rng.choice([i for i in u.plex.values() if not isinstance(i, Show)])
            simulation.record_play(leaf.rating_key, user_id=rng.randint(1, len(u.users)))  # type: ignore[arg-type]
        elif name == "request_media":
            requested = {(r.target.kind, r.target.id) for r in u.requests.values()}
            target: Movie | Show = rng.choice([m for m in u.movies.values() if ("movie", m.id) not in requested])
            simulation.request_media(movie_id=target.id, user_id=rng.randint(2, len(u.users)))
        elif name == "approve_request":
            pending = [r for r in u.requests.values() if r.status == 1]
            simulation.approve_request(rng.choice(pending).id)
        elif name == "add_show":
            simulation.add_show(seasons=1, episodes_per_season=3)
        elif name == "delete_movie":
            simulation.delete_movie(rng.choice(list(u.movies)))
        elif name == "delete_movie_file":
            simulation.delete_movie_file(rng.choice([m.id for m in u.movies.values() if m.file_id is not None]))
        elif name == "delete_series":
            simulation.delete_series(rng.choice(list(u.shows)))
        done[name] = done.get(name, 0) + 1
    simulation.advance_clock(60)
    return done


# ----- the run ------------------------------------------------------------------------------------------


def rate(items: float, seconds: float) -> float:
    return items / seconds if seconds > 0 else float("inf")


def print_sync(label: str, result: dict[str, Any]) -> None:
    print(f"  {label}")
    print(f"    {'service':10} {'fetched':>8} {'seconds':>8} {'items/s':>9} {'inserted':>9} {'updated':>8} "
          f"{'unchanged':>9} {'deleted':>8} {'live rows':>9}")  # fmt: skip
    for service, r in result["services"].items():
        print(
            f"    {service:10} {r['fetched']:8d} {r['seconds']:8.2f} {rate(r['fetched'], r['seconds']):9.0f} "
            f"{r['inserted']:9d} {r['updated']:8d} {r['unchanged']:9d} {r['deleted']:8d} {r['row_count']:9d}"
        )
    fetched = sum(r["fetched"] for r in result["services"].values())
    print(f"    {'all':10} {fetched:8d} {result['seconds']:8.2f} {rate(fetched, result['seconds']):9.0f}")


def full_refresh(
    shape: Shape, args: argparse.Namespace, *, ceiling: bool, changes: int, plexapi: bool = False
) -> dict[str, Any]:
    """Serve a shaped universe, full-refresh it in a child; optionally the ceiling and the incremental."""
    started = time.perf_counter()
    universe = ShapedUniverse(shape, seed=args.seed, now=int(time.time()))
    counts = universe_counts(universe)
    print(f"\n== {shape.plex_items} Plex items (universe generated in {time.perf_counter() - started:.1f}s)")
    print("  " + ", ".join(f"{k.strip()} {v}" for k, v in counts.items()))
    out: dict[str, Any] = {"counts": counts}
    url, schema = fresh_schema(args.database_url)
    try:
        migrate(url)
        with run_simulators(simulation=Simulation(universe)) as sims:
            spec = {"url": url, "urls": sims.urls, "keys": sims.keys, "batch_size": args.batch_size}
            cold = run_child({**spec, "fetch_only": True})
            print(f"  first walk, while the simulators render: {cold['seconds']:.1f}s")
            out["fetch"] = fetch = run_child({**spec, "fetch_only": True})
            print(
                "  fetch only (iter_all, no database): "
                + ", ".join(f"{k} {rate(v['fetched'], v['seconds']):.0f}/s" for k, v in fetch["services"].items())
            )
            profile = f"{args.profile}.{shape.plex_items}.full" if args.profile else None
            out["full"] = full = run_child(spec, profile)
            print_sync(f"full refresh (child peak RSS {full['maxrss_kb'] / 1024:.0f} MiB, "
                       f"{full['baseline_kb'] / 1024:.0f} MiB before syncing)", full)  # fmt: skip
            if ceiling:
                out["ceiling"] = ceil = server_ceiling(url)
                print("  server-side ceiling: INSERT … SELECT … ON CONFLICT DO UPDATE into an empty copy")
                for service, c in ceil.items():
                    print(
                        f"    {service:10} {c['rows']:8.0f} rows {c['seconds']:8.2f} s {rate(c['rows'], c['seconds']):9.0f} rows/s"
                    )
                rows, seconds = sum(c["rows"] for c in ceil.values()), sum(c["seconds"] for c in ceil.values())
                print(f"    {'all':10} {rows:8.0f} rows {seconds:8.2f} s {rate(rows, seconds):9.0f} rows/s")
                # The machine's speed drifts by more than the difference measured: more pairs of the
                # fetch alone and the full refresh, each pair back to back, into empty tables.
                # Between them, the rows built and encoded as the sync does, and not sent: how much of
                # the difference is the database's, and how much the building of rows.
                runs = [(fetch, full)]
                out["built"] = built = []
                for _ in range(args.pairs - 1):
                    empty_tables(url)
                    alone = run_child({**spec, "fetch_only": True})
                    built.append(run_child({**spec, "fetch_only": True, "rows": True})["seconds"])
                    runs.append((alone, run_child(spec)))
                out["pairs"] = pairs = [(a["seconds"], b["seconds"]) for a, b in runs]
                out["floors"] = [cpu_floor(a, b) for a, b in runs]
                print("  the fetch alone, then the full refresh, back to back: "
                      + ", ".join(f"{a:.1f}s / {b:.1f}s = {b / a:.2f}x" for a, b in pairs))  # fmt: skip
                for a, b in runs:
                    print(f"    CPU seconds: the fetch alone {a['cpu']:.2f} ours + {a['simulators_cpu']:.2f} simulators;"
                          f" the full refresh {b['cpu']:.2f} ours + {_seconds(b['postgres_cpu'])} PostgreSQL +"
                          f" {b['simulators_cpu']:.2f} simulators, at least {_seconds(cpu_floor(a, b) * a['seconds'])}"
                          f" on {CORES} cores = {_ratio(cpu_floor(a, b))} the fetch alone")  # fmt: skip
                print("  the fetch with the rows built and encoded, not sent: "
                      + ", ".join(f"{b:.1f}s = {b / a:.2f}x the fetch alone" for (a, _), b in zip(pairs[1:], built, strict=True)))  # fmt: skip
                empty_tables(url)
                out["parallel"] = parallel = in_parallel(spec)
                print_sync(
                    "full refresh again into empty tables, the five services at once (one process each)", parallel
                )
            if plexapi:
                out["plexapi"] = peer = run_child({**spec, "plexapi": True})
                print(f"  python-plexapi listing Plex: {peer['items']} items in {peer['seconds']:.1f}s"
                      f" = {rate(peer['items'], peer['seconds']):.0f} items/s")  # fmt: skip
            if changes:
                out["changes"] = made = make_changes(sims.simulation, changes, args.seed)
                now = sims.universe.now
                spec["window"] = [now - 7 * DAY, now + 1]
                # As for the full refresh: a first walk of the window while the simulators filter and
                # render what changed (cached until the next change), then the fetch alone, then the sync.
                out["incremental_cold"] = first = run_child({**spec, "fetch_only": True})
                out["incremental_fetch"] = alone = run_child({**spec, "fetch_only": True})
                profile = f"{args.profile}.{shape.plex_items}.incremental" if args.profile else None
                out["incremental"] = inc = run_child(spec, profile)
                print(f"  {sum(made.values())} changes: " + ", ".join(f"{k} {v}" for k, v in made.items()))
                print(f"  the window read alone (iter_changed, no database): {first['seconds']:.2f}s while the"
                      f" simulators filter, then {alone['seconds']:.2f}s: "
                      + ", ".join(f"{k} {v['seconds']:.2f}s" for k, v in alone["services"].items()))  # fmt: skip
                print_sync(f"7-day incremental sync (window {datetime.fromtimestamp(now, UTC) - timedelta(days=7):%Y-%m-%d %H:%M}"
                           f" to {datetime.fromtimestamp(now, UTC):%Y-%m-%d %H:%M} UTC)", inc)  # fmt: skip
    finally:
        drop_schema(args.database_url, schema)
    return out


#: The cores the syncing process, PostgreSQL and the simulators share.
CORES = os.cpu_count() or 1


def cpu_floor(alone: dict[str, Any], full: dict[str, Any]) -> float | None:
    """The least a full refresh could take against the fetch alone, given the CPU it used: all of it,
    ours, PostgreSQL's and the simulators', spread evenly over every core (None without PostgreSQL's)."""
    if full["postgres_cpu"] is None:
        return None
    return float(full["cpu"] + full["postgres_cpu"] + full["simulators_cpu"]) / CORES / alone["seconds"]


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}s"


def _ratio(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}x"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plex-items", type=int, default=100_000, help="Plex items of the large library")
    parser.add_argument("--movies", type=int, default=20_000, help="Radarr movies (about 92%% have a file in Plex)")
    parser.add_argument("--series", type=int, default=5_000, help="Sonarr series")
    parser.add_argument("--plays", type=int, default=20_000, help="Tautulli history rows")
    parser.add_argument("--requests", type=int, default=5_000, help="Overseerr requests")
    parser.add_argument("--small", type=int, default=10_000, help="Plex items of the small library (RSS baseline)")
    parser.add_argument("--changes", type=int, default=200, help="changes before the 7-day incremental sync")
    parser.add_argument("--batch-size", type=int, help="items per transaction (default: the sync's own)")
    parser.add_argument("--pairs", type=int, default=3, help="runs of the fetch alone and the full refresh, paired")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--profile", metavar="PREFIX", help="cProfile each child sync into PREFIX.<items>.<kind>")
    parser.add_argument("--no-plexapi", action="store_true", help="skip the python-plexapi baseline")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    began = time.perf_counter()
    large = Shape(args.plex_items, args.movies, args.series, args.plays, args.requests)
    small = large.scaled(args.small)
    print(f"sync benchmark: full refresh of all five services, batch size {args.batch_size or 'default'}, "
          f"PostgreSQL {make_url(args.database_url).render_as_string()}")  # fmt: skip
    low = full_refresh(small, args, ceiling=False, changes=0)
    gc.collect()
    high = full_refresh(large, args, ceiling=True, changes=args.changes, plexapi=not args.no_plexapi)

    full, ceil, inc = high["full"], high["ceiling"], high["incremental"]
    fetched = sum(r["fetched"] for r in full["services"].values())
    full_rate = rate(fetched, full["seconds"])
    ceil_rows, ceil_seconds = sum(c["rows"] for c in ceil.values()), sum(c["seconds"] for c in ceil.values())
    ceil_rate = rate(ceil_rows, ceil_seconds)
    plex_rate = rate(full["services"]["plex"]["fetched"], full["services"]["plex"]["seconds"])
    plex_ceil = rate(ceil["plex"]["rows"], ceil["plex"]["seconds"])
    rss_ratio = high["full"]["maxrss_kb"] / low["full"]["maxrss_kb"]
    inc_share = inc["seconds"] / full["seconds"]

    print(f"\n== summary ({time.perf_counter() - began:.0f}s in all)")
    print(
        f"full refresh, {args.plex_items} Plex items: {fetched} items in {full['seconds']:.1f}s = {full_rate:.0f} items/s"
        f" (Plex alone {plex_rate:.0f} items/s)"
    )
    print(
        f"server-side ceiling: {ceil_rows} rows in {ceil_seconds:.2f}s = {ceil_rate:.0f} rows/s"
        f" (Plex alone {plex_ceil:.0f} rows/s)"
    )
    fetch, parallel = high["fetch"], high["parallel"]
    fetched_only = sum(r["fetched"] for r in fetch["services"].values())
    print(
        f"fetch only, no database: {fetched_only} items in {fetch['seconds']:.1f}s ="
        f" {rate(fetched_only, fetch['seconds']):.0f} items/s"
        f" ({rate(fetched_only, fetch['seconds']) / ceil_rate:.1%} of the ceiling)"
    )
    parallel_rate = rate(fetched, parallel["seconds"])
    print(
        f"  full refresh / ceiling: {full_rate / ceil_rate:.1%} one service after another"
        f" (Plex alone {plex_rate / plex_ceil:.1%});"
        f" {parallel_rate / ceil_rate:.1%} with the five at once ({parallel['seconds']:.1f}s)"
    )
    ratios = sorted(b / a for a, b in high["pairs"])
    overlap = statistics.median(ratios)
    print(
        f"full refresh / fetch and parse alone: {full['seconds']:.1f}s / {fetch['seconds']:.1f}s in the first pair;"
        f" median of {len(ratios)} pairs {overlap:.2f}x ({', '.join(f'{r:.2f}' for r in ratios)})"
        f"   target <= 1.25x: {verdict(overlap <= 1.25)}"
    )
    floors = [f for f in high["floors"] if f is not None]
    if floors:
        print(f"  the least the CPU it used allows, spread evenly over {CORES} cores: median"
              f" {statistics.median(floors):.2f}x ({', '.join(f'{f:.2f}' for f in sorted(floors))})")  # fmt: skip
    if high["built"]:
        shares = sorted(b / a for (a, _), b in zip(high["pairs"][1:], high["built"], strict=True))
        print(f"  of which building the rows, no database: {statistics.median(shares):.2f}x the fetch alone (median)")
    if "plexapi" in high:
        peer = high["plexapi"]
        peer_rate = rate(peer["items"], peer["seconds"])
        plex_fetch = fetch["services"]["plex"]
        print(
            f"Plex full refresh against python-plexapi listing: {plex_rate:.0f} / {peer_rate:.0f} items/s ="
            f" {plex_rate / peer_rate:.1f}x   target >= 5x: {verdict(plex_rate / peer_rate >= 5)}"
            f" (our fetch and parse alone: {rate(plex_fetch['fetched'], plex_fetch['seconds']) / peer_rate:.1f}x)"
        )
    print(
        f"peak RSS of the syncing process: {low['full']['maxrss_kb'] / 1024:.0f} MiB at {args.small} Plex items,"
        f" {high['full']['maxrss_kb'] / 1024:.0f} MiB at {args.plex_items}"
        f" (before syncing: {low['full']['baseline_kb'] / 1024:.0f} / {high['full']['baseline_kb'] / 1024:.0f} MiB)"
    )
    print(f"  RSS {args.plex_items} / {args.small}: {rss_ratio:.2f}x   target <= 1.5x: {verdict(rss_ratio <= 1.5)}")
    print(
        f"7-day incremental sync, {sum(high['changes'].values())} changes: {inc['seconds']:.2f}s"
        f" ({sum(r['fetched'] for r in inc['services'].values())} items fetched)"
    )
    alone, first = high["incremental_fetch"], high["incremental_cold"]
    print(f"  the window read alone: {alone['seconds']:.2f}s ({first['seconds']:.2f}s on the first walk, while the"
          f" simulators filtered): {inc['seconds'] / alone['seconds']:.2f}x for the sync")  # fmt: skip
    print(f"  incremental / full refresh: {inc_share:.1%}   target <= 5%: {verdict(inc_share <= 0.05)}")


if __name__ == "__main__":
    main()
