"""A run is failed as orphaned only when the worker it recorded is, beyond doubt, gone."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.utils import make_new_run_id

from smartplex_dagster.orphans import (
    WORKER_TAG,
    _here,
    _stat,
    fail_if_orphaned,
    record_worker,
    worker_identity,
    worker_is_gone,
)

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
