"""Runs whose worker died with the machine (a power cut, an OOM kill of the process tree).

Such a run stays ``STARTED`` for ever: Dagster's run monitoring cannot check the workers of its
default run launcher (runs are subprocesses of the code server). Its webhook rows would stay
``dispatched``, and its library busy, so later webhooks would wait for ever too; a full refresh would
block its schedule. The reconciling passes ask :func:`fail_if_orphaned` about every run they wait on:
a run whose worker process is gone is marked failed, its pool slot freed, and Dagster's run retry
takes it from there.

A process id means something only on its own machine, boot and pid namespace, and the process that
asks (a code server replica, a webserver previewing a tick) need not share them with the run's
worker. So the run records where its worker runs, from inside the run (:func:`record_worker`, called
as the sync starts): host name, boot id, pid namespace, the worker's pid and its start time in clock
ticks since boot (which, unlike the wall clock, never steps). A run is judged only by a process on the
same host: another boot there means the machine restarted; the same boot and pid namespace, that the
pid is gone, a zombie, or another process's (other start ticks). Anything else, a run without the
tag included (killed before its sync started, or not on Linux), is never failed here.

With the Celery run launcher a run executes in a pool process of a ``smartplex worker``, which
reports "Started process for run" with its own pid, so the run is tagged and judged as any other: a
worker killed on the daemon's machine fails its run at the next tick, and the retry goes to whichever
worker takes it. A worker on another machine is not judged here; there Dagster's run monitoring asks
the Celery result backend for the run's task state.

Those untagged runs are ended when the stack starts again (:func:`end_abandoned_runs`, run by
``smartplex demo`` and ``smartplex run`` before the daemon starts, and again once they have stopped
their processes). Then nothing of the stack runs, so on the embedded instance (SQLite storage, the
default run launcher: every run is a process of this machine) a run in progress whose recorded
process is not alive is abandoned. It is canceled, not failed, so that Dagster does not retry it:
its webhook rows go back to pending and its full refresh is asked for again.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import psutil
from sqlalchemy import Engine

from smartplex import schedule_state, webhook_queue
from smartplex.column_types import utcnow
from smartplex.dagster_names import (
    INSTANCE_TAG,
    LEGACY_SERVICE_TAG,
    RUN_KEY_TAG,
    SCHEDULE_TRIGGER,
    STOPPED_TAG,
    TRIGGER_TAG,
    WEBHOOK_TRIGGER,
    WORKER_TAG,
    instance_tags,
)
from smartplex.instances import Instance
from smartplex_dagster.runtime.dagster_internals import JobFailureData, RunFailureReason, SqliteRunStorage

_STARTED_PROCESS = "Started process for run"


def _reported(dagster_instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The process id the run's worker reported as it started ("Started process for run"), and when."""
    records = dagster_instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event is not None else None
        pid = data.metadata.get("pid") if data is not None else None
        if pid is not None and (record.event_log_entry.message or "").startswith(_STARTED_PROCESS):
            try:
                return int(str(pid.value)), record.event_log_entry.timestamp
            except ValueError:
                return None
    return None


def _reported_pid(dagster_instance: dg.DagsterInstance, run_id: str) -> int | None:
    reported = _reported(dagster_instance, run_id)
    return reported[0] if reported is not None else None


def _here() -> dict[str, str]:
    """This process's host name, boot id and pid namespace (``OSError`` where there is no /proc)."""
    return {
        "host": socket.gethostname(),
        "boot": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
        "pid_ns": os.readlink("/proc/self/ns/pid"),
    }


def _stat(pid: int) -> tuple[str, int] | None:
    """State and start time (clock ticks since boot) of process ``pid``; ``None`` if there is none.

    Raises ``OSError`` if ``/proc`` cannot tell (no /proc, no permission).
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields 3.. follow the command name, which is in parentheses and may hold spaces or ")".
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])  # field 3: state; field 22: start time


def worker_identity(dagster_instance: dg.DagsterInstance, run_id: str) -> dict[str, str | int] | None:
    """Where the run worker of ``run_id`` runs, as seen from a process of the run; ``None`` if unknown.

    The run worker is the process whose death ends the run: the one that reported "Started process
    for run". Steps run either in it (in-process executor) or in its children (multiprocess executor).
    """
    reported = _reported_pid(dagster_instance, run_id)
    if reported is not None:
        if reported not in (os.getpid(), os.getppid()):
            return None  # not this process nor its parent: the pid is not one we can name
        pid = reported
    else:  # no run launcher reported a worker (a run executed in process): this process, or its parent
        parent = multiprocessing.parent_process()
        pid = parent.pid if parent is not None and parent.pid is not None else os.getpid()
    return identify(run_id, pid)


def identify(run_id: str, pid: int) -> dict[str, str | int] | None:
    """The identity of process ``pid`` of this machine, as run ``run_id``'s worker; ``None`` if unknown."""
    try:
        stat = _stat(pid)
        here = _here()
    except (OSError, ValueError, IndexError):
        return None
    if stat is None:
        return None
    return {"run": run_id, **here, "pid": pid, "start": stat[1]}


def worker_tag(identity: dict[str, str | int]) -> dict[str, str]:
    """The run tag that records a worker's identity."""
    return {WORKER_TAG: json.dumps(identity, separators=(",", ":"))}


def record_worker(dagster_instance: dg.DagsterInstance, run_id: str) -> None:
    """Tag the run with its worker's identity, so that other processes can tell whether it is gone."""
    identity = worker_identity(dagster_instance, run_id)
    if identity is not None:
        dagster_instance.add_run_tags(run_id, worker_tag(identity))


def _recorded_worker(run: dg.DagsterRun) -> dict[str, Any] | None:
    raw = run.tags.get(WORKER_TAG)
    try:
        worker = json.loads(raw) if raw else None
    except ValueError:
        return None
    # A re-execution copies its parent's tags: a tag written for another run says nothing of this one.
    if not isinstance(worker, dict) or worker.get("run") != run.run_id:
        return None
    return worker


def worker_is_gone(run: dg.DagsterRun) -> bool:
    """Whether ``run`` claims to be running but the process that ran it has ended."""
    if run.status != dg.DagsterRunStatus.STARTED:
        return False
    worker = _recorded_worker(run)
    return worker is not None and _gone(worker)


def _gone(worker: dict[str, Any]) -> bool:
    """Whether the recorded ``worker`` has ended, beyond doubt, as seen from this process."""
    try:
        here = _here()
        if worker["host"] != here["host"]:
            return False  # another machine's process: not ours to judge
        if worker["boot"] != here["boot"]:
            return True  # the machine restarted since: every process of that boot is gone
        if worker["pid_ns"] != here["pid_ns"]:
            return False  # another container's process ids
        stat = _stat(int(worker["pid"]))
    except (OSError, KeyError, TypeError, ValueError, IndexError):
        return False
    # Gone, a zombie, or its pid now names a process started later (pid reuse).
    return stat is None or stat[0] == "Z" or stat[1] != worker["start"]


def fail_if_orphaned(dagster_instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRun:
    """Mark ``run`` failed if its worker is gone; return the run as it now stands."""
    if not worker_is_gone(run):
        return run
    # A worker writes the run's end before it exits: read the run again now that its process is gone.
    current = dagster_instance.get_run_by_id(run.run_id)
    if current is None or current.status != dg.DagsterRunStatus.STARTED:
        return current or run
    worker = _recorded_worker(current) or {}
    dagster_instance.report_run_failed(
        current,
        f"The process running this run (pid {worker.get('pid')} on {worker.get('host')}) is gone: it was "
        "killed, or its machine restarted.",
        JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
    )
    # Its step's pool slot (smartplex_<slug>, limit 1) would stay claimed by the dead run, and hold
    # every later sync of the service, its retry included, in the queue.
    if dagster_instance.event_log_storage.supports_global_concurrency_limits:
        dagster_instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return dagster_instance.get_run_by_id(run.run_id) or current


#: A run in these has a worker process, or is about to have one.
IN_FLIGHT = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
#: The latest stopped runs whose work a start makes sure was given back.
_STOPPED_LOOKBACK = 100
_IN_PROGRESS = {*IN_FLIGHT, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED}
#: Slack between a process's start time (from /proc, to the clock tick) and the event it wrote after starting.
_CLOCK_SLACK = 2.0


def is_embedded(dagster_instance: dg.DagsterInstance) -> bool:
    """Whether every run of ``instance`` is a process of this machine: SQLite storage, default run launcher."""
    return isinstance(dagster_instance.run_storage, SqliteRunStorage) and isinstance(
        dagster_instance.run_launcher, dg.DefaultRunLauncher
    )


def _alive(pid: int, reported_at: float) -> bool:
    """Whether ``pid`` is a live process started before it reported itself at ``reported_at`` (not a reuse)."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= reported_at + _CLOCK_SLACK
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # cannot tell: assume it runs


def may_be_running(dagster_instance: dg.DagsterInstance, run: dg.DagsterRun, *, sole_owner: bool) -> bool:
    """Whether some process may still be running ``run``.

    ``sole_owner``: no process of this machine but the caller uses the instance, and every run of it
    is a process of this machine (:func:`is_embedded`), so a run without a live recorded process is dead.
    """
    worker = _recorded_worker(run)
    if worker is not None:
        return not _gone(worker)
    if not sole_owner:
        return True  # nothing says where it runs: not ours to judge
    reported = _reported(dagster_instance, run.run_id)
    return reported is not None and _alive(*reported)


@dataclass
class Abandoned:
    """What :func:`end_abandoned_runs` did."""

    runs: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    webhooks: int = 0
    refreshes: int = 0
    slots_freed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.runs and not self.stopped and not self.slots_freed:
            return ""
        parts = []
        if self.runs:
            parts.append(f"canceled {len(self.runs)} run(s) left without a process ({', '.join(self.runs)})")
        if self.stopped:
            parts.append(f"{len(self.stopped)} run(s) canceled by the stop ({', '.join(self.stopped)})")
        if self.webhooks:
            parts.append(f"{self.webhooks} webhook(s) back to pending")
        if self.refreshes:
            parts.append(f"{self.refreshes} full refresh(es) asked for again")
        if self.slots_freed:
            parts.append(f"freed the pool slots of {len(self.slots_freed)} ended run(s)")
        return "; ".join(parts)


def _give_back(engine: Engine, run: dg.DagsterRun, now: datetime) -> tuple[int, int]:
    """Webhook rows back to pending, or the full refresh asked for again: (rows, refreshes)."""
    run_key = run.tags.get(RUN_KEY_TAG)
    trigger = run.tags.get(TRIGGER_TAG)
    if run_key is None:
        return 0, 0
    with engine.begin() as connection:
        if trigger == WEBHOOK_TRIGGER:
            return webhook_queue.requeue(connection, run_key), 0
        if trigger == SCHEDULE_TRIGGER:
            return 0, schedule_state.request_refresh_again(connection, run_key, now)
    return 0, 0


def _free_slots(dagster_instance: dg.DagsterInstance, run_id: str) -> None:
    if dagster_instance.event_log_storage.supports_global_concurrency_limits:
        dagster_instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def _ours(run: dg.DagsterRun, embedded: bool) -> bool:
    """Whether ``run``'s worker is a process of this machine."""
    if embedded:
        return True
    worker = _recorded_worker(run)
    try:
        return worker is not None and worker["host"] == _here()["host"]
    except (OSError, KeyError):
        return False


def mark_stopping(dagster_instance: dg.DagsterInstance, message: str) -> list[str]:
    """The stack is stopping, its daemon already stopped: mark each of its runs in flight canceled, before
    their workers are stopped. Returns the run ids.

    Marked first, as Dagster's forced termination does: a worker interrupted while its run is canceled
    only cleans up, where one interrupted while its run is started records a failure (which Dagster
    would retry). Tagged :data:`STOPPED_TAG`, so :func:`end_abandoned_runs` gives its work back (a
    run that succeeded in the instant between the reading and the marking is synced again: harmless).
    """
    embedded = is_embedded(dagster_instance)
    marked = []
    for run in dagster_instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT)):
        current = dagster_instance.get_run_by_id(run.run_id)
        if current is None or current.status not in IN_FLIGHT or not _ours(current, embedded):
            continue
        dagster_instance.add_run_tags(run.run_id, {STOPPED_TAG: "true"})
        dagster_instance.report_run_canceled(current, message)
        marked.append(run.run_id)
        if embedded:
            _end_worker(dagster_instance, run.run_id)
    return marked


def _end_worker(dagster_instance: dg.DagsterInstance, run_id: str) -> None:
    """Kill a canceled run's own worker process, as Dagster's forced termination would: a step run
    in-process finishes what it is doing before it heeds a SIGTERM, and would then record a success
    over the cancellation. Only on the embedded instance, where each run has a process of its own
    (a Celery worker runs many runs, and is stopped as a whole)."""
    reported = _reported(dagster_instance, run_id)
    if reported is None or not _alive(*reported):
        return
    try:
        process = psutil.Process(reported[0])
        for victim in [*process.children(recursive=True), process]:
            victim.kill()
    except psutil.Error:
        pass  # gone meanwhile


def end_abandoned_runs(
    dagster_instance: dg.DagsterInstance,
    engine: Engine,
    message: str,
    *,
    others_alive: bool,
    now: datetime | None = None,
) -> Abandoned:
    """Cancel the runs in flight that no process runs any more, give their work back, free their pool slots.

    For the stack, while none of its processes runs: before it starts the daemon, and after it has
    stopped everything. ``others_alive``: some other process of this machine uses the instance, so a
    run with no recorded process may be theirs. Pool slots held by runs that have ended are freed too.
    """
    now = now or utcnow()
    sole_owner = not others_alive and is_embedded(dagster_instance)
    done = Abandoned()
    for run in dagster_instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT)):
        if may_be_running(dagster_instance, run, sole_owner=sole_owner):
            continue
        current = dagster_instance.get_run_by_id(run.run_id)  # it may have written its end before it went
        if current is None or current.status not in IN_FLIGHT:
            continue
        dagster_instance.add_run_tags(run.run_id, {STOPPED_TAG: "true"})
        dagster_instance.report_run_canceled(current, message)
        _free_slots(dagster_instance, run.run_id)
        webhooks, refreshes = _give_back(engine, current, now)
        done.runs.append(run.run_id)
        done.webhooks += webhooks
        done.refreshes += refreshes
    # Runs a stop canceled (their workers recorded it): their work, unless given back already.
    stopped = dg.RunsFilter(statuses=[dg.DagsterRunStatus.CANCELED], tags={STOPPED_TAG: "true"})
    for run in dagster_instance.get_runs(filters=stopped, limit=_STOPPED_LOOKBACK):
        webhooks, refreshes = _give_back(engine, run, now)
        if webhooks or refreshes:
            done.stopped.append(run.run_id)
        done.webhooks += webhooks
        done.refreshes += refreshes
    if dagster_instance.event_log_storage.supports_global_concurrency_limits:
        storage = dagster_instance.event_log_storage
        # Steps waiting for or holding a slot (pools on their default limit have no key of their own), and
        # slots of the pools that have one.
        holders = set(storage.get_concurrency_run_ids()) | {
            slot.run_id
            for key in storage.get_concurrency_keys()
            for slot in storage.get_concurrency_info(key).claimed_slots
        }
        for run_id in sorted(holders - set(done.runs)):
            holder_run = dagster_instance.get_run_by_id(run_id)
            if holder_run is None or holder_run.status not in _IN_PROGRESS:
                _free_slots(dagster_instance, run_id)
                done.slots_freed.append(run_id)
    return done


def retag_legacy_runs(dagster_instance: dg.DagsterInstance, instances: Iterable[Instance]) -> int:
    """Give runs made before the kind and instance tags existed (tagged ``smartplex/service``) those tags,
    so that the Dagster UI's filters and the admin page's links find them with the runs made since.
    Returns how many runs were tagged; a second pass finds none."""
    by_id = {instance.id: instance for instance in instances}
    legacy = dg.RunsFilter(tags={LEGACY_SERVICE_TAG: sorted(by_id)})
    tagged = 0
    for run in dagster_instance.get_runs(filters=legacy):
        instance = by_id.get(run.tags[LEGACY_SERVICE_TAG])
        if instance is not None and INSTANCE_TAG not in run.tags:
            dagster_instance.add_run_tags(run.run_id, instance_tags(instance))
            tagged += 1
    return tagged


def main(argv: list[str] | None = None) -> None:
    """``python -m smartplex_dagster.runtime.orphans end|stopping``, on ``DAGSTER_HOME``'s instance and the configured
    product database, for ``smartplex demo`` and ``smartplex run``: :func:`end_abandoned_runs` or
    :func:`mark_stopping`. Prints what it did (nothing when there was nothing to do)."""
    from smartplex.db import make_engine
    from smartplex.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m smartplex_dagster.runtime.orphans")
    parser.add_argument("action", choices=["end", "stopping"])
    parser.add_argument("--message", required=True, help="Why the runs are canceled (shown on each run).")
    parser.add_argument("--others-alive", action="store_true", help="Other processes of this machine use the instance.")
    args = parser.parse_args(argv)
    with dg.DagsterInstance.get() as dagster_instance:
        if args.action == "stopping":
            marked = mark_stopping(dagster_instance, args.message)
            summary = f"canceled {len(marked)} run(s) in progress ({', '.join(marked)})" if marked else ""
        else:
            engine = make_engine(get_settings().resolved_database_url)
            try:
                summary = end_abandoned_runs(
                    dagster_instance, engine, args.message, others_alive=args.others_alive
                ).summary()
            finally:
                engine.dispose()
            if retagged := retag_legacy_runs(dagster_instance, get_settings().service_instances):
                done = f"tagged {retagged} earlier run(s) with their kind and instance"
                summary = f"{summary}; {done}" if summary else done
    if summary:
        print(summary)


if __name__ == "__main__":
    main()
