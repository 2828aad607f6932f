"""``make run`` as a newcomer runs it: ports chosen through make, the printed ``export`` lines work, the 4K
Sonarr and Radarr run beside the others, Ctrl-C ends the runs in progress cleanly, and a restart keeps the
schedules as they were set."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import dagster as dg
import httpx
import psutil
import pytest
from sqlalchemy import Engine, func, select

from smartplex.dagster_names import RUN_KEY_TAG
from smartplex.db import make_engine
from smartplex.instances import Instance
from smartplex.kinds import KINDS
from smartplex.schema import sync_schedule, webhook_log
from smartplex_cli.demo import prepare_demo_database
from smartplex_cli.supervisor import free_port, kill_all
from smartplex_dagster.runtime.orphans import IN_FLIGHT, STOPPED_TAG

pytestmark = [pytest.mark.timeout(900), pytest.mark.filterwarnings("ignore::dagster.BetaWarning")]
REPO = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent.parent
T = TypeVar("T")


class Demo:
    """``make run`` in a session of its own, as in a terminal; everything it starts is remembered."""

    def __init__(self, data_dir: Path, api_port: int, dagster_port: int, log: Path) -> None:
        env = {**os.environ, "SMARTPLEX_DATA_DIR": str(data_dir)}
        for name in ("SMARTPLEX_DATABASE_URL", "DAGSTER_HOME", "SMARTPLEX_API_PORT", "SMARTPLEX_DAGSTER_PORT"):
            env.pop(name, None)
        self.log = log
        # -o: the virtualenv this test runs in is taken as built, never reinstalled.
        argv = ["make", "-C", str(REPO), "-o", f"{VENV}/.installed", "run", f"VENV={VENV}",
                f"SMARTPLEX_API_PORT={api_port}", f"SMARTPLEX_DAGSTER_PORT={dagster_port}",
                "DEMO_ARGS=--size 150 --event-interval 1"]  # fmt: skip
        with open(log, "ab") as output:
            self.make = subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        self.seen: dict[int, psutil.Process] = {}

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def family(self) -> None:
        try:
            for process in psutil.Process(self.make.pid).children(recursive=True):
                self.seen.setdefault(process.pid, process)
        except psutil.NoSuchProcess:
            pass

    def wait_for(self, what: str, check: Callable[[], T], timeout: float, interval: float = 0.5) -> T:
        deadline = time.monotonic() + timeout
        while True:
            self.family()
            result = check()
            if result:
                return result
            assert self.make.poll() is None, (
                f"make run exited ({self.make.returncode}) waiting for {what}:\n{self.output()}"
            )
            assert time.monotonic() < deadline, f"no {what} within {timeout:.0f}s:\n{self.output()}"
            time.sleep(interval)

    def demo_process(self) -> psutil.Process:
        (demo,) = [p for p in psutil.Process(self.make.pid).children() if "demo" in " ".join(p.cmdline())]
        return demo

    def exports(self) -> dict[str, str]:
        lines = self.wait_for(
            "the export lines", lambda: re.findall(r"^  export (\w+)=(.*)$", self.output(), re.M), 300
        )
        return dict(lines)

    def stopped(self, timeout: float = 120) -> int:
        try:
            return self.make.wait(timeout)
        finally:
            self.kill()

    def left_behind(self) -> list[str]:
        left = []
        for process in self.seen.values():
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{process.pid} {' '.join(process.cmdline()[:4])}")
            except psutil.NoSuchProcess:
                pass
        return left

    def kill(self) -> None:
        self.family()
        kill_all(
            [*self.seen.values(), psutil.Process(self.make.pid)] if self.make.poll() is None else self.seen.values(), 10
        )


@pytest.fixture
def demos(tmp_path: Path) -> Iterator[list[Demo]]:
    started: list[Demo] = []
    try:
        yield started
    finally:
        for demo in started:
            demo.kill()


def _status_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        query = select(webhook_log.c.status, func.count()).group_by(webhook_log.c.status)
        return dict(connection.execute(query).all())


def _check_nothing_in_flight(data_dir: Path, engine: Engine) -> set[str]:
    """After a stop: no run in flight, no pool slot taken, no webhook failed. Rows and full refreshes may
    still be handed to a run that has not started (it runs at the next start) or that ended (its outcome
    is written then), never to one the stop ended. Returns the ids of the rows left to sync."""
    with engine.connect() as connection:
        rows = connection.execute(select(webhook_log.c.id, webhook_log.c.status, webhook_log.c.run_key)).all()
        refreshes = connection.execute(select(sync_schedule.c.run_key).where(sync_schedule.c.run_key.is_not(None)))
        run_keys = {r.run_key for r in rows if r.status == "dispatched"} | set(refreshes.scalars())
    assert not [r for r in rows if r.status == "failed"]
    with dg.DagsterInstance.from_config(str(data_dir / "dagster")) as instance:
        assert instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT)) == []
        runs = instance.get_runs()
        assert [r.run_id for r in runs if r.status == dg.DagsterRunStatus.FAILURE] == []
        for run in runs:
            if run.status == dg.DagsterRunStatus.CANCELED:
                assert run.tags.get(STOPPED_TAG) == "true", run.run_id
        waiting = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.SUCCESS)
        for run_key in run_keys:
            statuses = [run.status for run in instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}))]
            assert all(status in waiting for status in statuses), (run_key, statuses)
        storage = instance.event_log_storage
        for key in storage.get_concurrency_keys():
            info = storage.get_concurrency_info(key)
            assert (info.claimed_slots, info.pending_steps) == ([], []), key
    return {str(r.id) for r in rows if r.status in ("pending", "dispatched")}


def _value_columns(output: str) -> set[int]:
    """Where the values start in the printed "what is where" block."""
    block = output[output.index("SmartPlex Sync is running.") :].split("For the commands", 1)[0].splitlines()[1:]
    columns = set()
    for line in block:
        match = re.match(r"  (\S.*?)\s{2,}(\S)", line)
        assert match, f"not aligned: {line!r}"
        columns.add(match.start(2))
    return columns


def test_make_run_on_chosen_ports_ctrl_c_then_a_restart(tmp_path: Path, demos: list[Demo]) -> None:
    data_dir = tmp_path / "data"
    api_port, dagster_port = free_port(), free_port()
    demo = Demo(data_dir, api_port, dagster_port, tmp_path / "first.log")
    demos.append(demo)
    exports = demo.exports()

    # The ports given to make, and the exports the docs' commands use.
    assert exports["API"] == f"http://127.0.0.1:{api_port}"
    admin = {"Authorization": f"Bearer {exports['ADMIN']}"}
    assert exports["SMARTPLEX_ADMIN_SECRET"] == exports["ADMIN"]
    assert httpx.get(f"{exports['API']}/api/webhooks/status", headers=admin).status_code == 200
    hook = httpx.post(f"{exports['API']}/api/webhooks/sonarr?token={exports['SMARTPLEX_WEBHOOK_SECRET']}",
                      json={"eventType": "Test"})  # fmt: skip
    assert hook.status_code == 202
    # The demo runs a 4K Sonarr and Radarr by default, configured as extra instances with their own webhook URL.
    hook_4k = httpx.post(f"{exports['API']}/api/webhooks/sonarr/4k?token={exports['SMARTPLEX_WEBHOOK_SECRET']}",
                         json={"eventType": "Test"})  # fmt: skip
    assert hook_4k.status_code == 202
    assert httpx.get(f"http://127.0.0.1:{dagster_port}/server_info").status_code == 200
    output = demo.output()
    assert len(_value_columns(output)) == 1, output
    assert all(f"Simulated {s.title}" in output for s in KINDS)
    assert all(f"Simulated {Instance.parse(i).title}" in output for i in ("sonarr/4k", "radarr/4k"))

    engine = make_engine(f"sqlite:///{data_dir / 'smartplex.db'}")
    with engine.connect() as connection:
        assert all(connection.execute(select(sync_schedule.c.enabled)).scalars())  # a new database: all enabled
    disabled = httpx.patch(f"{exports['API']}/api/admin/schedules/sonarr", json={"enabled": False}, headers=admin)
    assert disabled.status_code == 200

    # Ctrl-C (SIGINT to the terminal's foreground group) while a sync runs.
    with dg.DagsterInstance.from_config(str(data_dir / "dagster")) as instance:
        started = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
        demo.wait_for("a sync in progress", lambda: instance.get_runs(filters=started), 180, interval=0.1)
    os.killpg(demo.make.pid, signal.SIGINT)
    demo.stopped()
    assert "Stopping..." in demo.output()
    assert demo.left_behind() == []
    left_to_sync = _check_nothing_in_flight(data_dir, engine)

    # Started again on the same ports; stopped as a service manager stops it (SIGTERM to the process).
    again = Demo(data_dir, api_port, dagster_port, tmp_path / "second.log")
    demos.append(again)
    exports = again.exports()
    schedules = httpx.get(f"{exports['API']}/api/admin/schedules", headers=admin).json()
    # The default Sonarr's row (the 4K one is another row of the same kind); the restart did not undo it.
    assert {s["library"]: s["enabled"] for s in schedules}["sonarr"] is False

    def synced() -> bool:
        with engine.connect() as connection:
            query = select(webhook_log.c.id).where(webhook_log.c.status.in_(("pending", "dispatched", "failed")))
            return not left_to_sync & {str(id_) for id_ in connection.execute(query).scalars()}

    again.wait_for("the webhooks left by the stop synced", synced, 180)
    again.demo_process().terminate()
    assert again.stopped() == 0, again.output()
    assert again.left_behind() == []
    _check_nothing_in_flight(data_dir, engine)
    engine.dispose()


def test_only_a_new_demo_database_gets_every_schedule_enabled(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert prepare_demo_database(engine, [Instance.parse("sonarr/4k")]) is True  # the 4K instance's schedule too
        with engine.begin() as connection:
            assert all(connection.execute(select(sync_schedule.c.enabled)).scalars())
            connection.execute(sync_schedule.update().where(sync_schedule.c.service == "radarr").values(enabled=False))
        assert prepare_demo_database(engine, [Instance.parse("sonarr/4k")]) is False
        with engine.connect() as connection:
            query = select(sync_schedule.c.service, sync_schedule.c.instance, sync_schedule.c.enabled)
            enabled = {(service, instance): on for service, instance, on in connection.execute(query)}
        assert enabled == {**{(s.name, "default"): s.name != "radarr" for s in KINDS}, ("sonarr", "4k"): True}
    finally:
        engine.dispose()
