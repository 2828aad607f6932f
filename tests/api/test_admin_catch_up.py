"""The catch-up on the admin page: each instance's catch-up beside its schedule, changed by a form (CSRF,
the API's own bounds); the overview's count of changes no webhook announced and the warning when a sender
says it disabled our webhook; the JSON twins that show and change the same.

Every test runs on SQLite and PostgreSQL. A refused request must leave the catch-up's rows (and the
webhook and schedule tables, ``snapshot``) exactly as they were.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import Engine, insert, select, update

from smartplex import catch_up
from smartplex.column_types import utcnow
from smartplex.instances import Instance
from smartplex.schema import catch_up_found, catch_up_state
from tests.api.test_admin_page import csrf_of, sign_in
from tests.conftest import ADMIN, make_settings
from tests.helpers import snapshot
from webhook_api.app import create_app

HEALTH = "Notifications unavailable due to failures: SmartPlex"
HOSTILE = "<script>alert(1)</script>"
RULE = "whole number of minutes from 1 to 1440"
#: The instances configured by default, in the page's order.
KINDS = ("plex", "tautulli", "sonarr", "radarr", "overseerr")


@pytest.fixture
def browser(client: TestClient) -> tuple[TestClient, str]:
    """A signed-in browser and its CSRF token."""
    return client, sign_in(client)


@pytest.fixture
def with_4k(database_url: str, tmp_path: Path, engine: Engine, declare: Callable[..., Any]) -> Iterator[TestClient]:
    """A second Sonarr (``sonarr/4k``) declared; signed in."""
    declare("sonarr:4k")
    with TestClient(create_app(make_settings(database_url, tmp_path))) as client:
        sign_in(client)
        yield client


def state(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every ``catch_up_state`` row, by instance id."""
    with engine.connect() as connection:
        return {row["library"]: row for row in catch_up.rows(connection)}


def everything(engine: Engine) -> tuple[Any, ...]:
    """What a refused request must not change: the catch-up's rows, the webhooks, the schedules."""
    return state(engine), snapshot(engine)


def ensure(engine: Engine, *instance_ids: str) -> None:
    """Rows for these instances, as the schedules page (which a refused form shows again) makes them."""
    with engine.begin() as connection:
        catch_up.ensure(connection, [Instance.parse(i) for i in instance_ids])


def set_state(engine: Engine, instance_id: str, **values: Any) -> None:
    instance = Instance.parse(instance_id)
    ensure(engine, instance_id)
    with engine.begin() as connection:
        connection.execute(
            update(catch_up_state)
            .where(catch_up_state.c.service == instance.kind.name, catch_up_state.c.instance == instance.name)
            .values(**values)
        )


def found(engine: Engine, instance_id: str, age: timedelta, unannounced: int, changes: int | None = None) -> None:
    """One ``catch_up_found`` row: a catch-up run that synced ``changes``, ``unannounced`` of them unannounced."""
    instance = Instance.parse(instance_id)
    with engine.begin() as connection:
        connection.execute(
            insert(catch_up_found).values(
                id=uuid.uuid4(),
                service=instance.kind.name,
                instance=instance.name,
                found_at=utcnow() - age,
                changes=changes if changes is not None else unannounced,
                unannounced=unannounced,
                run_id=f"run-{uuid.uuid4().hex[:8]}",
            )
        )


def section(page: str, element_id: str) -> str:
    """One card of a page, from its opening tag to its ``</article>``."""
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</article>", start)]


def interval_shown(card: str) -> str:
    found = re.search(r'name="interval_minutes"[^>]*value="([^"]*)"', card, re.S)
    assert found, card
    return found.group(1)


def is_checked(card: str) -> bool:
    return re.search(r'name="enabled" value="on" checked', card) is not None


def counts_shown(page: str, slug: str) -> tuple[int, int]:
    """The overview card's "N in 24 h / M in 7 days"."""
    match = re.search(
        r'<dd class="unannounced">\s*<b>([\d,]+)</b> in 24 h / <b>([\d,]+)</b> in 7 days',
        section(page, f"source-{slug}"),
    )
    assert match, section(page, f"source-{slug}")
    return int(match.group(1).replace(",", "")), int(match.group(2).replace(",", ""))


# --- the schedules page --------------------------------------------------------------------------


def test_each_schedule_has_its_catch_up_beside_it(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, _ = browser
    watermark = (utcnow() - timedelta(minutes=7)).replace(microsecond=0)
    polled = (utcnow() - timedelta(minutes=2)).replace(microsecond=0)
    set_state(engine, "sonarr", watermark=watermark, polled_at=polled, last_error="Sonarr at http://s:8989: timed out")
    set_state(engine, "radarr", enabled=False, interval_minutes=30)

    page = client.get("/admin/schedules").text
    for slug in KINDS:
        # Each catch-up right after its own schedule's card.
        between = page[page.index(f'id="schedule-{slug}"') : page.index(f'id="catch-up-{slug}"')]
        assert between.count("</article>") == 1, slug
        card = section(page, f"catch-up-{slug}")
        assert f'action="/admin/schedules/{slug}/catch-up"' in card and csrf_of(card)
    sonarr = section(page, "catch-up-sonarr")
    assert (interval_shown(sonarr), is_checked(sonarr)) == ("5", True)
    assert f'<dt>Synced up to</dt><dd><time datetime="{watermark.isoformat()}"' in sonarr
    assert f'<dt>Last poll</dt><dd><time datetime="{polled.isoformat()}"' in sonarr
    assert '<pre class="error-block">Sonarr at http://s:8989: timed out</pre>' in sonarr
    radarr = section(page, "catch-up-radarr")
    assert (interval_shown(radarr), is_checked(radarr)) == ("30", False)
    assert "not yet: its first poll sets it" in radarr and "Last error" not in radarr
    # Opening the page made the rows every configured instance lacked, with the defaults.
    assert {k: (r["enabled"], r["interval_minutes"]) for k, r in state(engine).items()} == {
        "plex": (True, 5),
        "tautulli": (True, 5),
        "sonarr": (True, 5),
        "radarr": (False, 30),
        "overseerr": (True, 5),
    }


def test_the_form_changes_the_catch_up(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, token = browser
    schedules_before = snapshot(engine)[1]
    response = client.post(
        "/admin/schedules/sonarr/catch-up", data={"csrf_token": token, "enabled": "on", "interval_minutes": "15"}
    )
    assert response.status_code == 200 and response.url.path == "/admin/schedules"
    assert "Sonarr: catch-up on, every 15 min." in response.text
    assert (state(engine)["sonarr"]["enabled"], state(engine)["sonarr"]["interval_minutes"]) == (True, 15)
    assert interval_shown(section(response.text, "catch-up-sonarr")) == "15"
    # An unticked checkbox is not sent at all: off; the interval stays what was sent.
    response = client.post("/admin/schedules/sonarr/catch-up", data={"csrf_token": token, "interval_minutes": "1440"})
    assert "Sonarr: catch-up off (interval 1440 min)." in response.text
    assert (state(engine)["sonarr"]["enabled"], state(engine)["sonarr"]["interval_minutes"]) == (False, 1440)
    assert not is_checked(section(response.text, "catch-up-sonarr"))
    # Only Sonarr's catch-up changed; no schedule did.
    assert all((r["enabled"], r["interval_minutes"]) == (True, 5) for k, r in state(engine).items() if k != "sonarr")
    assert snapshot(engine)[1] == schedules_before
    # The JSON twins read what the page wrote.
    listed = {r["library"]: r for r in client.get("/api/admin/catch-up", headers=ADMIN).json()}
    assert (listed["sonarr"]["enabled"], listed["sonarr"]["interval_minutes"]) == (False, 1440)
    schedules = {r["library"]: r for r in client.get("/api/admin/schedules", headers=ADMIN).json()}
    assert schedules["sonarr"]["catch_up"] == listed["sonarr"]


@pytest.mark.parametrize("interval", ["0", "1441", "abc", "-1", "1.5", "", " "])
def test_a_bad_interval_is_explained_and_changes_nothing(
    browser: tuple[TestClient, str], engine: Engine, interval: str
) -> None:
    client, token = browser
    ensure(engine, *KINDS)
    before = everything(engine)
    response = client.post(
        "/admin/schedules/radarr/catch-up", data={"csrf_token": token, "enabled": "on", "interval_minutes": interval}
    )
    assert response.status_code == 422
    assert f"Radarr: nothing was changed. The catch-up&#39;s interval is a {RULE}, not {escape(repr(interval))}." in (
        response.text
    )
    # Shown on the catch-up's own form, with what was sent; the schedule's form is left alone.
    card = section(response.text, "catch-up-radarr")
    assert 'class="card catch-up invalid"' in response.text and 'aria-invalid="true"' in card
    assert interval_shown(card) == str(escape(interval))
    assert 'aria-invalid="true"' not in section(response.text, "schedule-radarr")
    assert everything(engine) == before


def test_a_checkbox_that_is_not_one_is_refused(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, token = browser
    ensure(engine, *KINDS)
    before = everything(engine)
    response = client.post(
        "/admin/schedules/plex/catch-up", data={"csrf_token": token, "enabled": "yes", "interval_minutes": "3"}
    )
    assert response.status_code == 422 and "Enabled is a checkbox" in response.text
    assert everything(engine) == before


def test_the_form_refuses_a_missing_or_foreign_token_and_unknown_services(
    browser: tuple[TestClient, str], engine: Engine, database_url: str, tmp_path: Path
) -> None:
    client, token = browser
    ensure(engine, *KINDS)
    with TestClient(create_app(make_settings(database_url, tmp_path))) as other:
        foreign = sign_in(other)  # genuine, but another session's
        before = everything(engine)
        for wrong in (None, "", foreign, token + "x"):
            data = {"enabled": "on", "interval_minutes": "9"} | ({"csrf_token": wrong} if wrong is not None else {})
            response = client.post("/admin/schedules/plex/catch-up", data=data)
            assert response.status_code == 403 and "Nothing was changed" in response.text, wrong
        refused = client.post(
            "/admin/schedules/plex/catch-up", data={"interval_minutes": "9"}, headers={"X-CSRF-Token": foreign}
        )
        assert refused.status_code == 403
        # Signed out, the same form is refused before its token is even read.
        other.cookies.clear()
        response = other.post("/admin/schedules/plex/catch-up", data={"csrf_token": foreign, "interval_minutes": "9"})
        assert response.status_code == 401
    for path in ("/admin/schedules/emby/catch-up", "/admin/schedules/sonarr_4k/catch-up"):
        response = client.post(path, data={"csrf_token": token, "enabled": "on", "interval_minutes": "9"})
        assert response.status_code == 404, path
    assert everything(engine) == before
    # The session's own token, in the header as the page's script may send it, does change it.
    ok = client.post("/admin/schedules/plex/catch-up", data={"interval_minutes": "9"}, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200 and state(engine)["plex"]["interval_minutes"] == 9


def test_another_instance_has_its_own_catch_up(with_4k: TestClient, engine: Engine) -> None:
    client = with_4k
    page = client.get("/admin/schedules").text
    token = csrf_of(page)
    assert 'action="/admin/schedules/sonarr_4k/catch-up"' in section(page, "catch-up-sonarr_4k")
    response = client.post(
        "/admin/schedules/sonarr_4k/catch-up", data={"csrf_token": token, "enabled": "on", "interval_minutes": "2"}
    )
    assert "Sonarr (4k): catch-up on, every 2 min." in response.text
    rows = state(engine)
    assert (rows["sonarr/4k"]["interval_minutes"], rows["sonarr"]["interval_minutes"]) == (2, 5)
    patched = client.patch("/api/admin/catch-up/sonarr/4k", json={"enabled": False}, headers=ADMIN)
    assert patched.status_code == 200 and patched.json()["library"] == "sonarr/4k"
    card = section(client.get("/admin/schedules").text, "catch-up-sonarr_4k")
    assert (interval_shown(card), is_checked(card)) == ("2", False)


# --- the JSON twins ------------------------------------------------------------------------------


def test_the_schedules_twin_carries_the_catch_up_the_page_shows(with_4k: TestClient, engine: Engine) -> None:
    client = with_4k
    set_state(engine, "tautulli", enabled=False, interval_minutes=60)
    set_state(engine, "sonarr/4k", interval_minutes=3)
    page = client.get("/admin/schedules").text
    schedules = client.get("/api/admin/schedules", headers=ADMIN).json()
    listed = {r["library"]: r for r in client.get("/api/admin/catch-up", headers=ADMIN).json()}
    assert [s["library"] for s in schedules] == ["plex", "tautulli", "sonarr", "sonarr/4k", "radarr", "overseerr"]
    for schedule in schedules:
        poll = schedule["catch_up"]
        assert poll == listed[schedule["library"]]
        card = section(page, f"catch-up-{Instance.parse(schedule['library']).slug}")
        assert (interval_shown(card), is_checked(card)) == (str(poll["interval_minutes"]), poll["enabled"])
    assert (listed["tautulli"]["interval_minutes"], listed["sonarr/4k"]["interval_minutes"]) == (60, 3)


@pytest.mark.parametrize(
    "body",
    [
        {"interval_minutes": 0},
        {"interval_minutes": 1441},
        {"interval_minutes": "5"},
        {"interval_minutes": True},
        {"interval_minutes": 2.5},
        {"enabled": "true"},
        {"enabled": 1},
    ],
)
def test_the_api_refuses_what_the_form_refuses(client: TestClient, engine: Engine, body: dict[str, Any]) -> None:
    ensure(engine, "sonarr")
    before = everything(engine)
    response = client.patch("/api/admin/catch-up/sonarr", json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert next(iter(body)) in response.text
    assert everything(engine) == before


def test_a_change_through_the_api_is_listed_and_shown(client: TestClient, engine: Engine) -> None:
    response = client.patch(
        "/api/admin/catch-up/sonarr", json={"enabled": False, "interval_minutes": 30}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    assert (response.json()["enabled"], response.json()["interval_minutes"]) == (False, 30)
    listed = {r["library"]: r for r in client.get("/api/admin/catch-up", headers=ADMIN).json()}
    assert (listed["sonarr"]["enabled"], listed["sonarr"]["interval_minutes"]) == (False, 30)
    assert (listed["radarr"]["enabled"], listed["radarr"]["interval_minutes"]) == (True, 5)
    # Only the interval: the switch stays as it was.
    client.patch("/api/admin/catch-up/sonarr", json={"interval_minutes": 1}, headers=ADMIN)
    assert (state(engine)["sonarr"]["enabled"], state(engine)["sonarr"]["interval_minutes"]) == (False, 1)
    sign_in(client)
    card = section(client.get("/admin/schedules").text, "catch-up-sonarr")
    assert (interval_shown(card), is_checked(card)) == ("1", False)
    assert client.patch("/api/admin/catch-up/sonarr/4k", json={"enabled": True}, headers=ADMIN).status_code == 404
    assert client.patch("/api/admin/catch-up/sonarr", json={"enabled": True}).status_code == 401


# --- the overview --------------------------------------------------------------------------------


def test_the_overview_counts_changes_no_webhook_announced(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, _ = browser
    ensure(engine, *KINDS)
    found(engine, "sonarr", timedelta(hours=2), 3)
    found(engine, "sonarr", timedelta(hours=20), 2, changes=9)  # 9 synced, 7 of them announced
    found(engine, "sonarr", timedelta(days=3), 4)
    found(engine, "sonarr", timedelta(days=8), 100)  # outside both windows
    found(engine, "radarr", timedelta(days=6), 1200)
    found(engine, "plex", timedelta(hours=1), 0, changes=5)  # everything announced

    page = client.get("/admin").text
    status = client.get("/api/webhooks/status?window_hours=24", headers=ADMIN).json()["catch_up"]
    assert (status["sonarr"]["unannounced_24h"], status["sonarr"]["unannounced_7d"]) == (5, 9)
    assert (status["radarr"]["unannounced_24h"], status["radarr"]["unannounced_7d"]) == (0, 1200)
    assert (status["plex"]["unannounced_24h"], status["plex"]["unannounced_7d"]) == (0, 0)
    for kind in KINDS:
        assert counts_shown(page, kind) == (status[kind]["unannounced_24h"], status[kind]["unannounced_7d"]), kind
    assert "<b>1,200</b> in 7 days" in section(page, "source-radarr")
    assert "changes no webhook announced" in section(page, "source-sonarr")
    # The counts do not depend on the overview's window.
    assert counts_shown(client.get("/admin?window=7d").text, "sonarr") == (5, 9)


def test_an_overview_before_any_catch_up(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, _ = browser
    page = client.get("/admin").text
    assert "the catch-up has not started yet" in section(page, "source-sonarr")
    assert client.get("/api/webhooks/status", headers=ADMIN).json()["catch_up"] == {}


def test_a_sender_that_disabled_our_webhook_is_named_with_what_to_do(
    browser: tuple[TestClient, str], engine: Engine
) -> None:
    client, _ = browser
    since = (utcnow() - timedelta(hours=3)).replace(microsecond=0)
    ensure(engine, *KINDS)
    set_state(engine, "sonarr", health=HEALTH, health_at=since)

    page = client.get("/admin").text
    sonarr = section(page, "source-sonarr")
    assert 'class="alert alert-error sender-warning" role="alert"' in sonarr
    assert f'<b>Sonarr says:</b> {HEALTH} (since <time datetime="{since.isoformat()}"' in sonarr
    assert "Sonarr has disabled the webhook after failed deliveries and drops events meanwhile" in sonarr
    assert "the catch-up now polls every minute so nothing is lost" in sonarr
    assert "Check the webhook's URL and secret in Sonarr → Settings → Connect (" in sonarr
    assert "then press Test there: a successful test re-enables it" in sonarr
    assert 'href="/admin/connect#connect-sonarr"' in sonarr
    assert all(
        "sender-warning" not in section(page, f"source-{k}") for k in ("plex", "tautulli", "radarr", "overseerr")
    )
    status = client.get("/api/webhooks/status", headers=ADMIN).json()["catch_up"]["sonarr"]
    assert status["sender_webhook_disabled"] == HEALTH

    # The schedules page shows it on the catch-up's card; with the catch-up off, it says what that means.
    card = section(client.get("/admin/schedules").text, "catch-up-sonarr")
    assert "webhook disabled" in card and f"<b>Sonarr says:</b> {HEALTH}" in card
    set_state(engine, "sonarr", enabled=False)
    sonarr = section(client.get("/admin").text, "source-sonarr")
    assert "polls every minute" not in sonarr
    assert "the catch-up of Sonarr is off, so those changes wait for the next full refresh" in sonarr

    set_state(engine, "sonarr", health=None, health_at=None)
    assert "sender-warning" not in client.get("/admin").text


def test_a_hostile_health_message_is_escaped(browser: tuple[TestClient, str], engine: Engine) -> None:
    client, _ = browser
    set_state(engine, "radarr", health=HOSTILE, health_at=utcnow(), last_error=HOSTILE)
    for path, element_id in (("/admin", "source-radarr"), ("/admin/schedules", "catch-up-radarr")):
        html = client.get(path).text
        assert HOSTILE not in html and "<script>alert" not in html, path
        assert f"<b>Radarr says:</b> {escape(HOSTILE)}" in section(html, element_id), path
    assert f'<pre class="error-block">{escape(HOSTILE)}</pre>' in section(
        client.get("/admin/schedules").text, "catch-up-radarr"
    )
    with engine.connect() as connection:
        stored = connection.execute(select(catch_up_state.c.health).where(catch_up_state.c.service == "radarr"))
        assert stored.scalar_one() == HOSTILE  # shown escaped, stored as sent
