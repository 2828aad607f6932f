"""Status figures checked against rows the test inserted."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from smartplex.column_types import utcnow
from smartplex.schema import webhook_log
from smartplex.webhook_rollups import bucket_bounds, bucket_of
from tests.conftest import ADMIN


def near(value: float, exact: float) -> bool:
    """A percentile read from the rollups' histogram: within the bucket that holds the exact one."""
    lower, upper = bucket_bounds(bucket_of(exact))
    return lower - 1e-3 <= value <= upper + 1e-3


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
    assert near(sonarr["latency_p50_seconds"], 11.0)
    assert near(sonarr["latency_p95_seconds"], 30.0)
    assert sonarr["backlog"] == 5
    assert abs(sonarr["oldest_pending_age_seconds"] - 3600) < 60

    plex = body["sources"]["plex"]
    assert (plex["received"], plex["backlog"]) == (0, 1)
    assert abs(plex["oldest_pending_age_seconds"] - 30 * 3600) < 60
    assert body["totals"]["received"] == 31
    assert len(body["schedules"]) == 5

    wide = client.get("/api/webhooks/status", params={"window_hours": 48}, headers=ADMIN).json()
    assert wide["sources"]["plex"]["received"] == 2
    assert near(wide["sources"]["plex"]["latency_p50_seconds"], 5.0)
    assert client.get("/api/webhooks/status", params={"window_hours": 0}, headers=ADMIN).status_code == 422


def test_status_after_real_webhooks(client: TestClient) -> None:
    from tests.conftest import HOOK, load_fixture

    client.post("/api/webhooks/radarr", json=load_fixture("webhooks", "radarr", "Download.json"), headers=HOOK)
    client.post("/api/webhooks/radarr", json=load_fixture("webhooks", "radarr", "Health.json"), headers=HOOK)
    radarr = client.get("/api/webhooks/status", headers=ADMIN).json()["sources"]["radarr"]
    assert (radarr["received"], radarr["pending"], radarr["ignored"], radarr["last_event_type"]) == (2, 1, 1, "Health")


def test_stage_figures(client: TestClient, engine: Engine) -> None:
    """Each stage of a webhook's path, from the times on its row: p50/p95 in the status, and /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    now = utcnow()
    rows = []
    # Ten processed rows; the i-th took i + 0.4 s to be claimed, then 1, 2, 0.5, 1 and 0.1 s for the run's stages.
    for i in range(1, 11):
        received = now - timedelta(minutes=10) + timedelta(seconds=i)
        moments = [received]
        for seconds in (i + 0.4, 1, 2, 0.5, 1, 0.1):
            moments.append(moments[-1] + timedelta(seconds=seconds))
        claimed, created, started, sync_started, sync_finished, settled = moments[1:]
        rows.append({
            "id": uuid.uuid4(), "source": "radarr", "event_type": "Download", "payload": {}, "received_at": received,
            "status": "processed", "processed": True, "dispatched_at": claimed, "run_created_at": created,
            "run_started_at": started, "sync_started_at": sync_started, "sync_finished_at": sync_finished,
            "processed_at": settled,
        })  # fmt: skip
    # A row the sync finished as missing (inside the step): timed, but it has no settle stage.
    missing = dict(rows[0], id=uuid.uuid4(), status="missing", processed_at=rows[0]["sync_started_at"])
    # A row still waiting, and one from before the window: neither is counted.
    waiting = {"id": uuid.uuid4(), "source": "radarr", "event_type": "Download", "payload": {}, "received_at": now,
               "status": "pending", "processed": False}  # fmt: skip
    old = dict(rows[0], id=uuid.uuid4(), received_at=now - timedelta(hours=30))
    with engine.begin() as connection:
        connection.execute(insert(webhook_log), [*rows, missing, old])
        connection.execute(insert(webhook_log), [waiting])

    stages = client.get("/api/webhooks/status", headers=ADMIN).json()["stages"]
    assert list(stages) == ["claim", "create", "start", "prepare", "sync", "settle", "total"]
    assert {name: figures["rows"] for name, figures in stages.items()} == {
        "claim": 11, "create": 11, "start": 11, "prepare": 11, "sync": 11, "settle": 10, "total": 11
    }  # fmt: skip
    # Nearest rank over the claims 1.4..10.4 s (and the missing row's 1.4 s): p50 the 6th, p95 the 11th.
    assert near(stages["claim"]["p50_seconds"], 5.4) and near(stages["claim"]["p95_seconds"], 10.4)
    for name, seconds in (("create", 1), ("start", 2), ("prepare", 0.5), ("sync", 1), ("settle", 0.1)):
        # Every row took the same time here: the bucket's mean is exact.
        assert abs(stages[name]["p50_seconds"] - seconds) < 0.01 and abs(stages[name]["p95_seconds"] - seconds) < 0.01
    assert near(stages["total"]["p95_seconds"], 15)
    assert (stages["claim"]["from"], stages["claim"]["to"]) == ("received_at", "dispatched_at")

    samples = {
        (sample.name, sample.labels.get("stage"), sample.labels.get("le")): sample.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
        if sample.name.startswith("smartplex_webhook_stage_seconds")
    }
    bucket = "smartplex_webhook_stage_seconds_bucket"
    assert samples[(bucket, "claim", "5.0")] == 5  # claims of 1.4..4.4 s, and the missing row's 1.4 s
    assert samples[(bucket, "claim", "+Inf")] == 11
    assert samples[(bucket, "settle", "0.25")] == samples[(bucket, "settle", "+Inf")] == 10
    assert samples[(bucket, "start", "1.0")] == 0 and samples[(bucket, "start", "3.0")] == 11
    assert abs(samples[("smartplex_webhook_stage_seconds_gsum", "sync", None)] - 11) < 0.01
