"""The stack stopped (Ctrl-C, SIGTERM) or crashed, then started again: no run stays in flight without a process.

Runs the stack's own start and stop (``start_stack``, ``stop_stack``) with a real daemon and API. A run
left ``STARTED`` or ``CANCELING`` with no process, killed before its sync recorded its worker (so the
reconciling passes never judge it), is canceled at the next start before the daemon runs; its pool
slot is freed and its webhooks go back to pending, not failed, and are synced by a new run. A clean
stop does the same for the runs it interrupts.
"""

from __future__ import annotations

import subprocess

import click
import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.utils import make_new_run_id
from sqlalchemy import Engine, update

from smartplex import webhook_queue
from smartplex.column_types import utcnow
from smartplex.dagster_names import RUN_KEY_TAG, TRIGGER_TAG, instance_tags, pool
from smartplex.instances import Instance
from smartplex.schema import sync_schedule
from smartplex_cli.stack import RESTART_MESSAGE, STOP_MESSAGE, start_stack, stop_stack
from smartplex_cli.supervisor import Supervisor, free_port
from smartplex_dagster.defs.settle import FINISHED
from smartplex_dagster.runtime.orphans import STOPPED_TAG
from tests.dagster.test_webhook_sensor import add_rows
from tests.helpers import webhook_rows
from tests.resilience.dagster_stack import DaemonStack, daemon_stack, schedule_row  # noqa: F401

pytestmark = [
    pytest.mark.timeout(420),
    pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning"),
]
SETTLE_SECONDS = 180
IN_FLIGHT = (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING)


def _no_schedules(engine: Engine) -> None:
    """Only webhook runs: no full refresh is due meanwhile."""
    with engine.begin() as connection:
        connection.execute(update(sync_schedule).values(enabled=False, sync_requested_at=None))


def _claim(engine: Engine, service: str) -> str:
    """Claim the service's pending rows, as the webhook sensor does; return the run key."""
    with engine.begin() as connection:
        (group,) = [g for g in webhook_queue.pending_groups(connection) if g.instance.id == service]
        webhook_queue.claim(connection, group, utcnow())
    return group.run_key


def _run_left_behind(instance: dg.DagsterInstance, run_key: str, service: str, trigger: str) -> dg.DagsterRun:
    """A run as a stop left it: created under the sensor's (or schedule's) run key, and started."""
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
                        tags={RUN_KEY_TAG: run_key, TRIGGER_TAG: trigger, **instance_tags(Instance.parse(service))})  # fmt: skip
    instance.add_run(run)
    return run


def _slot_holders(instance: dg.DagsterInstance, service: str) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(pool(Instance.parse(service)))
    return {slot.run_id for slot in info.claimed_slots} | {step.run_id for step in info.pending_steps}


def _ended_well(stack: DaemonStack, run_id: str) -> None:
    """A webhook run settles its rows as its step succeeds, a moment before the run itself ends."""

    def status() -> dg.DagsterRunStatus:
        return stack.instance.get_run_by_id(run_id).status  # type: ignore[union-attr]

    stack.wait_for(f"run {run_id} ended", lambda: status() in FINISHED, 60)
    assert status() == dg.DagsterRunStatus.SUCCESS


def _canceled_with(instance: dg.DagsterInstance, run_id: str, message: str) -> bool:
    """Canceled (not failed, which Dagster would retry), saying why, and marked as the stack's doing."""
    run = instance.get_run_by_id(run_id)
    kinds = {dg.DagsterEventType.RUN_CANCELING, dg.DagsterEventType.RUN_CANCELED}
    records = instance.get_records_for_run(run_id, of_type=kinds).records
    return (
        run is not None
        and run.status == dg.DagsterRunStatus.CANCELED
        and run.tags.get(STOPPED_TAG) == "true"
        and any(r.event_log_entry.message == message for r in records)
    )


def _start(stack: DaemonStack) -> None:
    start_stack(stack.supervisor, stack.env, api_port=free_port(), dagster_port=None, log_dir=stack.log_dir)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_restart_cancels_runs_left_without_a_process_and_syncs_their_webhooks(
    daemon_stack: DaemonStack,  # noqa: F811
) -> None:
    stack = daemon_stack
    instance = stack.instance
    _no_schedules(stack.engine)
    add_rows(stack.engine, [("radarr", "MovieAdded")] * 3 + [("overseerr", "MEDIA_APPROVED")] * 2)

    # Radarr: killed during resource initialisation, after its worker reported its pid, before its sync
    # tagged the run with its worker; its step holds the pool slot.
    gone = subprocess.Popen(["true"])
    gone.wait()
    radarr = _run_left_behind(instance, _claim(stack.engine, "radarr"), "radarr", "webhook")
    instance.report_engine_event(
        f"Started process for run (pid: {gone.pid}).", radarr, EngineEventData.in_process(gone.pid)
    )
    instance.event_log_storage.claim_concurrency_slot(pool(Instance.parse("radarr")), radarr.run_id, "radarr__movies")
    assert _slot_holders(instance, "radarr") == {radarr.run_id}
    # Overseerr: terminated from the UI, whose request could reach no process: left CANCELING.
    overseerr = _run_left_behind(instance, _claim(stack.engine, "overseerr"), "overseerr", "webhook")
    instance.report_run_canceling(overseerr)
    # Plex: a full refresh, left STARTED.
    with stack.engine.begin() as connection:
        connection.execute(
            update(sync_schedule).where(sync_schedule.c.service == "plex").values(run_key="schedule-plex-x")
        )
    plex = _run_left_behind(instance, "schedule-plex-x", "plex", "schedule")
    assert instance.get_run_by_id(overseerr.run_id).status == dg.DagsterRunStatus.CANCELING  # type: ignore[union-attr]

    _start(stack)
    stack.wait_for("the webhooks synced", lambda: stack.statuses() == {"processed": 5}, SETTLE_SECONDS)

    for left in (radarr, overseerr, plex):
        assert _canceled_with(instance, left.run_id, RESTART_MESSAGE), instance.get_run_by_id(left.run_id)
    assert _slot_holders(instance, "radarr") == set()
    rows = webhook_rows(stack.engine)
    assert {r["attempt"] for r in rows} == {1}  # back to pending once, never failed
    assert not {r["run_id"] for r in rows} & {radarr.run_id, overseerr.run_id}
    for run_id in {r["run_id"] for r in rows}:
        _ended_well(stack, run_id)
    refresh = schedule_row(stack.engine, "plex")
    sync_now = [r for r in instance.get_runs() if r.tags.get(RUN_KEY_TAG, "").startswith("sync-now-plex-")]
    # Asked for again: pending, already started by the webhook sensor as a "sync now", or done since.
    assert (
        (refresh["run_key"] is None and refresh["sync_requested_at"] is not None)
        or (refresh["run_key"] or "").startswith("sync-now-plex-")
        or (sync_now and refresh["run_key"] is None and refresh["last_status"] == "success")
    ), refresh
    # The canceled refresh is not recorded as a failure; only the "sync now" that replaced it may be recorded.
    assert refresh["last_status"] in (None, "success"), refresh
    assert refresh["run_count"] == (1 if refresh["last_status"] == "success" and sync_now else 0), refresh

    stack.stop()
    assert stack.left_behind() == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_stop_cancels_the_runs_it_interrupts_and_gives_their_webhooks_back(
    daemon_stack: DaemonStack,  # noqa: F811
) -> None:
    stack = daemon_stack
    instance = stack.instance
    _no_schedules(stack.engine)
    stack.sims.simulation.faults["radarr"].update(latency=10.0)  # the sync is mid-request at the stop
    add_rows(stack.engine, [("radarr", "MovieAdded")] * 4)
    _start(stack)

    def mid_sync() -> list[dg.DagsterRun]:
        runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        step = dg.DagsterEventType.STEP_START
        return [r for r in runs if instance.get_records_for_run(r.run_id, of_type=step).records]

    (interrupted,) = stack.wait_for("a Radarr sync in its step", mid_sync, 120, interval=0.2)
    stop_stack(stack.supervisor, stack.env)

    assert _canceled_with(instance, interrupted.run_id, STOP_MESSAGE), (
        instance.get_run_by_id(interrupted.run_id).status,  # type: ignore[union-attr]
        [r.event_log_entry.message for r in instance.get_records_for_run(interrupted.run_id).records][-8:],
    )
    assert not instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_FLIGHT)))
    assert _slot_holders(instance, "radarr") == set()
    rows = webhook_rows(stack.engine)
    assert [(r["status"], r["attempt"]) for r in rows] == [("pending", 1)] * 4
    assert stack.left_behind() == []

    stack.sims.simulation.faults["radarr"].update(latency=0.0)
    _start(stack)
    stack.wait_for("the webhooks synced", lambda: stack.statuses() == {"processed": 4}, SETTLE_SECONDS)
    (run_id,) = {r["run_id"] for r in webhook_rows(stack.engine)}
    _ended_well(stack, run_id)

    stack.stop()
    assert stack.left_behind() == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_start_refuses_while_a_daemon_already_runs_on_the_instance(daemon_stack: DaemonStack) -> None:  # noqa: F811
    stack = daemon_stack
    stack.start_daemon()  # an earlier stack's daemon, still running
    stack.wait_for("the daemon running", lambda: stack.family(), 60)
    with pytest.raises(click.ClickException, match="a dagster-daemon already runs on"):
        start_stack(Supervisor(), stack.env, api_port=free_port(), dagster_port=None, log_dir=stack.log_dir)
    stack.stop()
    assert stack.left_behind() == []
