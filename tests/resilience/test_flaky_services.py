"""Services that fail half their requests, or never answer, under a real ``dagster-daemon``.

Radarr's webhooks start a sensor run; Overseerr's "sync now" starts a scheduled full refresh. Each
request is tried 4 times by the client, each step twice (``RetryPolicy(max_retries=1)``) and each
run twice (``run_retries.max_retries: 1`` in ``dagster.yaml``). Whatever the faults, every run ends,
its outcome lands in ``webhook_log`` and ``sync_schedule`` (the error message with a failure), and
nothing asks for the same batch again. Fault draws are seeded, so each story below is exact.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.utils import make_new_run_id
from sqlalchemy import Engine, select, update

from smartplex import catch_up
from smartplex.dagster_names import RUN_KEY_TAG, WILL_RETRY_TAG
from smartplex.instances import DEFAULT_INSTANCES
from smartplex.schema import catch_up_state, sync_schedule, webhook_log
from smartplex_dagster.defs.resources import DatabaseResource
from smartplex_dagster.defs.settle import FINISHED
from smartplex_simulators.faults import Faults
from tests.dagster.conftest import database  # noqa: F401
from tests.dagster.test_schedules import evaluate
from tests.dagster.test_webhook_sensor import add_rows, fake_run, tick
from tests.helpers import statuses, webhook_rows
from tests.resilience.dagster_stack import DaemonStack, daemon_stack, next_schedule_tick, schedule_row  # noqa: F401

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning"),
]

WEBHOOKS = [("radarr", "MovieAdded")] * 5 + [("radarr", "Download")] * 3
CLIENT_TRIES, STEP_TRIES, RUN_TRIES = 4, 2, 2
SETTLE_SECONDS = 180


def seed_failing_first(failures: int, rate: float = 0.5) -> int:
    """The first seed whose draws fail exactly the first ``failures`` requests at ``rate``, then pass one."""
    for seed in range(100_000):
        draw = random.Random(seed).random
        if all(draw() < rate for _ in range(failures)) and draw() >= rate:
            return seed
    raise AssertionError("no such seed")


class Counted:
    """Wraps a simulator's fault picker to record what each request got (None: served normally)."""

    def __init__(self, faults: Faults) -> None:
        self.picks: list[int | str | None] = []
        self._pick = faults.pick
        faults.pick = self  # type: ignore[method-assign]

    def __call__(self) -> int | str | None:
        fault = self._pick()
        self.picks.append(fault)
        return fault


def _settled(stack: DaemonStack) -> bool:
    rows = webhook_rows(stack.engine)
    return (
        all(r["status"] in ("processed", "failed") for r in rows)
        and schedule_row(stack.engine, "overseerr")["run_count"] == 1
        # A webhook run settles its rows as its step succeeds, a moment before the run itself ends.
        and all(r.status in FINISHED for r in stack.instance.get_runs() if r.tags.get("smartplex/trigger"))
    )


def _story(stack: DaemonStack, run_key: str) -> list[tuple[str, bool, int]]:
    """Each run of a batch, oldest first: (status, retried by Dagster, step retries inside it)."""
    story = []
    for run in reversed(stack.runs_for(run_key)):
        restarts = stack.instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY).records
        story.append((run.status.value, "dagster/parent_run_id" in run.tags, len(restarts)))
    return story


def _sync_runs(stack: DaemonStack) -> list[str]:
    """Runs a sensor or schedule asked for (derived assets' automation runs may come and go)."""
    return sorted(r.run_id for r in stack.instance.get_runs() if r.tags.get("smartplex/trigger"))


@pytest.mark.parametrize(
    "mode",
    [
        "half_fail",  # error_rate 0.5: radarr's first run fails, its retry succeeds; overseerr's step retry succeeds
        "hang",  # timeout_rate 1.0: every request times out; both fail after exactly two runs
    ],
)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_flaky_services_retry_a_bounded_number_of_times_and_record_the_outcome(
    daemon_stack: DaemonStack,  # noqa: F811
    database_url: str,
    mode: str,
) -> None:
    stack = daemon_stack
    faults = stack.sims.simulation.faults
    if mode == "half_fail":
        # Radarr: 8 failures (4 tries x 2 step attempts) fail the first run; the retry's request passes.
        faults["radarr"].update(error_rate=0.5, error_status=503, seed=seed_failing_first(8))
        # Overseerr: 4 failures fail the first step attempt; the step's retry passes.
        faults["overseerr"].update(error_rate=0.5, error_status=503, seed=seed_failing_first(4))
    else:
        stack.setenv("SMARTPLEX_SERVICE_TIMEOUT_SECONDS", "0.5")
        for service in ("radarr", "overseerr"):
            faults[service].update(timeout_rate=1.0, hang_seconds=2.0, seed=1)
    radarr, overseerr = Counted(faults["radarr"]), Counted(faults["overseerr"])

    with stack.engine.begin() as connection:  # only these two syncs: no other full refresh is due
        connection.execute(update(sync_schedule).values(enabled=False, sync_requested_at=None))
        # Nor any catch-up: its polls and health checks would draw from the faults' seeded sequences.
        catch_up.ensure(connection, DEFAULT_INSTANCES)
        connection.execute(update(catch_up_state).values(enabled=False))
        now = datetime.now(UTC)
        connection.execute(  # "sync now", as POST /api/admin/schedules/overseerr/sync does
            update(sync_schedule).where(sync_schedule.c.service == "overseerr").values(sync_requested_at=now)
        )
    add_rows(stack.engine, WEBHOOKS)
    started = time.monotonic()
    stack.start_daemon()
    at = next_schedule_tick(now)
    stack.tick_schedules(now)  # the schedules' state starts now (unless the daemon's scheduler made it first)
    stack.tick_schedules(at)
    refresh_key = schedule_row(stack.engine, "overseerr")["run_key"]
    # "Sync now" is taken by whichever comes first: the schedule's tick, or the daemon's webhook sensor.
    assert refresh_key == f"schedule-overseerr-{at:%Y%m%dT%H%M%S}" or refresh_key.startswith("sync-now-overseerr-")

    stack.wait_for("every outcome", lambda: _settled(stack), SETTLE_SECONDS)
    settled_after = time.monotonic() - started

    rows = webhook_rows(stack.engine)
    (webhook_key,) = {r["run_key"] for r in rows}
    webhook_runs, refresh_runs = stack.runs_for(webhook_key), stack.runs_for(refresh_key)
    last_webhook_run, last_refresh_run = webhook_runs[0], refresh_runs[0]  # newest first
    refresh = schedule_row(stack.engine, "overseerr")
    assert refresh["run_key"] is None and refresh["run_count"] == 1 and refresh["sync_requested_at"] is None
    assert all(r["run_id"] == last_webhook_run.run_id and r["processed_at"] for r in rows)

    # dagster.yaml's run_retries bound every story below: one retry per run.
    assert stack.instance.run_retries_enabled and stack.instance.run_retries_max_retries == RUN_TRIES - 1
    if mode == "half_fail":
        assert radarr.picks == [503] * 8 + [None]
        assert _story(stack, webhook_key) == [("FAILURE", False, 1), ("SUCCESS", True, 0)]
        assert Counter(r["status"] for r in rows) == {"processed": len(WEBHOOKS)}
        assert all(r["error_message"] is None for r in rows)  # the retry's success replaced the failure
        assert overseerr.picks == [503] * 4 + [None]
        assert _story(stack, refresh_key) == [("SUCCESS", False, 1)]
        assert (refresh["last_status"], refresh["last_error"]) == ("success", None)
    else:
        bound = CLIENT_TRIES * STEP_TRIES * RUN_TRIES
        assert radarr.picks == ["hang"] * bound and overseerr.picks == ["hang"] * bound
        for key in (webhook_key, refresh_key):
            assert _story(stack, key) == [("FAILURE", False, 1), ("FAILURE", True, 1)]
        assert last_webhook_run.tags[WILL_RETRY_TAG] == "false" and last_refresh_run.tags[WILL_RETRY_TAG] == "false"
        assert Counter(r["status"] for r in rows) == {"failed": len(WEBHOOKS)}
        for error in [r["error_message"] for r in rows] + [refresh["last_error"]]:
            assert error.startswith("ServiceTimeout:") and "no answer within 0.5s after 4 tries" in error
        assert refresh["last_status"] == "failure"

    # Terminal means terminal: more sensor and schedule ticks ask for nothing, and no run appears.
    runs_before, requests_before = _sync_runs(stack), len(radarr.picks) + len(overseerr.picks)
    settled_at = time.time()
    later_ticks = stack.wait_for(  # the daemon's own sensor ticks, each begun after the outcomes were in
        "3 more webhook_sensor ticks",
        lambda: len(ticks := stack.sensor_ticks("webhook_sensor", after=settled_at)) >= 3 and ticks,
        60,
    )
    assert all(t.status == TickStatus.SKIPPED for t in later_ticks), [(t.status, t.skip_reason) for t in later_ticks]
    product = DatabaseResource(url=database_url)
    for _ in range(3):
        result = tick(stack.instance, product)
        assert isinstance(result, dg.SkipReason) and "no pending webhooks" in result.skip_message
    for later in (at + timedelta(minutes=5), at + timedelta(hours=1)):
        result = evaluate(stack.instance, product, "overseerr", later)
        assert isinstance(result, dg.SkipReason) and "disabled" in result.skip_message
    stack.tick_schedules(at + timedelta(minutes=5))
    assert _sync_runs(stack) == runs_before
    assert len(radarr.picks) + len(overseerr.picks) == requests_before
    print(
        f"{mode}: radarr {len(radarr.picks)} requests over {len(webhook_runs)} runs, overseerr {len(overseerr.picks)} "
        f"over {len(refresh_runs)}; settled {settled_after:.0f}s after the daemon started"
    )
    stack.stop()
    assert stack.left_behind() == []


@pytest.fixture
def retrying() -> Iterator[dg.DagsterInstance]:
    """An instance with run retries on, as ``dagster.yaml`` configures them."""
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 1}}) as instance:
        yield instance


def _end(instance: dg.DagsterInstance, run: dg.DagsterRun, ago: timedelta) -> None:
    """The run failed ``ago`` (stored as Dagster stores a failure, before the will_retry tag)."""
    event = dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_FAILURE.value, job_name=run.job_name)
    instance.run_storage.handle_run_event(run.run_id, event, datetime.now(UTC) - ago)


def _failed_batch(
    instance: dg.DagsterInstance, product: DatabaseResource, engine: Engine, ago: timedelta
) -> tuple[dg.RunRequest, dg.DagsterRun]:
    """Two radarr webhooks, claimed by the sensor; their run failed ``ago``."""
    add_rows(engine, [("radarr", "MovieAdded")] * 2)
    (request,) = tick(instance, product)
    run = fake_run(instance, request.run_key, dg.DagsterRunStatus.STARTED)
    _end(instance, run, ago)
    return request, run


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_failure_waits_for_dagsters_retry_decision_then_for_the_retry(
    retrying: dg.DagsterInstance,
    database: DatabaseResource,  # noqa: F811
    engine: Engine,
) -> None:
    request, run = _failed_batch(retrying, database, engine, timedelta(0))  # Dagster has not tagged it will_retry yet
    add_rows(engine, [("radarr", "Download")], ago=timedelta(seconds=-1))
    for decision in (None, "true"):  # undecided, then "a retry is coming": the batch is still in flight
        if decision:
            retrying.add_run_tags(run.run_id, {WILL_RETRY_TAG: decision})
        waiting = tick(retrying, database)
        assert (
            isinstance(waiting, dg.SkipReason) and "1 webhooks wait for running syncs of radarr" in waiting.skip_message
        )
        assert statuses(engine) == {"dispatched": 2, "pending": 1}

    retry = fake_run(retrying, request.run_key, dg.DagsterRunStatus.SUCCESS)  # Dagster's retry, same key
    (follow_up,) = tick(retrying, database)  # the retry's outcome is recorded; the new webhook gets its run
    assert follow_up.tags["smartplex/webhooks"] == "1"
    with engine.connect() as connection:
        settled = connection.execute(select(webhook_log.c.run_id).where(webhook_log.c.status == "processed")).scalars()
        assert set(settled) == {retry.run_id}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_retry_that_never_comes_holds_the_failure_back_for_a_bounded_time(
    retrying: dg.DagsterInstance,
    database: DatabaseResource,  # noqa: F811
    engine: Engine,
) -> None:
    _, run = _failed_batch(retrying, database, engine, timedelta(minutes=11))
    retrying.add_run_tags(run.run_id, {WILL_RETRY_TAG: "true"})  # ...but no retry was ever created
    assert isinstance(tick(retrying, database), dg.SkipReason)
    assert statuses(engine) == {"failed": 2}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_full_refresh_waiting_for_its_retry_is_not_requested_again(
    retrying: dg.DagsterInstance,
    database: DatabaseResource,  # noqa: F811
    engine: Engine,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as connection:
        connection.execute(update(sync_schedule).where(sync_schedule.c.service == "plex").values(sync_requested_at=now))
    request = evaluate(retrying, database, "plex", now)
    assert isinstance(request, dg.RunRequest)
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
                        tags={RUN_KEY_TAG: request.run_key, "smartplex/trigger": "schedule"})  # fmt: skip
    retrying.add_run(run)
    _end(retrying, run, timedelta(0))
    with engine.begin() as connection:  # another "sync now" while the failed refresh waits for its retry
        connection.execute(update(sync_schedule).where(sync_schedule.c.service == "plex").values(sync_requested_at=now))
    waiting = evaluate(retrying, database, "plex", now + timedelta(minutes=5))
    assert isinstance(waiting, dg.SkipReason) and "Dagster is retrying it" in waiting.skip_message
    assert schedule_row(engine, "plex")["run_key"] == request.run_key  # the retry's outcome will land here
