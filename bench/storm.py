"""Webhook storm benchmark: the real API and a running ``dagster-daemon`` under a burst of webhooks.

Part 1, the storm: starts the webhook API (uvicorn) and ``dagster-daemon`` against the simulators, on
the embedded SQLite database and Dagster's SQLite storage, and posts ``--webhooks`` webhooks (a mix that
makes every library stale; by default as the services would send them for items they have, so each
row ends ``processed``) over ``--seconds``. Waits until no row is pending or dispatched, then prints
the runs the sensor launched, the request latency (seen by the client, which posts from a process of
its own, and measured by the API), how long until the last row was processed, row outcomes, and where
the time went: each stage of a row's path, from ``webhook_log`` and the Dagster records of its run
(``received -> claimed -> created -> launched -> worker -> started -> sync_started -> sync_finished
-> ended -> settled``), as p50 / p90 / max. ``--webhooks 0`` skips the storm and keeps the probes.
The sync schedules are disabled first so that only webhook-triggered runs appear (``--with-schedules``
keeps them, and their runs are reported separately).

After the drain, ``--probes`` single webhooks are posted one at a time into the idle stack and each
is timed until its row is processed: the latency a user sees from an event to its sync; with the
same stage breakdown.

Targets: one webhook median <= 5 s, max <= 8 s; storm p50 <= 10 s, p90 <= 15 s, last row <= 8 s after
the last webhook. (The sensor tick at 100,000 pending rows is ``bench/sensor_tick.py``.)

Run by hand; it prints figures and asserts nothing:

    python bench/storm.py [--webhooks 10000] [--seconds 60] [--probes 5]
                          [--sensor-interval 2] [--bodies universe|fixtures] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import Engine, func, select, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smartplex import migrate  # noqa: E402
from smartplex.dagster_names import (  # noqa: E402
    INSTANCE_TAG,
    SCHEDULE_TRIGGER,
    TRIGGER_TAG,
    WEBHOOK_TRIGGER,
    WEBHOOKS_TAG,
)
from smartplex.db import make_engine  # noqa: E402
from smartplex.routing import stale_kinds  # noqa: E402
from smartplex.schema import FINISHED_STATUSES, sync_schedule, webhook_log  # noqa: E402
from smartplex_cli import dagster_home  # noqa: E402
from smartplex_cli.supervisor import Supervisor  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"
FINISHED = FINISHED_STATUSES
SECRET = "storm-secret"

#: (source, fixture) -> share of the storm. Every one makes a library stale (see smartplex/routing.py).
MIX: dict[tuple[str, str], float] = {
    ("sonarr", "Download"): 0.25,
    ("radarr", "Download"): 0.20,
    ("plex", "library.new"): 0.20,
    ("tautulli", "watched"): 0.10,
    ("tautulli", "stop"): 0.10,
    ("overseerr", "MEDIA_APPROVED"): 0.15,
}
EVENT_KEY = {"plex": "event", "sonarr": "eventType", "radarr": "eventType", "overseerr": "notification_type",
             "tautulli": "action"}  # fmt: skip


@dataclass(frozen=True)
class Body:
    source: str
    event: str
    payload: dict[str, Any]
    content: bytes
    content_type: str


def load_bodies() -> list[Body]:
    bodies = []
    for (source, name), _share in MIX.items():
        raw = (FIXTURES / source / f"{name}.json").read_text()
        payload = json.loads(raw)
        event = payload[EVENT_KEY[source]]
        assert stale_kinds(source, event), f"{source} {event} makes nothing stale"
        if source == "plex":  # Plex posts multipart/form-data with the event JSON in the ``payload`` field
            request = httpx.Request("POST", "http://x/", files={"payload": (None, raw)})
            content, content_type = request.read(), request.headers["content-type"]
        else:
            content, content_type = raw.encode(), "application/json"
        bodies.append(Body(source, event, payload, content, content_type))
    return bodies


def universe_bodies(universe: Any, n: int, seed: int) -> list[Body]:
    """``n`` webhooks in the proportions of ``MIX``, each naming an item the simulated services have,
    as the services would send them: so each row ends ``processed``, not ``missing``."""
    from smartplex_simulators import webhooks

    rng = random.Random(seed)
    with universe.lock:
        episodes = [e for e in universe.episodes.values() if e.file_id is not None]
        movies = [m for m in universe.movies.values() if m.file_id is not None]
        in_plex = [i for i in universe.plex.values() if i.rating_key is not None]
        plays, requests, owner = list(universe.plays), list(universe.requests.values()), universe.users[0]
        makers = {
            ("sonarr", "Download"): lambda: webhooks.sonarr_download(rng.choice(episodes)),
            ("radarr", "Download"): lambda: webhooks.radarr_download(rng.choice(movies)),
            ("plex", "library.new"): lambda: webhooks.plex_event("library.new", rng.choice(in_plex), universe, owner),
            ("tautulli", "watched"): lambda: webhooks.tautulli_playback("watched", rng.choice(plays), universe),
            ("tautulli", "stop"): lambda: webhooks.tautulli_playback("stop", rng.choice(plays), universe),
            ("overseerr", "MEDIA_APPROVED"): lambda: webhooks.overseerr_notification("MEDIA_APPROVED", rng.choice(requests)),
        }  # fmt: skip
        kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=n)
        bodies = []
        for source, _event in kinds:
            hook = makers[(source, _event)]()
            raw = json.dumps(hook.body)
            if source == "plex":
                request = httpx.Request("POST", "http://x/", files={"payload": (None, raw)})
                content, content_type = request.read(), request.headers["content-type"]
            else:
                content, content_type = raw.encode(), "application/json"
            event = hook.body[EVENT_KEY[source]]
            bodies.append(Body(source, event, hook.body, content, content_type))
    return bodies


def pick(bodies: list[Body], n: int, seed: int) -> list[Body]:
    rng = random.Random(seed)
    return rng.choices(bodies, weights=list(MIX.values()), k=n)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q * 100) - 1))]


# --- Part 1: the storm ------------------------------------------------------------------------------


@dataclass
class PostResult:
    started_at: float  # epoch seconds
    started: float
    finished: float
    accepted: int
    statuses: Counter[int | str]
    latencies: list[float]


def post_storm(api_port: int, plan: list[Body], seconds: float, connections: int) -> PostResult:
    """Post ``plan`` at an even pace over ``seconds``, at most ``connections`` requests in flight."""

    async def main() -> PostResult:
        statuses: Counter[int | str] = Counter()
        latencies: list[float] = []
        gate = asyncio.Semaphore(connections)
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", limits=limits, timeout=30) as client:

            async def send(body: Body) -> None:
                headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": body.content_type}
                began = time.perf_counter()
                try:
                    response = await client.post(f"/api/webhooks/{body.source}", content=body.content, headers=headers)
                    statuses[response.status_code] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                finally:
                    latencies.append(time.perf_counter() - began)
                    gate.release()

            interval = seconds / max(1, len(plan))
            tasks = []
            started_at, started = time.time(), time.perf_counter()
            for i, body in enumerate(plan):
                delay = started + i * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                await gate.acquire()
                tasks.append(asyncio.create_task(send(body)))
            await asyncio.gather(*tasks)
            finished = time.perf_counter()
        return PostResult(started_at, started, finished, statuses.get(202, 0), statuses, latencies)

    return asyncio.run(main())


def sensor_ticks(instance: Any, name: str = "webhook_sensor") -> list[Any]:
    from dagster._core.scheduler.instigation import InstigatorType

    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == name:
            return list(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=100_000))
    return []


def wait_for_sensor(dagster_home_dir: str, supervisor: Supervisor, timeout: float) -> float:
    """Until the daemon's webhook sensor has ticked once: the storm hits a system already polling."""
    import dagster as dg

    began = time.perf_counter()
    with dg.DagsterInstance.from_config(dagster_home_dir) as instance:
        while not sensor_ticks(instance):
            if dead := supervisor.exited():
                raise SystemExit(f"a process exited before the sensor ticked: {dead}")
            if time.perf_counter() - began > timeout:
                raise SystemExit(f"the webhook sensor did not tick within {timeout:.0f}s (see the daemon's log)")
            time.sleep(1)
    return time.perf_counter() - began


def load_errors(log: Path) -> int:
    """Times the daemon failed to load the code location (it then runs no sensor until it reloads)."""
    try:
        return log.read_text(errors="replace").count("Error loading repository location")
    except FileNotFoundError:
        return 0


def server_latency(api_port: int) -> str:
    """Webhook request latency as the API measured it (its Prometheus histogram): bucket bounds of p50, p99."""
    from prometheus_client.parser import text_string_to_metric_families

    text_ = httpx.get(f"http://127.0.0.1:{api_port}/metrics", timeout=10).text
    buckets: Counter[float] = Counter()
    for family in text_string_to_metric_families(text_):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name.endswith("_bucket")
                and labels.get("route", "").startswith("/api/webhooks/")
                and labels.get("method") == "POST"
            ):
                buckets[float(labels["le"])] += sample.value
    if not buckets:
        return "n/a"
    total = buckets[float("inf")]
    bounds = sorted(buckets)

    def bound(q: float) -> str:
        edge = next(b for b in bounds if buckets[b] >= q * total)
        return f"<= {edge * 1000:.0f} ms" if edge != float("inf") else "> 10 s"

    return f"p50 {bound(0.5)}, p99 {bound(0.99)} (of {total:.0f} requests)"


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        query = select(webhook_log.c.status, func.count()).group_by(webhook_log.c.status)
        return dict(connection.execute(query).all())  # type: ignore[arg-type]


def run_storm(args: argparse.Namespace) -> list[str]:
    import dagster as dg

    from smartplex_cli.stack import start_stack
    from smartplex_simulators.serve import run_simulators
    from smartplex_simulators.simulation import Simulation
    from smartplex_simulators.universe import Universe

    # A code location that does not import leaves the daemon without sensors: fail now, not after the storm.
    check = subprocess.run(
        [sys.executable, "-c", "import smartplex_dagster.definitions"], capture_output=True, text=True
    )
    if check.returncode:
        raise SystemExit(f"smartplex_dagster.definitions does not import:\n{check.stderr[-2000:]}")
    home = Path(tempfile.mkdtemp(prefix="smartplex-storm-"))
    database_url = f"sqlite:///{home / 'smartplex.db'}"
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    if not args.with_schedules:
        with engine.begin() as connection:
            connection.execute(update(sync_schedule).values(enabled=False))
    api_port = free_port()
    print(f"storm: universe of {args.size} items, data in {home}", flush=True)
    simulation = Simulation(Universe(seed=args.seed, size=args.size, now=int(time.time())))
    if args.bodies == "universe":
        plan = universe_bodies(simulation.universe, args.webhooks + args.probes, args.seed)
        plan, probe_plan = plan[: args.webhooks], plan[args.webhooks :]
    else:
        plan = pick(load_bodies(), args.webhooks, args.seed)
        probe_plan = plan or pick(load_bodies(), max(1, args.probes), args.seed)
    supervisor = Supervisor()
    lines: list[str] = []
    with run_simulators(simulation=simulation) as sims:
        env = {**os.environ, **sims.env(), "SMARTPLEX_DATABASE_URL": database_url, "SMARTPLEX_DATA_DIR": str(home),
               "SMARTPLEX_WEBHOOK_SECRET": SECRET, "SMARTPLEX_ADMIN_SECRET": SECRET,
               "SMARTPLEX_SENSOR_INTERVAL_SECONDS": str(args.sensor_interval),
               "SMARTPLEX_HISTORY_START": (date.today() - timedelta(days=30)).isoformat(),
               "DAGSTER_HOME": str(dagster_home.prepare(home))}  # fmt: skip
        try:
            began = time.perf_counter()
            start_stack(supervisor, env, api_port=api_port, dagster_port=None, log_dir=home / "logs")
            ready = wait_for_sensor(env["DAGSTER_HOME"], supervisor, 300)
            print(f"storm: stack up in {time.perf_counter() - began:.1f}s (the sensor's first tick after {ready:.1f}s); "
                  f"posting {args.webhooks} webhooks over {args.seconds:.0f}s", flush=True)  # fmt: skip
            # In a process of its own: this one serves the simulators to the runs and would slow the pacing.
            api = psutil.Process(supervisor.processes["api"].pid)
            api_cpu = sum(api.cpu_times()[:2])
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                posted = pool.submit(post_storm, api_port, plan, args.seconds, args.connections).result()
            api_cpu = sum(api.cpu_times()[:2]) - api_cpu
            api_side = server_latency(api_port) if plan else "n/a"
            print(f"storm: posted in {posted.finished - posted.started:.1f}s, {dict(posted.statuses)}", flush=True)
            deadline = time.perf_counter() + args.timeout
            counts = row_counts(engine)
            last_print = 0.0
            while counts.get("pending") or counts.get("dispatched"):
                if dead := supervisor.exited():
                    lines.append(f"a process exited during the storm: {dead} (logs in {home / 'logs'})")
                    break
                if time.perf_counter() > deadline:
                    lines.append(f"NOT DRAINED within {args.timeout:.0f}s: {counts}")
                    break
                if time.perf_counter() - last_print > 15:
                    last_print = time.perf_counter()
                    print(f"storm: +{time.perf_counter() - posted.finished:5.0f}s after the last post: {counts}",
                          flush=True)  # fmt: skip
                time.sleep(1)
                counts = row_counts(engine)
            drained = time.perf_counter()
            with engine.connect() as connection:
                first_received, last_received, last_processed = connection.execute(
                    select(
                        func.min(webhook_log.c.received_at),
                        func.max(webhook_log.c.received_at),
                        func.max(webhook_log.c.processed_at),
                    )  # fmt: skip
                ).one()
            storm_latencies = row_latencies(engine)
            gaps = claim_gaps(engine)
            probed = probe_latency(engine, api_port, probe_plan, args.probes, supervisor) if args.probes else []
            probes = [seconds for seconds, _ in probed]
            with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
                records = instance.get_run_records()
                ticks = [t for t in sensor_ticks(instance) if t.timestamp >= posted.started_at]
                probe_ids = {row_id for _, row_id in probed}
                paths = webhook_paths(engine, instance)
            storm_paths = [path for row_id, path in paths.items() if row_id not in probe_ids]
            probe_paths = [path for row_id, path in paths.items() if row_id in probe_ids]
            daemon_load_errors = load_errors(home / "logs" / "dagster-daemon.log")
            runs = [record.dagster_run for record in records]
        finally:
            supervisor.stop()

    webhook_runs = [r for r in runs if r.tags.get(TRIGGER_TAG) == WEBHOOK_TRIGGER]
    schedule_runs = [r for r in runs if r.tags.get(TRIGGER_TAG) == SCHEDULE_TRIGGER]
    other_runs = [r for r in runs if r.tags.get(TRIGGER_TAG) not in (WEBHOOK_TRIGGER, SCHEDULE_TRIGGER)]
    per_instance = Counter(r.tags.get(INSTANCE_TAG) for r in webhook_runs)
    run_status = Counter(r.status.value for r in webhook_runs)
    coalesced = sum(int(r.tags.get(WEBHOOKS_TAG, 0)) for r in webhook_runs)
    latencies_ms = [x * 1000 for x in posted.latencies] or [float("nan")]
    posting = posted.finished - posted.started

    lines.append(f"storm database: SQLite (embedded default); Dagster storage: SQLite in DAGSTER_HOME; "
                 f"sensor interval {args.sensor_interval}s; schedules {'on' if args.with_schedules else 'off'}")  # fmt: skip
    lines.append(f"webhooks posted: {len(plan)} over {posting:.1f}s (target {args.seconds:.0f}s; "
                 f"{len(plan) / posting:.0f}/s, at most {args.connections} in flight), "
                 f"answered 202: {posted.accepted}, other: {_other(posted.statuses)}; "
                 f"client-side latency p50 {quantile(latencies_ms, 0.5):.1f} ms, p99 {quantile(latencies_ms, 0.99):.1f} ms, "
                 f"max {max(latencies_ms):.0f} ms")  # fmt: skip
    lines.append(f"webhook latency measured by the API itself: {api_side}; the API process used "
                 f"{api_cpu:.0f}s of CPU while posting ({api_cpu / posting:.0%} of one core)")  # fmt: skip
    lines.append(f"mix: {dict(Counter(f'{b.source}/{b.event}' for b in plan))}")
    lines.append(f"rows: {sum(counts.values())} stored, by status {dict(sorted(counts.items()))}")
    lines.append(f"runs launched by the webhook sensor: {len(webhook_runs)} "
                 f"(per instance {dict(sorted(per_instance.items(), key=str))}; status {dict(run_status)}; "
                 f"webhooks tagged on them: {coalesced})")  # fmt: skip
    lines.append(f"runs launched by schedules: {len(schedule_runs)}; other runs: {len(other_runs)}")
    if webhook_runs:
        durations = []
        for record in records:
            if record.dagster_run.tags.get(TRIGGER_TAG) == WEBHOOK_TRIGGER and record.start_time and record.end_time:
                durations.append(record.end_time - record.start_time)
        if durations:
            lines.append(f"webhook run duration (start to end): median {statistics.median(durations):.1f}s, "
                         f"max {max(durations):.1f}s")  # fmt: skip
    if last_processed is not None:
        first = last_processed.timestamp() - posted.started_at
        after = (last_processed - last_received).total_seconds()
        lines.append(f"last row processed: {first:.1f}s after the first post, {after:.1f}s after the last row "
                     f"was received (rows received over {(last_received - first_received).total_seconds():.1f}s)")  # fmt: skip
    if storm_latencies:
        lines.append(f"webhook to processed (received_at to processed_at, {len(storm_latencies)} storm rows): "
                     f"p50 {quantile(storm_latencies, 0.5):.1f}s, p90 {quantile(storm_latencies, 0.9):.1f}s, "
                     f"max {max(storm_latencies):.1f}s")  # fmt: skip
    if storm_paths:
        lines.append(f"where the time went, storm rows ({len(storm_paths)}), seconds p50 / p90 / max:")
        lines += breakdown(storm_paths)
    if gaps:
        lines.append(f"a library's next claim after its previous run's rows were settled: median "
                     f"{statistics.median(gaps):.1f}s, max {max(gaps):.1f}s ({len(gaps)} follow-up runs)")  # fmt: skip
    if storm_latencies and last_processed is not None:
        lines.append(f"storm against its targets: p50 {quantile(storm_latencies, 0.5):.1f}s (<= 10), "
                     f"p90 {quantile(storm_latencies, 0.9):.1f}s (<= 15), last row "
                     f"{(last_processed - last_received).total_seconds():.1f}s after the last webhook (<= 8)")  # fmt: skip
    if probes:
        lines.append(f"webhook to processed, one webhook at a time into the idle stack ({len(probes)} probes): "
                     f"median {statistics.median(probes):.1f}s (target <= 5), min {min(probes):.1f}s, "
                     f"max {max(probes):.1f}s (target <= 8); sensor interval {args.sensor_interval}s")  # fmt: skip
        lines.append(f"where the time went, probes ({len(probe_paths)}), seconds p50 / p90 / max:")
        lines += breakdown(probe_paths)
    tick_seconds = [t.end_timestamp - t.timestamp for t in ticks if t.end_timestamp]
    if tick_seconds:
        launching = sum(1 for t in ticks if t.run_ids)
        lines.append(f"daemon's webhook_sensor ticks from the first post to the drain: {len(ticks)} "
                     f"({launching} of them requested runs); duration median {statistics.median(tick_seconds) * 1000:.0f} ms, "
                     f"max {max(tick_seconds) * 1000:.0f} ms")  # fmt: skip
    if daemon_load_errors:
        lines.append(f"WARNING: the daemon failed to load the code location {daemon_load_errors} time(s)")
    lines.append(f"drain observed by polling: {drained - posted.started:.1f}s after the first post, "
                 f"{drained - posted.finished:.1f}s after the last post")  # fmt: skip
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    else:
        lines.append(f"kept: {home}")
    return lines


def claim_gaps(engine: Engine) -> list[float]:
    """Per library, seconds from one run's rows being settled to the next claim: what the sensor's
    cadence adds to a busy library's every run."""
    query = select(webhook_log.c.run_key, webhook_log.c.source, webhook_log.c.event_type,
                   func.min(webhook_log.c.dispatched_at), func.max(webhook_log.c.processed_at)).where(
        webhook_log.c.run_key.is_not(None), webhook_log.c.processed_at.is_not(None)
    ).group_by(webhook_log.c.run_key, webhook_log.c.source, webhook_log.c.event_type)  # fmt: skip
    runs: dict[str, tuple[str, Any, Any]] = {}
    with engine.connect() as connection:
        for key, source, event, claimed, settled in connection.execute(query):
            service = stale_kinds(source, event)[0]
            earlier = runs.get(key)
            runs[key] = (service, min(claimed, earlier[1]) if earlier else claimed,
                         max(settled, earlier[2]) if earlier else settled)  # fmt: skip
    gaps = []
    for service in {s for s, _, _ in runs.values()}:
        ordered = sorted((c, e) for s, c, e in runs.values() if s == service)
        gaps += [(later[0] - earlier[1]).total_seconds() for earlier, later in zip(ordered, ordered[1:], strict=False)]
    return gaps


def row_latencies(engine: Engine) -> list[float]:
    """Seconds from each processed row's arrival to its run's outcome."""
    with engine.connect() as connection:
        pairs = connection.execute(
            select(webhook_log.c.received_at, webhook_log.c.processed_at).where(webhook_log.c.processed_at.is_not(None))
        ).all()
    return [(done - received).total_seconds() for received, done in pairs]


def probe_latency(
    engine: Engine, api_port: int, plan: list[Body], probes: int, supervisor: Supervisor
) -> list[tuple[float, uuid.UUID]]:
    """Post one webhook at a time into the drained stack and time each until its row is settled.

    A random pause before each post samples where in the sensor's interval a webhook lands.
    Returns (seconds, row id) per probe.
    """
    rng = random.Random(probes)
    seconds: list[float] = []
    rows: list[uuid.UUID] = []
    for n in range(probes):
        time.sleep(rng.uniform(0, 5))
        body = plan[n % len(plan)]
        headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": body.content_type}
        began = time.perf_counter()
        response = httpx.post(f"http://127.0.0.1:{api_port}/api/webhooks/{body.source}", content=body.content,
                              headers=headers, timeout=30)  # fmt: skip
        response.raise_for_status()
        row_id = uuid.UUID(response.json()["id"])
        while True:
            with engine.connect() as connection:
                status = connection.execute(select(webhook_log.c.status).where(webhook_log.c.id == row_id)).scalar_one()
            if status in FINISHED:
                break
            if supervisor.exited() or time.perf_counter() - began > 300:
                raise SystemExit(f"probe {n}: row {row_id} still {status} after {time.perf_counter() - began:.0f}s")
            time.sleep(0.2)
        seconds.append(time.perf_counter() - began)
        rows.append(row_id)
        print(f"storm: probe {n + 1}/{probes}: {body.source}/{body.event} {status} in {seconds[-1]:.1f}s", flush=True)
    return list(zip(seconds, rows, strict=True))


# --- Where the time goes: each webhook's path through its run ------------------------------------------

#: Moments on a webhook's path, in order. From webhook_log: received (received_at), claimed
#: (dispatched_at), settled (processed_at). From the run's Dagster records: created (run record),
#: launched (RUN_STARTING: the queue let it go), worker (its process reported in), started (RUN_START:
#: the code location loaded, the job begins), sync_started / sync_finished (the step's start and its
#: success or failure), ended (the run's end).
MOMENTS = ("received", "claimed", "created", "launched", "worker", "started", "sync_started", "sync_finished",
           "ended", "settled")  # fmt: skip
WHAT = {
    "claimed": "waiting for a sensor tick, the tick's claim",
    "created": "the rest of the tick, the daemon creating the run",
    "launched": "the run queue (dequeue interval, concurrency limits)",
    "worker": "the run's process forked from the code server's fork server",
    "started": "loading the code location in the worker, run start",
    "sync_started": "executor start-up until the step starts",
    "sync_finished": "the sync itself (and its checks)",
    "ended": "run end after the step",
    "settled": "until the row's outcome is written",
}


def run_moments(instance: Any, run_id: str) -> dict[str, float]:
    """The run's moments (epoch seconds) from its run record and its event log."""
    import dagster as dg

    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return {}
    moments = {"created": record.create_timestamp.timestamp()}
    if record.start_time:
        moments["started"] = record.start_time
    if record.end_time:
        moments["ended"] = record.end_time
    kinds = {dg.DagsterEventType.RUN_STARTING, dg.DagsterEventType.ENGINE_EVENT, dg.DagsterEventType.STEP_START,
             dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}  # fmt: skip
    for event_record in instance.get_records_for_run(run_id, of_type=kinds).records:
        entry = event_record.event_log_entry
        kind = entry.dagster_event.event_type if entry.dagster_event else None
        if kind == dg.DagsterEventType.RUN_STARTING:
            moments.setdefault("launched", entry.timestamp)
        elif kind == dg.DagsterEventType.ENGINE_EVENT and (entry.message or "").startswith("Started process for run"):
            moments.setdefault("worker", entry.timestamp)
        elif kind == dg.DagsterEventType.STEP_START:
            moments.setdefault("sync_started", entry.timestamp)
        elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            moments["sync_finished"] = entry.timestamp
    return moments


def webhook_paths(engine: Engine, instance: Any) -> dict[uuid.UUID, dict[str, float]]:
    """Every settled row's moments, by row id."""
    query = select(webhook_log.c.id, webhook_log.c.received_at, webhook_log.c.dispatched_at,
                   webhook_log.c.processed_at, webhook_log.c.run_id).where(
        webhook_log.c.run_id.is_not(None), webhook_log.c.processed_at.is_not(None)
    )  # fmt: skip
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    runs: dict[str, dict[str, float]] = {}
    paths = {}
    for row_id, received, claimed, settled, run_id in rows:
        if run_id not in runs:
            runs[run_id] = run_moments(instance, run_id)
        path = {"received": received.timestamp(), **runs[run_id], "settled": settled.timestamp()}
        if claimed is not None:
            path["claimed"] = claimed.timestamp()
        paths[row_id] = path
    return paths


def breakdown(paths: list[dict[str, float]]) -> list[str]:
    """p50 / p90 / max of the time between consecutive moments, and of the whole path."""
    lines = []
    for earlier, later in zip(MOMENTS, MOMENTS[1:], strict=False):
        spans = [p[later] - p[earlier] for p in paths if earlier in p and later in p]
        if spans:
            lines.append(f"  {earlier:>13} -> {later:<13} {quantile(spans, 0.5):6.2f} / {quantile(spans, 0.9):6.2f} / "
                         f"{max(spans):6.2f}   {WHAT[later]}")  # fmt: skip
    totals = [p["settled"] - p["received"] for p in paths]
    lines.append(f"  {'received':>13} -> {'settled':<13} {quantile(totals, 0.5):6.2f} / {quantile(totals, 0.9):6.2f} / "
                 f"{max(totals):6.2f}   the whole path")  # fmt: skip
    return lines


def _other(statuses: Counter[int | str]) -> str:
    rest = {k: v for k, v in statuses.items() if k != 202}
    return str(rest) if rest else "0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--webhooks", type=int, default=10_000, help="webhooks to post in the storm")
    parser.add_argument("--seconds", type=float, default=60.0, help="spread the storm over this many seconds")
    parser.add_argument("--connections", type=int, default=32, help="most requests in flight at once")
    parser.add_argument("--sensor-interval", type=int, default=2, help="SMARTPLEX_SENSOR_INTERVAL_SECONDS")
    parser.add_argument("--size", type=int, default=300, help="items in the simulated media universe")
    parser.add_argument("--timeout", type=float, default=900.0, help="longest wait for the rows to settle")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--probes", type=int, default=5, help="single webhooks timed into the idle stack after the storm"
    )
    parser.add_argument("--with-schedules", action="store_true", help="leave the sync schedules enabled")
    parser.add_argument("--bodies", choices=("universe", "fixtures"), default="universe",
                        help="webhooks naming items of the simulated services (they end processed), or the "
                             "fixture bodies of tests/fixtures (items the services lack: they end missing)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the storm's data directory and logs")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="dagster")
    lines: list[str] = []
    began = time.perf_counter()
    load = os.getloadavg()[0]
    lines += run_storm(args)
    print()
    print(
        f"== webhook storm benchmark ({time.perf_counter() - began:.0f}s in all; {os.cpu_count()} cores, load average {load:.1f} at the start) =="
    )
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
