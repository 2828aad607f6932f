"""PostgreSQL restarted in the middle of a 5,000-webhook burst: 503s with Retry-After during the outage, no 500s,
no request beyond the timeout, 2xx again within seconds, and every 2xx stored exactly once.

The restarted server is a private cluster (``pg_cluster.py``), never the shared one other tests use.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.conftest import REQUIRE_POSTGRES
from tests.resilience.burst import ApiProcess, Burst, check_ledger, marked_webhooks
from tests.resilience.pg_cluster import ClusterUnavailable, PrivateCluster

TOTAL = 5_000
RESTART_AFTER = 2_000  # answers, about 40% of the burst
DB_TIMEOUT = 2.0
#: Slack over the database timeout for a request's whole round trip (client and server queueing included)
#: on a busy, shared machine.
LATENCY_MARGIN = 5.0
RECOVERY_LIMIT = 15.0
#: Requests held back until RECOVERY_LIMIT after the restart, if the burst would have ended sooner.
LATE = 500

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivateCluster]:
    try:
        cluster = PrivateCluster.create()
    except ClusterUnavailable as exc:
        message = f"cannot run a private PostgreSQL cluster to restart: {exc}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
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


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_mid_burst(
    mode: str, private_postgres: PrivateCluster, api: ApiProcess, engine: Engine
) -> None:
    # The client gives up well past the API's own bound, so a hang shows up as a latency, not a stuck test.
    burst = Burst(api.base_url, marked_webhooks(TOTAL), concurrency=32, timeout=DB_TIMEOUT + 20)
    marks: dict[str, float] = {}

    async def restart_postgres(burst: Burst) -> None:
        await burst.until(lambda b: b.answered >= RESTART_AFTER)
        marks["restart"] = time.monotonic()
        await asyncio.to_thread(private_postgres.restart, mode)
        marks["back"] = back = time.monotonic()  # pg_ctl -w returns once the server accepts connections
        # Once the API has recovered, the last requests wait until the recovery limit has passed (if the
        # burst would be over by then), so there are always requests that must all get a 202.
        await burst.until(
            lambda b: (
                (b.answered >= TOTAL - LATE and any(o.ok and o.finished >= back for o in b.outcomes[-64:]))
                or time.monotonic() >= back + RECOVERY_LIMIT
            )
        )
        if time.monotonic() < back + RECOVERY_LIMIT:
            burst.pause()
            await asyncio.sleep(back + RECOVERY_LIMIT - time.monotonic())
            burst.resume()

    outcomes = asyncio.run(burst.run(restart_postgres))

    unavailable = [o for o in outcomes if o.status == 503]
    after_back = [o for o in outcomes if o.ok and o.finished >= marks["back"]]
    recovery = min(o.finished for o in after_back) - marks["back"] if after_back else float("inf")
    late = [o for o in outcomes if o.started >= marks["back"] + RECOVERY_LIMIT]
    late_failures = Counter(str(o.status or o.error) for o in late if o.status != 202)
    latency = max(o.latency for o in outcomes)
    figures, problems = check_ledger(
        engine,
        outcomes,
        f"{burst.summary()}; postgres ({mode} restart) down for {marks['back'] - marks['restart']:.2f}s, "
        f"first 2xx {recovery:.2f}s after it was back, {len(late)} requests from {RECOVERY_LIMIT:g}s after",
    )
    print(figures)

    statuses = {o.status for o in outcomes}
    assert statuses <= {202, 503}, f"only 202 and 503 expected: {figures}\n{api.log_tail()}"
    assert burst.unanswered == 0, f"requests without an answer: {figures}"
    assert unavailable, f"the restart was not noticed: {figures}"
    assert all((o.retry_after or "").isdigit() for o in unavailable), f"a 503 without Retry-After: {figures}"
    assert latency <= DB_TIMEOUT + LATENCY_MARGIN, f"a request took over the timeout: {figures}"
    assert recovery < RECOVERY_LIMIT, f"no 2xx within {RECOVERY_LIMIT:g}s of the restart: {figures}"
    # Recovered for good: no stale pooled connection turns a later request into a 503.
    assert not late_failures, f"not 202 after the recovery limit: {dict(late_failures)}; {figures}"
    assert len(late) >= LATE // 2, f"too few requests after the recovery limit: {figures}"
    assert problems == []
