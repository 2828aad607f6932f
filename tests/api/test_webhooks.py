"""Every real webhook body is accepted, stored verbatim, typed and routed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from smartplex.instances import Instance
from smartplex.routing import stale_assets
from tests.conftest import FIXTURES, HOOK
from tests.helpers import webhook_rows

ALL_FIXTURES = sorted(
    p for p in (FIXTURES / "webhooks").rglob("*.json") if p.parent.name != "templates" and not p.name.startswith("_")
)
EVENT_KEY = {
    "plex": "event",
    "sonarr": "eventType",
    "radarr": "eventType",
    "overseerr": "notification_type",
    "tautulli": "action",
}


def plex_form(payload: str, thumb: bytes | None = None) -> dict:
    """Plex's multipart body: a text part ``payload`` and, for some events, a ``thumb`` JPEG file."""
    parts: dict = {"payload": (None, payload)}
    if thumb is not None:
        parts["thumb"] = ("thumb.jpg", thumb, "image/jpeg")
    return parts


def _expected_event(path: Path, body: dict) -> str:
    return body[EVENT_KEY[path.parent.name]]


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_fixture_is_stored_verbatim_and_routed(client: TestClient, engine: Engine, path: Path) -> None:
    source = path.parent.name
    body = json.loads(path.read_text())
    if source == "plex":
        response = client.post("/api/webhooks/plex", files=plex_form(path.read_text()), headers=HOOK)
    else:
        response = client.post(f"/api/webhooks/{source}", json=body, headers=HOOK)

    assert response.status_code == 202, response.text
    event = _expected_event(path, body)
    assets = list(stale_assets(Instance.parse(source), event))
    answer = response.json()
    assert answer["event_type"] == event
    assert answer["stale_assets"] == assets
    (row,) = webhook_rows(engine)
    assert str(row["id"]) == answer["id"]
    assert row["source"] == source
    assert row["event_type"] == event
    assert row["payload"] == body
    assert row["status"] == ("pending" if assets else "ignored")
    assert row["processed"] is (not assets)
    assert (row["processed_at"] is None) is bool(assets)


def test_every_source_has_routed_and_ignored_fixtures() -> None:
    """The fixtures exercise both outcomes for each source, so the test above covers the table."""
    for source in EVENT_KEY:
        outcomes = {
            bool(stale_assets(Instance.parse(source), _expected_event(p, json.loads(p.read_text()))))
            for p in ALL_FIXTURES
            if p.parent.name == source
        }
        assert outcomes == {True, False}, source


def test_test_events_go_green(client: TestClient, engine: Engine) -> None:
    for source, name in (("sonarr", "Test"), ("radarr", "Test"), ("overseerr", "TEST_NOTIFICATION")):
        body = json.loads((FIXTURES / "webhooks" / source / f"{name}.json").read_text())
        assert client.post(f"/api/webhooks/{source}", json=body, headers=HOOK).status_code == 202
    assert client.post("/api/webhooks/tautulli", json={"action": "test"}, headers=HOOK).status_code == 202
    assert {r["status"] for r in webhook_rows(engine)} == {"ignored"}


@pytest.mark.parametrize("with_thumb", [True, False])
def test_plex_multipart_never_stores_the_thumbnail(client: TestClient, engine: Engine, with_thumb: bool) -> None:
    payload = (FIXTURES / "webhooks" / "plex" / "library.new.json").read_text()
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + bytes(range(256)) * 400 + b"\xff\xd9"
    response = client.post(
        "/api/webhooks/plex?token=hook-secret-123", files=plex_form(payload, jpeg if with_thumb else None)
    )
    assert response.status_code == 202, response.text
    (row,) = webhook_rows(engine)
    assert row["payload"] == json.loads(payload)


def test_plex_payload_sent_as_a_file_part(client: TestClient, engine: Engine) -> None:
    payload = (FIXTURES / "webhooks" / "plex" / "media.scrobble.json").read_bytes()
    files = {"payload": ("payload.json", payload, "application/json")}
    response = client.post("/api/webhooks/plex", files=files, headers=HOOK)
    assert response.status_code == 202
    assert webhook_rows(engine)[0]["event_type"] == "media.scrobble"


def test_plex_accepts_plain_json(client: TestClient, engine: Engine) -> None:
    body = json.loads((FIXTURES / "webhooks" / "plex" / "library.new.json").read_text())
    assert client.post("/api/webhooks/plex", json=body, headers=HOOK).status_code == 202
    assert webhook_rows(engine)[0]["status"] == "pending"


@pytest.mark.parametrize("source", ["sonarr", "radarr"])
def test_arr_put_method(client: TestClient, engine: Engine, source: str) -> None:
    body = json.loads((FIXTURES / "webhooks" / source / "Download.json").read_text())
    assert client.put(f"/api/webhooks/{source}", json=body, headers=HOOK).status_code == 202
    assert webhook_rows(engine)[0]["event_type"] == "Download"


def test_sonarr_import_complete_is_kept(client: TestClient, engine: Engine) -> None:
    body = json.loads((FIXTURES / "webhooks" / "sonarr" / "Download_importComplete.json").read_text())
    assert "episodeFile" not in body
    assert client.post("/api/webhooks/sonarr", json=body, headers=HOOK).status_code == 202
    (row,) = webhook_rows(engine)
    assert row["payload"]["episodeFiles"] == body["episodeFiles"]
    assert row["status"] == "pending"


def test_tautulli_without_event_key_is_unknown_not_an_error(client: TestClient, engine: Engine) -> None:
    response = client.post("/api/webhooks/tautulli", json={"title": "whatever the user wrote"}, headers=HOOK)
    assert response.status_code == 202
    assert response.json()["event_type"] == "unknown"
    assert webhook_rows(engine)[0]["status"] == "ignored"


def test_tautulli_event_key_prefers_event(client: TestClient, engine: Engine) -> None:
    response = client.post("/api/webhooks/tautulli", json={"event": "watched", "action": "play"}, headers=HOOK)
    assert response.json()["event_type"] == "watched"


def test_tautulli_form_body(client: TestClient, engine: Engine) -> None:
    response = client.post("/api/webhooks/tautulli", data={"action": "stop", "rating_key": "3101"}, headers=HOOK)
    assert response.status_code == 202
    assert webhook_rows(engine)[0]["payload"] == {"action": "stop", "rating_key": "3101"}


def test_openapi_carries_an_example_per_source(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/api/webhooks/{source}"]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert set(examples) == set(EVENT_KEY)
    assert examples["sonarr"]["value"]["eventType"] == "Download"
    assert "payload" in operation["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
