"""PostgreSQL restarted mid-burst: how long requests take during the outage, and how soon 2xx come back.

``python bench/postgres_restart.py`` (``make bench-restart``). The fault of
``tests/resilience/test_postgres_restart.py``, timed: that test checks the answers (only 202 and 503,
every 202 stored exactly once, 202 again after the restart and from then on) with deadlines that only
catch a hang; the figures are here. It reuses the test's helpers: a private PostgreSQL cluster
(``tests/resilience/pg_cluster.py``, never the shared server) and ``smartplex api`` as a child process
under a burst of marked webhooks from 32 connections (``tests/resilience/burst.py``).

Each round, in a fresh schema and a fresh API process each:

- the baseline: the same burst, no fault: request latency p50, p99, max;
- for each restart mode (``fast``: sessions terminated, a checkpoint; ``immediate``: every process
  killed, WAL replayed), the burst with the server restarted once ``--restart-after`` requests have
  answered: how long the server was down (``pg_ctl restart -w``), the first 2xx of a request sent after
  it was back, the slowest request and p99 (also as multiples of the baseline's), the 503s, and what
  the ledger check found (it must find nothing).

Targets (the bounds the test asserted before they moved here): no request slower than the database
timeout + 5 s; the first 2xx within 15 s of the server's return. Prints, never asserts:

    python bench/postgres_restart.py [--rounds 2] [--webhooks 5000] [--restart-after 2000]
        [--modes fast immediate] [--timeout 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")  # tests.conftest imports it

from bench._common import drop_schema, fresh_schema  # noqa: E402
from smartplex import migrate  # noqa: E402
from smartplex.db import make_engine  # noqa: E402
from tests.resilience.burst import ApiProcess, Burst, Outcome, check_ledger, marked_webhooks  # noqa: E402
from tests.resilience.pg_cluster import ClusterUnavailable, PrivateCluster  # noqa: E402

#: Slack over the database timeout for a request's round trip, and the first 2xx after the server's
#: return: the bounds tests/resilience/test_postgres_restart.py asserted before they moved here.
LATENCY_MARGIN = 5.0
RECOVERY_TARGET = 15.0
CONCURRENCY = 32


@dataclass
class Figures:
    outcomes: list[Outcome]
    unanswered: int
    problems: list[str]
    summary: str
    down: float = 0.0  # how long pg_ctl restart took
    recovery: float = 0.0  # from the server's return to the first 2xx of a request sent after it

    def latency(self, share: float) -> float:
        ordered = sorted(o.latency for o in self.outcomes) or [0.0]
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))]

    @property
    def statuses(self) -> dict[str, int]:
        return dict(Counter(str(o.status or o.error) for o in self.outcomes))

    @property
    def retry_after(self) -> bool:
        return all((o.retry_after or "").isdigit() for o in self.outcomes if o.status == 503)


def one_burst(cluster: PrivateCluster, args: argparse.Namespace, mode: str | None) -> Figures:
    """A burst into a fresh schema and API process; ``mode`` None for the baseline (no restart)."""
    url, schema = fresh_schema(cluster.url)
    home = Path(tempfile.mkdtemp(prefix="smartplex-restart-"))
    api = ApiProcess(url, home, {"SMARTPLEX_DB_TIMEOUT_SECONDS": str(args.timeout)})
    engine = make_engine(url, timeout=30)
    try:
        migrate.upgrade(engine)
        api.start()
        burst = Burst(api.base_url, marked_webhooks(args.webhooks), CONCURRENCY, timeout=args.timeout + 20)
        marks: dict[str, float] = {}

        async def restart(burst: Burst) -> None:
            assert mode is not None
            await burst.until(lambda b: b.answered >= args.restart_after)
            marks["restart"] = time.monotonic()
            restarting = asyncio.create_task(asyncio.to_thread(cluster.restart, mode))
            # Keep the last requests for after the server's return, so that the recovery is measured.
            await burst.until(lambda b: restarting.done() or len(b.outcomes) >= len(b.webhooks) - 2 * CONCURRENCY)
            if not restarting.done():
                burst.pause()
            await restarting
            marks["back"] = time.monotonic()  # pg_ctl -w returns once the server accepts connections
            burst.resume()

        outcomes = asyncio.run(burst.run(None if mode is None else restart))
        summary, problems = check_ledger(engine, outcomes, burst.summary())
        figures = Figures(outcomes, burst.unanswered, problems, summary)
        if mode is not None:
            back = marks["back"]
            after_back = [o.finished for o in outcomes if o.ok and o.started >= back]
            figures.down = back - marks["restart"]
            figures.recovery = min(after_back) - back if after_back else float("inf")
        return figures
    finally:
        api.stop()
        engine.dispose()
        drop_schema(cluster.url, schema)
        shutil.rmtree(home, ignore_errors=True)


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--webhooks", type=int, default=5000, help="requests per burst")
    parser.add_argument("--restart-after", type=int, default=2000, help="answers before the restart")
    parser.add_argument("--modes", nargs="+", default=["fast", "immediate"], choices=["fast", "immediate"])
    parser.add_argument("--timeout", type=float, default=2.0, help="the API's database timeout, seconds")
    args = parser.parse_args()
    print(f"load average before: {', '.join(f'{value:.1f}' for value in os.getloadavg())}", flush=True)
    try:
        cluster = PrivateCluster.create()
    except ClusterUnavailable as exc:
        sys.exit(f"cannot run a private PostgreSQL cluster to restart: {exc}")

    lines: list[str] = []
    bound = args.timeout + LATENCY_MARGIN
    try:
        for number in range(1, args.rounds + 1):
            base = one_burst(cluster, args, None)
            print(f"round {number}, baseline: {base.summary}", flush=True)
            lines.append(
                f"round {number}, no restart (baseline): latency p50 {base.latency(0.5) * 1000:.0f} ms, "
                f"p99 {base.latency(0.99) * 1000:.0f} ms, max {base.latency(1) * 1000:.0f} ms; {base.statuses}; "
                f"ledger problems {len(base.problems)}"
            )
            for mode in args.modes:
                got = one_burst(cluster, args, mode)
                print(f"round {number}, {mode} restart: {got.summary}", flush=True)
                slowest, p99 = got.latency(1), got.latency(0.99)
                lines.append(
                    f"round {number}, {mode} restart: down {got.down:.2f}s; first 2xx sent after the return "
                    f"{got.recovery:.2f}s after it (target <= {RECOVERY_TARGET:g}s: {met(got.recovery <= RECOVERY_TARGET)}); "
                    f"slowest request {slowest:.2f}s = {slowest / base.latency(1):.1f}× the baseline's (target <= "
                    f"{bound:g}s, the timeout + {LATENCY_MARGIN:g}s: {met(slowest <= bound)}); p99 {p99 * 1000:.0f} ms "
                    f"= {p99 / base.latency(0.99):.1f}× the baseline's; {got.statuses}; every 503 with Retry-After: "
                    f"{got.retry_after}; unanswered {got.unanswered}; ledger problems {len(got.problems)}"
                )
    finally:
        cluster.destroy()
    print(f"\n== PostgreSQL restarted mid-burst: {args.webhooks} webhooks, {CONCURRENCY} connections, "
          f"database timeout {args.timeout:g}s ==")  # fmt: skip
    for line in lines:
        print(line)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
