"""A run is failed as orphaned only when the worker it recorded is, beyond doubt, gone."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.utils import make_new_run_id
from sqlalchemy import Engine

from smartplex import webhook_queue
from smartplex.column_types import utcnow
from smartplex_dagster.runtime.orphans import (
    STOPPED_TAG,
    WORKER_TAG,
    _here,
    _stat,
    end_abandoned_runs,
    fail_if_orphaned,
    mark_stopping,
    may_be_running,
    record_worker,
    worker_identity,
    worker_is_gone,
)
from tests.dagster.test_webhook_sensor import add_rows
from tests.helpers import statuses

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(["sleep", "30"])
    yield process
    process.kill()
    process.wait()


def started_run(instance: dg.DagsterInstance, **worker: object) -> dg.DagsterRun:
    run_id = make_new_run_id()
    tags = {WORKER_TAG: json.dumps({"run": run_id, **worker})} if worker else {}
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=run_id, status=dg.DagsterRunStatus.STARTED, tags=tags)
    instance.add_run(run)
    return run


def identity(pid: int) -> dict:
    stat = _stat(pid)
    assert stat is not None
    return {**_here(), "pid": pid, "start": stat[1]}


def test_a_live_worker_is_not_gone(instance: dg.DagsterInstance, sleeper: subprocess.Popen) -> None:
    run = started_run(instance, **identity(sleeper.pid))
    assert not worker_is_gone(run)
    assert fail_if_orphaned(instance, run).status == dg.DagsterRunStatus.STARTED


def test_a_dead_worker_is_gone_and_its_run_failed(instance: dg.DagsterInstance, sleeper: subprocess.Popen) -> None:
    run = started_run(instance, **identity(sleeper.pid))
    sleeper.kill()
    sleeper.wait()
    assert worker_is_gone(run)
    failed = fail_if_orphaned(instance, run)
    assert failed.status == dg.DagsterRunStatus.FAILURE
    (record,) = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    assert f"pid {sleeper.pid} on {_here()['host']}" in (record.event_log_entry.message or "")


def test_a_zombie_worker_is_gone(instance: dg.DagsterInstance, sleeper: subprocess.Popen) -> None:
    run = started_run(instance, **identity(sleeper.pid))
    sleeper.kill()
    os.waitid(os.P_PID, sleeper.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped yet
    assert _stat(sleeper.pid)[0] == "Z"  # type: ignore[index]
    assert worker_is_gone(run)


def test_a_reused_pid_is_gone(instance: dg.DagsterInstance, sleeper: subprocess.Popen) -> None:
    recorded = identity(sleeper.pid)
    run = started_run(instance, **{**recorded, "start": recorded["start"] - 100})  # another process had the pid
    assert worker_is_gone(run)


def test_another_hosts_worker_is_not_judged(instance: dg.DagsterInstance, sleeper: subprocess.Popen) -> None:
    sleeper.kill()
    sleeper.wait()
    run = started_run(instance, **{**identity(os.getpid()), "host": "another-host", "pid": sleeper.pid})
    assert not worker_is_gone(run)
    assert fail_if_orphaned(instance, run).status == dg.DagsterRunStatus.STARTED


def test_another_pid_namespace_is_not_judged(instance: dg.DagsterInstance, sleeper: subprocess.Popen) -> None:
    sleeper.kill()
    sleeper.wait()
    run = started_run(instance, **{**identity(os.getpid()), "pid_ns": "pid:[1]", "pid": sleeper.pid})
    assert not worker_is_gone(run)


def test_a_worker_of_an_earlier_boot_is_gone(instance: dg.DagsterInstance) -> None:
    run = started_run(instance, **{**identity(os.getpid()), "boot": "00000000-0000-0000-0000-000000000000"})
    assert worker_is_gone(run)


def test_a_run_without_the_tag_is_not_judged(instance: dg.DagsterInstance, sleeper: subprocess.Popen) -> None:
    run = started_run(instance)
    # The worker's own report names a dead process, but without the tag nothing says where it ran.
    instance.report_engine_event(
        f"Started process for run (pid: {sleeper.pid}).", run, EngineEventData.in_process(sleeper.pid)
    )
    sleeper.kill()
    sleeper.wait()
    assert not worker_is_gone(run)
    assert fail_if_orphaned(instance, run).status == dg.DagsterRunStatus.STARTED


def test_a_tag_copied_from_another_run_is_not_judged(instance: dg.DagsterInstance, sleeper: subprocess.Popen) -> None:
    parent = started_run(instance, **identity(sleeper.pid))
    sleeper.kill()
    sleeper.wait()
    retry = dg.DagsterRun(job_name="__ASSET_JOB", run_id=make_new_run_id(), status=dg.DagsterRunStatus.STARTED,
                          tags=dict(parent.tags))  # fmt: skip
    instance.add_run(retry)
    assert worker_is_gone(parent) and not worker_is_gone(retry)


def test_a_run_that_ended_meanwhile_is_not_failed(instance: dg.DagsterInstance, sleeper: subprocess.Popen) -> None:
    run = started_run(instance, **identity(sleeper.pid))
    event = dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name=run.job_name)
    instance.run_storage.handle_run_event(run.run_id, event)  # the worker wrote its end, then exited
    sleeper.kill()
    sleeper.wait()
    assert worker_is_gone(run)  # as last read, the run was still started
    assert fail_if_orphaned(instance, run).status == dg.DagsterRunStatus.SUCCESS
    assert not instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records


def test_a_run_records_its_worker(instance: dg.DagsterInstance) -> None:
    run = started_run(instance)
    # Run in this process (no run launcher reported a worker): the worker is this process.
    record_worker(instance, run.run_id)
    tagged = instance.get_run_by_id(run.run_id)
    assert tagged is not None and json.loads(tagged.tags[WORKER_TAG]) == {"run": run.run_id, **identity(os.getpid())}
    assert not worker_is_gone(tagged)


def test_a_reported_worker_that_is_not_this_process_tree_is_not_recorded(
    instance: dg.DagsterInstance, sleeper: subprocess.Popen
) -> None:
    run = started_run(instance)
    instance.report_engine_event(
        f"Started process for run (pid: {sleeper.pid}).", run, EngineEventData.in_process(sleeper.pid)
    )
    assert worker_identity(instance, run.run_id) is None  # a pid this process cannot vouch for


def test_a_step_process_records_its_run_worker(instance: dg.DagsterInstance) -> None:
    run = started_run(instance)
    instance.report_engine_event(
        f"Started process for run (pid: {os.getppid()}).", run, EngineEventData.in_process(os.getppid())
    )
    recorded = worker_identity(instance, run.run_id)
    assert recorded is not None and recorded["pid"] == os.getppid()


# --- Ending the runs a stop or a crash left in flight (the stack, before its daemon starts) -------------


@pytest.fixture
def pooled() -> Iterator[dg.DagsterInstance]:
    """An instance with the repository's pools: one slot each."""
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as test_instance:
        yield test_instance


def _holders(instance: dg.DagsterInstance, pool: str) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(pool)
    return {slot.run_id for slot in info.claimed_slots} | {step.run_id for step in info.pending_steps}


def _webhook_run(instance: dg.DagsterInstance, run_key: str, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=make_new_run_id(), status=status,
                        tags={"dagster/run_key": run_key, "smartplex/trigger": "webhook"})  # fmt: skip
    instance.add_run(run)
    return run


def _report_pid(instance: dg.DagsterInstance, run: dg.DagsterRun, pid: int, at: float | None = None) -> None:
    """What a run worker reports as it starts, when it started (``at``, default now)."""
    event = dg.DagsterEvent(event_type_value=dg.DagsterEventType.ENGINE_EVENT.value, job_name=run.job_name,
                            message=f"Started process for run (pid: {pid}).",
                            event_specific_data=EngineEventData.in_process(pid))  # fmt: skip
    instance.report_dagster_event(event, run.run_id, timestamp=at)


def _dispatched_to(engine: Engine, service_event: tuple[str, str], count: int) -> str:
    """``count`` webhook rows claimed for a run, as the webhook sensor claims them; returns the run key."""
    add_rows(engine, [service_event] * count)
    with engine.begin() as connection:
        (group,) = webhook_queue.pending_groups(connection)
        webhook_queue.claim(connection, group, utcnow())
    return group.run_key


def test_a_run_without_a_live_process_is_canceled_and_its_webhooks_go_back(
    pooled: dg.DagsterInstance, engine: Engine, sleeper: subprocess.Popen
) -> None:
    instance = pooled
    run_key = _dispatched_to(engine, ("radarr", "MovieAdded"), 3)
    run = _webhook_run(instance, run_key, dg.DagsterRunStatus.STARTED)
    _report_pid(instance, run, sleeper.pid)  # killed before its sync recorded its worker
    instance.event_log_storage.claim_concurrency_slot("smartplex_radarr", run.run_id, "radarr__movies")
    assert _holders(instance, "smartplex_radarr") == {run.run_id}
    assert not end_abandoned_runs(instance, engine, "stopped", others_alive=False).runs  # alive: left alone
    sleeper.kill()
    sleeper.wait()

    done = end_abandoned_runs(instance, engine, "stopped", others_alive=False)
    assert (done.runs, done.webhooks) == ([run.run_id], 3)
    ended = instance.get_run_by_id(run.run_id)
    assert ended is not None and ended.status == dg.DagsterRunStatus.CANCELED and ended.tags[STOPPED_TAG] == "true"
    assert statuses(engine) == {"pending": 3}
    assert _holders(instance, "smartplex_radarr") == set()
    assert not end_abandoned_runs(instance, engine, "stopped", others_alive=False).summary()  # twice: nothing


def test_a_run_with_no_process_recorded_is_ended_only_when_nothing_else_uses_the_instance(
    instance: dg.DagsterInstance, engine: Engine
) -> None:
    run_key = _dispatched_to(engine, ("sonarr", "Download"), 2)
    run = _webhook_run(instance, run_key, dg.DagsterRunStatus.STARTING)  # killed while launching
    assert end_abandoned_runs(instance, engine, "stopped", others_alive=True).runs == []
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTING  # type: ignore[union-attr]
    assert end_abandoned_runs(instance, engine, "stopped", others_alive=False).runs == [run.run_id]
    assert statuses(engine) == {"pending": 2}


def test_a_reused_pid_does_not_keep_a_run_alive(
    instance: dg.DagsterInstance, engine: Engine, sleeper: subprocess.Popen
) -> None:
    run = _webhook_run(instance, "webhooks-radarr-x", dg.DagsterRunStatus.CANCELING)
    _report_pid(instance, run, sleeper.pid, at=time.time() - 3600)  # reported by a process gone since
    assert not may_be_running(instance, run, sole_owner=True)
    assert end_abandoned_runs(instance, engine, "stopped", others_alive=False).runs == [run.run_id]


def test_a_stop_cancels_the_runs_in_flight_and_a_start_gives_their_work_back(
    instance: dg.DagsterInstance, engine: Engine
) -> None:
    run_key = _dispatched_to(engine, ("overseerr", "MEDIA_APPROVED"), 2)
    running = _webhook_run(instance, run_key, dg.DagsterRunStatus.STARTED)
    waiting = _webhook_run(instance, "webhooks-plex-waiting", dg.DagsterRunStatus.NOT_STARTED)
    assert mark_stopping(instance, "stopped") == [running.run_id]
    assert instance.get_run_by_id(waiting.run_id).status == dg.DagsterRunStatus.NOT_STARTED  # type: ignore[union-attr]
    assert statuses(engine) == {"dispatched": 2}  # the stop gives them back once its processes are gone
    done = end_abandoned_runs(instance, engine, "stopped", others_alive=False)
    assert (done.runs, done.stopped, done.webhooks) == ([], [running.run_id], 2)
    assert statuses(engine) == {"pending": 2}


def test_pool_slots_of_ended_runs_are_freed(pooled: dg.DagsterInstance, engine: Engine) -> None:
    ended = _webhook_run(pooled, "webhooks-plex-done", dg.DagsterRunStatus.FAILURE)
    pooled.event_log_storage.claim_concurrency_slot("smartplex_plex", ended.run_id, "plex__library_items")
    assert _holders(pooled, "smartplex_plex") == {ended.run_id}
    assert end_abandoned_runs(pooled, engine, "stopped", others_alive=True).slots_freed == [ended.run_id]
    assert _holders(pooled, "smartplex_plex") == set()
