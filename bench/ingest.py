"""Ingest benchmark: the real API (uvicorn, one worker, PostgreSQL) against two baselines in the same run.

Posts a realistic Sonarr ``Download`` body at 32 connections to:

- a bare FastAPI app (``bench/bare_app.py``: parse the JSON, answer 202; no auth, no database, no
  access log), run by uvicorn the same way: the framework's own rate, the floor;
- ``/api/bench/baseline/sonarr`` on the API: its middleware, auth, parsing, metrics and access log,
  no database;
- ``/api/webhooks/sonarr``: the same, and the row committed before the 202.

The API runs as shipped (``smartplex api``: uvicorn, one worker, the redacted access log, written to a
file). Prints requests/s, p50 and p99 of each, and the ratios against the bare app. Uses wrk when
installed, else a Python load generator.

    python bench/ingest.py [--duration 15] [--connections 32] [--rounds 1] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import DEFAULT_POSTGRES_URL, fresh_schema  # noqa: E402
from smartplex_cli.supervisor import free_port  # noqa: E402

BODY = (ROOT / "tests" / "fixtures" / "webhooks" / "sonarr" / "Download.json").read_text()
SECRET = "bench-secret"


def start_api(database_url: str, port: int, access_log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SMARTPLEX_DATABASE_URL": database_url, "SMARTPLEX_WEBHOOK_SECRET": SECRET,
           "SMARTPLEX_ADMIN_SECRET": SECRET, "SMARTPLEX_BASELINE_ROUTE": "1"}  # fmt: skip
    subprocess.run([sys.executable, "-m", "smartplex_cli", "db", "upgrade"], env=env, check=True, capture_output=True)
    with access_log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "smartplex_cli", "api", "--port", str(port)], env=env, stdout=sink, stderr=sink
        )
    return _ready(server, f"http://127.0.0.1:{port}/readyz")


def start_bare(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--app-dir", str(ROOT), "--port", str(port),
         "--workers", "1", "--no-access-log", "--log-level", "warning"],
    )  # fmt: skip
    return _ready(server, f"http://127.0.0.1:{port}/openapi.json")


def _ready(server: subprocess.Popen[bytes], url: str) -> subprocess.Popen[bytes]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"{url} did not answer")


def run_wrk(url: str, connections: int, duration: int) -> dict[str, float]:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(BODY)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {SECRET}"\n'
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration,'
        " latency:percentile(50), latency:percentile(99), summary.errors.status))\n"
        "end\n"
    )
    threads = min(2, connections)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    assert match, out
    requests, micros, p50, p99, bad_status = map(int, match.groups())
    return {"rps": requests / (micros / 1e6), "p50_ms": p50 / 1000, "p99_ms": p99 / 1000, "errors": bad_status,
            "requests": requests}  # fmt: skip


def run_python(url: str, connections: int, duration: int) -> dict[str, float]:
    async def main() -> dict[str, float]:
        latencies: list[float] = []
        errors = 0
        stop = time.perf_counter() + duration
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {SECRET}"}
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=connections)) as client:

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < stop:
                    started = time.perf_counter()
                    response = await client.post(url, content=BODY, headers=headers)
                    latencies.append(time.perf_counter() - started)
                    errors += response.status_code != 202

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - began
        quantiles = statistics.quantiles(latencies, n=100)
        return {"rps": len(latencies) / elapsed, "p50_ms": quantiles[49] * 1000, "p99_ms": quantiles[98] * 1000,
                "errors": errors, "requests": len(latencies)}  # fmt: skip

    return asyncio.run(main())


def measure(
    load: Callable[[str, int, int], dict[str, float]], url: str, connections: int, duration: int, server: int
) -> dict[str, float]:
    """``load``'s figures, and the CPU time the server process spent per request meanwhile: a figure
    that other load on the machine disturbs far less than the rate."""
    process = psutil.Process(server)
    before = process.cpu_times()
    result = load(url, connections, duration)
    after = process.cpu_times()
    spent = (after.user - before.user) + (after.system - before.system)
    return result | {"cpu_us": spent / max(result["requests"], 1) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="measure the three paths this many times, in turn")
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--python", action="store_true", help="use the Python load generator even if wrk exists")
    args = parser.parse_args()

    load = run_wrk if shutil.which("wrk") and not args.python else run_python
    url, schema = (
        fresh_schema(args.database_url) if args.database_url.startswith("postgresql") else (args.database_url, None)
    )
    bare_port, api_port = free_port(), free_port()
    access_log = Path(tempfile.mkdtemp()) / "api.log"
    targets = {
        "bare FastAPI app": f"http://127.0.0.1:{bare_port}/api/webhooks/sonarr",
        "route, no database": f"http://127.0.0.1:{api_port}/api/bench/baseline/sonarr",
        "route -> database": f"http://127.0.0.1:{api_port}/api/webhooks/sonarr",
    }
    bare = start_bare(bare_port)
    try:
        api = start_api(url, api_port, access_log)
        try:
            for target in targets.values():  # warm up
                load(target, args.connections, 2)
            servers = {"bare FastAPI app": bare.pid}
            rounds = [
                {
                    name: measure(load, target, args.connections, args.duration, servers.get(name, api.pid))
                    for name, target in targets.items()
                }
                for _ in range(args.rounds)
            ]
        finally:
            api.terminate()
            api.wait()
    finally:
        bare.terminate()
        bare.wait()
    engine = create_engine(url)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM webhook_log")).scalar_one()
        if schema:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            connection.commit()
    engine.dispose()
    logged = sum(1 for line in access_log.open(errors="replace") if '"POST /api/' in line)
    shutil.rmtree(access_log.parent)

    print(f"load generator: {load.__name__.removeprefix('run_')}, {args.connections} connections, "
          f"{args.duration}s each, {args.rounds} round(s); load average at the end {os.getloadavg()[0]:.1f}")  # fmt: skip
    for number, results in enumerate(rounds, 1):
        floor = results["bare FastAPI app"]["rps"]
        for name, r in results.items():
            print(
                f"{number}. {name:20} {r['rps']:7.0f} req/s  {r['rps'] / floor:4.2f}x bare   "
                f"p50 {r['p50_ms']:6.2f} ms   p99 {r['p99_ms']:6.2f} ms   "
                f"server CPU {r['cpu_us']:4.0f} us/request   non-202 {r['errors']:.0f}"
            )
    print("target: route -> database >= 0.50x the bare app, p99 <= 25 ms")
    answered = sum(r["route -> database"]["requests"] - r["route -> database"]["errors"] for r in rounds)
    print(f"rows stored: {stored} (202 answers from the database route, warm-up excluded: {answered:.0f}); "
          f"access log lines for POSTs: {logged}")  # fmt: skip


if __name__ == "__main__":
    main()
