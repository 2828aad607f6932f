"""Sensor-tick benchmark: one ``webhook_sensor`` tick at ``--pending`` pending rows, on SQLite and PostgreSQL.

Inserts the rows straight into ``webhook_log`` (real webhook bodies, received over the last hour) and
times the sensor function in-process (as ``tests/dagster/test_webhook_sensor.py`` calls it), on
SQLite and on PostgreSQL (a fresh schema, dropped afterwards): the claiming tick, then the reconciling
tick that finds the five dispatched groups. Each is timed as a first evaluation, without the
observation of webhook_log and without watching for work. The grouping query is timed on its own
beside it, as the baseline. Target: a tick at 100,000 pending rows <= 1 s on each engine.

Run by hand; it prints figures and asserts nothing:

    python bench/sensor_tick.py [--pending 100000] [--postgres-url URL | --no-postgres]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import DEFAULT_POSTGRES_URL, drop_schema, fresh_schema  # noqa: E402
from bench.storm import load_bodies, pick, row_counts  # noqa: E402
from smartplex import migrate, webhook_queue  # noqa: E402
from smartplex.column_types import utcnow  # noqa: E402
from smartplex.dagster_names import WEBHOOKS_TAG  # noqa: E402
from smartplex.db import make_engine  # noqa: E402
from smartplex.schema import webhook_log  # noqa: E402


def insert_pending(engine: Engine, n: int, seed: int) -> float:
    """``n`` pending rows of real bodies, received over the last hour, in batches of 2,000."""
    plan = pick(load_bodies(), n, seed)
    base = utcnow() - timedelta(hours=1)
    step = timedelta(hours=1) / max(1, n)
    began = time.perf_counter()
    with engine.begin() as connection:
        for start in range(0, n, 2000):
            rows = [
                {"id": uuid.uuid4(), "source": b.source, "event_type": b.event, "payload": b.payload,
                 "received_at": base + step * i, "status": "pending", "processed": False}
                for i, b in enumerate(plan[start : start + 2000], start)
            ]  # fmt: skip
            connection.execute(insert(webhook_log), rows)
    return time.perf_counter() - began


def time_ticks(label: str, database_url: str, n: int, seed: int) -> list[str]:
    import dagster as dg

    from smartplex_dagster.defs.resources import DatabaseResource
    from smartplex_dagster.defs.webhook_sensor import webhook_sensor

    engine = make_engine(database_url, timeout=60)
    migrate.upgrade(engine)
    database = DatabaseResource(url=database_url)
    lines = []
    with dg.instance_for_test() as instance:

        def tick() -> tuple[float, Any]:
            began = time.perf_counter()
            result = webhook_sensor(dg.build_sensor_context(instance=instance, resources={"database": database}))
            return time.perf_counter() - began, result

        idle, _ = tick()  # warm-up: the engine, the first queries
        took = insert_pending(engine, n, seed)
        print(f"tick[{label}]: inserted {n} pending rows in {took:.1f}s", flush=True)
        with engine.connect() as connection:  # the tick's read-only part on its own: the grouping query
            began = time.perf_counter()
            groups = webhook_queue.pending_groups(connection)
            grouping = time.perf_counter() - began
        first, result = tick()
        requests = [] if isinstance(result, dg.SkipReason) else list(result.run_requests)
        claimed = sum(int(r.tags[WEBHOOKS_TAG]) for r in requests)
        second, again = tick()
        again_requests = [] if isinstance(again, dg.SkipReason) else list(again.run_requests)
        counts = row_counts(engine)
    engine.dispose()
    database.engine.dispose()
    lines.append(f"sensor tick, {label}: {first * 1000:.0f} ms at {n} pending rows (target <= 1000 ms) "
                 f"({len(requests)} run requests, {claimed} rows claimed; the grouping query alone "
                 f"{grouping * 1000:.0f} ms for {len(groups)} groups); "
                 f"reconciling tick with {len(requests)} dispatched groups: {second * 1000:.0f} ms "
                 f"({len(again_requests)} re-requested, no runs exist); idle tick {idle * 1000:.0f} ms; "
                 f"rows after: {dict(sorted(counts.items()))}")  # fmt: skip
    return lines


def run_ticks(args: argparse.Namespace) -> list[str]:
    lines: list[str] = []
    home = Path(tempfile.mkdtemp(prefix="smartplex-tick-"))
    try:
        lines += time_ticks("SQLite", f"sqlite:///{home / 'smartplex.db'}", args.pending, args.seed)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if args.postgres_url:
        url, schema = fresh_schema(args.postgres_url)
        try:
            lines += time_ticks("PostgreSQL", url, args.pending, args.seed)
        finally:
            drop_schema(args.postgres_url, schema)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending", type=int, default=100_000, help="pending rows for the sensor tick timing")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--no-postgres", dest="postgres_url", action="store_const", const=None)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", module="dagster")
    lines = run_ticks(args)
    print("\n== sensor tick benchmark ==")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
