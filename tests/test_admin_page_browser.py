"""The admin page in headless Chromium, against the API served by uvicorn on a free port.

Webhooks arrive through the real intake; their outcomes are written with the queue's and the
schedules' own functions (what Dagster's sensors call), then spread over the past week so the charts
have a history. The browser signs in, reads the charts, changes an interval, presses "Sync now" and
replays a failed row; each action is checked in the database.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, bindparam, select, update

from smartplex import schedule_state, webhook_queue
from smartplex.column_types import utcnow
from smartplex.instances import Instance
from smartplex.schema import sync_schedule, webhook_log
from smartplex.settings import SettingsBase
from smartplex_cli.supervisor import free_port
from tests.conftest import ADMIN_SECRET, WEBHOOK_SECRET, load_fixture
from tests.requirements import require_or_skip
from webhook_api.admin_page import pages
from webhook_api.app import create_app

pytestmark = pytest.mark.timeout(300)
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]  # fmt: skip

#: (source, fixture) pairs posted through the intake, with how many of each: routed events and a few
#: logged-only ones, in proportions a real installation shows.
TRAFFIC = [
    ("plex", "library.new", 14), ("plex", "media.scrobble", 30), ("plex", "media.play", 40),
    ("tautulli", "stop", 34), ("tautulli", "watched", 16), ("tautulli", "play", 20),
    ("sonarr", "Download", 26), ("sonarr", "SeriesAdd", 4), ("sonarr", "Grab", 18),
    ("radarr", "Download", 16), ("radarr", "MovieAdded", 5), ("radarr", "Grab", 10),
    ("overseerr", "MEDIA_PENDING", 6), ("overseerr", "MEDIA_AVAILABLE", 5),
]  # fmt: skip


@pytest.fixture
def api_url(settings: SettingsBase) -> Iterator[str]:
    """The API with the admin page, served by uvicorn in a thread, as ``smartplex api`` serves it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the API did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def _post_traffic(api_url: str) -> None:
    with httpx.Client(base_url=api_url, headers={"X-Webhook-Token": WEBHOOK_SECRET}) as http:
        for source, event, count in TRAFFIC:
            body = load_fixture("webhooks", source, f"{event}.json")
            for _ in range(count):
                assert http.post(f"/api/webhooks/{source}", json=body).status_code == 202


def _settle_like_dagster(engine: Engine) -> uuid.UUID:
    """Claim the pending rows and settle them as runs would; some runs fail. Returns a failed row's id."""
    rng = random.Random(7)
    now = utcnow()
    with engine.begin() as connection:
        groups = webhook_queue.pending_groups(connection)
        for group in groups:
            webhook_queue.claim(connection, group, now)
            error = (
                f"{group.instance.id} answered HTTP 503 (Service Unavailable)"
                if group.instance.id == "sonarr"
                else None
            )
            webhook_queue.settle(connection, group.run_key, str(uuid.UUID(int=rng.getrandbits(128))), error, now)
        # Spread the rows over the past week, most in the last day, each handled seconds after it arrived.
        rows = connection.execute(select(webhook_log.c.id, webhook_log.c.status)).all()
        moves = []
        for row_id, status in rows:
            age = timedelta(hours=rng.random() * 24) if rng.random() < 0.6 else timedelta(days=1 + rng.random() * 6)
            received = now - age
            handled = received if status == "ignored" else received + timedelta(seconds=2 + rng.random() * 40)
            moves.append({"row_id": row_id, "received": received, "handled": handled})
        connection.execute(
            update(webhook_log)
            .where(webhook_log.c.id == bindparam("row_id"))
            .values(received_at=bindparam("received"), processed_at=bindparam("handled")),
            moves,
        )
        # A full refresh ran for two services: one succeeded, one failed.
        for service, error in (("plex", None), ("tautulli", "Tautulli at http://tautulli:8181: connection refused")):
            key = f"schedule-{service}-browser"
            schedule_state.mark_requested(connection, Instance.parse(service), key, now - timedelta(hours=3), 12)
            schedule_state.settle(connection, key, error, now - timedelta(hours=2, minutes=50))
        failed = connection.execute(
            select(webhook_log.c.id).where(webhook_log.c.status == "failed").order_by(webhook_log.c.received_at.desc())
        ).first()
    assert failed is not None
    return failed[0]


def _browser():  # type: ignore[no-untyped-def]
    if CHROMIUM is None:
        require_or_skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    return sync_playwright()


def _row(engine: Engine, table, **where):  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        query = select(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        return connection.execute(query).mappings().one()


def test_the_admin_page_in_a_browser(
    api_url: str, engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _post_traffic(api_url)
    failed_id = _settle_like_dagster(engine)
    _post_traffic_tail(api_url)
    engine_name = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    shots = ARTIFACTS / f"admin-page-{engine_name}"
    shots.mkdir(parents=True, exist_ok=True)

    with _browser() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1100}, color_scheme="light")
        page.on("dialog", lambda dialog: dialog.accept())

        # Signing in: an anonymous visit lands on the form, the secret gets in.
        page.goto(f"{api_url}/admin")
        assert "/admin/login" in page.url
        page.fill("#secret", "not it")
        page.click("button[type=submit]")
        assert page.get_by_text("That is not the admin secret.").is_visible()
        page.fill("#secret", ADMIN_SECRET)
        page.click("button[type=submit]")
        page.wait_for_url(f"{api_url}/admin")

        # The overview: every source's chart has bars, from the rows in the database.
        sonarr = page.locator("#source-sonarr")
        assert sonarr.locator("svg.chart rect.s-failed").count() > 0
        assert page.locator("#source-plex svg.chart rect.s-processed").count() > 0
        assert page.locator("#source-plex svg.chart rect.s-ignored").count() > 0
        assert "p50" in page.locator("#source-tautulli").inner_text()
        assert "HTTP 503" in sonarr.inner_text()
        page.screenshot(path=str(shots / "overview.png"), full_page=True)

        # It refreshes in place: a new webhook shows up without the page being loaded again. Every
        # second here, so the test sees a refresh without waiting long.
        monkeypatch.setattr(pages, "REFRESH_SECONDS", 1)
        page.reload()
        page.evaluate("window.stillHere = true")
        received = page.locator(".tile-value").first.inner_text()
        _post_traffic_tail(api_url)
        page.wait_for_function("(before) => document.querySelector('.tile-value').textContent !== before", arg=received)
        assert page.evaluate("window.stillHere") is True

        # Schedules: Sonarr every 12 hours, switched on; "Sync now" for Radarr.
        page.click("nav.sidebar >> text=Schedules")
        card = page.locator("#schedule-sonarr")
        card.locator("input[name=interval_hours]").fill("12")
        card.locator("label.switch").click()
        page.evaluate("window.stillHere = true")
        card.get_by_role("button", name="Save").click()
        page.get_by_text("Sonarr: full refresh on, every 12 h.").wait_for()
        assert page.evaluate("window.stillHere") is True  # sent in the background, the page kept
        sonarr_plan = _row(engine, sync_schedule, service="sonarr")
        assert (sonarr_plan["enabled"], sonarr_plan["interval_hours"]) == (True, 12)

        page.locator("#schedule-sonarr input[name=interval_hours]").fill("500")
        # The browser itself refuses 500 (max=168); the server's refusal is covered by the route tests.
        assert not page.locator("#schedule-sonarr input[name=interval_hours]").evaluate("e => e.checkValidity()")
        page.locator("#schedule-sonarr input[name=interval_hours]").fill("12")

        assert _row(engine, sync_schedule, service="radarr")["sync_requested_at"] is None
        page.locator("#schedule-radarr").get_by_role("button", name="Sync now").click()
        page.get_by_text("Radarr: a full refresh starts").wait_for()
        assert _row(engine, sync_schedule, service="radarr")["sync_requested_at"] is not None
        page.screenshot(path=str(shots / "schedules.png"), full_page=True)

        # Webhooks: the failed rows, one replayed.
        page.click("nav.sidebar >> text=Webhooks")
        page.select_option("select[name=status]", "failed")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**/admin/webhooks?*status=failed*")
        page.screenshot(path=str(shots / "webhooks.png"), full_page=True)
        page.check(f"input[name=ids][value='{failed_id}']")
        page.get_by_role("button", name="Replay selected").click()
        page.get_by_text("Replayed 1 row").wait_for()
        replayed = _row(engine, webhook_log, id=failed_id)
        assert (replayed["status"], replayed["attempt"], replayed["error_message"]) == ("pending", 1, None)

        # One row's payload, and the services' "Test" and webhook URLs pages.
        page.goto(f"{api_url}/admin/webhooks/{failed_id}")
        assert "Download" in page.locator("pre.payload").inner_text()
        page.screenshot(path=str(shots / "webhook.png"), full_page=True)
        page.click("nav.sidebar >> text=Services")
        page.locator("#service-sonarr").get_by_role("button", name="Test").click()
        page.locator("#service-sonarr .check-result").wait_for()
        assert "SMARTPLEX_SONARR_URL" in page.locator("#service-sonarr .check-result").inner_text()
        page.click("nav.sidebar >> text=Webhook URLs")
        assert f"token={WEBHOOK_SECRET}" in page.locator("#connect-plex input").input_value()
        page.screenshot(path=str(shots / "connect.png"), full_page=True)

        # Dark mode: the same overview, for the look of it.
        page.emulate_media(color_scheme="dark")
        page.goto(f"{api_url}/admin")
        page.screenshot(path=str(shots / "overview-dark.png"), full_page=True)

        page.click("text=Sign out")
        page.wait_for_url("**/admin/login")

        # Without JavaScript the forms still work: a plain POST, then the page again.
        plain = browser.new_context(java_script_enabled=False)
        bare = plain.new_page()
        bare.goto(f"{api_url}/admin/login")
        bare.fill("#secret", ADMIN_SECRET)
        bare.click("button[type=submit]")
        bare.goto(f"{api_url}/admin/schedules")
        bare.locator("#schedule-overseerr input[name=interval_hours]").fill("48")
        bare.locator("#schedule-overseerr").get_by_role("button", name="Save").click()
        bare.get_by_text("Overseerr: full refresh off (interval 48 h).").wait_for()
        assert _row(engine, sync_schedule, service="overseerr")["interval_hours"] == 48
        plain.close()
        browser.close()


def _post_traffic_tail(api_url: str) -> None:
    """A few webhooks just arrived: pending, waiting for the sensor."""
    with httpx.Client(base_url=api_url, headers={"X-Webhook-Token": WEBHOOK_SECRET}) as http:
        for source, event in (("sonarr", "Download"), ("plex", "library.new"), ("radarr", "Download")):
            assert (
                http.post(f"/api/webhooks/{source}", json=load_fixture("webhooks", source, f"{event}.json")).status_code
                == 202
            )
