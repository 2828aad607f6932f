"""``dagster-daemon`` killed with SIGKILL, then started again.

Killed the moment it dispatches webhooks: every row must end processed, and no batch may run twice.
Each run key the sensor claimed rows under has exactly one run, whether the daemon died before
creating it (the reconciler asks for it again under the same key, or Dagster resumes the interrupted
tick) or after (Dagster skips a key it has seen, and launches a run it had created but not queued).

Killed with its runs half-way through (a power cut): the runs' workers are gone, so the reconciling
passes fail those runs, free their pool slots, and Dagster's one run retry syncs the batch again.
"""

import subprocess
import time
from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from sqlalchemy import Engine, select, update

from smartplex.schema import sync_schedule, webhook_log
from smartplex_dagster.defs.resources import DatabaseResource
from smartplex_dagster.defs.settle import FINISHED
from smartplex_dagster.runtime.orphans import WORKER_TAG, identify, worker_tag
from tests.dagster.conftest import database, instance  # noqa: F401
from tests.dagster.test_webhook_sensor import add_rows, fake_run, tick
from tests.helpers import statuses, webhook_rows
from tests.resilience.dagster_stack import DaemonStack, daemon_stack, next_schedule_tick, schedule_row  # noqa: F401

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning"),
]

#: Three libraries, so one sensor tick claims rows for several runs at once.
BURST = [("sonarr", "Download")] * 40 + [("radarr", "MovieAdded")] * 40 + [("overseerr", "MEDIA_APPROVED")] * 40
#: Webhooks that arrive while the daemon is down: they wait as pending, then get a run of their own.
WHILE_DOWN = [("tautulli", "watched")] * 20
SETTLE_SECONDS = 180
#: How long the daemon may take to claim rows while its run storage is held. The run it then creates waits
#: for the lock (SQLite gives up after 5 s), and is killed waiting; a write before the claim (a heartbeat)
#: may wait those 5 s and fail first, which the daemon logs and survives.
CLAIM_SECONDS = 12


def _claimed(stack: DaemonStack) -> int:
    return stack.statuses().get("dispatched", 0)


def _webhook_runs(stack: DaemonStack) -> list[dg.DagsterRun]:
    return [r for r in stack.instance.get_runs() if r.tags.get("smartplex/trigger") == "webhook"]


@pytest.mark.parametrize(
    ("database_url", "moment"),
    [
        ("sqlite", "claimed"),  # rows marked dispatched: the sensor's tick has not created its runs yet
        ("postgresql", "launching"),  # the first run exists: created, queued or being launched
    ],
    indirect=["database_url"],
)
def test_killing_the_daemon_mid_dispatch_loses_nothing_and_runs_each_batch_once(
    daemon_stack: DaemonStack,  # noqa: F811
    moment: str,
) -> None:
    stack = daemon_stack
    with stack.engine.begin() as connection:  # only webhook runs: no full refresh is due meanwhile
        connection.execute(update(sync_schedule).values(enabled=False, sync_requested_at=None))
    started = time.monotonic()
    stack.start_daemon()

    if moment == "claimed":
        # Between the claim and the runs: the sensor claims, the daemon blocks creating their runs.
        stack.wait_for("a first webhook_sensor tick", lambda: stack.sensor_ticks("webhook_sensor"), 120)
        with stack.runs_held():
            add_rows(stack.engine, BURST)
            claimed = stack.wait_for("claimed rows", lambda: _claimed(stack), CLAIM_SECONDS, interval=0.02)
            killed = stack.kill_daemon()
            at_kill = _webhook_runs(stack)
        assert at_kill == [], f"runs were created before the kill: {[r.status.value for r in at_kill]}"
    else:
        add_rows(stack.engine, BURST)
        claimed = stack.wait_for("claimed rows", lambda: _claimed(stack), 120, interval=0.02)
        stack.wait_for("a run", lambda: _webhook_runs(stack), 120, interval=0.02)
        killed = stack.kill_daemon()
        at_kill = _webhook_runs(stack)
        assert at_kill, "no run at the kill"
    assert any("dagster-daemon run" in k for k in killed) and any("dagster api grpc" in k for k in killed), killed
    runs = sorted(r.status.value for r in at_kill)
    print(f"SIGKILL {time.monotonic() - started:.1f}s after start: {claimed} rows claimed, runs {runs}")

    add_rows(stack.engine, WHILE_DOWN)
    stack.start_daemon()
    stack.wait_for("every row settled", lambda: not stack.statuses().keys() & {"pending", "dispatched"}, SETTLE_SECONDS)
    settled_after = time.monotonic() - started
    # A webhook run settles its rows as its step succeeds, a moment before the run itself ends.
    stack.wait_for(
        "every run ended",
        lambda: all(r.status in FINISHED for r in stack.instance.get_runs() if r.tags.get("smartplex/trigger")),
        SETTLE_SECONDS,
    )

    rows = webhook_rows(stack.engine)
    assert len(rows) == len(BURST) + len(WHILE_DOWN)
    assert Counter(r["status"] for r in rows) == {"processed": len(rows)}
    assert all(r["processed_at"] and r["run_id"] and r["error_message"] is None for r in rows)

    run_ids_by_key: dict[str, set[str]] = {}
    for row in rows:
        run_ids_by_key.setdefault(row["run_key"], set()).add(row["run_id"])
    for key, run_ids in run_ids_by_key.items():
        runs = stack.runs_for(key)
        assert len(runs) == 1, f"batch {key} ran {len(runs)} times: {[(r.run_id, r.status.value) for r in runs]}"
        assert runs[0].status == dg.DagsterRunStatus.SUCCESS and run_ids == {runs[0].run_id}
    # No run under a key that no row carries (a claim lost after its run was launched).
    assert sorted(r.tags["dagster/run_key"] for r in _webhook_runs(stack)) == sorted(run_ids_by_key)
    print(f"{len(rows)} rows, {len(run_ids_by_key)} batches, one run each; settled {settled_after:.0f}s after start")

    stack.stop()
    assert stack.left_behind() == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_runs_killed_with_the_daemon_are_failed_and_retried(daemon_stack: DaemonStack) -> None:  # noqa: F811
    stack = daemon_stack
    faults = stack.sims.simulation.faults
    for service in ("radarr", "overseerr"):
        faults[service].update(latency=10.0)  # slow answers: both syncs are mid-request when the power goes
    now = datetime.now(UTC)
    with stack.engine.begin() as connection:
        connection.execute(update(sync_schedule).values(enabled=False, sync_requested_at=None))
        connection.execute(
            update(sync_schedule).where(sync_schedule.c.service == "overseerr").values(sync_requested_at=now)
        )
    add_rows(stack.engine, [("radarr", "MovieAdded")] * 10)
    started = time.monotonic()
    stack.start_daemon()
    at = next_schedule_tick(now)
    stack.tick_schedules(now)
    stack.tick_schedules(at)  # the full refresh "sync now" asks for

    def both_mid_step() -> bool:
        runs = [r for r in stack.instance.get_runs() if r.status == dg.DagsterRunStatus.STARTED]
        steps = [
            stack.instance.get_records_for_run(r.run_id, of_type=dg.DagsterEventType.STEP_START).records for r in runs
        ]
        # Mid-sync: the step started and the sync recorded its worker (a run killed in the moment between
        # the two carries no record, and is left to Dagster's run monitoring; see smartplex_dagster/runtime/orphans.py).
        return len(runs) == 2 and all(steps) and all(WORKER_TAG in r.tags for r in runs)

    stack.wait_for("both syncs mid-step", both_mid_step, 120, interval=0.2)
    killed = stack.kill_daemon(runs=True)
    # The two run workers (both syncs run their step in the run's own process).
    assert sum("multiprocessing.spawn" in k for k in killed) >= 2, killed
    for service in ("radarr", "overseerr"):
        faults[service].update(latency=0.0)
    stack.start_daemon()  # a restart after the power came back

    refresh_key = schedule_row(stack.engine, "overseerr")["run_key"]
    stack.wait_for(
        "the rows and the refresh settled",
        lambda: stack.statuses() == {"processed": 10} and schedule_row(stack.engine, "overseerr")["run_count"] == 1,
        SETTLE_SECONDS,
    )
    settled_after = time.monotonic() - started
    rows = webhook_rows(stack.engine)
    (webhook_key,) = {r["run_key"] for r in rows}
    for key in (webhook_key, refresh_key):
        retry, dead = stack.runs_for(key)  # newest first
        assert dead.status == dg.DagsterRunStatus.FAILURE and "dagster/parent_run_id" not in dead.tags
        failure = stack.instance.get_records_for_run(dead.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
        assert "is gone: it was killed, or its machine restarted" in failure[0].event_log_entry.message
        assert retry.status == dg.DagsterRunStatus.SUCCESS and retry.tags["dagster/parent_run_id"] == dead.run_id
    assert {r["run_id"] for r in rows} == {stack.runs_for(webhook_key)[0].run_id}
    refresh = schedule_row(stack.engine, "overseerr")
    assert (refresh["last_status"], refresh["last_error"], refresh["run_key"]) == ("success", None, None)
    print(f"two runs killed mid-step, failed, retried; settled {settled_after:.0f}s after the first start")

    stack.stop()
    assert stack.left_behind() == []


def _report_worker(dagster: dg.DagsterInstance, run: dg.DagsterRun, pid: int) -> None:
    """What a run worker reports as it starts (the default run launcher's workers all do), and the identity
    its sync records (``record_worker``, from inside the run)."""
    dagster.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    identity = identify(run.run_id, pid)
    assert identity is not None
    dagster.add_run_tags(run.run_id, worker_tag(identity))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_reconciler_fails_a_run_only_when_its_worker_is_gone(
    instance: dg.DagsterInstance,  # noqa: F811
    database: DatabaseResource,  # noqa: F811
    engine: Engine,
) -> None:
    add_rows(engine, [("radarr", "MovieAdded")] * 2)
    (request,) = tick(instance, database)
    run = fake_run(instance, request.run_key, dg.DagsterRunStatus.STARTED)
    worker = subprocess.Popen(["sleep", "60"])
    try:
        _report_worker(instance, run, worker.pid)
        assert isinstance(tick(instance, database), dg.SkipReason)  # alive: still running, rows wait
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        assert statuses(engine) == {"dispatched": 2}
    finally:
        worker.kill()
        worker.wait()
    assert isinstance(tick(instance, database), dg.SkipReason)  # gone: failed, and the rows with it
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    with engine.connect() as connection:
        errors = set(connection.execute(select(webhook_log.c.error_message)).scalars())
    (error,) = errors
    assert statuses(engine) == {"failed": 2} and f"pid {worker.pid}" in error and "is gone" in error
