"""The rollups behind the status and the admin page's charts give the figures of a full scan, on both
engines, whatever changed the rows since they were built."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, and_, delete, func, insert, select, update

from smartplex import webhook_rollups
from smartplex.column_types import utcnow
from smartplex.kinds import KIND_NAMES
from smartplex.latency import STAGES, percentiles
from smartplex.schema import webhook_log, webhook_rollup, webhook_rollup_stale
from smartplex.webhook_rollups import bucket_bounds, bucket_of
from webhook_api.admin_page.operations import received_over_time

STATUSES = ("pending", "dispatched", "processed", "failed", "ignored", "missing")
MOMENTS = ("dispatched_at", "run_created_at", "run_started_at", "sync_started_at", "sync_finished_at", "processed_at")
WINDOWS = (
    timedelta(minutes=20),
    timedelta(hours=5, minutes=17),
    timedelta(hours=25),
    timedelta(days=7),
    timedelta(days=30),
    timedelta(days=45),
)


def make_rows(now: datetime, count: int, days: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        received = now - timedelta(seconds=rng.uniform(-600, days * 86400))  # a few from a clock ahead of ours
        status = rng.choice(STATUSES)
        row: dict[str, Any] = {
            "id": uuid.uuid4(), "source": rng.choice(KIND_NAMES), "event_type": rng.choice(("Download", "Grab", "Test")),
            "payload": {}, "received_at": received, "status": status, "processed": status in ("processed", "failed", "ignored", "missing"),
            **dict.fromkeys(MOMENTS),
        }  # fmt: skip
        if status != "pending":
            moment = received
            steps = 1 if status == "dispatched" else 6 if status in ("processed", "failed") else 5
            for column in MOMENTS[:steps]:
                moment += timedelta(seconds=rng.lognormvariate(0, 1.2))
                row[column] = moment
            if status == "missing":
                row["processed_at"] = row["sync_started_at"]
            if status == "ignored":
                row |= {**dict.fromkeys(MOMENTS), "processed_at": received}
        rows.append(row)
    return rows


def full_scan(engine: Engine, since: datetime) -> dict[str, Any]:
    """The figures straight from webhook_log, as the status computed them before there were rollups."""
    recent = webhook_log.c.received_at >= since
    with engine.connect() as connection:
        counts = {
            (source, status): n
            for source, status, n in connection.execute(
                select(webhook_log.c.source, webhook_log.c.status, func.count())
                .where(recent)
                .group_by(webhook_log.c.source, webhook_log.c.status)
            )
        }
        newest = {
            source: connection.execute(
                select(func.max(webhook_log.c.received_at)).where(recent, webhook_log.c.source == source)
            ).scalar()
            for source in KIND_NAMES
        }
        latency = {
            source: percentiles(connection, and_(recent, webhook_log.c.source == source), stages=(STAGES[-1],))["total"]
            for source in KIND_NAMES
        }
        stages = percentiles(connection, recent)
    return {"counts": counts, "newest": newest, "latency": latency, "stages": stages}


def assert_near(value: float | None, exact: float | None) -> None:
    """Within the histogram bucket that holds the exact nearest-rank percentile."""
    if exact is None:
        assert value is None
        return
    assert value is not None
    lower, upper = bucket_bounds(bucket_of(exact))
    assert lower - 1e-3 <= value <= upper + 1e-3, (value, exact, (lower, upper))


def assert_same_as_full_scan(engine: Engine, now: datetime) -> None:
    for span in WINDOWS:
        since = now - span
        expected = full_scan(engine, since)
        with engine.connect() as connection:
            figures = webhook_rollups.window(connection, since, now)
        overall = webhook_rollups.Figures()
        for each in figures.values():
            overall.add(each)
        assert set(figures) <= {*KIND_NAMES, webhook_rollups.ALL_SOURCES}
        for source in KIND_NAMES:
            mine = figures.get(source, webhook_rollups.Figures())
            assert set(mine.stages) <= {webhook_rollups.WHOLE_PATH}
            for status in STATUSES:
                assert mine.statuses.get(status, 0) == expected["counts"].get((source, status), 0), (
                    span,
                    source,
                    status,
                )
            assert (mine.last[0] if mine.last else None) == expected["newest"][source], (span, source)
            exact = expected["latency"][source]
            assert mine.rows("total") == exact["rows"]
            assert_near(mine.quantile("total", 0.5), exact[0.5])
            assert_near(mine.quantile("total", 0.95), exact[0.95])
        for stage in STAGES:
            exact = expected["stages"][stage.name]
            assert overall.rows(stage.name) == exact["rows"], (span, stage.name)
            assert_near(overall.quantile(stage.name, 0.5), exact[0.5])
            assert_near(overall.quantile(stage.name, 0.95), exact[0.95])


def stale_hours(engine: Engine) -> set[int]:
    with engine.connect() as connection:
        return set(connection.execute(select(webhook_rollup_stale.c.hour)).scalars())


def test_every_window_equals_a_full_scan(engine: Engine) -> None:
    now = utcnow()
    rows = make_rows(now, 3000, days=50, seed=1)
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), rows)
    hours = {int(row["received_at"].timestamp()) // 3600 for row in rows}
    assert stale_hours(engine) == hours  # every hour a row went into, marked by the insert trigger

    # Before any rebuild (all scanned), while partly rebuilt (each reader rebuilds for half a second),
    # and when fully rebuilt.
    assert_same_as_full_scan(engine, now)
    webhook_rollups.rebuild(engine, now, budget=None)
    current = int(now.timestamp()) // 3600
    assert all(hour >= current for hour in stale_hours(engine))  # only the current hour (and later) is left
    with engine.connect() as connection:
        query = select(webhook_rollup.c.span, func.count()).group_by(webhook_rollup.c.span)
        spans = {span: count for span, count in connection.execute(query)}
    assert spans[webhook_rollups.HOUR] > 0 and spans[webhook_rollups.DAY] > 0
    assert_same_as_full_scan(engine, now)


@pytest.mark.parametrize("limit", [3, 10_000])
def test_changes_after_a_rebuild_are_seen(engine: Engine, limit: int) -> None:
    """Rows replayed, settled, purged, or inserted into hours long past, by any statement: their hours
    go stale and the figures follow, whether or not the next rebuild gets to them."""
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), make_rows(now, 1500, days=35, seed=2))
    webhook_rollups.rebuild(engine, now, budget=None)
    assert all(hour >= int(now.timestamp()) // 3600 for hour in stale_hours(engine))

    ten_days_ago = now - timedelta(days=10)
    with engine.begin() as connection:
        # A replay of old failed rows, a purge of the oldest rows, a settle, and a late arrival.
        replayed = connection.execute(
            update(webhook_log)
            .where(webhook_log.c.status == "failed", webhook_log.c.received_at < ten_days_ago)
            .values(status="pending", processed=False, processed_at=None, dispatched_at=None)
        ).rowcount
        purged = connection.execute(
            delete(webhook_log).where(webhook_log.c.received_at < now - timedelta(days=31))
        ).rowcount
        connection.execute(
            update(webhook_log)
            .where(webhook_log.c.status == "dispatched")
            .values(status="processed", processed=True, processed_at=webhook_log.c.dispatched_at)
        )
        connection.execute(insert(webhook_log), make_rows(now - timedelta(days=20), 40, days=1, seed=3))
    assert replayed > 0 and purged > 0
    assert len(stale_hours(engine)) > 30

    webhook_rollups.rebuild(engine, now, budget=None, limit=limit)
    assert_same_as_full_scan(engine, now)


def test_charts_from_rollups_equal_counting_rows(engine: Engine) -> None:
    now = utcnow()
    rows = make_rows(now, 2000, days=8, seed=4)
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), rows)
    webhook_rollups.rebuild(engine, now, budget=None, limit=100)  # some hours rebuilt, the rest scanned
    for size, periods in ((3600, 24), (86400, 7)):
        with engine.connect() as connection:
            series = received_over_time(connection, bucket=timedelta(seconds=size), buckets=periods, now=now)
        first = int(now.timestamp()) // size - periods + 1
        for source in KIND_NAMES:
            expected: list[dict[str, int]] = [{} for _ in range(periods)]
            for row in rows:
                position = int(row["received_at"].timestamp()) // size - first
                if row["source"] == source and 0 <= position < periods:
                    expected[position][row["status"]] = expected[position].get(row["status"], 0) + 1
            assert [bucket.counts for bucket in series[source]] == expected, (size, source)


def test_a_change_uncommitted_during_a_rebuild_is_not_lost(engine: Engine) -> None:
    """A rebuild cannot see a change still uncommitted; the change's own stale mark outlives the
    rebuild, so the next reader scans that hour again rather than trusting a rollup that missed it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: a rebuild waits for the change to commit")
    now = utcnow()
    old = now - timedelta(days=3)
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), make_rows(old, 50, days=1, seed=5))
    webhook_rollups.rebuild(engine, now, budget=None)
    assert all(hour >= int(now.timestamp()) // 3600 for hour in stale_hours(engine))

    with engine.connect() as writer:
        writer.execute(
            update(webhook_log).where(webhook_log.c.received_at < now - timedelta(days=1)).values(status="ignored")
        )
        writer.execute(insert(webhook_log), make_rows(old, 5, days=1, seed=6))
        assert webhook_rollups.rebuild(engine, now, budget=None) == 0  # nothing it can see is stale
        writer.commit()
    assert len(stale_hours(engine)) > 1  # the writer's marks, which the rebuild could not see
    assert_same_as_full_scan(engine, now)
    webhook_rollups.rebuild(engine, now, budget=None)
    assert all(hour >= int(now.timestamp()) // 3600 for hour in stale_hours(engine))
    assert_same_as_full_scan(engine, now)  # from the rebuilt rollups


def test_bucket_sql_agrees_with_python(engine: Engine) -> None:
    """The histogram bucket computed in SQL is the one :func:`bucket_of` gives, on both engines (durations
    well above a millisecond: SQLite times to the millisecond)."""
    now = utcnow()
    seconds = [0.0, 0.37, 1.0, 2.9, 11.0, 59.5, 3601.0, 86_000.0]
    rows = [
        {"id": uuid.uuid4(), "source": "plex", "event_type": "library.new", "payload": {}, "status": "processed",
         "processed": True, "received_at": now - timedelta(hours=2), "processed_at": now - timedelta(hours=2) + timedelta(seconds=s)}
        for s in seconds
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), rows)
        found = webhook_rollups.scan(connection, [(now - timedelta(days=1), None)])
    figures = found[(int((now - timedelta(hours=2)).timestamp()) // 3600, "plex")]
    assert sorted(figures.stages["total"]) == sorted({bucket_of(s) for s in seconds})
    for bucket, (count, total) in figures.stages["total"].items():
        members = [s for s in seconds if bucket_of(s) == bucket]
        assert count == len(members) and abs(total - sum(members)) < 1e-3


def test_a_backlog_of_stale_hours_is_caught_up_in_the_background(engine: Engine) -> None:
    """As after the upgrade, when every existing hour starts stale: one thread per process rebuilds
    them all, while readers keep answering exactly."""
    import time

    now = utcnow()
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), make_rows(now, 800, days=20, seed=7))
    with engine.connect() as connection:
        assert webhook_rollups.stale_before(connection, now) > 100
    assert webhook_rollups.catch_up_in_background(engine)
    assert_same_as_full_scan(engine, now)  # whatever the thread has done so far
    deadline = time.monotonic() + 120
    while True:
        with engine.connect() as connection:
            left = webhook_rollups.stale_before(connection, utcnow())
        if left == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert left == 0
    assert_same_as_full_scan(engine, now)


def test_one_mark_per_hour_is_kept(engine: Engine) -> None:
    """Each PostgreSQL transaction marks the hours it touched with a row of its own; a rebuild keeps one
    per hour, so the marks of the current hour do not pile up between rebuilds."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps one mark per hour in the first place")
    now = utcnow()
    for seed in range(6):  # six commits into the current hour
        with engine.begin() as connection:
            connection.execute(insert(webhook_log), make_rows(now, 3, days=0, seed=10 + seed))
    current = int(now.timestamp()) // 3600
    with engine.connect() as connection:
        marks = connection.execute(select(webhook_rollup_stale.c.hour, webhook_rollup_stale.c.writer)).all()
    assert len(marks) > len({hour for hour, _ in marks})  # several transactions marked the same hour
    webhook_rollups.rebuild(engine, now, budget=None)
    with engine.connect() as connection:
        hours = list(connection.execute(select(webhook_rollup_stale.c.hour)).scalars())
    assert sorted(hours) == sorted(set(hours)) and current in hours  # one mark each, the current one kept
    assert_same_as_full_scan(engine, now)


def test_an_unbounded_rebuild_waits_for_another_and_finishes(engine: Engine) -> None:
    """A reader's short rebuild may hold the lock when the background catch-up (or the retention job)
    asks for it: the unbounded rebuild waits its turn and still rebuilds every stale hour, where a
    reader's bounded one gives up at once (it scans what is stale)."""
    import threading

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite: the rebuild's lock is the database's one write lock, waited for by the driver")
    now = utcnow()
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), make_rows(now, 300, days=10, seed=9))
    with engine.connect() as connection:
        assert webhook_rollups.stale_before(connection, now) > 50
    held = engine.connect()
    holder = held.begin()
    assert webhook_rollups._lock(held)  # as a reader's rebuild holds it, mid-chunk
    assert webhook_rollups.rebuild(engine, now) == 0  # a reader: busy, so it scans instead
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(webhook_rollups.rebuild(engine, now, budget=None)))
    worker.start()
    worker.join(timeout=1.0)
    assert worker.is_alive()  # waiting, not given up
    holder.rollback()
    held.close()
    worker.join(timeout=60)
    assert not worker.is_alive() and result and result[0] > 50
    with engine.connect() as connection:
        assert webhook_rollups.stale_before(connection, now) == 0
    assert_same_as_full_scan(engine, now)
