"""The cluster's speed, printed, never asserted: ``python bench/cluster.py`` (``make bench-cluster``).

Needs PostgreSQL and RabbitMQ on loopback (as the cluster tests do). For each worker count asked for
(``--workers``, by default 1, 2 and 4) it starts a private cluster: two API replicas, the daemon and
that many Celery workers (one run at a time each) on the production ``dagster.yaml``. Then:

1. in the cluster of ``--probe-workers`` workers (2), single webhooks into the idle stack, the workers
   warm: webhook to processed, median and max, and where the time went, hop by hop (from
   ``webhook_log`` and the run's Dagster events). A random pause before each probe spreads them over
   the phases of the sensor's 5-second loop, as webhooks arrive in life: a fixed pause locks the
   probes to one phase of it.
2. in every cluster, the same storm (``--webhooks`` over ``--seconds``, posted from two processes of
   their own, one per replica, each webhook naming an item the simulated service has): webhook to
   processed p50 and p90, and how long the last row took after the last webhook; side by side.

Target: one webhook, median ≤ 3 s with warm workers.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.storm import Body, universe_bodies  # noqa: E402
from smartplex.schema import webhook_log  # noqa: E402
from smartplex_simulators.serve import run_simulators  # noqa: E402
from smartplex_simulators.simulation import Simulation  # noqa: E402
from smartplex_simulators.universe import Universe  # noqa: E402
from tests.cluster.cluster import Cluster, private_cluster  # noqa: E402
from tests.conftest import POSTGRES_URL, WEBHOOK_SECRET  # noqa: E402

#: A webhook's path, hop by hop: (name, from, to). Row moments come from webhook_log, run moments from
#: the run's record and events (see :func:`run_moments`).
HOPS = [
    ("claimed by the sensor", "received", "claimed"),
    ("run created", "claimed", "created"),
    ("run queued", "created", "queued"),
    ("let go by the run queue", "queued", "dequeued"),
    ("task at the broker", "dequeued", "forwarded"),
    ("worker has the run", "forwarded", "worker"),
    ("run started", "worker", "started"),
    ("sync step started", "started", "sync_started"),
    ("sync step done", "sync_started", "sync_finished"),
    ("rows settled", "sync_finished", "settled"),
]
#: dagster-celery's run event once the broker has taken the run's task (after the launcher's name).
FORWARDED = "Celery task has been forwarded to the broker."


def run_moments(cluster: Cluster, run_id: str) -> dict[str, float]:
    """When (epoch seconds) the run was created, queued, let go by the queue, at the broker, reported in by its
    worker, started, and its sync step started and finished."""
    import dagster as dg

    instance = cluster.instance
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return {}
    moments = {"created": record.create_timestamp.timestamp()}
    if record.start_time:
        moments["started"] = record.start_time
    kinds = {dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING, dg.DagsterEventType.ENGINE_EVENT, dg.DagsterEventType.STEP_START,
             dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}  # fmt: skip
    for event in instance.get_records_for_run(run_id, of_type=kinds).records:
        entry = event.event_log_entry
        kind, message = entry.dagster_event_type, entry.message or ""
        if kind == dg.DagsterEventType.RUN_ENQUEUED:
            moments.setdefault("queued", entry.timestamp)
        elif kind == dg.DagsterEventType.RUN_STARTING:
            moments.setdefault("dequeued", entry.timestamp)
        elif kind == dg.DagsterEventType.ENGINE_EVENT and message.endswith(FORWARDED):
            moments.setdefault("forwarded", entry.timestamp)
        elif kind == dg.DagsterEventType.ENGINE_EVENT and message.startswith("Started process for run"):
            moments.setdefault("worker", entry.timestamp)
        elif kind == dg.DagsterEventType.STEP_START:
            moments.setdefault("sync_started", entry.timestamp)
        elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            moments["sync_finished"] = entry.timestamp
    return moments


def _row(cluster: Cluster, row_id: uuid.UUID) -> dict[str, Any]:
    with cluster.engine.connect() as connection:
        return dict(connection.execute(select(webhook_log).where(webhook_log.c.id == row_id)).mappings().one())


def _newest_row(cluster: Cluster) -> uuid.UUID:
    with cluster.engine.connect() as connection:
        query = select(webhook_log.c.id).order_by(webhook_log.c.received_at.desc()).limit(1)
        return uuid.UUID(str(connection.execute(query).scalar_one()))


def _stamp(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def warm_up(cluster: Cluster, bodies: list[Body]) -> None:
    """A small burst for every service at once, so that each worker's pool process has run a sync."""
    post_share(cluster.api_urls[0], bodies, 1.0, 8)
    cluster.wait_for("the warm-up settled", cluster.settled, 240, 0.2)


def single_webhooks(cluster: Cluster, probes: int, seed: int) -> tuple[float, float]:
    """A movie added in the simulated Radarr, whose webhook names it: a row the sync finds and processes.

    Returns the median and the max, in seconds."""
    from smartplex_simulators.webhooks import WebhookSender

    simulation = cluster.sims.simulation
    rng = random.Random(seed)
    totals: list[float] = []
    hops: dict[str, list[float]] = {name: [] for name, _, _ in HOPS}
    for number in range(probes):
        time.sleep(rng.uniform(0.0, 5.0))  # anywhere in the sensor's 5-second loop
        url = cluster.api_urls[number % len(cluster.api_urls)]
        simulation.webhooks = WebhookSender.from_template(f"{url}/api/webhooks/{{kind}}?token={WEBHOOK_SECRET}")
        started = time.monotonic()
        simulation.add_movie(with_file=False)
        row_id = _newest_row(cluster)
        while _row(cluster, row_id)["status"] in ("pending", "dispatched"):
            time.sleep(0.02)
        totals.append(time.monotonic() - started)
        row = _row(cluster, row_id)
        moments: dict[str, float | None] = {
            "received": _stamp(row["received_at"]),
            "claimed": _stamp(row["dispatched_at"]),
            "settled": _stamp(row["processed_at"]),
            **(run_moments(cluster, row["run_id"]) if row["run_id"] else {}),
        }
        for name, start, end in HOPS:
            begin, finish = moments.get(start), moments.get(end)
            if begin is not None and finish is not None:
                hops[name].append(finish - begin)
    median = statistics.median(totals)
    print(f"  one webhook -> processed, {probes} probes: median {median:.2f} s, p90 {_quantile(totals, 0.9):.2f} s, "
          f"max {max(totals):.2f} s (target: median <= 3 s)")  # fmt: skip
    print("  where the time went (median per hop, in order):")
    for name, values in hops.items():
        if values:
            print(f"    {name:<26} {statistics.median(values):5.2f} s")
    return median, max(totals)


def post_share(url: str, bodies: list[Body], seconds: float, connections: int) -> Counter[int | str]:
    """Post ``bodies`` to one replica at an even pace over ``seconds``, at most ``connections`` at once."""

    async def main() -> Counter[int | str]:
        answers: Counter[int | str] = Counter()
        gate = asyncio.Semaphore(connections)
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        headers = {"Authorization": f"Bearer {WEBHOOK_SECRET}"}
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30, headers=headers) as client:

            async def send(body: Body) -> None:
                try:
                    response = await client.post(f"/api/webhooks/{body.source}", content=body.content,
                                                 headers={"Content-Type": body.content_type})  # fmt: skip
                    answers[response.status_code] += 1
                except httpx.HTTPError as exc:
                    answers[type(exc).__name__] += 1
                finally:
                    gate.release()

            interval, began, tasks = seconds / max(1, len(bodies)), time.perf_counter(), []
            for number, body in enumerate(bodies):
                await asyncio.sleep(max(0.0, began + number * interval - time.perf_counter()))
                await gate.acquire()
                tasks.append(asyncio.create_task(send(body)))
            await asyncio.gather(*tasks)
        return answers

    return asyncio.run(main())


@dataclass
class StormFigures:
    webhooks: int
    p50: float
    p90: float
    drain: float
    runs: dict[str, int]
    cpu: float
    ticks: str


def sensor_ticks(cluster: Cluster, since: float) -> str:
    """The webhook sensor's ticks since ``since`` (epoch seconds): how long the longest took, from the
    daemon's start of it to its end, and how many of the daemon's 5-second loops passed without one
    (a tick still running when its loop comes round is skipped)."""
    from bench.storm import sensor_ticks as all_ticks

    ticks = sorted((t for t in all_ticks(cluster.instance) if t.timestamp >= since), key=lambda t: t.timestamp)
    if len(ticks) < 2:
        return "no ticks"
    spans = [t.end_timestamp - t.timestamp for t in ticks if t.end_timestamp]
    skipped = sum(round((b.timestamp - a.timestamp) / 5.0) - 1 for a, b in zip(ticks, ticks[1:], strict=False))
    return f"{len(ticks)} sensor ticks, longest {max(spans):.2f} s, loops without a tick {skipped}"


def storm(cluster: Cluster, bodies: list[Body], seconds: float) -> StormFigures:
    """``bodies`` spread evenly over ``seconds`` and both replicas, each share posted by a process of its
    own (this one serves the simulators); the figures once every row is settled."""
    shares = [bodies[i :: len(cluster.api_urls)] for i in range(len(cluster.api_urls))]
    with cluster.engine.connect() as connection:
        since = connection.execute(select(func.now())).scalar_one()
    began = time.time()
    psutil.cpu_percent()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(shares), mp_context=context) as pool:
        answers = sum((f.result() for f in [pool.submit(post_share, url, share, seconds, 16)
                                            for url, share in zip(cluster.api_urls, shares, strict=True)]),
                      Counter())  # fmt: skip
    sent = time.monotonic()
    cluster.wait_for("the storm settled", cluster.settled, 600, 0.2)
    drain = time.monotonic() - sent
    cpu = psutil.cpu_percent()
    with cluster.engine.connect() as connection:
        query = select(webhook_log.c.received_at, webhook_log.c.processed_at).where(
            webhook_log.c.received_at >= since, webhook_log.c.processed_at.is_not(None)
        )
        waits = sorted((done - received).total_seconds() for received, done in connection.execute(query))
    accepted = answers.get(202, 0)
    if accepted != len(bodies):
        print(f"  WARNING: {len(bodies) - accepted} webhooks not accepted: {dict(answers)}")
    taken = {name: len(runs) for name, runs in cluster.runs_taken().items()}
    ticks = sensor_ticks(cluster, began)
    figures = StormFigures(len(waits), _quantile(waits, 0.5), _quantile(waits, 0.9), drain, taken, cpu, ticks)
    print(f"  {len(bodies)} webhooks over {seconds:.0f} s: webhook -> processed p50 {figures.p50:.2f} s, "
          f"p90 {figures.p90:.2f} s; last row settled {drain:.1f} s after the last webhook; runs per worker "
          f"{taken}; CPU busy {cpu:.0f}% (both cores, from the first webhook to the last row); {ticks}")  # fmt: skip
    return figures


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=15)
    parser.add_argument("--webhooks", type=int, default=9000)
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 1, 4], help="Worker counts to compare.")
    parser.add_argument("--probe-workers", type=int, default=2, help="The worker count the probes run with.")
    parser.add_argument("--no-storm", action="store_true", help="The single webhooks only.")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    print(f"load average before: {', '.join(f'{value:.1f}' for value in os.getloadavg())}", flush=True)
    began = time.monotonic()
    figures: dict[int, StormFigures] = {}
    probes: tuple[float, float] | None = None
    for workers in args.workers if not args.no_storm else [args.probe_workers]:
        simulation = Simulation(Universe(seed=args.seed, size=400, now=int(time.time())))
        bodies = universe_bodies(simulation.universe, args.webhooks + 40, args.seed)
        with tempfile.TemporaryDirectory(prefix="smartplex-bench-cluster-") as tmp, \
                run_simulators(simulation=simulation) as sims, \
                private_cluster(POSTGRES_URL, args.broker, sims, Path(tmp)) as cluster:  # fmt: skip
            cluster.start_api()
            cluster.start_api()
            cluster.start_daemon()
            for number in range(1, workers + 1):
                cluster.start_worker(f"worker-{number}")
            print(f"{workers} worker(s), 2 API replicas:", flush=True)
            warm_up(cluster, bodies[:40])
            if workers == args.probe_workers and args.probes:
                probes = single_webhooks(cluster, args.probes, args.seed)
            if not args.no_storm:
                figures[workers] = storm(cluster, bodies[40:], args.seconds)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nsummary ({(time.monotonic() - began) / 60:.1f} min; load average at the end {load}):")
    if probes is not None:
        print(f"one webhook -> processed, warm workers ({args.probe_workers}): median {probes[0]:.2f} s, "
              f"max {probes[1]:.2f} s")  # fmt: skip
    for workers, storm_figures in sorted(figures.items()):
        print(f"storm of {args.webhooks} over {args.seconds:.0f} s, {workers} worker(s): p50 {storm_figures.p50:.2f} s, "
              f"p90 {storm_figures.p90:.2f} s, drain {storm_figures.drain:.1f} s, runs {sum(storm_figures.runs.values())}, "
              f"CPU {storm_figures.cpu:.0f}%")  # fmt: skip


if __name__ == "__main__":
    main()
