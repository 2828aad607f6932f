"""Giving back the work of a run that will never finish (``webhook_queue.requeue``,
``schedule_state.request_refresh_again``), on either engine."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select, update

from smartplex import schedule_state, webhook_queue
from smartplex.column_types import utcnow
from smartplex.schema import sync_schedule, webhook_log
from tests.dagster.test_webhook_sensor import add_rows
from tests.helpers import statuses, webhook_rows


def test_dispatched_rows_go_back_to_pending_under_a_new_run_key(engine: Engine) -> None:
    add_rows(engine, [("radarr", "MovieAdded")] * 3 + [("sonarr", "Download")] * 2)
    with engine.begin() as connection:
        groups = {g.instance.id: g for g in webhook_queue.pending_groups(connection)}
        for group in groups.values():
            webhook_queue.claim(connection, group, utcnow())
    with engine.begin() as connection:
        assert webhook_queue.requeue(connection, groups["radarr"].run_key) == 3
        assert webhook_queue.requeue(connection, groups["radarr"].run_key) == 0  # twice changes nothing
    assert statuses(engine) == {"pending": 3, "dispatched": 2}
    radarr = [r for r in webhook_rows(engine) if r["source"] == "radarr"]
    assert all((r["run_key"], r["dispatched_at"], r["attempt"]) == (None, None, 1) for r in radarr)
    with engine.connect() as connection:
        (again,) = [g for g in webhook_queue.pending_groups(connection) if g.instance.id == "radarr"]
    assert again.run_key != groups["radarr"].run_key  # Dagster would skip the old key


def test_an_interrupted_full_refresh_is_asked_for_again(engine: Engine) -> None:
    now = utcnow()
    earlier = now - timedelta(minutes=3)
    with engine.begin() as connection:
        connection.execute(
            update(sync_schedule).where(sync_schedule.c.service == "plex").values(run_key="schedule-plex-1")
        )
        connection.execute(update(sync_schedule).where(sync_schedule.c.service == "sonarr")
                           .values(run_key="schedule-sonarr-1", sync_requested_at=earlier))  # fmt: skip
        assert schedule_state.request_refresh_again(connection, "schedule-plex-1", now) == 1
        assert schedule_state.request_refresh_again(connection, "schedule-sonarr-1", now) == 1
        assert schedule_state.request_refresh_again(connection, "schedule-plex-1", now) == 0
    with engine.connect() as connection:
        rows = {r["service"]: r for r in connection.execute(select(sync_schedule)).mappings()}
        assert not connection.execute(select(webhook_log)).first()
    assert (rows["plex"]["run_key"], rows["plex"]["sync_requested_at"]) == (None, now)
    assert (rows["sonarr"]["run_key"], rows["sonarr"]["sync_requested_at"]) == (
        None,
        earlier,
    )  # a pending "sync now" keeps its time
