"""The cluster: two API replicas, the daemon, Celery run workers, against PostgreSQL and RabbitMQ.

A burst spread over both replicas: every acknowledged webhook is stored once and settled once, by
one run that one worker took, and the runs spread over both workers. Then the faults, each checked
row by row: a worker killed with SIGKILL mid-run (its run fails, is retried on another worker, and
its rows settle once, under the retry), and a worker added mid-storm (it takes runs).
"""

from __future__ import annotations

import json
from collections import Counter

import dagster as dg
import pytest

from smartplex_dagster.runtime.orphans import WORKER_TAG
from tests.cluster.cluster import Cluster, check_settled_once
from tests.helpers import webhook_rows
from tests.resilience.burst import Outcome, marked_webhooks

pytestmark = [
    pytest.mark.timeout(420),
    pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning"),
]

SETTLE_SECONDS = 240


def test_burst_over_two_replicas_and_two_workers(cluster: Cluster) -> None:
    # Each step in a process of its own, as full refreshes and derived assets run: the workers' pool
    # processes must be able to start them.
    cluster.env["SMARTPLEX_WEBHOOK_RUN_EXECUTOR"] = "multiprocess"
    cluster.start_api()
    cluster.start_api()
    cluster.start_daemon()
    cluster.start_worker("worker-1")
    cluster.start_worker("worker-2")

    outcomes: list[Outcome] = []
    for _ in range(3):  # three waves, so several runs per service go through the queue
        outcomes += cluster.burst(marked_webhooks(60))
        cluster.wait_for("the wave settled", cluster.settled, SETTLE_SECONDS)
    assert all(o.ok for o in outcomes), Counter(o.status for o in outcomes)

    runs = check_settled_once(cluster, outcomes)
    taken = cluster.runs_taken()
    assert all(taken[name] for name in ("worker-1", "worker-2")), {k: len(v) for k, v in taken.items()}
    assert set(runs) <= {r for v in taken.values() for r in v}

    # Status and admin answer the same whichever replica answers.
    first, second = cluster.api_urls
    assert (
        cluster.admin_get(first, "/api/webhooks/status")["totals"]
        == cluster.admin_get(second, "/api/webhooks/status")["totals"]
    )
    assert cluster.admin_get(first, "/api/admin/schedules") == cluster.admin_get(second, "/api/admin/schedules")


def _sonarr_run_in_progress(cluster: Cluster) -> dg.DagsterRun | None:
    """A webhook run of sonarr that is started and has recorded its worker process."""
    started = cluster.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    for run in started:
        if run.tags.get("smartplex/instance") == "sonarr" and WORKER_TAG in run.tags:
            return run
    return None


def test_worker_killed_mid_run_then_one_added(cluster: Cluster) -> None:
    cluster.start_api()
    cluster.start_api()
    cluster.start_daemon()
    cluster.start_worker("worker-1")
    cluster.start_worker("worker-2")
    # Every answer from Sonarr takes seconds: its sync is still running when its worker is killed.
    cluster.sims.simulation.faults["sonarr"].update(latency=3.0)

    sonarr = [w for w in marked_webhooks(200) if w.source == "sonarr"][:10]
    outcomes = cluster.burst(sonarr)
    victim_run = cluster.wait_for("a sonarr run in progress", lambda: _sonarr_run_in_progress(cluster), 120, 0.1)
    victim = cluster.wait_for(
        "the worker that took it",
        lambda: next((n for n, runs in cluster.runs_taken().items() if victim_run.run_id in runs), None),
        30,
        0.1,
    )
    worker = json.loads(victim_run.tags[WORKER_TAG])
    cluster.kill_worker(victim)
    survivor = next(name for name in cluster.workers if name != victim)

    # A storm while one worker is down, and a new worker joins in the middle of it.
    outcomes += cluster.burst(marked_webhooks(60))
    cluster.start_worker("worker-3")
    outcomes += cluster.burst(marked_webhooks(120))
    cluster.wait_for("the storm settled", cluster.settled, SETTLE_SECONDS)
    cluster.sims.simulation.faults["sonarr"].clear()

    killed = cluster.instance.get_run_by_id(victim_run.run_id)
    assert killed is not None and killed.status == dg.DagsterRunStatus.FAILURE, killed and killed.status
    retries = cluster.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/parent_run_id": victim_run.run_id}))
    assert len(retries) == 1 and retries[0].status == dg.DagsterRunStatus.SUCCESS, (
        [r.status for r in retries],
        killed.tags,  # dagster/will_retry says whether Dagster meant to retry it
        [e.message for e in cluster.instance.all_logs(victim_run.run_id) if e.is_dagster_event][-8:],
    )
    taken = cluster.runs_taken()
    assert retries[0].run_id not in taken[victim], "the retry ran on the killed worker"
    assert any(retries[0].run_id in taken[name] for name in (survivor, "worker-3"))
    assert taken["worker-3"], "the worker added mid-storm took no run"

    check_settled_once(cluster, outcomes)
    rows = webhook_rows(cluster.engine)
    of_victim = [r for r in rows if r["run_key"] == victim_run.tags["dagster/run_key"]]
    assert of_victim and all(r["run_id"] == retries[0].run_id for r in of_victim), "the killed run's rows"
    assert worker["pid"], worker


def test_smartplex_run_starts_local_workers(cluster: Cluster) -> None:
    """``smartplex run --workers 2`` on the production instance: its workers take the runs; a stop ends them all."""
    import signal
    import subprocess
    import sys

    from smartplex_cli.stack import is_our_api
    from smartplex_cli.supervisor import free_port, wait_for_http

    api_port, dagster_port = free_port(), free_port()
    argv = [sys.executable, "-m", "smartplex_cli", "run", "--workers", "2", "--api-port", str(api_port),
            "--dagster-port", str(dagster_port)]  # fmt: skip
    with open(cluster.log_dir / "run.log", "wb") as log:
        stack = subprocess.Popen(argv, env=cluster.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{api_port}/openapi.json", 120, accept=is_our_api)
        cluster.api_ports.append(api_port)
        # The stack writes its logs under the data directory's logs/, which is the cluster's log directory.
        cluster.workers += ["worker-1", "worker-2"]
        outcomes = cluster.burst(marked_webhooks(40))
        cluster.wait_for("the burst settled", cluster.settled, SETTLE_SECONDS)
        check_settled_once(cluster, outcomes)
    finally:
        stack.send_signal(signal.SIGTERM)
        stack.wait(90)
    assert stack.returncode == 0, (cluster.log_dir / "run.log").read_text()[-3000:]
    taken = cluster.runs_taken()
    assert all(taken.values()), {name: len(runs) for name, runs in taken.items()}


def test_redis_as_the_broker(redis_cluster: Cluster) -> None:
    """The same path with Redis as the broker: every acknowledged row settled once, by runs the workers took."""
    cluster = redis_cluster
    cluster.start_api()
    cluster.start_daemon()
    cluster.start_worker("worker-1")
    cluster.start_worker("worker-2")
    outcomes = cluster.burst(marked_webhooks(60))
    cluster.wait_for("the burst settled", cluster.settled, SETTLE_SECONDS)
    assert all(o.ok for o in outcomes), Counter(o.status for o in outcomes)
    check_settled_once(cluster, outcomes)
    assert any(cluster.runs_taken().values())


def test_daemon_killed_mid_storm_and_restarted(cluster: Cluster) -> None:
    """The daemon dies with runs in the workers and rows claimed; started again, every row settles once."""
    cluster.start_api()
    cluster.start_api()
    cluster.start_daemon()
    cluster.start_worker("worker-1")
    cluster.start_worker("worker-2")
    outcomes = cluster.burst(marked_webhooks(60))
    cluster.wait_for("rows claimed", lambda: cluster.statuses().get("dispatched"), 60, 0.1)
    cluster.kill_daemon()
    outcomes += cluster.burst(marked_webhooks(60))  # they wait as pending while the daemon is down
    cluster.start_daemon()
    cluster.wait_for("the storm settled", cluster.settled, SETTLE_SECONDS)
    assert all(o.ok for o in outcomes), Counter(o.status for o in outcomes)
    check_settled_once(cluster, outcomes)
