"""The cluster's speed, printed, never asserted: ``python bench/cluster.py`` (``make bench-cluster``).

Needs PostgreSQL and RabbitMQ on loopback (as the cluster tests do). Starts two API replicas, the
daemon and the Celery workers on the production ``dagster.yaml``, then:

1. single webhooks into the idle stack with warm workers: webhook to processed, median and max, and
   where the time went (claim, run created, run started in a worker, sync, settled);
2. the same storm (webhooks spread over seconds) with two workers and with one, side by side:
   webhook to processed p50 and p90, and how long the last row took after the last webhook.

Target: one webhook, median ≤ 3 s with warm workers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from smartplex.schema import webhook_log  # noqa: E402
from smartplex_simulators.serve import run_simulators  # noqa: E402
from smartplex_simulators.simulation import Simulation  # noqa: E402
from smartplex_simulators.universe import Universe  # noqa: E402
from tests.cluster.cluster import Cluster, private_cluster  # noqa: E402
from tests.conftest import POSTGRES_URL, WEBHOOK_SECRET  # noqa: E402
from tests.resilience.burst import marked_webhooks  # noqa: E402

STAGES = [("claim", "received_at", "dispatched_at"), ("create", "dispatched_at", "run_created_at"),
          ("start", "run_created_at", "run_started_at"), ("prepare", "run_started_at", "sync_started_at"),
          ("sync", "sync_started_at", "sync_finished_at"), ("settle", "sync_finished_at", "processed_at")]  # fmt: skip


def _row(cluster: Cluster, row_id: str) -> dict[str, Any]:
    with cluster.engine.connect() as connection:
        return dict(
            connection.execute(select(webhook_log).where(webhook_log.c.id == uuid.UUID(row_id))).mappings().one()
        )


def single_webhooks(cluster: Cluster, probes: int) -> None:
    """A movie added in the simulated Radarr, whose webhook names it: a row the sync finds and processes."""
    from smartplex_simulators.webhooks import WebhookSender

    simulation = cluster.sims.simulation
    totals, stages = [], {name: [] for name, _, _ in STAGES}  # type: ignore[var-annotated]
    for number in range(probes + 1):  # the first warms the workers' pool processes up
        url = cluster.api_urls[number % len(cluster.api_urls)]
        simulation.webhooks = WebhookSender.from_template(f"{url}/api/webhooks/{{service}}?token={WEBHOOK_SECRET}")
        with cluster.engine.connect() as connection:
            before = set(connection.execute(select(webhook_log.c.id)).scalars())
        started = time.monotonic()
        simulation.add_movie(with_file=False)
        with cluster.engine.connect() as connection:
            row_id = str(next(i for i in connection.execute(select(webhook_log.c.id)).scalars() if i not in before))
        while _row(cluster, row_id)["status"] in ("pending", "dispatched"):
            time.sleep(0.02)
        took = time.monotonic() - started
        row = _row(cluster, row_id)
        if number == 0:
            print(f"  warm-up webhook: {took:.2f} s ({row['status']})")
            continue
        totals.append(took)
        for name, start, end in STAGES:
            if row[start] and row[end]:
                stages[name].append((row[end] - row[start]).total_seconds())
        time.sleep(1.5)
    print(f"  one webhook -> processed, {probes} probes: median {statistics.median(totals):.2f} s, "
          f"max {max(totals):.2f} s (target: median <= 3 s)")  # fmt: skip
    print("  median per stage: " + ", ".join(f"{n} {statistics.median(v):.2f} s" for n, v in stages.items() if v))


def storm(cluster: Cluster, webhooks: int, seconds: int) -> tuple[float, float, float]:
    """``webhooks`` spread over ``seconds``; webhook to processed p50 and p90, and the drain after the last one."""
    bodies = marked_webhooks(webhooks)
    started = time.monotonic()
    for second in range(seconds):
        cluster.burst(bodies[second::seconds])
        time.sleep(max(0.0, started + second + 1 - time.monotonic()))
    sent = time.monotonic()
    cluster.wait_for("the storm settled", cluster.settled, 240, 0.1)
    drain = time.monotonic() - sent
    with cluster.engine.connect() as connection:
        query = select(webhook_log.c.received_at, webhook_log.c.processed_at).where(webhook_log.c.status != "ignored")
        waits = sorted((done - received).total_seconds() for received, done in connection.execute(query))
    p50, p90 = waits[len(waits) // 2], waits[int(len(waits) * 0.9)]
    taken = cluster.runs_taken()
    print(f"  {webhooks} webhooks over {seconds} s: webhook -> processed p50 {p50:.2f} s, p90 {p90:.2f} s; "
          f"last row settled {drain:.1f} s after the last webhook; runs per worker "
          f"{{{', '.join(f'{k}: {len(v)}' for k, v in taken.items())}}}")  # fmt: skip
    return p50, p90, drain


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=7)
    parser.add_argument("--webhooks", type=int, default=600)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 1], help="Worker counts to compare.")
    parser.add_argument("--no-storm", action="store_true", help="The single webhooks only.")
    args = parser.parse_args()
    figures = {}
    for workers in args.workers:
        with tempfile.TemporaryDirectory(prefix="smartplex-bench-cluster-") as tmp, \
                run_simulators(simulation=Simulation(Universe(seed=11, size=400, now=int(time.time())))) as sims, \
                private_cluster(POSTGRES_URL, args.broker, sims, Path(tmp)) as cluster:  # fmt: skip
            cluster.start_api()
            cluster.start_api()
            cluster.start_daemon()
            for number in range(1, workers + 1):
                cluster.start_worker(f"worker-{number}")
            print(f"{workers} worker(s), 2 API replicas:")
            if workers == args.workers[0]:
                single_webhooks(cluster, args.probes)
            if not args.no_storm:
                figures[workers] = storm(cluster, args.webhooks, args.seconds)
    for workers, (p50, p90, drain) in sorted(figures.items()):
        print(f"storm, {workers} worker(s): p50 {p50:.2f} s, p90 {p90:.2f} s, drain {drain:.1f} s")


if __name__ == "__main__":
    main()
