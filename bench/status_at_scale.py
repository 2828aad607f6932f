"""Status at scale: ``GET /api/webhooks/status``'s figures and the admin page's charts over 100k and 1M
webhook rows (30 days of a busy server), on SQLite and PostgreSQL.

For each engine and size it fills ``webhook_log`` (rows spread over 30 days: mostly processed, with
every stage timed; some failed, ignored, missing; a few still waiting), then times, per window:

- the baseline, a full scan as the status computed it before rollups (counts by status, the newest
  row, exact nearest-rank percentiles sorted in SQL);
- the status from the rollups (``webhook_api.status.webhook_status``), once all hours are rebuilt:
  the median of five calls;
- the admin page's two charts (24 hours by hour, 7 days by day).

It also prints how long rebuilding every hour took (the catch-up after the upgrade, when every
existing hour starts stale); and it checks that the figures equal the full scan's (counts exact,
percentiles within one histogram bucket). Target: any window up to 30 days within 200 ms at 1M rows
on both engines.

Run by hand (about 5 minutes); it prints figures and asserts nothing:

    python bench/status_at_scale.py [--sizes 100000 1000000] [--postgres-url URL | --no-postgres]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, func, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import DEFAULT_POSTGRES_URL, drop_schema, fresh_schema  # noqa: E402
from smartplex import migrate, webhook_rollups  # noqa: E402
from smartplex.column_types import utcnow  # noqa: E402
from smartplex.db import make_engine  # noqa: E402
from smartplex.kinds import KIND_NAMES  # noqa: E402
from smartplex.latency import STAGES, percentiles  # noqa: E402
from smartplex.schema import webhook_log  # noqa: E402
from webhook_api.admin_page.operations import received_over_time  # noqa: E402
from webhook_api.status import webhook_status  # noqa: E402

WINDOWS = {"1 h": timedelta(hours=1), "24 h": timedelta(days=1), "7 d": timedelta(days=7), "30 d": timedelta(days=30)}
MOMENTS = ("dispatched_at", "run_created_at", "run_started_at", "sync_started_at", "sync_finished_at", "processed_at")
#: Typical seconds per stage (claim, create, start, prepare, sync, settle), spread log-normally.
STAGE_SECONDS = (1.2, 0.1, 1.0, 0.2, 0.3, 0.05)
OUTCOMES = (("processed", 0.86), ("ignored", 0.08), ("failed", 0.03), ("missing", 0.03))


def make_rows(now: datetime, start: int, count: int, total: int, rng: random.Random) -> list[dict[str, Any]]:
    """Rows ``start`` .. ``start + count`` of ``total``, evenly over the 30 days before ``now``."""
    step = timedelta(days=30) / total
    oldest = now - timedelta(days=30)
    rows = []
    for i in range(start, start + count):
        received = oldest + step * i
        status = rng.choices([o for o, _ in OUTCOMES], [w for _, w in OUTCOMES])[0]
        if now - received < timedelta(seconds=20):
            status = "pending"
        source = KIND_NAMES[i % len(KIND_NAMES)]
        row: dict[str, Any] = {
            "id": uuid.uuid4(), "source": source, "event_type": "Download", "received_at": received,
            "payload": {"eventType": "Download", "series": {"id": i % 5000, "title": f"Series {i % 5000}"}},
            "status": status, "processed": status != "pending", **dict.fromkeys(MOMENTS),
        }  # fmt: skip
        if status == "ignored":
            row["processed_at"] = received
        elif status != "pending":
            moment = received
            for column, typical in zip(MOMENTS, STAGE_SECONDS, strict=True):
                moment += timedelta(seconds=typical * rng.lognormvariate(0, 0.6))
                row[column] = moment
            if status == "missing":
                row["processed_at"] = row["sync_finished_at"]
        rows.append(row)
    return rows


def fill(engine: Engine, total: int, now: datetime) -> float:
    rng = random.Random(total)
    began = time.perf_counter()
    for start in range(0, total, 5000):
        with engine.begin() as connection:
            connection.execute(insert(webhook_log), make_rows(now, start, min(5000, total - start), total, rng))
    return time.perf_counter() - began


def full_scan(engine: Engine, since: datetime) -> dict[str, Any]:
    """The status's figures as computed before rollups: every row of the window scanned and sorted."""
    recent = webhook_log.c.received_at >= since
    with engine.connect() as connection:
        counts = {
            (source, status): n
            for source, status, n in connection.execute(
                select(webhook_log.c.source, webhook_log.c.status, func.count())
                .where(recent)
                .group_by(webhook_log.c.source, webhook_log.c.status)
            )
        }
        latency = {
            source: percentiles(connection, and_(recent, webhook_log.c.source == source), stages=(STAGES[-1],))["total"]
            for source in KIND_NAMES
        }
        stages = percentiles(connection, recent)
    return {"counts": counts, "latency": latency, "stages": stages}


def agrees(status: dict[str, Any], expected: dict[str, Any]) -> bool:
    def near(value: float | None, exact: float | None) -> bool:
        if exact is None or value is None:
            return value is exact
        lower, upper = webhook_rollups.bucket_bounds(webhook_rollups.bucket_of(exact))
        return lower - 1e-3 <= value <= upper + 1e-3

    for source, figures in status["sources"].items():
        for status_name in ("pending", "processed", "failed", "ignored", "missing"):
            if figures[status_name] != expected["counts"].get((source, status_name), 0):
                return False
        exact = expected["latency"][source]
        if not (near(figures["latency_p50_seconds"], exact[0.5]) and near(figures["latency_p95_seconds"], exact[0.95])):
            return False
    for name, figures in status["stages"].items():
        exact = expected["stages"][name]
        if figures["rows"] != exact["rows"] or not near(figures["p95_seconds"], exact[0.95]):
            return False
    return True


def timed(call: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def run(label: str, url: str, total: int) -> list[str]:
    engine = make_engine(url, timeout=120)
    migrate.upgrade(engine)
    now = utcnow()
    took = fill(engine, total, now)
    with engine.begin() as connection:  # as autovacuum would after a load this size
        connection.execute(text("ANALYZE webhook_log" if engine.dialect.name == "postgresql" else "ANALYZE"))
    print(f"[{label} {total:,}] filled in {took:.1f} s ({total / took:,.0f} rows/s, triggers included)", flush=True)

    def status(window: timedelta) -> dict[str, Any]:
        with engine.connect() as connection:
            return webhook_status(connection, window, now)

    # What the API's background catch-up does after the upgrade, when every hour starts stale.
    rebuild, hours = timed(lambda: webhook_rollups.rebuild(engine, now, budget=None))
    lines = [
        f"| {label} | {total:,} | catching up: all {hours} hours stale, rebuilt | — | {rebuild * 1000:,.0f} ms | — | — |"
    ]
    for name, window in WINDOWS.items():
        baseline, expected = timed(lambda window=window: full_scan(engine, now - window))
        rolled, answer = timed(lambda window=window: status(window), repeat=5)
        same = "yes" if agrees(answer, expected) else "NO"
        lines.append(
            f"| {label} | {total:,} | status, {name} | {baseline * 1000:,.0f} ms | {rolled * 1000:,.0f} ms "
            f"| {baseline / rolled:,.0f}× | {same} |"
        )
        print(lines[-1], flush=True)
    for name, size, count in (
        ("chart, 24 h by hour", timedelta(hours=1), 24),
        ("chart, 7 d by day", timedelta(days=1), 7),
    ):

        def chart(size: timedelta = size, count: int = count) -> Any:
            with engine.connect() as connection:
                return received_over_time(connection, bucket=size, buckets=count, now=now)

        took, _ = timed(chart, repeat=5)
        lines.append(f"| {label} | {total:,} | {name} | — | {took * 1000:,.0f} ms | — | — |")
        print(lines[-1], flush=True)
    engine.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    lines = []
    for total in args.sizes:
        directory = tempfile.mkdtemp(prefix="status-bench-")
        try:
            lines += run("SQLite", f"sqlite:///{directory}/smartplex.db", total)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        if not args.no_postgres:
            url, schema = fresh_schema(args.postgres_url)
            try:
                lines += run("PostgreSQL", url, total)
            finally:
                drop_schema(args.postgres_url, schema)
    print("\n| engine | rows | what | full scan | rollups | ratio | same figures |\n|---|---|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
