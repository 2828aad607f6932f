"""The broker restarted mid-storm: nothing acknowledged is lost, and runs resume.

The cluster's broker is a RabbitMQ node of the test's own (the machine's shared one is never
restarted). A storm goes to both API replicas; once runs are flowing, the node is stopped as a
service manager stops it, left down for several seconds while webhooks keep coming and the sensor
keeps creating runs, until a run's launch is waiting for it, then started again on the same
data. Every acknowledged webhook must be stored
once and settled once by a successful run that one worker took, runs launched while the broker was
down included.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import dagster as dg
import pytest

from tests.cluster.cluster import Cluster, check_settled_once
from tests.cluster.rabbitmq import PrivateRabbitMQ
from tests.resilience.burst import Outcome, marked_webhooks

pytestmark = [
    pytest.mark.timeout(480),
    pytest.mark.filterwarnings("ignore::dagster.BetaWarning", "ignore::dagster.PreviewWarning"),
]

SETTLE_SECONDS = 240
#: The least the broker stays down, from the end of its shutdown to the start of its next boot (which
#: takes a few seconds more); it stays down longer, until a run's launch is waiting for it.
DOWN_SECONDS = 8
#: The most it waits for such a launch: runs keep being created while webhooks arrive, and the run
#: queue looks every second.
LAUNCH_WITHIN_SECONDS = 90
WAVES, PER_WAVE, WAVE_SECONDS = 60, 10, 0.5
#: Waves sent once the broker is back, however long it was down.
WAVES_AFTER = 10


def _storm(cluster: Cluster, outcomes: list[Outcome], errors: list[BaseException], back: threading.Event) -> None:
    """At least ``WAVES`` waves of webhooks, one every ``WAVE_SECONDS``, each spread over both replicas,
    and ``WAVES_AFTER`` more once the broker is ``back``."""
    try:
        started, wave, after = time.monotonic(), 0, 0
        while wave < WAVES or after < WAVES_AFTER:
            outcomes += cluster.burst(marked_webhooks(PER_WAVE))
            wave += 1
            after += back.is_set()
            time.sleep(max(0.0, started + wave * WAVE_SECONDS - time.monotonic()))
    except BaseException as exc:  # seen by the test, which joins this thread
        errors.append(exc)


#: dagster-celery's run event once the broker has taken a run's task (after its launcher's name).
FORWARDED = "Celery task has been forwarded to the broker."


def _waiting_for_the_broker(cluster: Cluster) -> bool:
    """Whether a run's launch has begun and its task has not reached the broker: it waits for it."""
    for run in cluster.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING])):
        records = cluster.instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
        if not any((r.event_log_entry.message or "").endswith(FORWARDED) for r in records):
            return True
    return False


def _handed_over_across(cluster: Cluster, down: float, up: float) -> list[str]:
    """Runs whose launch began before the broker was back (wall-clock ``up``) and whose task reached
    the broker after it went down (``down``): runs launched while it was down."""
    found = []
    for run in cluster.instance.get_runs():
        records = cluster.instance.get_records_for_run(
            run.run_id, of_type={dg.DagsterEventType.RUN_STARTING, dg.DagsterEventType.ENGINE_EVENT}
        ).records
        starting = [r.event_log_entry.timestamp for r in records if r.event_log_entry.dagster_event_type
                    == dg.DagsterEventType.RUN_STARTING]  # fmt: skip
        forwarded = [
            r.event_log_entry.timestamp for r in records if (r.event_log_entry.message or "").endswith(FORWARDED)
        ]
        if any(t < up for t in starting) and any(t > down for t in forwarded):
            found.append(run.run_id)
    return found


def test_broker_restarted_mid_storm(private_broker_cluster: Cluster, private_rabbitmq: PrivateRabbitMQ) -> None:
    cluster, broker = private_broker_cluster, private_rabbitmq
    cluster.start_api()
    cluster.start_api()
    cluster.start_daemon()
    cluster.start_worker("worker-1")
    cluster.start_worker("worker-2")

    outcomes: list[Outcome] = []
    errors: list[BaseException] = []
    back = threading.Event()
    storm = threading.Thread(target=_storm, args=(cluster, outcomes, errors, back), daemon=True)
    storm.start()
    # Mid-storm: runs have gone through the broker to both workers, rows are claimed.
    cluster.wait_for("runs taken", lambda: sum(map(len, cluster.runs_taken().values())) >= 2, 120, 0.1)
    cluster.wait_for("rows claimed", lambda: cluster.statuses().get("dispatched"), 60, 0.1)

    taken_before = {run for runs in cluster.runs_taken().values() for run in runs}
    stopping = time.monotonic()
    broker.stop()
    stopped_wall = time.time()  # its shutdown is over: a run handed over from now on waited for it
    time.sleep(DOWN_SECONDS)
    # Down until a run's launch waits for it, whatever the machine's pace.
    cluster.wait_for("a run waiting for the broker", lambda: _waiting_for_the_broker(cluster),
                     LAUNCH_WITHIN_SECONDS, 0.2)  # fmt: skip
    broker.start()
    restarted, restarted_wall = time.monotonic(), time.time()
    back.set()

    storm.join(WAVES * WAVE_SECONDS + LAUNCH_WITHIN_SECONDS + 120)
    assert not storm.is_alive() and not errors, errors
    cluster.wait_for("the storm settled", cluster.settled, SETTLE_SECONDS)

    # The API needs no broker: every webhook was acknowledged, those sent while it was down included.
    assert all(o.ok for o in outcomes), Counter(o.status for o in outcomes)
    during = [o for o in outcomes if stopping <= o.started and o.finished <= restarted]
    assert during, "no webhook was sent while the broker was down"
    runs = check_settled_once(cluster, outcomes)

    # Runs went on: the runs launched while the broker was down waited for it, reached a worker once
    # it was back, and succeeded (webhook runs and full refreshes alike); so did runs created after it.
    launched = _handed_over_across(cluster, stopped_wall, restarted_wall)
    assert launched, "no run was launched while the broker was down"
    taken_after = {run for runs in cluster.runs_taken().values() for run in runs} - taken_before
    for run_id in launched:
        run = cluster.instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS, (run_id, run and run.status)
        assert run_id in taken_after, f"run {run_id} was not taken after the restart"
    assert any(o.started > restarted for o in outcomes), "no webhook was sent after the restart"
    assert set(runs) & taken_after, "no run taken after the restart settled rows"
    print(
        f"broker down {restarted - stopping:.1f} s; {len(outcomes)} webhooks, {len(during)} while it was down; "
        f"{len(launched)} runs launched while it was down; {len(taken_after)} runs taken after it came back"
    )
