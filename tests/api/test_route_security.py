"""Every route but the public few needs its own secret: the test walks the app's routes, so none slips through.

A route added to the app fails ``test_every_route_is_accounted_for`` until it is listed here, either in
``EXPECTED_PUBLIC`` (and in ``webhook_api.auth.PUBLIC_PATHS``), in ``PROTECTED`` with its secret, or, for
the admin page's HTML, in ``PAGES`` (a signed-in browser session) or ``PAGE_SIGN_IN``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from smartplex.schema import webhook_log
from smartplex.settings import SettingsBase
from tests.conftest import ADMIN_SECRET, WEBHOOK_SECRET, load_fixture, make_settings
from tests.helpers import basic_auth, snapshot
from webhook_api.app import create_app
from webhook_api.auth import PUBLIC_PATHS

#: The admin page's forms carry this token (see PAGES below).
CSRF_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')

#: Sources with a secret of their own; the others use the installation's WEBHOOK_SECRET.
SOURCE_SECRETS = {"sonarr": "sonarr-only-secret-789", "plex": "plex-only-secret-321"}
#: An extra instance with a secret of its own: neither its kind's nor the installation's opens it.
INSTANCE_SECRET = "sonarr-4k-only-secret-456"
SECRETS = (
    {"webhook": WEBHOOK_SECRET, "admin": ADMIN_SECRET}
    | {f"webhook:{s}": v for s, v in SOURCE_SECRETS.items()}
    | {"webhook:sonarr/4k": INSTANCE_SECRET}
)

#: Kept apart from the product's constant on purpose: widening what is public must change both.
EXPECTED_PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("HEAD", "/openapi.json"),
    ("GET", "/docs"),
    ("HEAD", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("HEAD", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("HEAD", "/redoc"),
}

SONARR = load_fixture("webhooks", "sonarr", "Download.json")
TAUTULLI = load_fixture("webhooks", "tautulli", "stop.json")

#: Each protected route: the secret it needs, and requests that succeed with that secret (one per scope:
#: the webhook routes once for a source with its own secret, once for one on the installation's).
PROTECTED: dict[tuple[str, str], list[tuple[str, str, dict[str, Any]]]] = {
    ("POST", "/api/webhooks/{source}"): [
        ("webhook:sonarr", "/api/webhooks/sonarr", {"json": SONARR}),
        ("webhook", "/api/webhooks/tautulli", {"json": TAUTULLI}),
    ],
    ("PUT", "/api/webhooks/{source}"): [
        ("webhook:sonarr", "/api/webhooks/sonarr", {"json": SONARR}),
        ("webhook", "/api/webhooks/tautulli", {"json": TAUTULLI}),
    ],
    ("POST", "/api/webhooks/{source}/{instance}"): [
        ("webhook:sonarr/4k", "/api/webhooks/sonarr/4k", {"json": SONARR}),
    ],
    ("PUT", "/api/webhooks/{source}/{instance}"): [
        ("webhook:sonarr/4k", "/api/webhooks/sonarr/4k", {"json": SONARR}),
    ],
    ("POST", "/api/bench/baseline/{source}"): [
        ("webhook:sonarr", "/api/bench/baseline/sonarr", {"json": SONARR}),
        ("webhook", "/api/bench/baseline/tautulli", {"json": TAUTULLI}),
    ],
    ("GET", "/api/webhooks/status"): [("admin", "/api/webhooks/status", {})],
    ("GET", "/api/admin/schedules"): [("admin", "/api/admin/schedules", {})],
    ("PATCH", "/api/admin/schedules/{kind}"): [("admin", "/api/admin/schedules/plex", {"json": {"interval_hours": 3}})],
    ("POST", "/api/admin/schedules/{kind}/sync"): [("admin", "/api/admin/schedules/plex/sync", {})],
    ("GET", "/api/admin/catch-up"): [("admin", "/api/admin/catch-up", {})],
    ("PATCH", "/api/admin/catch-up/{kind}"): [("admin", "/api/admin/catch-up/plex", {"json": {"interval_minutes": 5}})],
    ("PATCH", "/api/admin/catch-up/{kind}/{instance}"): [
        ("admin", "/api/admin/catch-up/sonarr/4k", {"json": {"interval_minutes": 5}})
    ],
    ("PATCH", "/api/admin/schedules/{kind}/{instance}"): [
        ("admin", "/api/admin/schedules/sonarr/4k", {"json": {"interval_hours": 3}})
    ],
    ("POST", "/api/admin/schedules/{kind}/{instance}/sync"): [("admin", "/api/admin/schedules/sonarr/4k/sync", {})],
    ("POST", "/api/admin/webhooks/replay"): [("admin", "/api/admin/webhooks/replay", {"json": {"status": "failed"}})],
    ("GET", "/api/admin/webhooks"): [("admin", "/api/admin/webhooks", {})],
    ("POST", "/api/admin/services/{kind}/check"): [("admin", "/api/admin/services/overseerr/check", {})],
    ("POST", "/api/admin/services/{kind}/{instance}/check"): [("admin", "/api/admin/services/sonarr/4k/check", {})],
    ("GET", "/api/admin/charts/{chart}"): [("admin", "/api/admin/charts/hourly", {})],
    ("GET", "/api/admin/charts/{chart}/{kind}"): [("admin", "/api/admin/charts/daily/plex", {})],
    ("GET", "/api/admin/charts/{chart}/{kind}/{instance}"): [("admin", "/api/admin/charts/hourly/sonarr/4k", {})],
}

#: The admin page (``webhook_api/admin_page``) takes a signed-in browser session, never a header secret.
#: Signing in and out needs no session; every other page sends an anonymous browser to sign in (GET) or
#: refuses (POST, 401), changing nothing. Each: a URL and the form that succeeds once signed in.
#: Sessions and CSRF are tested in depth in tests/api/test_admin_page.py.
PAGE_SIGN_IN = {("GET", "/admin/login"), ("POST", "/admin/login"), ("POST", "/admin/logout")}
A_ROW = "3fe6dea5-bb26-49bd-a67d-a1fec1407d97"
PAGES: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("GET", "/admin"): ("/admin", {}),
    ("GET", "/admin/schedules"): ("/admin/schedules", {}),
    ("POST", "/admin/schedules/{slug}"): ("/admin/schedules/plex", {"enabled": "on", "interval_hours": "3"}),
    ("POST", "/admin/schedules/{slug}/catch-up"): (
        "/admin/schedules/plex/catch-up",
        {"enabled": "on", "interval_minutes": "5"},
    ),
    ("POST", "/admin/schedules/{slug}/sync"): ("/admin/schedules/plex/sync", {}),
    ("GET", "/admin/webhooks"): ("/admin/webhooks", {}),
    ("GET", "/admin/webhooks/{webhook_id}"): (f"/admin/webhooks/{A_ROW}", {}),
    ("POST", "/admin/webhooks/replay"): ("/admin/webhooks/replay", {"ids": A_ROW}),
    ("GET", "/admin/services"): ("/admin/services", {}),
    ("POST", "/admin/services/{slug}/check"): ("/admin/services/plex/check", {}),
    ("GET", "/admin/connect"): ("/admin/connect", {}),
}


def _settings(database_url: str, tmp_path: Path) -> SettingsBase:
    per_source = {f"webhook_secret_{s}": v for s, v in SOURCE_SECRETS.items()}
    # The benchmark route is off by default; on here, so it is held to the same rule.
    return make_settings(database_url, tmp_path, baseline_route=True, **per_source)


def _routes(app: FastAPI) -> set[tuple[str, str]]:
    return {(method, r.path) for r in iter_route_contexts(app.routes) for method in r.methods or ()}


ROUTES = sorted(_routes(create_app(_settings("sqlite:///never-opened.db", Path(".")))))


def _every_form(secret: str) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """The secret in each place either kind of caller may put one: (headers, query)."""
    return {
        "query token": ({}, {"token": secret}),
        "bearer": ({"Authorization": f"Bearer {secret}"}, {}),
        "basic password": (basic_auth(secret, user="smartplex"), {}),
        "webhook header": ({"X-Webhook-Token": secret}, {}),
        "admin header": ({"X-Admin-Token": secret}, {}),
    }


#: Where each kind of secret is accepted; a secret anywhere else must not count.
ACCEPTED_FORMS = {
    "webhook": {"query token", "bearer", "basic password", "webhook header"},
    "admin": {"bearer", "admin header"},
}


def _refused_credentials(scope: str) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Everything that must get 401 on a route needing ``scope``'s secret."""
    kind = scope.partition(":")[0]
    own = SECRETS[scope]
    cases: dict[str, tuple[dict[str, str], dict[str, str]]] = {"nothing": ({}, {})}
    for wrong in ("nope", own + "x", own[:-1], own.upper(), " " + own + "x"):
        for form, credentials in _every_form(wrong).items():
            cases[f"wrong {wrong!r} as {form}"] = credentials
    for other, secret in SECRETS.items():
        if secret != own:
            for form, credentials in _every_form(secret).items():
                cases[f"{other} secret as {form}"] = credentials
    for form, credentials in _every_form(own).items():
        if form not in ACCEPTED_FORMS[kind]:
            cases[f"own secret as {form}"] = credentials
    cases["own secret as basic user"] = (basic_auth("", user=own), {})
    cases["own secret in a cookie"] = ({"Cookie": f"token={own}; session={own}"}, {})
    return cases


def test_the_public_paths_are_the_deliberate_few() -> None:
    assert PUBLIC_PATHS == {path for _, path in EXPECTED_PUBLIC}


def test_every_route_is_accounted_for() -> None:
    unknown = set(ROUTES) - EXPECTED_PUBLIC - set(PROTECTED) - PAGE_SIGN_IN - set(PAGES)
    assert not unknown, f"new routes: list them in PROTECTED (with their secret), PAGES, or make them public: {unknown}"
    assert set(ROUTES) == EXPECTED_PUBLIC | set(PROTECTED) | PAGE_SIGN_IN | set(PAGES)


def test_public_routes_answer_without_a_secret(client: TestClient) -> None:
    answers = {(method, path): client.request(method, path).status_code for method, path in EXPECTED_PUBLIC}
    assert answers == dict.fromkeys(EXPECTED_PUBLIC, 200)


@pytest.fixture
def app_client(database_url: str, tmp_path: Path, engine: Engine, declare: Any) -> Iterator[TestClient]:
    declare("sonarr:4k", SMARTPLEX_SONARR_4K_WEBHOOK_SECRET=INSTANCE_SECRET)
    with TestClient(create_app(_settings(database_url, tmp_path))) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("method", "template"), [r for r in ROUTES if r[1] not in PUBLIC_PATHS and r not in PAGE_SIGN_IN and r not in PAGES]
)
def test_every_other_route_refuses_anything_but_its_own_secret(
    app_client: TestClient, engine: Engine, method: str, template: str
) -> None:
    assert (method, template) in PROTECTED, f"{method} {template} is not in PROTECTED"
    before = snapshot(engine)
    wrong_answers = []
    for scope, url, request in PROTECTED[method, template]:
        for name, (headers, params) in _refused_credentials(scope).items():
            response = app_client.request(method, url, headers=headers, params=params, **request)
            if response.status_code != 401 or "secret" not in response.json()["detail"]:
                wrong_answers.append(f"{method} {url} with {name}: {response.status_code} {response.text[:80]}")
            sent = [*headers.values(), *params.values()]
            if any(value in response.text or value in str(response.headers) for value in sent):
                wrong_answers.append(f"{method} {url} with {name}: the answer repeats what was sent")
    assert not wrong_answers, "\n".join(wrong_answers)
    assert snapshot(engine) == before

    # The same requests with the right secret succeed: the refusals above were about the secret alone.
    for scope, url, request in PROTECTED[method, template]:
        header = {"X-Admin-Token" if scope == "admin" else "X-Webhook-Token": SECRETS[scope]}
        response = app_client.request(method, url, headers=header, **request)
        assert response.status_code in (200, 202), f"{method} {url}: {response.status_code} {response.text}"


@pytest.mark.parametrize(("method", "template"), sorted(PAGES))
def test_every_page_needs_a_signed_in_browser(
    app_client: TestClient, engine: Engine, method: str, template: str
) -> None:
    url, form = PAGES[method, template]
    with engine.begin() as connection:
        connection.execute(
            insert(webhook_log).values(
                id=uuid.UUID(A_ROW), source="sonarr", event_type="Download", payload={}, status="failed", processed=True
            )
        )
    before = snapshot(engine)
    wrong_answers = []
    for name, (headers, params) in _refused_credentials("admin").items():
        response = app_client.request(
            method, url, headers=headers, params=params, data=form or None, follow_redirects=False
        )
        refused = (
            response.headers.get("location", "").startswith("/admin/login?next=")
            if method == "GET"
            else response.status_code == 401 and "sign in" in response.text
        )
        if not refused:
            wrong_answers.append(f"{method} {url} with {name}: {response.status_code} {response.text[:80]}")
        sent = [*headers.values(), *params.values()]
        if any(value in response.text or value in str(response.headers) for value in sent):
            wrong_answers.append(f"{method} {url} with {name}: the answer repeats what was sent")
    assert not wrong_answers, "\n".join(wrong_answers)
    assert snapshot(engine) == before

    # Signed in, with the form's token, the same requests succeed.
    token = CSRF_TOKEN.search(app_client.get("/admin/login").text).group(1)  # type: ignore[union-attr]
    app_client.post("/admin/login", data={"secret": ADMIN_SECRET, "csrf_token": token})
    token = CSRF_TOKEN.search(app_client.get("/admin").text).group(1)  # type: ignore[union-attr]
    data = {**form, "csrf_token": token} if method == "POST" else None
    response = app_client.request(method, url, data=data, follow_redirects=False)
    assert response.status_code in (200, 303), f"{method} {url}: {response.status_code} {response.text[:300]}"
    assert "/admin/login" not in response.headers.get("location", "")


def test_an_unknown_source_is_401_before_it_is_422(app_client: TestClient) -> None:
    """Without a secret nothing about the path is revealed; with any webhook secret, the source is checked."""
    for secret in (None, "nope", ADMIN_SECRET):
        headers = {} if secret is None else {"X-Webhook-Token": secret}
        assert app_client.post("/api/webhooks/emby", json=SONARR, headers=headers).status_code == 401
    for secret in (WEBHOOK_SECRET, *SOURCE_SECRETS.values()):
        response = app_client.post("/api/webhooks/emby", json=SONARR, headers={"X-Webhook-Token": secret})
        assert response.status_code == 422
        assert "emby" in json.dumps(response.json())
