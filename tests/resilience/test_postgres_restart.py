"""PostgreSQL restarted in the middle of a 5,000-webhook burst: 503s with Retry-After during the outage, no 500s,
every request answered, 2xx again once the server is back and from then on, and every 2xx stored exactly once.

How long requests take during the outage and how soon 2xx come back are measured by
``bench/postgres_restart.py``; here the only time limits are deadlines that catch a hang.
The restarted server is a private cluster (``pg_cluster.py``), never the shared one other tests use.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.requirements import require_or_skip
from tests.resilience.burst import ApiProcess, Burst, check_ledger, marked_webhooks
from tests.resilience.pg_cluster import ClusterUnavailable, PrivateCluster

TOTAL = 5_000
RESTART_AFTER = 2_000  # answers, about 40% of the burst
DB_TIMEOUT = 2.0
#: The last requests of the burst wait for the API to be ready again (if the burst would reach them
#: sooner), so that there are always requests sent after the recovery, which must all get a 202.
LATE = 500
#: The API is ready again (``/readyz``) within this long of the server's return, or it hangs: far above the
#: seconds it takes (bench/postgres_restart.py), so a busy machine never trips it.
RECOVERY_DEADLINE = 60.0

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivateCluster]:
    try:
        cluster = PrivateCluster.create()
    except ClusterUnavailable as exc:
        require_or_skip(f"cannot run a private PostgreSQL cluster to restart: {exc}")
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def postgres_server(private_postgres: PrivateCluster) -> str:
    """The private cluster in place of the shared server: ``database_url`` makes its schemas there."""
    return private_postgres.url


@pytest.fixture
def api(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[ApiProcess]:
    process = ApiProcess(database_url, tmp_path, {"SMARTPLEX_DB_TIMEOUT_SECONDS": str(DB_TIMEOUT)})
    process.start()
    yield process
    process.stop()


async def until_ready(base_url: str, deadline: float) -> None:
    """Poll ``/readyz`` (the API's engine reaches the database) until it answers 200, or fail at ``deadline``."""
    async with httpx.AsyncClient(base_url=base_url, timeout=DB_TIMEOUT + 5) as client:
        while True:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the API was not ready within {RECOVERY_DEADLINE:g}s of the server's return")
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_mid_burst(
    mode: str, private_postgres: PrivateCluster, api: ApiProcess, engine: Engine
) -> None:
    # The client gives up well past the API's own bound: a hang shows up as a request without an answer.
    burst = Burst(api.base_url, marked_webhooks(TOTAL), concurrency=32, timeout=DB_TIMEOUT + 20)
    marks: dict[str, float] = {}

    async def recover() -> None:
        await asyncio.to_thread(private_postgres.restart, mode)
        marks["back"] = back = time.monotonic()  # pg_ctl -w returns once the server accepts connections
        await until_ready(api.base_url, back + RECOVERY_DEADLINE)
        marks["ready"] = time.monotonic()

    async def restart_postgres(burst: Burst) -> None:
        await burst.until(lambda b: b.answered >= RESTART_AFTER)
        marks["restart"] = time.monotonic()
        recovery = asyncio.create_task(recover())
        # The outage's 503s come fast: once no more than LATE requests (and those in flight) are left, the
        # burst waits for the API to be ready again.
        await burst.until(lambda b: recovery.done() or len(b.outcomes) >= TOTAL - LATE - b.concurrency)
        if not recovery.done():
            burst.pause()
            try:
                await recovery
            finally:
                burst.resume()
        await recovery  # its failure, if it failed

    outcomes = asyncio.run(burst.run(restart_postgres))

    unavailable = [o for o in outcomes if o.status == 503]
    # Recovered: the first 2xx of a request sent after the server was back (so its row was committed after
    # the restart); every request sent after that answer must get a 202 (no stale connection turns one
    # into a 503).
    after_back = [o for o in outcomes if o.ok and o.started >= marks["back"]]
    recovered = min((o.finished for o in after_back), default=float("inf"))
    late = [o for o in outcomes if o.started >= recovered]
    late_failures = Counter(str(o.status or o.error) for o in late if o.status != 202)
    figures, problems = check_ledger(
        engine,
        outcomes,
        f"{burst.summary()}; postgres ({mode} restart) down for {marks['back'] - marks['restart']:.2f}s, "
        f"ready {marks['ready'] - marks['back']:.2f}s after it was back, first 2xx sent after it was back "
        f"{recovered - marks['back']:.2f}s after, {len(late)} requests sent after that 2xx",
    )
    print(figures)

    statuses = {o.status for o in outcomes}
    assert statuses <= {202, 503}, f"only 202 and 503 expected: {figures}\n{api.log_tail()}"
    assert burst.unanswered == 0, f"requests without an answer: {figures}"
    assert unavailable, f"the restart was not noticed: {figures}"
    assert all((o.retry_after or "").isdigit() for o in unavailable), f"a 503 without Retry-After: {figures}"
    assert after_back, f"no 2xx for a request sent after the server was back: {figures}"
    assert not late_failures, f"not 202 after the recovery: {dict(late_failures)}; {figures}"
    assert len(late) >= LATE // 2, f"too few requests after the recovery: {figures}"
    assert problems == []
