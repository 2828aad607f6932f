"""A real ``dagster-daemon`` over a temporary DAGSTER_HOME, the simulators and a product database.

For tests that crash the daemon, make services misbehave, and watch what the rows end as. The
daemon runs the repository's ``dagster.yaml`` (run queue, per-service limits, run monitoring, one
automatic run retry) on SQLite storage, as ``smartplex demo`` does.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import psutil
import pytest
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import InstigatorTick, TickStatus
from sqlalchemy import Engine, select

from smartplex.dagster_names import RUN_KEY_TAG
from smartplex.schema import sync_schedule
from smartplex_cli import dagster_home
from smartplex_cli.stack import migrate_dagster, start_daemon
from smartplex_cli.supervisor import Supervisor, kill_all
from smartplex_simulators.serve import RunningSimulators
from tests.helpers import statuses

DAEMON = "dagster-daemon"
FINISHED_TICKS = [TickStatus.SKIPPED, TickStatus.SUCCESS, TickStatus.FAILURE]
T = TypeVar("T")


def _is_run_worker(process: psutil.Process) -> bool:
    """Runs execute in processes the code server spawns (``multiprocessing`` spawn children)."""
    try:
        return any("multiprocessing" in part for part in process.cmdline())
    except psutil.Error:
        return False


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass
class DaemonStack:
    engine: Engine
    sims: RunningSimulators
    home: Path
    env: dict[str, str]
    log_dir: Path
    monkeypatch: pytest.MonkeyPatch
    supervisor: Supervisor = field(default_factory=Supervisor)
    #: Every process the daemon started that the tests saw, so none can be left behind unnoticed.
    seen: dict[int, psutil.Process] = field(default_factory=dict)
    _instance: dg.DagsterInstance | None = None
    _workspace: ExitStack = field(default_factory=ExitStack)
    _workspace_context: object | None = None

    def setenv(self, name: str, value: str) -> None:
        """For the daemon (set before starting it) and for code servers this process starts."""
        self.env[name] = value
        self.monkeypatch.setenv(name, value)

    def start_daemon(self) -> None:
        start_daemon(self.supervisor, self.env, self.log_dir)

    def daemon(self) -> psutil.Process:
        return psutil.Process(self.supervisor.processes[DAEMON].pid)

    def family(self) -> list[psutil.Process]:
        """The daemon and everything it started (code servers, run workers), remembered in ``seen``."""
        try:
            root = self.daemon()
            members = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            members = []
        for process in members:
            self.seen.setdefault(process.pid, process)
        return members

    def kill_daemon(self, *, runs: bool = False) -> list[str]:
        """SIGKILL the daemon's process group and its code servers, as a crash or an OOM kill would.

        Run workers are spared unless ``runs``: they belong to runs already launched, which go on
        without the daemon. With ``runs``, everything goes, as in a power cut. Returns what was killed.
        """
        family = self.family()
        victims = [p for p in family if runs or not _is_run_worker(p)]
        killed = []
        for process in victims:
            try:
                killed.append(" ".join(process.cmdline()[1:6]))
            except psutil.Error:
                pass
        try:
            os.killpg(self.supervisor.processes[DAEMON].pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        kill_all(victims, timeout=10)
        self.supervisor.processes[DAEMON].wait(10)
        return killed

    @property
    def instance(self) -> dg.DagsterInstance:
        if self._instance is None:
            self._instance = dg.DagsterInstance.from_config(str(self.home))
        return self._instance

    def tick_schedules(self, at: datetime) -> None:
        """One pass of Dagster's own scheduler, evaluating the ticks due up to ``at``, as the daemon
        would when the clock reaches it (the schedules tick every 5 minutes: too long to wait for).
        Its runs go to the queue, where the running daemon launches them."""
        import dagster._daemon.daemon  # noqa: F401  (imported first: the scheduler module imports it back)
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import ModuleTarget
        from dagster._scheduler.scheduler import launch_scheduled_runs

        from smartplex.dagster_names import DEFINITIONS_MODULE

        if self._workspace_context is None:
            target = ModuleTarget(
                module_name=DEFINITIONS_MODULE, attribute=None, working_directory=None, location_name=None
            )
            self._workspace_context = self._workspace.enter_context(WorkspaceProcessContext(self.instance, target))
            self._watch_own_children()
        list(launch_scheduled_runs(self._workspace_context, logging.getLogger(__name__), at, iteration_times={}))  # type: ignore[arg-type]

    def _watch_own_children(self) -> None:
        for process in psutil.Process().children(recursive=True):
            self.seen.setdefault(process.pid, process)

    def runs_for(self, run_key: str) -> list[dg.DagsterRun]:
        return list(self.instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key})))

    def statuses(self) -> dict[str, int]:
        return statuses(self.engine)

    def sensor_ticks(self, name: str, after: float | None = None) -> list[InstigatorTick]:
        """The daemon's finished ticks of sensor ``name`` (started after the ``after`` timestamp), newest first."""
        states = self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        return [
            tick
            for state in states
            if state.instigator_name == name
            for tick in self.instance.get_ticks(
                state.instigator_origin_id, state.selector_id, after=after, statuses=FINISHED_TICKS
            )
        ]

    @contextmanager
    def runs_held(self) -> Iterator[None]:
        """Hold the write lock of Dagster's run storage: the daemon reads on (WAL), but creates no run until
        the lock is released. A write that waits over 5 s for the lock fails: hold it for seconds only."""
        path = self.home / "history" / "runs.db"
        assert path.exists(), f"no run storage at {path}"
        connection = sqlite3.connect(path, timeout=5, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
        finally:
            connection.close()  # rolls the empty transaction back

    def wait_for(self, what: str, check: Callable[[], T], timeout: float, interval: float = 0.5) -> T:
        """Poll ``check`` until it returns something truthy; fail if the daemon died or time ran out."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            self.family()
            dead = self.supervisor.exited()
            assert not dead, f"{dead} exited while waiting for {what}; see {self.log_dir}"
            assert time.monotonic() < deadline, f"no {what} within {timeout:.0f}s: {self.statuses()}"
            time.sleep(interval)

    def left_behind(self) -> list[str]:
        """Processes the stack started that are still alive."""
        left = []
        for process in self.seen.values():
            if _alive(process):
                try:
                    left.append(f"{process.pid} {' '.join(process.cmdline()[:4])}")
                except psutil.Error:
                    pass
        return left

    def stop(self) -> None:
        """Stop the daemon and whatever it started, orphans of a killed daemon included."""
        self.family()
        self._watch_own_children()
        self._workspace.close()
        self._workspace_context = None
        self.supervisor.stop()
        kill_all([p for p in self.seen.values() if _alive(p)], timeout=5)
        if self._instance is not None:
            self._instance.dispose()
            self._instance = None


def schedule_row(engine: Engine, service: str) -> dict[str, Any]:
    with engine.connect() as connection:
        query = select(sync_schedule).where(sync_schedule.c.service == service)
        return dict(connection.execute(query).mappings().one())


def next_schedule_tick(now: datetime) -> datetime:
    """When the schedules (every 5 minutes) next tick after ``now``."""
    return now.replace(second=0, microsecond=0) + timedelta(minutes=5 - now.minute % 5)


@pytest.fixture
def daemon_stack(
    database_url: str, engine: Engine, sims: RunningSimulators, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DaemonStack]:
    """A migrated DAGSTER_HOME and the environment for a daemon (and for this process's code servers);
    the test starts the daemon."""
    stack = DaemonStack(engine, sims, dagster_home.prepare(tmp_path), dict(os.environ), tmp_path / "logs", monkeypatch)
    for name, value in {
        **sims.env(),
        "SMARTPLEX_DATABASE_URL": database_url,
        "SMARTPLEX_DATA_DIR": str(tmp_path),
        "SMARTPLEX_SENSOR_INTERVAL_SECONDS": "1",
        "DAGSTER_HOME": str(stack.home),
    }.items():
        stack.setenv(name, value)
    migrate_dagster(stack.env)
    stack.log_dir.mkdir()
    try:
        yield stack
    finally:
        stack.stop()
