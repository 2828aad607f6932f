"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from smartplex import migrate
from tests.conftest import HOOK, load_fixture


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["revision"] == migrate.head_revision()


def test_readyz_reports_a_schema_behind(client: TestClient, engine: Engine) -> None:
    migrate.downgrade(engine, "base")
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["status"] == "schema behind"


def test_metrics_count_webhooks_by_source_event_and_outcome(client: TestClient) -> None:
    client.post("/api/webhooks/sonarr", json=load_fixture("webhooks", "sonarr", "Download.json"), headers=HOOK)
    client.post("/api/webhooks/sonarr", json=load_fixture("webhooks", "sonarr", "Grab.json"), headers=HOOK)
    client.post("/api/webhooks/sonarr", json={"eventType": "Download"})
    client.post("/api/webhooks/tautulli", json={"action": "made-up-by-user-123"}, headers=HOOK)
    text = client.get("/metrics").text
    assert 'smartplex_webhooks_total{event="Download",outcome="pending",source="sonarr"} 1.0' in text
    assert 'smartplex_webhooks_total{event="Grab",outcome="ignored",source="sonarr"} 1.0' in text
    assert 'smartplex_webhooks_total{event="other",outcome="unauthorized",source="sonarr"} 1.0' in text
    assert 'smartplex_webhooks_total{event="other",outcome="ignored",source="tautulli"} 1.0' in text
    assert (
        'smartplex_http_request_duration_seconds_count{method="POST",route="/api/webhooks/{source}",status="202"} 3.0'
        in text
    )
