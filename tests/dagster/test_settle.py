"""A failure Dagster retries is settled by its retry, however long the daemon was away."""

from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pytest
from dagster._core.utils import make_new_run_id
from dagster._daemon.types import DaemonHeartbeat
from sqlalchemy import Engine, select

from smartplex.column_types import utcnow
from smartplex.schema import webhook_log
from smartplex_dagster.defs.resources import DatabaseResource
from smartplex_dagster.defs.settle import (
    RETRY_DAEMON_SEEN_TAG,
    RUN_KEY_TAG,
    WILL_RETRY_TAG,
    reconcile_run,
    settle_run,
)
from smartplex_dagster.runtime.dagster_internals import AUTO_RETRY_RUN_ID_TAG, PARENT_RUN_ID_TAG, RETRY_CURSOR
from tests.dagster.conftest import database  # noqa: F401
from tests.dagster.test_webhook_sensor import add_rows, tick
from tests.helpers import statuses

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

LONG_AFTER = timedelta(minutes=30)


@pytest.fixture
def retrying() -> Iterator[dg.DagsterInstance]:
    """An instance with run retries on, as ``dagster.yaml`` configures them."""
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 1}}) as instance:
        yield instance


def _run(instance: dg.DagsterInstance, run_key: str, status: dg.DagsterRunStatus, **tags: str) -> dg.DagsterRun:
    run = dg.DagsterRun(job_name="__ASSET_JOB", run_id=make_new_run_id(), status=status,
                        tags={RUN_KEY_TAG: run_key, "smartplex/trigger": "webhook", **tags})  # fmt: skip
    instance.add_run(run)
    return run


def _failed(instance: dg.DagsterInstance, run_key: str) -> dg.DagsterRun:
    """A run that failed as Dagster records it: failure event, end time, then ``will_retry``."""
    run = _run(instance, run_key, dg.DagsterRunStatus.STARTED)
    instance.report_run_failed(run, "the sync failed")
    failed = instance.get_run_by_id(run.run_id)
    assert failed is not None and failed.status == dg.DagsterRunStatus.FAILURE
    assert failed.tags[WILL_RETRY_TAG] == "true"
    return failed


def _retry_daemon(instance: dg.DagsterInstance, at: float, cursor: int | None = None) -> None:
    instance.add_daemon_heartbeat(DaemonHeartbeat(at, "EVENT_LOG_CONSUMER", "daemon", None))
    if cursor is not None:
        key = RETRY_CURSOR  # as the daemon stores it
        instance.daemon_cursor_storage.set_cursor_values({key: str(cursor)})


def _failure_id(instance: dg.DagsterInstance, run: dg.DagsterRun) -> int:
    """The id the retry daemon's cursor counts the run's failure event by."""
    failures = instance.event_log_storage.get_logs_for_all_runs_by_log_id(
        after_cursor=-1, dagster_event_type={dg.DagsterEventType.RUN_FAILURE}
    )
    return max(log_id for log_id, entry in failures.items() if entry.run_id == run.run_id)


def _settled_run_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(webhook_log.c.run_id).where(webhook_log.c.run_id.is_not(None))).scalars())


def _dispatch(instance: dg.DagsterInstance, database: DatabaseResource, engine: Engine) -> str:  # noqa: F811
    add_rows(engine, [("radarr", "MovieAdded")] * 2)
    (request,) = tick(instance, database)
    return request.run_key


def test_the_retrys_success_is_the_outcome(
    retrying: dg.DagsterInstance,
    database: DatabaseResource,  # noqa: F811
    engine: Engine,
) -> None:
    run_key = _dispatch(retrying, database, engine)
    failed = _failed(retrying, run_key)
    retry = _run(retrying, run_key, dg.DagsterRunStatus.STARTED, **{PARENT_RUN_ID_TAG: failed.run_id})
    retrying.add_run_tags(failed.run_id, {AUTO_RETRY_RUN_ID_TAG: retry.run_id})
    assert settle_run(retrying, database.engine, failed) == 0  # the failure sensor: the retry still runs
    assert reconcile_run(retrying, engine, run_key).state == "waiting"
    assert statuses(engine) == {"dispatched": 2}

    event = dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_SUCCESS.value, job_name=retry.job_name)
    retrying.run_storage.handle_run_event(retry.run_id, event)
    # Even the failed run's own (late) pass records the retry's success, long after its grace.
    assert settle_run(retrying, database.engine, failed) == 2
    assert statuses(engine) == {"processed": 2} and _settled_run_ids(engine) == {retry.run_id}


def test_a_retry_found_by_its_parent_tag_alone_is_followed(
    retrying: dg.DagsterInstance,
    database: DatabaseResource,  # noqa: F811
    engine: Engine,
) -> None:
    run_key = _dispatch(retrying, database, engine)
    failed = _failed(retrying, run_key)
    # Created, the daemon died before tagging the failed run: the retry has a run key of its own here,
    # so only its parent tag leads to it.
    retry = _run(retrying, "another-key", dg.DagsterRunStatus.SUCCESS, **{PARENT_RUN_ID_TAG: failed.run_id})
    assert settle_run(retrying, database.engine, failed) == 2
    assert _settled_run_ids(engine) == {retry.run_id}


def test_a_failure_waits_for_a_retry_daemon_that_is_down(
    retrying: dg.DagsterInstance,
    database: DatabaseResource,  # noqa: F811
    engine: Engine,
) -> None:
    run_key = _dispatch(retrying, database, engine)
    before = utcnow().timestamp() - 60
    _retry_daemon(retrying, at=before, cursor=0)  # last seen a minute before the failure
    failed = _failed(retrying, run_key)
    later = utcnow() + LONG_AFTER
    # Down for half an hour: no retry yet, but the daemon has not seen the failure. Keep waiting.
    assert reconcile_run(retrying, engine, run_key, now=later).state == "waiting"
    assert statuses(engine) == {"dispatched": 2}

    # Back: still waiting (the grace counts from its return) ...
    _retry_daemon(retrying, at=later.timestamp())
    assert reconcile_run(retrying, engine, run_key, now=later + timedelta(minutes=1)).state == "waiting"
    tagged = retrying.get_run_by_id(failed.run_id)
    assert tagged is not None and float(tagged.tags[RETRY_DAEMON_SEEN_TAG]) == later.timestamp()
    # ... and it retries the run: the retry's outcome lands.
    retry = _run(retrying, run_key, dg.DagsterRunStatus.SUCCESS, **{PARENT_RUN_ID_TAG: failed.run_id})
    reconciled = reconcile_run(retrying, engine, run_key, now=later + timedelta(minutes=2))
    assert reconciled.state == "settled" and reconciled.run is not None and reconciled.run.run_id == retry.run_id
    assert statuses(engine) == {"processed": 2} and _settled_run_ids(engine) == {retry.run_id}


def test_a_retry_daemon_back_for_longer_than_the_grace_no_longer_holds_the_failure(
    retrying: dg.DagsterInstance,
    database: DatabaseResource,  # noqa: F811
    engine: Engine,
) -> None:
    run_key = _dispatch(retrying, database, engine)
    failed = _failed(retrying, run_key)
    back = utcnow() + LONG_AFTER
    _retry_daemon(retrying, at=back.timestamp(), cursor=0)  # its cursor is stuck before the failure
    assert reconcile_run(retrying, engine, run_key, now=back).state == "waiting"
    assert reconcile_run(retrying, engine, run_key, now=back + timedelta(minutes=11)).state == "settled"
    assert statuses(engine) == {"failed": 2} and _settled_run_ids(engine) == {failed.run_id}


def test_a_failure_the_retry_daemon_has_passed_over_is_recorded_at_once(
    retrying: dg.DagsterInstance,
    database: DatabaseResource,  # noqa: F811
    engine: Engine,
) -> None:
    run_key = _dispatch(retrying, database, engine)
    failed = _failed(retrying, run_key)
    _retry_daemon(retrying, at=utcnow().timestamp(), cursor=_failure_id(retrying, failed) - 1)
    assert reconcile_run(retrying, engine, run_key).state == "waiting"  # not handled yet
    # The daemon handled the failure and made no retry (say, the job is gone from the code location).
    _retry_daemon(retrying, at=utcnow().timestamp(), cursor=_failure_id(retrying, failed))
    assert reconcile_run(retrying, engine, run_key).state == "settled"
    assert statuses(engine) == {"failed": 2}


def test_a_missing_end_time_does_not_wait_for_ever(
    retrying: dg.DagsterInstance,
    database: DatabaseResource,  # noqa: F811
    engine: Engine,
) -> None:
    run_key = _dispatch(retrying, database, engine)
    # A failed run with no end time and no failure event (written by hand, or by an old version).
    failed = _run(retrying, run_key, dg.DagsterRunStatus.FAILURE, **{WILL_RETRY_TAG: "true"})
    record = retrying.get_run_record_by_id(failed.run_id)
    assert record is not None and record.end_time is None
    assert reconcile_run(retrying, engine, run_key).state == "waiting"  # just written: a retry may come
    assert reconcile_run(retrying, engine, run_key, now=utcnow() + timedelta(minutes=11)).state == "settled"
    assert statuses(engine) == {"failed": 2}


def test_a_missing_run_is_reported_missing(
    retrying: dg.DagsterInstance,
    database: DatabaseResource,  # noqa: F811
    engine: Engine,
) -> None:
    run_key = _dispatch(retrying, database, engine)
    assert reconcile_run(retrying, engine, run_key).state == "missing"
    assert statuses(engine) == {"dispatched": 2}
