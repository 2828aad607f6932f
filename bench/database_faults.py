"""Database faults: how soon the API answers 503 once its database goes away, against its database timeout.

``python bench/database_faults.py`` (``make bench-faults``). The faults of ``tests/api/test_database_faults.py``,
timed: that test checks the answers (503 with Retry-After, then 202 again) and only that a request
answers at all; the figures are here. The app runs in-process (``TestClient``), as in the test, with
``--timeout`` as its database timeout; the PostgreSQL connection goes through ``tests/tcp_proxy.py``,
which the script cuts (connection refused) or stalls (accepts, never answers). Each round times:

- the baseline: a 202 with the database there (median of ``--baseline`` requests);
- PostgreSQL stopped, then hung: the time to a 503 (the slowest of the first three requests after the
  fault: the first may fail at once on the writer's dead connection), then, the proxy restored, to the
  first 202;
- SQLite locked by another connection (``BEGIN EXCLUSIVE``): the same, then released;
- a dead port from the start: the time to a 503.

Target: every 503 within 4× the database timeout. Figures as seconds, as multiples of the timeout,
and as multiples of the baseline of the same run. Prints, never asserts:

    python bench/database_faults.py [--rounds 3] [--timeout 2] [--baseline 20] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")  # as pyproject.toml's pytest

from fastapi.testclient import TestClient  # noqa: E402

from bench._common import DEFAULT_POSTGRES_URL, drop_schema, fresh_schema  # noqa: E402
from smartplex import migrate  # noqa: E402
from smartplex.db import make_engine  # noqa: E402
from tests.conftest import HOOK, load_fixture, make_settings  # noqa: E402
from tests.tcp_proxy import TcpProxy  # noqa: E402
from webhook_api.app import create_app  # noqa: E402

BODY = load_fixture("webhooks", "sonarr", "Download.json")
#: The bound tests/api/test_database_faults.py asserted before it moved here, as a multiple of the timeout.
TARGET = 4.0
#: Requests timed after each fault.
AFTER_FAULT = 3
#: How long the script waits for the API to answer 202 again after a fault.
RECOVERY_DEADLINE = 60.0


def post(client: TestClient) -> tuple[int, float]:
    began = time.perf_counter()
    response = client.post("/api/webhooks/sonarr", json=BODY, headers=HOOK)
    return response.status_code, time.perf_counter() - began


def time_503(client: TestClient, fault: str) -> float:
    """The slowest of the first AFTER_FAULT requests after the fault, each of which must get a 503: the
    first may fail at once on the writer's dead connection, the next ones meet the fault itself."""
    slowest = 0.0
    for _ in range(AFTER_FAULT):
        status, took = post(client)
        if status != 503:
            raise RuntimeError(f"{fault}: expected a 503, got {status}")
        slowest = max(slowest, took)
    return slowest


def until_202(client: TestClient) -> float:
    began = time.perf_counter()
    while post(client)[0] != 202:
        if time.perf_counter() - began > RECOVERY_DEADLINE:
            raise RuntimeError(f"no 202 within {RECOVERY_DEADLINE:g}s")
    return time.perf_counter() - began


def baseline(client: TestClient, requests: int) -> float:
    for _ in range(3):  # warm-up: the pool's first connections, the first statements
        post(client)
    times = []
    for _ in range(requests):
        status, took = post(client)
        if status != 202:
            raise RuntimeError(f"baseline: expected a 202, got {status}")
        times.append(took)
    return statistics.median(times)


@contextmanager
def migrated_postgres(base_url: str) -> Iterator[str]:
    url, schema = fresh_schema(base_url)
    try:
        engine = make_engine(url, timeout=30)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        drop_schema(base_url, schema)


def postgres_round(base_url: str, timeout: float, requests: int, home: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    with migrated_postgres(base_url) as url:
        parsed = make_url(url)
        proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
        proxy.start()
        through_proxy = parsed.set(port=proxy.port).render_as_string(hide_password=False)
        try:
            with TestClient(create_app(make_settings(through_proxy, home, db_timeout_seconds=timeout))) as client:
                figures["PostgreSQL: 202, database there (baseline)"] = baseline(client, requests)
                proxy.stop()
                figures["PostgreSQL stopped: 503"] = time_503(client, "PostgreSQL stopped")
                proxy.start()
                figures["PostgreSQL back: first 202"] = until_202(client)
                proxy.stop()
                proxy.stalled = True
                proxy.start()
                figures["PostgreSQL hung: 503"] = time_503(client, "PostgreSQL hung")
                proxy.stop()
                proxy.stalled = False
                proxy.start()
                figures["PostgreSQL back after the hang: first 202"] = until_202(client)
        finally:
            proxy.stop()  # before the app shuts down, so a request left on a stalled connection ends
    return figures


def sqlite_round(timeout: float, requests: int, home: Path) -> dict[str, float]:
    path = home / "smartplex.db"
    url = f"sqlite:///{path}"
    engine = make_engine(url, timeout=30)
    migrate.upgrade(engine)
    engine.dispose()
    figures: dict[str, float] = {}
    with TestClient(create_app(make_settings(url, home, db_timeout_seconds=timeout))) as client:
        figures["SQLite: 202, database there (baseline)"] = baseline(client, requests)
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            figures["SQLite locked: 503"] = time_503(client, "SQLite locked")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        figures["SQLite released: first 202"] = until_202(client)
    return figures


def dead_port_round(base_url: str, timeout: float, home: Path) -> dict[str, float]:
    dead = make_url(base_url).set(port=1).render_as_string(hide_password=False)
    with TestClient(create_app(make_settings(dead, home, db_timeout_seconds=timeout))) as client:
        return {"PostgreSQL dead port from the start: 503": time_503(client, "dead port")}


def in_home(run: Callable[[Path], dict[str, float]]) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="smartplex-faults-"))
    try:
        return run(home)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=2.0, help="the API's database timeout, seconds")
    parser.add_argument("--baseline", type=int, default=20, help="requests timed for the baseline, per round")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()
    logging.disable(logging.ERROR)  # the faults are on purpose: their warnings and tracebacks are expected
    print(f"load average before: {', '.join(f'{value:.1f}' for value in os.getloadavg())}", flush=True)

    results: dict[str, list[float]] = {}
    for number in range(1, args.rounds + 1):
        figures = {
            **in_home(lambda home: postgres_round(args.postgres_url, args.timeout, args.baseline, home)),
            **in_home(lambda home: sqlite_round(args.timeout, args.baseline, home)),
            **in_home(lambda home: dead_port_round(args.postgres_url, args.timeout, home)),
        }
        print(f"round {number}: " + "; ".join(f"{name} {value:.3f}s" for name, value in figures.items()), flush=True)
        for name, value in figures.items():
            results.setdefault(name, []).append(value)

    bound = TARGET * args.timeout
    print(f"\n== database faults: {args.rounds} round(s), database timeout {args.timeout:g}s ==")
    for name, values in results.items():
        median, worst = statistics.median(values), max(values)
        if "(baseline)" in name:
            print(f"{name}: median {median * 1000:.1f} ms, max {worst * 1000:.1f} ms")
            continue
        engine = "SQLite" if name.startswith("SQLite") else "PostgreSQL"
        base = statistics.median(results[f"{engine}: 202, database there (baseline)"])
        line = (
            f"{name}: median {median:.3f}s, max {worst:.3f}s = {worst / args.timeout:.2f}× the timeout, "
            f"{worst / base:,.0f}× the {engine} baseline"
        )
        if name.endswith(": 503"):
            line += f"; target <= {bound:g}s ({TARGET:g}× the timeout): {'met' if worst <= bound else 'NOT met'}"
        print(line)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
