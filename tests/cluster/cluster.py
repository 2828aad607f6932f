"""A cluster on loopback: two API replicas, ``dagster-daemon``, Celery run workers, the simulators.

Real processes against real PostgreSQL and RabbitMQ. Each test gets a private product database, a
private Dagster database (the repository's production ``dagster.yaml``: PostgreSQL storage, the
Celery run launcher) and a private RabbitMQ vhost, so nothing leaks between tests or into the shared
servers' other users.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import dagster as dg
import httpx
import psutil
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from smartplex import migrate
from smartplex.db import make_engine
from smartplex_cli import dagster_home
from smartplex_cli.stack import is_our_api, migrate_dagster, start_daemon
from smartplex_cli.supervisor import Supervisor, free_port, kill_all, wait_for_http
from smartplex_simulators.serve import RunningSimulators
from tests.cluster.rabbitmq import PrivateRabbitMQ
from tests.conftest import ADMIN_SECRET, WEBHOOK_SECRET
from tests.helpers import statuses, webhook_rows
from tests.requirements import require_or_skip
from tests.resilience.burst import Burst, Outcome, Webhook, check_ledger

T = TypeVar("T")
IN_PROGRESS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
_TOOK = re.compile(r"took run ([0-9a-f-]{36})")


def rabbitmq_url() -> str:
    """The shared RabbitMQ's AMQP URL, without a vhost; the test is skipped (or failed, in CI) without one."""
    url = os.environ.get("SMARTPLEX_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672")
    parsed = make_url(url.replace("amqp://", "postgresql://", 1))
    try:
        import socket

        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5672), timeout=3):
            pass
    except OSError as exc:
        require_or_skip(f"RabbitMQ not reachable at {parsed.host}:{parsed.port}: {exc}")
    if shutil.which("rabbitmqctl") is None:
        require_or_skip("rabbitmqctl is needed to make a private vhost")
    return url


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@dataclass
class Cluster:
    env: dict[str, str]
    engine: Engine
    sims: RunningSimulators
    log_dir: Path
    instance: dg.DagsterInstance
    supervisor: Supervisor = field(default_factory=Supervisor)
    api_ports: list[int] = field(default_factory=list)
    workers: list[str] = field(default_factory=list)

    @property
    def api_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.api_ports]

    def start_api(self) -> None:
        port = free_port()
        name = f"api-{len(self.api_ports) + 1}"
        argv = [sys.executable, "-m", "smartplex_cli", "api", "--port", str(port)]
        self.supervisor.start(name, argv, self.env, str(self.log_dir / f"{name}.log"))
        wait_for_http(f"http://127.0.0.1:{port}/openapi.json", 60, self.supervisor, accept=is_our_api)
        self.api_ports.append(port)

    def start_daemon(self) -> None:
        start_daemon(self.supervisor, self.env, self.log_dir)

    def start_worker(self, name: str) -> None:
        """``smartplex worker`` (one run at a time), named ``name`` in its log and in Celery."""
        argv = [sys.executable, "-m", "smartplex_cli", "worker", "--concurrency", "1", "--name", f"{name}@cluster-test"]
        self.supervisor.start(name, argv, self.env, self.worker_log(name))
        self.workers.append(name)
        self.wait_for(f"{name} ready", lambda: "ready." in Path(self.worker_log(name)).read_text(errors="replace"), 60)

    def worker_log(self, name: str) -> str:
        return str(self.log_dir / f"{name}.log")

    def runs_taken(self) -> dict[str, list[str]]:
        """Worker name -> the run ids its log says it took."""
        return {name: _TOOK.findall(Path(self.worker_log(name)).read_text(errors="replace")) for name in self.workers}

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker and its pool processes, as losing its machine would."""
        process = self.supervisor.processes[name]
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        os.killpg(process.pid, signal.SIGKILL)
        kill_all(family, timeout=10)
        process.wait(10)
        del self.supervisor.processes[name]

    def kill_daemon(self) -> None:
        """SIGKILL the daemon and its code servers (sessions of their own); the workers and their runs go on."""
        process = self.supervisor.processes.pop("dagster-daemon")
        family = _tree(process.pid)
        os.killpg(process.pid, signal.SIGKILL)
        kill_all(family, timeout=10)
        process.wait(10)

    def statuses(self) -> dict[str, int]:
        return statuses(self.engine)

    def settled(self) -> bool:
        """No row waits, and no run is in progress (a run settles its rows before it ends)."""
        counts = self.statuses()
        if counts.get("pending") or counts.get("dispatched"):
            return False
        return self.instance.get_runs_count(filters=dg.RunsFilter(statuses=IN_PROGRESS)) == 0

    def wait_for(self, what: str, check: Callable[[], T], timeout: float, interval: float = 0.5) -> T:
        """Poll ``check`` until it returns something truthy; fail if a process died or time ran out."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            dead = self.supervisor.exited()
            assert not dead, f"{dead} exited while waiting for {what}:\n{self.supervisor.exit_report()}"
            assert time.monotonic() < deadline, (
                f"no {what} within {timeout:.0f}s: {self.statuses()} (logs: {self.log_dir})"
            )
            time.sleep(interval)

    def burst(self, webhooks: list[Webhook]) -> list[Outcome]:
        """Send ``webhooks``, spread over every API replica in turn; the outcomes, in no particular order."""
        shares = [webhooks[i :: len(self.api_urls)] for i in range(len(self.api_urls))]

        async def all_of_them() -> list[Outcome]:
            bursts = [Burst(url, share, concurrency=8) for url, share in zip(self.api_urls, shares, strict=True)]
            results = await asyncio.gather(*(b.run() for b in bursts))
            return [o for outcomes in results for o in outcomes]

        return asyncio.run(all_of_them())

    def admin_get(self, base_url: str, path: str) -> dict:
        response = httpx.get(f"{base_url}{path}", headers={"Authorization": f"Bearer {ADMIN_SECRET}"}, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def stop(self) -> None:
        family = [d for p in self.supervisor.processes.values() for d in _tree(p.pid)]
        self.supervisor.stop(timeout=10)
        kill_all([p for p in family if p.is_running()], timeout=5)


#: A settled webhook row's statuses.
SETTLED = {"processed", "ignored", "missing"}


def check_settled_once(cluster: Cluster, outcomes: list[Outcome]) -> dict[str, dg.DagsterRun]:
    """Every acknowledged row stored once and settled once by a successful run one worker took.

    Returns the runs that settled rows, by id."""
    figures, problems = check_ledger(cluster.engine, outcomes, "burst")
    assert not problems, problems
    acknowledged = {o.row_id for o in outcomes if o.ok}
    rows = {str(r["id"]): r for r in webhook_rows(cluster.engine)}
    unsettled = {i: rows[i]["status"] for i in acknowledged if rows[i]["status"] not in SETTLED}
    assert not unsettled, f"rows not settled: {Counter(unsettled.values())} ({figures})"
    taken = cluster.runs_taken()
    takers = Counter(run_id for runs in taken.values() for run_id in runs)
    assert all(count == 1 for count in takers.values()), f"a run was taken twice: {takers.most_common(3)}"
    runs = {}
    for row_id in acknowledged:
        row = rows[row_id]
        if row["status"] == "ignored":
            continue
        run_id = row["run_id"]
        assert run_id, f"row {row_id} settled without a run"
        run = runs.get(run_id) or cluster.instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS, (
            f"row {row_id}: run {run_id} is {run and run.status}"
        )
        assert takers[run_id] == 1, f"run {run_id} was taken by no worker"
        runs[run_id] = run
    # One successful run per batch of rows: a run key never ran twice to success.
    succeeded = Counter(
        r.tags.get("dagster/run_key")
        for r in cluster.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
        if r.tags.get("smartplex/trigger") == "webhook"
    )
    assert all(count == 1 for count in succeeded.values()), succeeded.most_common(3)
    return runs


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@contextmanager
def private_cluster(
    postgres_server: str,
    broker: str,
    sims: RunningSimulators,
    tmp_path: Path,
    rabbitmqctl: Callable[..., None] = _rabbitmqctl,
) -> Iterator[Cluster]:
    """Private databases and vhost, migrated, with the environment every process gets; the caller starts them.

    ``rabbitmqctl`` makes the vhost on the broker's node (the shared one's, by default). ``DAGSTER_HOME``,
    ``DAGSTER_PG_*`` and ``CELERY_*`` are set in this process too while it lasts, for its own look at
    the instance."""
    tag = uuid.uuid4().hex[:10]
    vhost, product_db, dagster_db = f"smartplex_test_{tag}", f"sp_cluster_{tag}", f"dagster_{tag}"
    # RabbitMQ: a private vhost. Redis has none: a private queue, on the database of the URL.
    redis = broker.startswith("redis://")
    queue = f"smartplex_test_{tag}" if redis else "smartplex"
    server = make_url(postgres_server)
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for database in (product_db, dagster_db):
            connection.execute(text(f"CREATE DATABASE {database}"))
    if not redis:
        rabbitmqctl("add_vhost", vhost)
    home = tmp_path / "dagster"
    home.mkdir()
    config = dagster_home.PRODUCTION_CONFIG.read_text()
    (home / "dagster.yaml").write_text(config.replace("default_queue: smartplex", f"default_queue: {queue}"))
    product_url = server.set(database=product_db).render_as_string(hide_password=False)
    dagster_url = server.set(drivername="postgresql+psycopg2", database=dagster_db).render_as_string(
        hide_password=False
    )
    env = {
        **os.environ,
        **sims.env(),
        "SMARTPLEX_DATABASE_URL": product_url,
        "SMARTPLEX_DATA_DIR": str(tmp_path),
        "SMARTPLEX_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SMARTPLEX_ADMIN_SECRET": ADMIN_SECRET,
        "SMARTPLEX_SENSOR_INTERVAL_SECONDS": "1",
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": server.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(server.port or 5432),
        "DAGSTER_PG_USER": server.username or "postgres",
        "DAGSTER_PG_PASSWORD": server.password or "",
        "DAGSTER_PG_DB": dagster_db,
        "CELERY_BROKER_URL": broker if redis else f"{broker}/{vhost}",
        "SMARTPLEX_WORKER_QUEUE": queue,
        # Persistent: the task states outlive the worker that ran them.
        "CELERY_RESULT_BACKEND": f"db+{dagster_url}",
    }
    own = ("DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD",
           "DAGSTER_PG_DB", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")  # fmt: skip
    saved = {name: os.environ.get(name) for name in own}
    os.environ.update({name: env[name] for name in own})
    engine = make_engine(product_url, timeout=10)
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    cluster = None
    try:
        if not redis:
            user = make_url(broker.replace("amqp://", "postgresql://", 1)).username or "guest"
            rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        migrate.upgrade(engine)
        migrate_dagster(env)
        cluster = Cluster(env, engine, sims, log_dir, dg.DagsterInstance.from_config(str(home)))
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
            cluster.instance.dispose()
        engine.dispose()
        with admin.connect() as connection:
            for database in (product_db, dagster_db):
                connection.execute(text(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        admin.dispose()
        if redis:
            _drop_redis_queue(broker, queue)
        else:
            rabbitmqctl("delete_vhost", vhost)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _drop_redis_queue(broker: str, queue: str) -> None:
    """The queue's list and its binding (kombu keeps both under the queue's name)."""
    import redis

    client = redis.Redis.from_url(broker)
    try:
        client.delete(queue, *client.keys(f"*{queue}*"))
    finally:
        client.close()


def redis_url() -> str:
    """The shared Redis's URL; the test is skipped (or failed, in CI) without one."""
    import redis

    url = os.environ.get("SMARTPLEX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        require_or_skip(f"Redis not reachable at {url}: {exc}")
    return url


@pytest.fixture
def redis_cluster(postgres_server: str, sims: RunningSimulators, tmp_path: Path) -> Iterator[Cluster]:
    """A private cluster whose broker is Redis."""
    with private_cluster(postgres_server, redis_url(), sims, tmp_path) as running:
        yield running


@pytest.fixture
def cluster(postgres_server: str, sims: RunningSimulators, tmp_path: Path) -> Iterator[Cluster]:
    """A private cluster (:func:`private_cluster`); the test starts its processes."""
    with private_cluster(postgres_server, rabbitmq_url(), sims, tmp_path) as running:
        yield running


@pytest.fixture
def private_broker_cluster(
    postgres_server: str, sims: RunningSimulators, tmp_path: Path, private_rabbitmq: PrivateRabbitMQ
) -> Iterator[Cluster]:
    """A private cluster whose broker is the test's own RabbitMQ node (``private_rabbitmq``), which the
    test may stop and start; it is running again when the cluster is taken down."""
    node = private_rabbitmq
    with private_cluster(postgres_server, node.url, sims, tmp_path, node.rabbitmqctl) as running:
        try:
            yield running
        finally:
            if not node.running:
                node.start()
