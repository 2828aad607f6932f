"""Status figures checked against rows the test inserted."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from smartplex.schema import webhook_log
from smartplex.types import utcnow
from tests.conftest import ADMIN


def test_status_figures(client: TestClient, engine: Engine) -> None:
    now = utcnow()
    rows = []

    def add(source: str, status: str, age: timedelta, latency: float | None = None, event: str = "Download") -> None:
        received = now - age
        rows.append({
            "id": uuid.uuid4(), "source": source, "event_type": event, "payload": {}, "received_at": received,
            "status": status, "processed": latency is not None,
            "processed_at": received + timedelta(seconds=latency) if latency is not None else None,
        })  # fmt: skip

    # Sonarr: 20 processed with latencies 1..20 s, 2 failed (30 s, 40 s), 3 pending, 1 dispatched, 4 ignored.
    for i in range(1, 21):
        add("sonarr", "processed", timedelta(minutes=30 + i), latency=float(i))
    add("sonarr", "failed", timedelta(minutes=10), latency=30.0)
    add("sonarr", "failed", timedelta(minutes=11), latency=40.0)
    for minutes in (5, 6, 7):
        add("sonarr", "pending", timedelta(minutes=minutes))
    add("sonarr", "dispatched", timedelta(minutes=4))
    for _ in range(4):
        add("sonarr", "ignored", timedelta(minutes=3), latency=0.0, event="Grab")
    add("sonarr", "pending", timedelta(hours=1), event="SeriesAdd")  # newest event is Grab (3 min)
    # Outside the 24 h window: counted in the backlog only.
    add("plex", "pending", timedelta(hours=30), event="library.new")
    add("plex", "processed", timedelta(hours=40), latency=5.0, event="library.new")
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), rows)

    body = client.get("/api/webhooks/status", headers=ADMIN).json()
    sonarr = body["sources"]["sonarr"]
    assert (sonarr["received"], sonarr["processed"], sonarr["failed"], sonarr["pending"], sonarr["dispatched"], sonarr["ignored"]) == (
        31, 20, 2, 4, 1, 4
    )  # fmt: skip
    assert sonarr["last_event_type"] == "Grab"
    # Nearest rank over 22 latencies [1..20, 30, 40]: p50 = 11th = 11 s, p95 = 21st = 30 s.
    assert abs(sonarr["latency_p50_seconds"] - 11.0) < 0.01
    assert abs(sonarr["latency_p95_seconds"] - 30.0) < 0.01
    assert sonarr["backlog"] == 5
    assert abs(sonarr["oldest_pending_age_seconds"] - 3600) < 60

    plex = body["sources"]["plex"]
    assert (plex["received"], plex["backlog"]) == (0, 1)
    assert abs(plex["oldest_pending_age_seconds"] - 30 * 3600) < 60
    assert body["totals"]["received"] == 31
    assert len(body["schedules"]) == 5

    wide = client.get("/api/webhooks/status", params={"window_hours": 48}, headers=ADMIN).json()
    assert wide["sources"]["plex"]["received"] == 2
    assert abs(wide["sources"]["plex"]["latency_p50_seconds"] - 5.0) < 0.01  # julianday is exact to ~ms
    assert client.get("/api/webhooks/status", params={"window_hours": 0}, headers=ADMIN).status_code == 422


def test_status_after_real_webhooks(client: TestClient) -> None:
    from tests.conftest import HOOK, load_fixture

    client.post("/api/webhooks/radarr", json=load_fixture("webhooks", "radarr", "Download.json"), headers=HOOK)
    client.post("/api/webhooks/radarr", json=load_fixture("webhooks", "radarr", "Health.json"), headers=HOOK)
    radarr = client.get("/api/webhooks/status", headers=ADMIN).json()["sources"]["radarr"]
    assert (radarr["received"], radarr["pending"], radarr["ignored"], radarr["last_event_type"]) == (2, 1, 1, "Health")
