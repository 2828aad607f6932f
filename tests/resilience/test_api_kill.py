"""Kill -9 the API in the middle of a 5,000-webhook burst, then restart it: every 2xx is stored exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.resilience.burst import ApiProcess, Burst, check_ledger, marked_webhooks

TOTAL = 5_000
KILL_AFTER = 2_000  # answers, about 40% of the burst
REFUSED_WHILE_DOWN = 300  # requests that fail on the dead port before the API is started again

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def api(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[ApiProcess]:
    process = ApiProcess(database_url, tmp_path)
    process.start()
    yield process
    process.stop()


@pytest.mark.parametrize(
    "database_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_kill_9_mid_burst_loses_and_duplicates_nothing_acknowledged(api: ApiProcess, engine: Engine) -> None:
    burst = Burst(api.base_url, marked_webhooks(TOTAL), concurrency=32, timeout=30)
    marks: dict[str, int] = {}

    async def kill_then_restart(burst: Burst) -> None:
        await burst.until(lambda b: b.answered >= KILL_AFTER)
        api.kill()  # requests are in flight: some are cut off before or after their commit
        marks["answered before the kill"] = burst.answered
        await burst.until(lambda b: b.unanswered >= REFUSED_WHILE_DOWN)
        burst.pause()
        marks["sent before the restart"] = len(burst.outcomes)
        await asyncio.to_thread(api.start)  # same port
        burst.resume()

    outcomes = asyncio.run(burst.run(kill_then_restart))
    figures, problems = check_ledger(engine, outcomes, f"{burst.summary()}, {marks}")
    print(figures)

    assert len(outcomes) == TOTAL, figures
    after_restart = outcomes[marks["sent before the restart"] + burst.concurrency :]
    assert after_restart and all(o.status == 202 for o in after_restart), f"the restarted API failed: {figures}"
    assert burst.unanswered >= REFUSED_WHILE_DOWN, figures
    assert {o.status for o in outcomes if o.status is not None} == {202}, figures
    assert problems == []
