"""Runs whose worker died with the machine (a power cut, an OOM kill of the process tree).

Such a run stays ``STARTED`` for ever: Dagster's run monitoring cannot check the workers of its
default run launcher (runs are subprocesses of the code server). Its webhook rows would stay
``dispatched``, and its service busy, so later webhooks would wait for ever too; a full refresh would
block its schedule. The reconciling passes ask :func:`fail_if_orphaned` about every run they wait on:
a run whose worker process is gone is marked failed, its pool slot freed, and Dagster's run retry
takes it from there.

The check runs where the sensors and schedules are evaluated, the code server, which is where the
default run launcher starts run workers, so a process id names the same process there.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import psutil
from dagster._core.events import JobFailureData, RunFailureReason
from dagster._core.launcher import DefaultRunLauncher

#: Slack between a worker's reported start and its process's creation time (clock granularity).
_CLOCK_SLACK_SECONDS = 2.0


def _worker(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[int, float] | None:
    """The process id the run's worker reported ("Started process for run"), and when."""
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event is not None else None
        pid = data.metadata.get("pid") if data is not None else None
        if pid is not None and (record.event_log_entry.message or "").startswith("Started process for run"):
            try:
                return int(str(pid.value)), record.event_log_entry.timestamp
            except ValueError:
                return None
    return None


def worker_is_gone(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether ``run`` claims to be running but the process that ran it has ended."""
    if run.status != dg.DagsterRunStatus.STARTED or not isinstance(instance.run_launcher, DefaultRunLauncher):
        return False  # other launchers' workers are checked by Dagster's own run monitoring
    worker = _worker(instance, run)
    if worker is None:
        return False
    pid, reported_at = worker
    try:
        process = psutil.Process(pid)
        # A process id is reused in time: one created after the worker reported is someone else.
        return process.create_time() > reported_at + _CLOCK_SLACK_SECONDS or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def fail_if_orphaned(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRun:
    """Mark ``run`` failed if its worker is gone; return the run as it now stands."""
    worker = _worker(instance, run) if worker_is_gone(instance, run) else None
    if worker is None:
        return run
    # A worker writes the run's end before it exits: read the run again now that its process is gone.
    current = instance.get_run_by_id(run.run_id)
    if current is None or current.status != dg.DagsterRunStatus.STARTED:
        return current or run
    instance.report_run_failed(
        current,
        f"The process running this run (pid {worker[0]}, started {datetime.fromtimestamp(worker[1], UTC):%Y-%m-%d %H:%M:%S} "
        "UTC) is gone: it was killed, or its machine restarted.",
        JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
    )
    # Its step's pool slot (smartplex_<service>, limit 1) would stay claimed by the dead run, and hold
    # every later sync of the service, its retry included, in the queue.
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return instance.get_run_by_id(run.run_id) or current
