"""Runs whose worker died with the machine (a power cut, an OOM kill of the process tree).

Such a run stays ``STARTED`` for ever: Dagster's run monitoring cannot check the workers of its
default run launcher (runs are subprocesses of the code server). Its webhook rows would stay
``dispatched``, and its service busy, so later webhooks would wait for ever too; a full refresh would
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
tag included (killed before its sync started, or not on Linux), is never failed here. Dagster's run
monitoring start timeout covers runs that never started; a run killed in the moment between its step
starting and its sync recording the worker stays ``STARTED`` until it is terminated from the UI.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
from pathlib import Path

import dagster as dg
from dagster._core.events import JobFailureData, RunFailureReason

#: Run tag: where the run's worker process runs (JSON, see :func:`record_worker`).
WORKER_TAG = "smartplex/worker"
_STARTED_PROCESS = "Started process for run"


def _reported_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The process id the run's worker reported as it started ("Started process for run")."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event is not None else None
        pid = data.metadata.get("pid") if data is not None else None
        if pid is not None and (record.event_log_entry.message or "").startswith(_STARTED_PROCESS):
            try:
                return int(str(pid.value))
            except ValueError:
                return None
    return None


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


def worker_identity(instance: dg.DagsterInstance, run_id: str) -> dict[str, str | int] | None:
    """Where the run worker of ``run_id`` runs, as seen from a process of the run; ``None`` if unknown.

    The run worker is the process whose death ends the run: the one that reported "Started process
    for run". Steps run either in it (in-process executor) or in its children (multiprocess executor).
    """
    reported = _reported_pid(instance, run_id)
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


def record_worker(instance: dg.DagsterInstance, run_id: str) -> None:
    """Tag the run with its worker's identity, so that other processes can tell whether it is gone."""
    identity = worker_identity(instance, run_id)
    if identity is not None:
        instance.add_run_tags(run_id, worker_tag(identity))


def _recorded_worker(run: dg.DagsterRun) -> dict | None:
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
    if worker is None:
        return False
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


def fail_if_orphaned(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.DagsterRun:
    """Mark ``run`` failed if its worker is gone; return the run as it now stands."""
    if not worker_is_gone(run):
        return run
    # A worker writes the run's end before it exits: read the run again now that its process is gone.
    current = instance.get_run_by_id(run.run_id)
    if current is None or current.status != dg.DagsterRunStatus.STARTED:
        return current or run
    worker = _recorded_worker(current) or {}
    instance.report_run_failed(
        current,
        f"The process running this run (pid {worker.get('pid')} on {worker.get('host')}) is gone: it was "
        "killed, or its machine restarted.",
        JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
    )
    # Its step's pool slot (smartplex_<service>, limit 1) would stay claimed by the dead run, and hold
    # every later sync of the service, its retry included, in the queue.
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return instance.get_run_by_id(run.run_id) or current
