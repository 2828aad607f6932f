"""Each accepted form of the secret works; anything else is 401 and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from smartplex.settings import SettingsBase
from tests.conftest import ADMIN, ADMIN_SECRET, WEBHOOK_SECRET, load_fixture, make_settings
from tests.helpers import basic_auth, webhook_count
from webhook_api.app import create_app

BODY = load_fixture("webhooks", "sonarr", "Download.json")


ACCEPTED = {
    "query token": ({}, {"token": WEBHOOK_SECRET}),
    "bearer": ({"Authorization": f"Bearer {WEBHOOK_SECRET}"}, {}),
    "basic password": (basic_auth(WEBHOOK_SECRET), {}),
    "basic empty user": (basic_auth(WEBHOOK_SECRET, user=""), {}),
    "header": ({"X-Webhook-Token": WEBHOOK_SECRET}, {}),
}
REJECTED = {
    "nothing": ({}, {}),
    "wrong token": ({}, {"token": "nope"}),
    "wrong bearer": ({"Authorization": "Bearer nope"}, {}),
    "secret as basic user": (basic_auth("", user=WEBHOOK_SECRET), {}),
    "broken basic": ({"Authorization": "Basic %%%"}, {}),
    "wrong header": ({"X-Webhook-Token": WEBHOOK_SECRET + "x"}, {}),
    "admin secret": ({"Authorization": f"Bearer {ADMIN_SECRET}"}, {}),
}


@pytest.mark.parametrize("form", ACCEPTED)
def test_accepted_secret_forms(client: TestClient, engine: Engine, form: str) -> None:
    headers, params = ACCEPTED[form]
    assert client.post("/api/webhooks/sonarr", json=BODY, headers=headers, params=params).status_code == 202
    assert webhook_count(engine) == 1


@pytest.mark.parametrize("form", REJECTED)
def test_rejected_secrets_write_nothing(client: TestClient, engine: Engine, form: str) -> None:
    headers, params = REJECTED[form]
    response = client.post("/api/webhooks/sonarr", json=BODY, headers=headers, params=params)
    assert response.status_code == 401
    assert "secret" in response.json()["detail"]
    assert webhook_count(engine) == 0


def test_per_source_secret_overrides_the_installation_secret(database_url: str, tmp_path: Path, engine: Engine) -> None:
    settings = make_settings(database_url, tmp_path, webhook_secret_plex="plex-only")
    with TestClient(create_app(settings)) as client:
        plex = load_fixture("webhooks", "plex", "library.new.json")
        assert client.post("/api/webhooks/plex", json=plex, params={"token": WEBHOOK_SECRET}).status_code == 401
        assert client.post("/api/webhooks/plex", json=plex, params={"token": "plex-only"}).status_code == 202
        assert client.post("/api/webhooks/sonarr", json=BODY, params={"token": WEBHOOK_SECRET}).status_code == 202
    assert webhook_count(engine) == 2


ADMIN_ENDPOINTS = [
    ("GET", "/api/webhooks/status", None),
    ("GET", "/api/admin/schedules", None),
    ("PATCH", "/api/admin/schedules/plex", {"interval_hours": 3}),
    ("POST", "/api/admin/schedules/plex/sync", None),
    ("POST", "/api/admin/webhooks/replay", {"status": "failed"}),
    ("GET", "/api/admin/webhooks", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ENDPOINTS)
def test_admin_endpoints_need_the_admin_secret(
    client: TestClient, engine: Engine, method: str, path: str, body: dict | None
) -> None:
    from tests.helpers import snapshot

    before = snapshot(engine)
    for headers in ({}, {"Authorization": f"Bearer {WEBHOOK_SECRET}"}, {"X-Admin-Token": "wrong"}):
        assert client.request(method, path, json=body, headers=headers).status_code == 401
    assert snapshot(engine) == before
    assert client.request(method, path, json=body, headers=ADMIN).status_code in (200, 202)
    assert client.request(method, path, json=body, headers={"X-Admin-Token": ADMIN_SECRET}).status_code in (200, 202)


def test_no_secret_configured_means_open(database_url: str, tmp_path: Path, engine: Engine) -> None:
    settings: SettingsBase = make_settings(database_url, tmp_path, webhook_secret=None, admin_secret=None)
    with TestClient(create_app(settings)) as client:
        assert client.post("/api/webhooks/sonarr", json=BODY).status_code == 202
        assert client.get("/api/webhooks/status").status_code == 200
