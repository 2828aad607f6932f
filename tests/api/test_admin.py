"""Schedules (validation, next run, sync now) and replay."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, update

from smartplex.column_types import utcnow
from smartplex.schema import sync_schedule, webhook_log
from tests.conftest import ADMIN
from tests.helpers import snapshot


def _schedule(engine: Engine, service: str) -> dict:
    with engine.connect() as connection:
        return dict(
            connection.execute(select(sync_schedule).where(sync_schedule.c.service == service)).mappings().one()
        )


@pytest.mark.parametrize(("interval", "status"), [(0, 422), (1, 200), (168, 200), (169, 422)])
def test_interval_validation(client: TestClient, engine: Engine, interval: int, status: int) -> None:
    before = snapshot(engine)
    response = client.patch("/api/admin/schedules/radarr", json={"interval_hours": interval}, headers=ADMIN)
    assert response.status_code == status, response.text
    if status == 200:
        assert _schedule(engine, "radarr")["interval_hours"] == interval
    else:
        assert "interval_hours" in response.text
        assert snapshot(engine) == before


def test_enable_recomputes_next_run(client: TestClient, engine: Engine) -> None:
    start = utcnow()
    body = client.patch("/api/admin/schedules/sonarr", json={"enabled": True}, headers=ADMIN).json()
    assert body["enabled"] is True
    row = _schedule(engine, "sonarr")
    assert row["next_run_at"] is not None and row["next_run_at"] >= start - timedelta(seconds=1)  # never run: due now

    last = utcnow() - timedelta(hours=2)
    with engine.begin() as connection:
        connection.execute(update(sync_schedule).where(sync_schedule.c.service == "sonarr").values(last_run_at=last))
    client.patch("/api/admin/schedules/sonarr", json={"interval_hours": 5}, headers=ADMIN)
    assert _schedule(engine, "sonarr")["next_run_at"] == last + timedelta(hours=5)

    client.patch("/api/admin/schedules/sonarr", json={"enabled": False}, headers=ADMIN)
    row = _schedule(engine, "sonarr")
    assert row["enabled"] is False and row["next_run_at"] is None and row["interval_hours"] == 5


def test_unknown_service_is_422(client: TestClient) -> None:
    assert client.patch("/api/admin/schedules/emby", json={"enabled": True}, headers=ADMIN).status_code == 422


def test_sync_now_marks_the_request(client: TestClient, engine: Engine) -> None:
    assert _schedule(engine, "overseerr")["sync_requested_at"] is None
    response = client.post("/api/admin/schedules/overseerr/sync", headers=ADMIN)
    assert response.status_code == 202
    assert _schedule(engine, "overseerr")["sync_requested_at"] is not None
    listed = client.get("/api/admin/schedules", headers=ADMIN).json()
    # The admin page's order (the configured instances'), not the alphabet's: the page and its twin agree.
    assert [r["service"] for r in listed] == ["plex", "tautulli", "sonarr", "radarr", "overseerr"]
    overseerr = listed[-1]
    assert overseerr["library"] == "overseerr" and overseerr["plan"].startswith("sync requested at")


def _row(source: str, status: str, **extra: object) -> dict:
    now = utcnow()
    finished = status in ("processed", "failed", "ignored")
    return {
        "id": uuid.uuid4(), "source": source, "event_type": "Download", "payload": {"eventType": "Download"},
        "received_at": now, "status": status, "processed": finished, "processed_at": now if finished else None,
        "error_message": "boom" if status == "failed" else None, "run_id": "r1" if finished else None, **extra,
    }  # fmt: skip


def test_replay_by_filter_and_by_id(client: TestClient, engine: Engine) -> None:
    rows = [_row("sonarr", "failed"), _row("sonarr", "failed"), _row("radarr", "failed"),
            _row("sonarr", "processed"), _row("sonarr", "ignored"), _row("sonarr", "pending")]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), rows)

    response = client.post("/api/admin/webhooks/replay", json={"source": "sonarr"}, headers=ADMIN)
    assert response.json() == {"replayed": 2}
    by_id = {r["id"]: r for r in client.get("/api/admin/webhooks", headers=ADMIN).json()}
    for row in rows[:2]:
        replayed = by_id[str(row["id"])]
        assert (replayed["status"], replayed["processed"], replayed["error_message"], replayed["run_id"]) == (
            "pending",
            False,
            None,
            None,
        )
    assert by_id[str(rows[2]["id"])]["status"] == "failed"  # other source untouched

    ids = [str(rows[2]["id"]), str(rows[4]["id"]), str(rows[5]["id"])]
    assert client.post("/api/admin/webhooks/replay", json={"ids": ids}, headers=ADMIN).json() == {"replayed": 1}
    statuses = {r["id"]: r["status"] for r in client.get("/api/admin/webhooks", headers=ADMIN).json()}
    assert statuses[ids[0]] == "pending" and statuses[ids[1]] == "ignored"


@pytest.mark.parametrize(
    "body",
    [{"ids": []}, {"ids": ["not-a-uuid"]}, {"ids": [str(uuid.uuid4())], "source": "plex"},
     {"status": "pending"}, {"since": "2024-01-01T00:00:00"}],
)  # fmt: skip
def test_replay_rejects_bad_requests(client: TestClient, engine: Engine, body: dict) -> None:
    before = snapshot(engine)
    assert client.post("/api/admin/webhooks/replay", json=body, headers=ADMIN).status_code == 422
    assert snapshot(engine) == before
