"""The admin page (``/admin``): sign-in, sessions and CSRF, each page and action, bad input.

Every test runs on SQLite and PostgreSQL (the ``client``/``engine`` fixtures). A refused request must
leave both tables exactly as they were (``snapshot``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import Engine, insert, select, update

from smartplex import schedule_state
from smartplex.column_types import utcnow
from smartplex.instances import Instance
from smartplex.kinds import KINDS
from smartplex.routing import STALE_LIBRARIES
from smartplex.schema import sync_schedule, webhook_log
from smartplex.settings import SettingsBase
from smartplex_simulators.serve import RunningSimulators
from tests.conftest import ADMIN, ADMIN_SECRET, WEBHOOK_SECRET, make_settings
from tests.helpers import snapshot
from webhook_api.admin_page.operations import received_over_time
from webhook_api.admin_page.session import COOKIE
from webhook_api.app import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def sign_in(client: TestClient, secret: str = ADMIN_SECRET) -> str:
    """Sign in as a browser does; returns the session's CSRF token for the forms that follow."""
    token = csrf_of(client.get("/admin/login").text)
    response = client.post("/admin/login", data={"secret": secret, "csrf_token": token, "next": "/admin"})
    assert response.status_code == 200 and response.url.path == "/admin", response.text[:300]
    return csrf_of(response.text)


@pytest.fixture
def browser(client: TestClient) -> tuple[TestClient, str]:
    """A signed-in browser and its CSRF token."""
    return client, sign_in(client)


def add_webhook(engine: Engine, **values: Any) -> uuid.UUID:
    """One ``webhook_log`` row, as the intake and a run would leave it."""
    row_id = uuid.uuid4()
    now = utcnow()
    row = {
        "id": row_id,
        "source": "sonarr",
        "event_type": "Download",
        "payload": {"eventType": "Download", "series": {"id": 1, "title": "Severance"}},
        "received_at": now - timedelta(minutes=5),
        "status": "pending",
        "processed": False,
    } | values
    if row["status"] in ("processed", "failed", "missing", "ignored"):
        row.setdefault("processed_at", row["received_at"] + timedelta(seconds=12))
        row["processed"] = True
    with engine.begin() as connection:
        connection.execute(insert(webhook_log).values(**row))
    return row_id


def a_row(engine: Engine, row_id: uuid.UUID) -> dict[str, Any]:
    with engine.connect() as connection:
        return dict(connection.execute(select(webhook_log).where(webhook_log.c.id == row_id)).mappings().one())


def a_schedule(engine: Engine, service: str) -> dict[str, Any]:
    with engine.connect() as connection:
        return dict(
            connection.execute(select(sync_schedule).where(sync_schedule.c.service == service)).mappings().one()
        )


# --- signing in ----------------------------------------------------------------------------------

PAGES = ["/admin", "/admin?window=7d", "/admin/schedules", "/admin/webhooks", "/admin/services", "/admin/connect"]
ACTIONS = [
    ("/admin/schedules/sonarr", {"enabled": "on", "interval_hours": "3"}),
    ("/admin/schedules/sonarr/sync", {}),
    ("/admin/webhooks/replay", {"scope": "filter", "status": "failed"}),
    ("/admin/services/sonarr/check", {}),
]


def test_an_anonymous_browser_is_sent_to_sign_in_and_changes_nothing(client: TestClient, engine: Engine) -> None:
    add_webhook(engine, status="failed", error_message="boom")
    before = snapshot(engine)
    for path in PAGES:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/admin/login?next=%2Fadmin"), response.headers["location"]
    # Neither the admin secret as an API caller sends it nor a made-up cookie counts as a session.
    for headers in (ADMIN, {"X-Admin-Token": ADMIN_SECRET}, {"Cookie": f"{COOKIE}={ADMIN_SECRET}"}):
        assert client.get("/admin", headers=headers, follow_redirects=False).status_code == 303
        for path, form in ACTIONS:
            response = client.post(path, data=form, headers=headers, follow_redirects=False)
            assert response.status_code == 401, path
            assert "sign in again" in response.text
    assert snapshot(engine) == before


def test_sign_in_with_the_admin_secret_sets_a_strict_http_only_cookie(client: TestClient, engine: Engine) -> None:
    login = client.get("/admin/login?next=/admin/schedules")
    token = csrf_of(login.text)
    wrong = client.post("/admin/login", data={"secret": "nope", "csrf_token": token, "next": "/admin/schedules"})
    assert wrong.status_code == 401 and "That is not the admin secret." in wrong.text
    assert client.get("/admin", follow_redirects=False).status_code == 303

    response = client.post(
        "/admin/login",
        data={"secret": ADMIN_SECRET, "csrf_token": token, "next": "/admin/schedules"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/admin/schedules"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= attributes
    assert "samesite=strict" in cookie.lower() and "path=/admin" in cookie.lower()
    assert "secure" not in attributes  # plain http here: a Secure cookie would never come back
    assert ADMIN_SECRET not in cookie
    # Signing in hands out a new token: the one from before sign-in (which a page that saw the sign-in
    # form could know) opens nothing, in a form or in the header, though the session is signed in.
    page = client.get("/admin/schedules")
    assert page.status_code == 200 and csrf_of(page.text) != token
    add_webhook(engine, status="failed", error_message="boom")  # something a replay would change
    before = snapshot(engine)
    for path, form in ACTIONS:
        refused = client.post(path, data={"csrf_token": token, **form})
        assert refused.status_code == 403 and "Nothing was changed" in refused.text, path
    assert client.post("/admin/schedules/sonarr/sync", headers={"X-CSRF-Token": token}).status_code == 403
    assert snapshot(engine) == before
    # The token the signed-in page carries does what the old one could not.
    fresh = client.post("/admin/schedules/sonarr/sync", data={"csrf_token": csrf_of(page.text)})
    assert fresh.status_code == 200 and a_schedule(engine, "sonarr")["sync_requested_at"] is not None


def test_behind_https_the_cookie_is_secure(settings: SettingsBase) -> None:
    with TestClient(create_app(settings), base_url="https://smartplex.example") as client:
        token = csrf_of(client.get("/admin/login").text)
        response = client.post(
            "/admin/login", data={"secret": ADMIN_SECRET, "csrf_token": token}, follow_redirects=False
        )
        assert "secure" in {part.strip().lower() for part in response.headers["set-cookie"].split(";")}


def test_sign_in_needs_the_forms_token(client: TestClient) -> None:
    client.get("/admin/login")
    for data in ({"secret": ADMIN_SECRET}, {"secret": ADMIN_SECRET, "csrf_token": "forged"}):
        response = client.post("/admin/login", data=data, follow_redirects=False)
        assert response.status_code == 403 and "Nothing was changed" in response.text
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_sign_in_never_sends_the_browser_elsewhere(client: TestClient) -> None:
    token = csrf_of(client.get("/admin/login").text)
    for target in ("//evil.example/admin", "https://evil.example/", "/api/admin/schedules", "/admin\\@evil"):
        response = client.post(
            "/admin/login", data={"secret": ADMIN_SECRET, "csrf_token": token, "next": target}, follow_redirects=False
        )
        assert response.headers["location"] == "/admin", target
        token = csrf_of(client.get("/admin").text)


def test_a_cookie_signed_with_another_secret_or_tampered_with_is_no_session(
    client: TestClient, database_url: str, tmp_path: Path, engine: Engine
) -> None:
    other = make_settings(database_url, tmp_path, admin_secret="another-installation")
    with TestClient(create_app(other)) as elsewhere:
        sign_in(elsewhere, "another-installation")
        foreign = elsewhere.cookies[COOKIE]
    sign_in(client)
    genuine = client.cookies[COOKIE]
    for value in (foreign, genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB"), "garbage"):
        client.cookies.clear()
        client.cookies.set(COOKIE, value, path="/admin")
        assert client.get("/admin", follow_redirects=False).status_code == 303


def test_sign_out_ends_the_session(browser: tuple[TestClient, str]) -> None:
    client, token = browser
    assert client.post("/admin/logout", data={}, follow_redirects=False).status_code == 403  # needs the token too
    response = client.post("/admin/logout", data={"csrf_token": token})
    assert response.url.path == "/admin/login" and "Signed out." in response.text
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_every_page_is_served_with_headers_that_keep_other_sites_out(browser: tuple[TestClient, str]) -> None:
    client, _ = browser
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        # Every script and stylesheet comes from this server's package: no CDN.
        assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', response.text)
        assert assets and all(a.startswith("/admin/static/") for a in assets), assets
    for asset in ("admin.css", "admin.js", "favicon.svg"):
        assert client.get(f"/admin/static/{asset}").status_code == 200


def test_a_huge_form_is_refused_before_it_is_read(client: TestClient) -> None:
    body = b"csrf_token=x&secret=" + b"x" * 300_000
    response = client.post("/admin/login", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413


# --- without an admin secret ---------------------------------------------------------------------


@pytest.fixture
def open_settings(database_url: str, tmp_path: Path, engine: Engine) -> SettingsBase:
    return make_settings(database_url, tmp_path, admin_secret=None)


def test_without_an_admin_secret_only_this_machine_gets_in(open_settings: SettingsBase, engine: Engine) -> None:
    app = create_app(open_settings)
    with TestClient(app, base_url="http://127.0.0.1:8765", client=("127.0.0.1", 40000)) as local:
        page = local.get("/admin/schedules")
        assert page.status_code == 200 and "Sign out" not in page.text
        assert local.get("/admin/login", follow_redirects=False).headers["location"] == "/admin"
        # Forms still need the token: another site's page must not drive a browser on this machine.
        before = snapshot(engine)
        forged = local.post("/admin/schedules/plex/sync", data={}, follow_redirects=False)
        assert forged.status_code == 403 and snapshot(engine) == before
        ok = local.post("/admin/schedules/plex/sync", data={"csrf_token": csrf_of(page.text)})
        assert ok.status_code == 200 and a_schedule(engine, "plex")["sync_requested_at"] is not None
    refused = [
        {"base_url": "http://127.0.0.1:8765", "client": ("192.168.1.20", 40000)},  # another machine
        {"base_url": "http://rebound.example:8765", "client": ("127.0.0.1", 40000)},  # DNS rebinding
    ]
    for options in refused:
        with TestClient(app, **options) as remote:
            for path in ("/admin", "/admin/login"):
                response = remote.get(path, follow_redirects=False)
                assert response.status_code == 403 and "SMARTPLEX_ADMIN_SECRET" in response.text, options


# --- overview ------------------------------------------------------------------------------------


def test_the_overview_draws_the_rows_and_agrees_with_the_status_api(
    database_url: str, tmp_path: Path, engine: Engine
) -> None:
    now = utcnow()
    for hours in (1.5, 2, 2, 30, 100):
        add_webhook(engine, status="processed", received_at=now - timedelta(hours=hours), run_id="run-ok-1")
    # Alone in its hour: the processed rows are an hour or more older, whatever the minute now.
    failed = add_webhook(
        engine, status="failed", error_message="Sonarr answered 503", run_id="run-bad-2", received_at=now
    )
    add_webhook(engine, source="plex", event_type="media.play", status="ignored")
    add_webhook(engine, source="radarr", status="pending", received_at=now - timedelta(minutes=42))
    with engine.begin() as connection:
        schedule_state.mark_requested(
            connection, Instance.parse("tautulli"), "schedule-tautulli-x", now - timedelta(hours=2), 6
        )
        schedule_state.settle(
            connection, "schedule-tautulli-x", "Tautulli at http://t:8181: refused", now - timedelta(hours=1)
        )
    settings = make_settings(database_url, tmp_path, dagster_url="https://dagster.example/")
    with TestClient(create_app(settings)) as client:
        sign_in(client)
        html = client.get("/admin").text
        status = client.get("/api/webhooks/status", headers=ADMIN).json()

    sonarr = html[html.index('id="source-sonarr"') : html.index('id="source-radarr"')]
    # Two charts per source; Sonarr's have bars of processed and failed rows, and a tooltip per hour.
    assert sonarr.count('<svg class="chart"') == 2
    assert 'class="s-processed"' in sonarr and 'class="s-failed"' in sonarr
    assert re.search(r"<title>[^<]*: 1 received \(1 failed\)</title>", sonarr)
    assert f"<b>{status['sources']['sonarr']['received']}</b> received" in sonarr
    assert f'Failed</span><span class="tile-value">{status["totals"]["failed"]}</span>' in html
    # The last syncs: the webhook run, linked into the Dagster UI, and the failed full refresh.
    run_id = a_row(engine, failed)["run_id"]
    assert f'href="https://dagster.example/runs/{run_id}"' in sonarr
    assert "Sonarr answered 503" in sonarr
    tautulli = html[html.index('id="source-tautulli"') : html.index('id="source-sonarr"')]
    assert "Tautulli at http://t:8181: refused" in tautulli and "b-failure" in tautulli
    radarr = html[html.index('id="source-radarr"') : html.index('id="source-overseerr"')]
    assert "42 min" in radarr  # the oldest waiting row
    assert 'data-refresh="15"' in html  # it refreshes itself


def test_webhooks_over_time_are_counted_in_utc_hours_and_days(engine: Engine) -> None:
    now = datetime(2026, 5, 14, 10, 30, tzinfo=UTC)
    for moment, status in [
        (datetime(2026, 5, 14, 10, 0, tzinfo=UTC), "pending"),  # this hour's first instant
        (datetime(2026, 5, 14, 9, 59, 59, 900000, tzinfo=UTC), "processed"),  # the hour before's last
        (datetime(2026, 5, 14, 9, 15, tzinfo=UTC), "failed"),
        (datetime(2026, 5, 13, 11, 0, tzinfo=UTC), "ignored"),  # the oldest hour shown
        (datetime(2026, 5, 13, 10, 59, tzinfo=UTC), "ignored"),  # just before it
        (datetime(2026, 5, 8, 0, 0, tzinfo=UTC), "processed"),  # the oldest day shown
        (datetime(2026, 5, 7, 23, 59, tzinfo=UTC), "processed"),  # the day before it
        (datetime(2026, 5, 14, 11, 0, tzinfo=UTC), "pending"),  # a clock ahead: no hour yet, but today
    ]:
        add_webhook(engine, received_at=moment, status=status)
    with engine.connect() as connection:
        hourly = received_over_time(connection, bucket=timedelta(hours=1), buckets=24, now=now)
        daily = received_over_time(connection, bucket=timedelta(days=1), buckets=7, now=now)
    sonarr = hourly["sonarr"]
    assert [b.start.hour for b in (sonarr[0], sonarr[-2], sonarr[-1])] == [11, 9, 10]
    assert sonarr[-1].counts == {"pending": 1}
    assert sonarr[-2].counts == {"processed": 1, "failed": 1}
    assert sonarr[0].counts == {"ignored": 1}
    assert sum(b.total for b in sonarr) == 4 and sum(b.total for b in hourly["plex"]) == 0
    days = daily["sonarr"]
    assert (days[0].start, days[-1].start) == (datetime(2026, 5, 8, tzinfo=UTC), datetime(2026, 5, 14, tzinfo=UTC))
    assert days[0].counts == {"processed": 1}
    assert days[-1].counts == {"pending": 2, "processed": 1, "failed": 1}
    assert days[-2].counts == {"ignored": 2}


def test_an_empty_installation_has_an_overview_too(browser: tuple[TestClient, str]) -> None:
    client, _ = browser
    html = client.get("/admin").text
    assert html.count("No webhooks") == 10 and "none recorded yet" in html
    assert 'href="http://127.0.0.1:3000/assets/sonarr/series"' in html  # the default Dagster UI


# --- schedules -----------------------------------------------------------------------------------


def test_a_schedule_changes_in_place(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, token = browser
    assert a_schedule(engine, "sonarr")["enabled"] is False
    response = client.post(
        "/admin/schedules/sonarr", data={"csrf_token": token, "enabled": "on", "interval_hours": "12"}
    )
    assert response.status_code == 200 and response.url.path == "/admin/schedules"
    assert "Sonarr: full refresh on, every 12 h." in response.text
    row = a_schedule(engine, "sonarr")
    assert (row["enabled"], row["interval_hours"]) == (True, 12) and row["next_run_at"] is not None
    # An unticked checkbox is not sent at all: off.
    client.post("/admin/schedules/sonarr", data={"csrf_token": token, "interval_hours": "12"})
    row = a_schedule(engine, "sonarr")
    assert (row["enabled"], row["interval_hours"], row["next_run_at"]) == (False, 12, None)
    # The JSON API reads what the page wrote.
    api = {r["service"]: r for r in client.get("/api/admin/schedules", headers=ADMIN).json()}
    assert (api["sonarr"]["enabled"], api["sonarr"]["interval_hours"]) == (False, 12)


@pytest.mark.parametrize("interval", ["0", "169", "-1", "1.5", "twelve", "", " "])
def test_a_bad_interval_is_explained_and_changes_nothing(
    browser: tuple[TestClient, str], engine: Engine, interval: str
) -> None:
    client, token = browser
    before = snapshot(engine)
    response = client.post(
        "/admin/schedules/radarr", data={"csrf_token": token, "enabled": "on", "interval_hours": interval}
    )
    assert response.status_code == 422
    assert "whole number of hours from 1 to 168" in response.text and "nothing was changed" in response.text
    assert 'aria-invalid="true"' in response.text
    assert snapshot(engine) == before


def test_schedule_forms_refuse_a_missing_or_foreign_token_and_unknown_services(
    browser: tuple[TestClient, str], engine: Engine, settings: SettingsBase
) -> None:
    client, token = browser
    with TestClient(create_app(settings)) as other:
        # A foreign token is a genuine one: another browser's, signed in on its own.
        foreign = sign_in(other)
        assert foreign != token
        before = snapshot(engine)
        for wrong in (None, foreign, token + "x"):
            data = {"interval_hours": "3"} | ({"csrf_token": wrong} if wrong else {})
            assert client.post("/admin/schedules/plex", data=data).status_code == 403
            assert client.post("/admin/schedules/plex/sync", data=data).status_code == 403
        # The token in a header counts (the page's script may send it so), a wrong one does not.
        for wrong in ("nope", foreign):
            assert client.post("/admin/schedules/plex/sync", headers={"X-CSRF-Token": wrong}).status_code == 403
        assert snapshot(engine) == before
        # In its own session the foreign token works: it was refused for being another session's.
        assert other.post("/admin/schedules/sonarr/sync", data={"csrf_token": foreign}).status_code == 200
        before = snapshot(engine)
    weird = client.post("/admin/schedules/plex", data={"csrf_token": token, "enabled": "yes", "interval_hours": "3"})
    assert weird.status_code == 422 and "checkbox" in weird.text
    for path in ("/admin/schedules/emby", "/admin/schedules/emby/sync"):
        response = client.post(path, data={"csrf_token": token, "interval_hours": "3"})
        assert response.status_code == 404 and "emby" in response.text
    assert snapshot(engine) == before
    assert client.post("/admin/schedules/plex/sync", headers={"X-CSRF-Token": token}).status_code == 200


def test_sync_now_asks_for_a_full_refresh(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, token = browser
    assert a_schedule(engine, "overseerr")["sync_requested_at"] is None
    response = client.post("/admin/schedules/overseerr/sync", data={"csrf_token": token})
    assert "Overseerr: a full refresh starts within seconds." in response.text
    assert a_schedule(engine, "overseerr")["sync_requested_at"] is not None
    assert "sync requested" in response.text


# --- webhook rows --------------------------------------------------------------------------------


def test_the_webhook_list_filters_and_pages(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, _ = browser
    now = utcnow()
    for i in range(55):
        add_webhook(engine, status="processed", received_at=now - timedelta(minutes=i), run_id=f"run-{i}")
    add_webhook(engine, source="radarr", event_type="MovieAdded", status="failed", error_message="Radarr refused")
    add_webhook(engine, source="plex", event_type="media.play", status="ignored", received_at=now - timedelta(days=3))

    first = client.get("/admin/webhooks").text
    assert "57 rows" in first and "page 1 of 2" in first and first.count('<tr class="row-') == 50
    second = client.get("/admin/webhooks?page=2").text
    assert second.count('<tr class="row-') == 7
    failed = client.get("/admin/webhooks?status=failed").text
    assert failed.count('<tr class="row-') == 1 and "Radarr refused" in failed
    assert client.get("/admin/webhooks?source=radarr&event=MovieAdded").text.count('<tr class="row-') == 1
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert client.get(f"/admin/webhooks?source=plex&since={since}").text.count('<tr class="row-') == 0
    # Replayable rows have a box to tick; ignored ones do not.
    assert first.count('name="ids"') == 50
    assert client.get("/admin/webhooks?status=ignored").text.count('name="ids"') == 0


def test_a_bad_filter_is_explained(browser: tuple[TestClient, str]) -> None:
    client, _ = browser
    response = client.get("/admin/webhooks?status=lost&source=emby&since=yesterday&page=x")
    assert response.status_code == 422
    for message in (
        "Unknown status &#39;lost&#39;",
        "Unknown source &#39;emby&#39;",
        "is not a date or time",
        "page number",
    ):
        assert message in response.text


def test_a_row_shows_its_payload_with_secrets_masked(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, _ = browser
    payload = {
        "eventType": "Download",
        "apiKey": "sonarr-key-1",
        "headers": {"Authorization": "Bearer bearer-2", "X-Webhook-Token": "hook-3"},
        "accounts": [{"password": "pass-4", "name": "kim"}, {"client_secret": "secret-5"}],
        "thumb": "http://plex:32400/photo?width=200&X-Plex-Token=plex-6&url=x",
        "series": {"title": "Severance", "tvdbId": 371980},
    }
    row_id = add_webhook(engine, payload=payload, status="failed", error_message="boom")
    response = client.get(f"/admin/webhooks/{row_id}")
    assert response.status_code == 200
    for secret in ("sonarr-key-1", "bearer-2", "hook-3", "pass-4", "secret-5", "plex-6"):
        assert secret not in response.text
    assert "Severance" in response.text and "371980" in response.text and "kim" in response.text
    assert "width=200" in response.text and "Replay" in response.text
    assert client.get(f"/admin/webhooks/{uuid.uuid4()}").status_code == 404
    assert client.get("/admin/webhooks/not-a-uuid").status_code == 404


def test_replaying_ticked_rows(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, token = browser
    failed = add_webhook(engine, status="failed", error_message="boom", run_id="run-1")
    ignored = add_webhook(engine, source="plex", event_type="media.play", status="ignored")
    untouched = add_webhook(engine, status="failed", error_message="other")
    response = client.post(
        "/admin/webhooks/replay",
        data={"csrf_token": token, "ids": [str(failed), str(ignored)], "next": "/admin/webhooks?status=failed"},
    )
    assert response.status_code == 200 and "Replayed 1 row" in response.text
    assert str(response.url).endswith("/admin/webhooks?status=failed")
    row = a_row(engine, failed)
    assert (row["status"], row["attempt"], row["run_id"], row["error_message"]) == ("pending", 1, None, None)
    assert a_row(engine, ignored)["status"] == "ignored"  # only finished rows that a run handled replay
    assert a_row(engine, untouched)["status"] == "failed"


def test_replaying_by_filter_matches_the_api(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, token = browser
    now = utcnow()
    old = add_webhook(engine, status="failed", received_at=now - timedelta(days=2))
    new = add_webhook(engine, status="failed", received_at=now - timedelta(hours=1))
    radarr = add_webhook(engine, source="radarr", status="failed")
    processed = add_webhook(engine, status="processed")
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = client.get(f"/admin/webhooks?source=sonarr&since={since}").text
    assert "<b>1</b> failed row from sonarr since" in page
    response = client.post(
        "/admin/webhooks/replay",
        data={"csrf_token": token, "scope": "filter", "source": "sonarr", "status": "failed", "since": since},
    )
    assert "Replayed 1 row" in response.text
    assert [a_row(engine, r)["status"] for r in (old, new, radarr, processed)] == [
        "failed",
        "pending",
        "failed",
        "processed",
    ]
    # The same filter through the JSON API finds nothing left to replay.
    body = {"source": "sonarr", "status": "failed", "since": f"{since}:00Z"}
    assert client.post("/api/admin/webhooks/replay", json=body, headers=ADMIN).json() == {"replayed": 0}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({}, "No row was ticked"),
        ({"ids": "not-a-uuid"}, "ids.0"),
        ({"scope": "filter", "status": "ignored"}, "status"),
        ({"scope": "filter", "source": "emby"}, "source"),
        ({"scope": "filter", "since": "last week"}, "is not a date or time"),
    ],
)
def test_a_bad_replay_is_explained_and_changes_nothing(
    browser: tuple[TestClient, str], engine: Engine, form: dict[str, str], message: str
) -> None:
    client, token = browser
    add_webhook(engine, status="failed", error_message="boom")
    before = snapshot(engine)
    response = client.post("/admin/webhooks/replay", data={"csrf_token": token, **form})
    assert response.status_code == 422 and "Nothing was replayed" in response.text
    assert message in response.text
    assert snapshot(engine) == before


def test_replay_refuses_a_missing_token(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, _ = browser
    row_id = add_webhook(engine, status="failed", error_message="boom")
    before = snapshot(engine)
    assert client.post("/admin/webhooks/replay", data={"ids": str(row_id)}).status_code == 403
    assert snapshot(engine) == before


# --- services and webhook URLs -------------------------------------------------------------------


def test_testing_a_service_that_is_not_configured(browser: tuple[TestClient, str]) -> None:
    client, token = browser
    response = client.post("/admin/services/radarr/check", data={"csrf_token": token})
    assert response.status_code == 200
    assert "Not configured" in response.text and "SMARTPLEX_RADARR_URL and SMARTPLEX_RADARR_API_KEY" in response.text
    assert client.post("/admin/services/emby/check", data={"csrf_token": token}).status_code == 404
    assert client.post("/admin/services/radarr/check", data={}).status_code == 403


@pytest.fixture
def with_services(
    database_url: str, tmp_path: Path, engine: Engine, sims: RunningSimulators
) -> Iterator[tuple[TestClient, str]]:
    """The API pointed at the simulators, Sonarr with a wrong API key."""
    values: dict[str, Any] = {}
    for variable, value in sims.env().items():
        values[variable.removeprefix("SMARTPLEX_").lower()] = value
    values["sonarr_api_key"] = "wrong-key"
    with TestClient(create_app(make_settings(database_url, tmp_path, **values))) as client:
        yield client, sign_in(client)


def test_testing_services_that_answer_and_one_that_refuses(
    with_services: tuple[TestClient, str], sims: RunningSimulators
) -> None:
    client, token = with_services
    response = client.post("/admin/services/radarr/check", data={"csrf_token": token})
    assert "Connected" in response.text
    size = len(sims.universe.movies)
    assert f"{size:,} item" in response.text
    api = client.post("/api/admin/services/radarr/check", headers=ADMIN).json()
    assert (api["ok"], api["configured"], api["library_size"]) == (True, True, size)

    refused = client.post("/admin/services/sonarr/check", data={"csrf_token": token})
    assert "Failed" in refused.text and "wrong-key" not in refused.text
    api = client.post("/api/admin/services/sonarr/check", headers=ADMIN).json()
    assert api["ok"] is False and api["configured"] is True and "rejected the credential" in api["error"]


def test_the_check_api_answers_for_an_unconfigured_service(client: TestClient) -> None:
    body = client.post("/api/admin/services/overseerr/check", headers=ADMIN).json()
    assert (body["ok"], body["configured"], body["kind"], body["instance"]) == (False, False, "overseerr", "overseerr")
    assert "SMARTPLEX_OVERSEERR_URL" in body["error"]
    assert client.post("/api/admin/services/emby/check", headers=ADMIN).status_code == 422


def test_the_webhook_urls_carry_each_sources_secret(database_url: str, tmp_path: Path, engine: Engine) -> None:
    settings = make_settings(database_url, tmp_path, webhook_secret_sonarr="sonarr s&cret")
    with TestClient(create_app(settings), base_url="https://smartplex.example") as client:
        sign_in(client)
        html = client.get("/admin/connect").text
    assert f'value="https://smartplex.example/api/webhooks/plex?token={WEBHOOK_SECRET}"' in html
    assert 'value="sonarr s&amp;cret"' in html  # Sonarr's own secret, as the Basic password
    assert 'value="{&#34;X-Webhook-Token&#34;: &#34;hook-secret-123&#34;}"' in html  # Tautulli's JSON headers
    assert f'value="Bearer {WEBHOOK_SECRET}"' in html  # Overseerr's Authorization header


def test_the_webhook_urls_say_which_boxes_to_tick_from_each_kinds_facts(browser: tuple[TestClient, str]) -> None:
    client, _ = browser
    html = client.get("/admin/connect").text
    for kind in KINDS:
        start = html.index(f'id="connect-{kind.name}"')
        card = html[start : html.index("</article>", start)]
        assert str(escape(kind.webhook.where)) in card
        shown = re.findall(r'<li>([^<]+) <span class="mono">([^<]+)</span></li>', card)
        assert [(str(escape(t.label)), t.event) for t in kind.webhook.triggers] == shown, kind.name
        if kind.webhook.sends_every_event:
            assert "sends every event" in card
            named = re.findall(r'<span class="mono">([^<]+)</span>', card[card.index("sends every event") :])
            assert named == list(STALE_LIBRARIES[kind.name])
        if kind.webhook.note:
            assert str(escape(kind.webhook.note)) in card


def test_without_a_webhook_secret_the_urls_say_so(open_settings: SettingsBase) -> None:
    settings = open_settings.model_copy(update={"webhook_secret": None})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8765", client=("127.0.0.1", 1)) as client:
        html = client.get("/admin/connect").text
    assert 'value="http://127.0.0.1:8765/api/webhooks/plex"' in html and "No webhook secret is set" in html


def test_a_scheduled_full_refresh_in_flight_shows_as_running(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, _ = browser
    with engine.begin() as connection:
        connection.execute(
            update(sync_schedule).where(sync_schedule.c.service == "plex").values(run_key="schedule-plex-1")
        )
    html = client.get("/admin/schedules").text
    plex = html[html.index('id="schedule-plex"') : html.index('id="schedule-tautulli"')]
    assert "refresh running" in plex
