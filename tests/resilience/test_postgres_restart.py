"""PostgreSQL restarted in the middle of a 5,000-webhook burst: 503s with Retry-After during the outage, no 500s,
no request beyond the timeout, 2xx again within seconds, and every 2xx stored exactly once.

The restarted server is a private cluster (``pg_cluster.py``), never the shared one other tests use.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from smartplex import migrate
from smartplex.db import make_engine
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


@pytest.fixture
def restartable_database(private_postgres: PrivateCluster) -> Iterator[str]:
    """A fresh schema on the private cluster (its own database, so nothing else reads it)."""
    schema = f"sp_test_{uuid.uuid4().hex[:12]}"
    # pool_pre_ping: the connection that created the schema does not survive the restart.
    admin = create_engine(private_postgres.url, pool_pre_ping=True)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield (
            make_url(private_postgres.url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string()
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def engine(restartable_database: str) -> Iterator[Engine]:
    engine = make_engine(restartable_database, timeout=5)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def api(restartable_database: str, engine: Engine, tmp_path: Path) -> Iterator[ApiProcess]:
    process = ApiProcess(restartable_database, tmp_path, {"SMARTPLEX_DB_TIMEOUT_SECONDS": str(DB_TIMEOUT)})
    process.start()
    yield process
    process.stop()


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
        marks["back"] = time.monotonic()  # pg_ctl -w returns once the server accepts connections

    outcomes = asyncio.run(burst.run(restart_postgres))

    unavailable = [o for o in outcomes if o.status == 503]
    after_back = [o for o in outcomes if o.ok and o.finished >= marks["back"]]
    recovery = min(o.finished for o in after_back) - marks["back"] if after_back else float("inf")
    latency = max(o.latency for o in outcomes)
    figures, problems = check_ledger(
        engine,
        outcomes,
        f"{burst.summary()}; postgres ({mode} restart) down for {marks['back'] - marks['restart']:.2f}s, "
        f"first 2xx {recovery:.2f}s after it was back",
    )
    print(figures)

    statuses = {o.status for o in outcomes}
    assert statuses <= {202, 503}, f"only 202 and 503 expected: {figures}\n{api.log_tail()}"
    assert burst.unanswered == 0, f"requests without an answer: {figures}"
    assert unavailable, f"the restart was not noticed: {figures}"
    assert all((o.retry_after or "").isdigit() for o in unavailable), f"a 503 without Retry-After: {figures}"
    assert latency <= DB_TIMEOUT + LATENCY_MARGIN, f"a request took over the timeout: {figures}"
    assert recovery < RECOVERY_LIMIT, f"no 2xx within {RECOVERY_LIMIT:g}s of the restart: {figures}"
    assert problems == []
