"""Ingest benchmark: the real API (uvicorn, one worker, PostgreSQL) against its own no-database baseline.

Posts a realistic Sonarr ``Download`` body at 32 connections to ``/api/webhooks/sonarr`` and, in the same
run, to ``/api/bench/baseline/sonarr`` (auth, parsing and routing, no database). Prints requests/s,
p50 and p99 for both, and the ratio. Uses wrk when installed, else a Python load generator.

    python bench/ingest.py [--duration 15] [--connections 32] [--database-url URL]
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
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import DEFAULT_POSTGRES_URL, fresh_schema  # noqa: E402
from smartplex.cli.processes import free_port  # noqa: E402

BODY = (ROOT / "tests" / "fixtures" / "webhooks" / "sonarr" / "Download.json").read_text()
SECRET = "bench-secret"


def start_api(database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SMARTPLEX_DATABASE_URL": database_url, "SMARTPLEX_WEBHOOK_SECRET": SECRET,
           "SMARTPLEX_ADMIN_SECRET": SECRET, "SMARTPLEX_BASELINE_ROUTE": "1"}  # fmt: skip
    subprocess.run([sys.executable, "-m", "smartplex", "db", "upgrade"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "webhook_api.app:create_app", "--factory", "--port", str(port),
         "--workers", "1", "--no-access-log", "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("API did not start")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--python", action="store_true", help="use the Python load generator even if wrk exists")
    args = parser.parse_args()

    load = run_wrk if shutil.which("wrk") and not args.python else run_python
    url, schema = (
        fresh_schema(args.database_url) if args.database_url.startswith("postgresql") else (args.database_url, None)
    )
    port = free_port()
    server = start_api(url, port)
    try:
        base = f"http://127.0.0.1:{port}"
        load(f"{base}/api/bench/baseline/sonarr", args.connections, 2)  # warm up
        baseline = load(f"{base}/api/bench/baseline/sonarr", args.connections, args.duration)
        real = load(f"{base}/api/webhooks/sonarr", args.connections, args.duration)
    finally:
        server.terminate()
        server.wait()
    stored = None
    engine = create_engine(url)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM webhook_log")).scalar_one()
        if schema:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            connection.commit()
    engine.dispose()

    print(
        f"load generator: {load.__name__.removeprefix('run_')}, {args.connections} connections, {args.duration}s each"
    )
    for name, r in (("baseline (no database)", baseline), ("webhook -> database", real)):
        print(
            f"{name:24} {r['rps']:9.0f} req/s   p50 {r['p50_ms']:6.2f} ms   p99 {r['p99_ms']:6.2f} ms   non-202 {r['errors']:.0f}"
        )
    ratio = real["rps"] / baseline["rps"]
    print(f"ratio (database / baseline): {ratio:.2f}   target >= 0.50, p99 <= 40 ms")
    print(f"rows stored: {stored} (requests answered 202: {real['requests'] - real['errors']:.0f})")


if __name__ == "__main__":
    main()
