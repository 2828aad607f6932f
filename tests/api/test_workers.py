"""``smartplex api --workers 2``: two processes on one port, each with its own writer, one database,
one set of metrics; SIGTERM or Ctrl-C stops them all. Real processes, on the embedded SQLite default (a
new data directory, migrated once before the workers start) and on PostgreSQL (a new schema)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from smartplex import migrate
from smartplex.db import make_engine
from smartplex.schema import webhook_log
from smartplex_cli.supervisor import free_port, kill_all, log_tail, wait_for_http
from tests.conftest import ADMIN_SECRET, WEBHOOK_SECRET, _postgres_schema_url, load_fixture

BODY = load_fixture("webhooks", "sonarr", "Download.json")
HOOK = {"Authorization": f"Bearer {WEBHOOK_SECRET}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_SECRET}"}
#: A new connection for every request: each is then accepted by whichever worker is free.
FRESH = {"Connection": "close"}
WORKERS = 2
BURST = 200


@pytest.fixture(params=["embedded", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """The database URL to set, or None for the embedded default under a new data directory."""
    if request.param == "embedded":
        yield None
        return
    for url in _postgres_schema_url(request.getfixturevalue("postgres_server")):
        engine = make_engine(url)
        migrate.upgrade(engine)  # a configured database is upgraded by hand, never by the API
        engine.dispose()
        yield url


class Server:
    """``smartplex api --workers N`` in a session of its own, with its output in a log file."""

    def __init__(self, database: str | None, tmp_path: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "api.log"
        data_dir = tmp_path / "data"
        self.database_url = database or f"sqlite:///{data_dir / 'smartplex.db'}"  # the embedded default's file
        env = {**os.environ, "SMARTPLEX_DATA_DIR": str(data_dir), "SMARTPLEX_WEBHOOK_SECRET": WEBHOOK_SECRET,
               "SMARTPLEX_ADMIN_SECRET": ADMIN_SECRET}  # fmt: skip
        env.pop("SMARTPLEX_DATABASE_URL", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if database is not None:
            env["SMARTPLEX_DATABASE_URL"] = database
        argv = [sys.executable, "-m", "smartplex_cli", "api", "--port", str(self.port), "--workers", str(WORKERS)]
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                argv, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )

    def workers(self) -> list[psutil.Process]:
        """The worker processes (multiprocessing's spawned children; not its resource tracker)."""
        children = psutil.Process(self.process.pid).children()
        return [c for c in children if "spawn_main" in " ".join(c.cmdline())]

    def wait_until_serving(self, timeout: float = 120) -> list[psutil.Process]:
        """Until every worker has started its app; the workers."""
        wait_for_http(f"{self.base}/readyz", timeout)
        deadline = time.monotonic() + timeout
        while self.log.read_text(errors="replace").count("Application startup complete") < WORKERS:
            assert self.process.poll() is None, "\n".join(log_tail(str(self.log), 40))
            assert time.monotonic() < deadline, "\n".join(log_tail(str(self.log), 40))
            time.sleep(0.2)
        workers = self.workers()
        assert len(workers) == WORKERS, workers
        return workers

    def family(self) -> list[psutil.Process]:
        """The command's process and every process under it (the workers, multiprocessing's tracker)."""
        command = psutil.Process(self.process.pid)
        return [command, *command.children(recursive=True)]

    def stored(self) -> list[tuple[str, int]]:
        """Each stored row's id, with how many rows have it."""
        engine = make_engine(self.database_url)
        with engine.connect() as connection:
            rows = connection.execute(select(webhook_log.c.id, func.count()).group_by(webhook_log.c.id)).all()
        engine.dispose()
        return [(str(id_), count) for id_, count in rows]

    def kill(self) -> None:
        if self.process.poll() is None:
            kill_all(self.family(), timeout=10)
        self.process.wait()


def _burst(base: str, count: int) -> list[str]:
    """``count`` webhooks at once over new connections; the ids of those answered 202."""

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{base}/api/webhooks/sonarr", json=BODY, headers=HOOK | FRESH, timeout=30)

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(post, range(count)))
    assert {r.status_code for r in responses} == {202}, [r.text for r in responses if r.status_code != 202][:3]
    return [r.json()["id"] for r in responses]


def _samples(collected: Any, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(
        sample.value
        for family in collected
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def _per_worker(metrics_dir: Path, pid: int, kind: str, scratch: Path) -> list[Any]:
    """What one worker alone counted: its own file, read the way a scrape reads them all."""
    own = scratch / f"{kind}-{pid}"
    own.mkdir(exist_ok=True)
    source = metrics_dir / f"{kind}_{pid}.db"
    if source.exists():
        shutil.copy(source, own / source.name)
    return list(MultiProcessCollector(None, path=str(own)).collect())


def _scraped_webhooks(base: str) -> float:
    text = httpx.get(f"{base}/metrics", headers=FRESH, timeout=30).text
    return _samples(text_string_to_metric_families(text), "smartplex_webhooks_total", outcome="pending")


def test_two_workers_share_the_port_the_database_and_the_metrics(database: str | None, tmp_path: Path) -> None:
    server = Server(database, tmp_path)
    try:
        workers = server.wait_until_serving()
        metrics_dir = Path(workers[0].environ()["PROMETHEUS_MULTIPROC_DIR"])
        assert metrics_dir.is_dir() and metrics_dir.name.startswith("smartplex-metrics-")

        # Bursts until both workers have answered webhooks (the kernel hands each new connection to
        # whichever worker accepts first; one burst is nearly always enough).
        accepted: list[str] = []
        per_worker: dict[int, float] = {}
        for _ in range(5):
            accepted += _burst(server.base, BURST)
            per_worker = {
                w.pid: _samples(_per_worker(metrics_dir, w.pid, "counter", tmp_path), "smartplex_webhooks_total",
                                outcome="pending")
                for w in workers
            }  # fmt: skip
            if all(per_worker.values()):
                break
        assert all(per_worker.values()), f"webhooks answered per worker: {per_worker}"
        assert sum(per_worker.values()) == len(accepted)

        # Every 202 is one stored row.
        stored = server.stored()
        assert len(accepted) == len(set(accepted))
        assert {id_ for id_, _ in stored} == set(accepted)
        assert all(count == 1 for _, count in stored)

        # /metrics and the status count every worker's webhooks, whichever worker answers.
        scraped_by: dict[int, float] = {}
        for _ in range(50):
            assert _scraped_webhooks(server.base) == len(accepted)
            status = httpx.get(f"{server.base}/api/webhooks/status", headers=ADMIN | FRESH, timeout=30)
            assert status.status_code == 200, status.text
            assert status.json()["sources"]["sonarr"]["received"] == len(accepted)
            scraped_by = {
                w.pid: _samples(_per_worker(metrics_dir, w.pid, "histogram", tmp_path),
                                "smartplex_http_request_duration_seconds_count", route="/metrics")
                for w in workers
            }  # fmt: skip
            if all(scraped_by.values()):
                break
        assert all(scraped_by.values()), f"/metrics scrapes answered per worker: {scraped_by}"

        # SIGTERM to the command stops every worker, and its metrics directory goes with it.
        family = server.family()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0, "\n".join(log_tail(str(server.log), 40))
        _, alive = psutil.wait_procs(family, timeout=10)
        assert not alive
        assert not metrics_dir.exists()
        assert server.log.read_text().count("Application shutdown complete") == WORKERS
    finally:
        server.kill()


def test_ctrl_c_stops_every_worker_after_what_it_acknowledged(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole process group, the command and its workers at once:
    all of them stop, each worker once it has committed what it acknowledged."""
    server = Server(None, tmp_path)
    try:
        server.wait_until_serving()
        accepted = _burst(server.base, 40)
        family = server.family()
        os.killpg(server.process.pid, signal.SIGINT)
        assert server.process.wait(timeout=60) == 0, "\n".join(log_tail(str(server.log), 40))
        _, alive = psutil.wait_procs(family, timeout=10)
        assert not alive
        assert sorted(server.stored()) == sorted((id_, 1) for id_ in accepted)
    finally:
        server.kill()
