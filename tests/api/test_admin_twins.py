"""Every admin page and its JSON twin show the same thing: the same rows, in the same order, for the
same filters; each overview chart draws exactly what its JSON says.

The real app through TestClient, on SQLite and PostgreSQL, with a second Sonarr (``sonarr/4k``)
declared and a schedule row left by an instance no longer configured.
"""

from __future__ import annotations

import html as markup
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import Engine, insert

from smartplex.column_types import utcnow
from smartplex.instances import Instance
from smartplex.schema import WEBHOOK_STATUSES, sync_schedule
from tests.api.test_admin_page import add_webhook, sign_in
from tests.conftest import ADMIN, make_settings
from webhook_api.admin_page import charts
from webhook_api.admin_page.pages import PAGE_SIZE
from webhook_api.app import create_app

CONFIGURED = ["plex", "tautulli", "sonarr", "sonarr/4k", "radarr", "overseerr"]


@pytest.fixture
def client(database_url: str, tmp_path: Path, engine: Engine, declare: Callable[..., Any]) -> Iterator[TestClient]:
    """Signed in to the page; the JSON twins take the admin secret as a header, as every API caller does."""
    declare("sonarr:4k")
    with TestClient(create_app(make_settings(database_url, tmp_path))) as test_client:
        sign_in(test_client)
        yield test_client


def _one(pattern: str, text: str) -> str:
    found = re.search(pattern, text, re.S)
    assert found, pattern
    return found.group(1)


def _api(client: TestClient, path: str) -> Any:
    response = client.get(path, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


# --- webhook rows ---------------------------------------------------------------------------------


@pytest.fixture
def rows(engine: Engine) -> list[uuid.UUID]:
    """Rows of three instances, statuses and events over three days; many received at one instant, so
    the order of rows received together is tested too."""
    now = utcnow().replace(microsecond=0)
    same_instant = now - timedelta(minutes=30)
    made = []
    for i in range(130):
        source, instance, event = [
            ("sonarr", "default", "Download"),
            ("sonarr", "4k", "Download"),
            ("sonarr", "default", "Rename"),
            ("radarr", "default", "MovieAdded"),
            ("plex", "default", "media.play"),
        ][i % 5]
        status = WEBHOOK_STATUSES[i % len(WEBHOOK_STATUSES)]
        received = same_instant if i % 3 == 0 else now - timedelta(hours=i * 0.6)
        made.append(
            add_webhook(
                engine,
                source=source,
                instance=instance,
                event_type=event,
                status=status,
                received_at=received,
                error_message="boom" if status == "failed" else None,
            )
        )
    # At the edges of the overview's windows: inside the 7-day one only, and outside both.
    for source, instance, age in (("sonarr", "4k", 6.5), ("sonarr", "default", 6.5), ("plex", "default", 8)):
        made.append(
            add_webhook(
                engine, source=source, instance=instance, status="processed", received_at=now - timedelta(days=age)
            )
        )
    return made


def _since(hours: int) -> str:
    return (utcnow() - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


FILTERS = [
    "",
    "page=2",
    "page=3",
    "status=failed",
    "source=sonarr",
    "source=sonarr&page=2",
    "source=sonarr/4k",
    "source=sonarr/default&event=Rename",
    "source=radarr&event=MovieAdded&status=processed",
    "event=media.play",
    "since={since}",
    "source=sonarr&since={since}&page=2",
    "status=pending&since={since}",
]
ROW_LINK = re.compile(r'href="/admin/webhooks/([0-9a-f-]{36})\?')


@pytest.mark.parametrize("query", FILTERS)
def test_the_webhook_list_and_its_twin_show_the_same_rows_in_the_same_order(
    client: TestClient, rows: list[uuid.UUID], query: str
) -> None:
    query = query.format(since=_since(60))
    page = client.get(f"/admin/webhooks?{query}")
    assert page.status_code == 200, page.text[:300]
    shown = ROW_LINK.findall(page.text)
    listed = _api(client, f"/api/admin/webhooks?{query}&limit={PAGE_SIZE}")
    assert shown == [row["id"] for row in listed]
    assert shown, f"{query!r} selects no row: the comparison would say nothing"
    # Newest first, whatever the filter.
    received = [row["received_at"] for row in listed]
    assert received == sorted(received, reverse=True)


def test_the_pages_of_the_list_and_its_twin_cover_every_row_once(client: TestClient, rows: list[uuid.UUID]) -> None:
    seen: list[str] = []
    number = 1
    while batch := _api(client, f"/api/admin/webhooks?page={number}&limit={PAGE_SIZE}"):
        assert ROW_LINK.findall(client.get(f"/admin/webhooks?page={number}").text) == [r["id"] for r in batch]
        seen += [row["id"] for row in batch]
        number += 1
    assert sorted(seen) == sorted(str(row_id) for row_id in rows)


def test_the_twin_refuses_what_the_page_explains(client: TestClient) -> None:
    for query in ("status=lost", "source=emby", "since=yesterday", "page=0", "event=%00"):
        assert client.get(f"/api/admin/webhooks?{query}", headers=ADMIN).status_code == 422, query
        assert client.get(f"/admin/webhooks?{query}").status_code == 422, query


# --- schedules ------------------------------------------------------------------------------------


def _schedule_cards(page: str) -> list[dict[str, str]]:
    cards = []
    for slug, body in re.findall(
        r'<article class="card schedule[^"]*" id="schedule-([a-z0-9_]+)"(.*?)</article>', page, re.S
    ):
        cards.append(
            {
                "slug": slug,
                "interval": _one(r'name="interval_hours"[^>]*value="(\d+)"', body),
                "enabled": "checked" if re.search(r'name="enabled" value="on" checked', body) else "",
                "plan": markup.unescape(_one(r'<dt>Now</dt><dd class="small">(.*?)</dd>', body)),
            }
        )
    return cards


def test_the_schedules_and_their_twin_list_the_same_schedules_in_the_same_order(
    client: TestClient, engine: Engine
) -> None:
    with engine.begin() as connection:
        # A schedule of an instance no longer configured: listed after the configured ones, by both.
        connection.execute(insert(sync_schedule).values(service="radarr", instance="old", enabled=False))
    changed = client.patch("/api/admin/schedules/sonarr/4k", json={"enabled": True, "interval_hours": 7}, headers=ADMIN)
    assert changed.status_code == 200
    assert client.post("/api/admin/schedules/overseerr/sync", headers=ADMIN).status_code == 202

    cards = _schedule_cards(client.get("/admin/schedules").text)
    listed = _api(client, "/api/admin/schedules")
    expected = [Instance.parse(i).slug for i in CONFIGURED] + ["radarr_old"]
    assert [card["slug"] for card in cards] == [Instance.parse(r["library"]).slug for r in listed] == expected
    for card, row in zip(cards, listed, strict=True):
        assert card["interval"] == str(row["interval_hours"]), card
        assert card["enabled"] == ("checked" if row["enabled"] else ""), card
        assert card["plan"] == row["plan"], card
    assert listed[3]["enabled"] and listed[3]["interval_hours"] == 7
    assert listed[-2]["plan"].startswith("sync requested at")


# --- the overview ---------------------------------------------------------------------------------


def _card(page: str, slug: str) -> str:
    start = page.index(f'id="source-{slug}"')
    return page[start : page.index("</article>", start)]


def _figures(card: str) -> dict[str, int]:
    counts = dict(
        (name, int(number.replace(",", "")))
        for number, name in re.findall(r"<b>([\d,]+)</b> (received|[a-z]+)</a></li>", card)
    )
    assert set(counts) == {"received", *WEBHOOK_STATUSES}, counts
    return counts


@pytest.mark.parametrize(("window", "hours"), [("24h", 24), ("7d", 168)])
def test_the_overview_and_its_twin_count_the_same(
    client: TestClient, rows: list[uuid.UUID], window: str, hours: int
) -> None:
    page = client.get(f"/admin?window={window}").text
    status = _api(client, f"/api/webhooks/status?window_hours={hours}")
    assert [Instance.parse(i).slug for i in CONFIGURED] == re.findall(
        r'<article class="card source" id="source-([a-z0-9_]+)"', page
    )
    for instance_id in CONFIGURED:
        figures = _figures(_card(page, Instance.parse(instance_id).slug))
        assert figures == {name: status["sources"][instance_id][name] for name in figures}, instance_id
    tiles = dict(re.findall(r'<span class="tile-label">([^<]+)</span><span class="tile-value">([\d,]+)</span>', page))
    totals = status["totals"]
    assert tiles == {
        "Received": f"{totals['received']:,}",
        "Processed": f"{totals['processed']:,}",
        "Failed": f"{totals['failed']:,}",
        "Missing": f"{totals['missing']:,}",
        "Waiting now": f"{totals['backlog']:,}",
        "Ignored": f"{totals['ignored']:,}",
    }
    assert totals["received"] > 0


# --- the overview's charts ------------------------------------------------------------------------

BAR = re.compile(r'<g class="bar"><title>(.*?)</title>(.*?)</g>', re.S)
DRAWN = re.compile(r'<rect class="s-([a-z]+)" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"/>')
PLOT_HEIGHT = charts.HEIGHT - charts.TOP - charts.BOTTOM


def _drawn(page: str, slug: str, name: str) -> tuple[str, list[tuple[str, list[tuple[str, float]]]]]:
    """One chart of one card: its label, and per bar its tooltip and the (status, height) stacked in it."""
    card = _card(page, slug)
    figure = re.search(rf'<figure data-chart="{name}">(.*?)</figure>', card, re.S)
    assert figure, (slug, name)
    bars = [
        (markup.unescape(tip), [(s, float(h)) for s, h in DRAWN.findall(body)])
        for tip, body in BAR.findall(figure.group(1))
    ]
    return figure.group(1), bars


def _steady(client: TestClient, name: str) -> tuple[str, list[dict[str, Any]]]:
    """The overview and a chart's JSON read within one hour (or day): a boundary between them shifts every bar."""
    for _ in range(3):
        before = _api(client, f"/api/admin/charts/{name}")
        page = client.get("/admin").text
        if _api(client, f"/api/admin/charts/{name}") == before:
            return page, before
    raise AssertionError("the bars kept moving")


@pytest.mark.parametrize("name", sorted(charts.CHARTS))
def test_each_chart_draws_what_its_twin_says(client: TestClient, rows: list[uuid.UUID], name: str) -> None:
    chart = charts.CHARTS[name]
    page, series = _steady(client, name)
    assert [s["instance"] for s in series] == CONFIGURED
    assert any(bar["received"] for s in series for bar in s["bars"])
    for entry in series:
        instance = Instance.parse(entry["instance"])
        assert (entry["chart"], entry["title"], entry["caption"]) == (name, instance.title, chart.caption)
        svg, drawn = _drawn(page, instance.slug, name)
        bars = entry["bars"]
        assert len(drawn) == len(bars) == chart.bars
        assert f'aria-label="{chart.caption}: {sum(b["received"] for b in bars)} webhooks"' in svg
        top = charts.nice_ceiling(max(max(b["received"] for b in bars), 1))
        for bar, (tip, stack) in zip(bars, drawn, strict=True):
            assert bar["received"] == sum(bar["statuses"].values())
            assert set(bar["statuses"]) == set(WEBHOOK_STATUSES)
            assert f": {bar['received']} received" in tip, tip
            nonzero = [(s, bar["statuses"][s]) for s in charts.STACK if bar["statuses"][s]]
            assert [s for s, _ in stack] == [s for s, _ in nonzero], (tip, bar)
            for (status, height), (_, count) in zip(stack, nonzero, strict=True):
                assert f"{count} {status}" in tip
                assert height == pytest.approx(max(count / top * PLOT_HEIGHT, 0.8), abs=0.006), (status, count)
        periods = [(bar["start"], bar["end"]) for bar in bars]
        assert all(b_end == next_start for (_, b_end), (next_start, _) in zip(periods[:-1], periods[1:], strict=True))


def test_every_chart_is_named_as_its_url_names_it() -> None:
    assert set(charts.CHARTS) == set(get_args(charts.ChartName))
    assert all(chart.name == name for name, chart in charts.CHARTS.items())


def test_one_cards_chart_is_its_entry_in_the_list(client: TestClient, rows: list[uuid.UUID]) -> None:
    for name in charts.CHARTS:
        for _ in range(3):
            every = {entry["instance"]: entry for entry in _api(client, f"/api/admin/charts/{name}")}
            one = {i: _api(client, f"/api/admin/charts/{name}/{i}") for i in ("sonarr", "sonarr/4k", "plex")}
            if every == {entry["instance"]: entry for entry in _api(client, f"/api/admin/charts/{name}")}:
                break
        assert all(one[i] == every[i] for i in one)
    assert client.get("/api/admin/charts/weekly", headers=ADMIN).status_code == 422
    assert client.get("/api/admin/charts/hourly/sonarr/uhd", headers=ADMIN).status_code == 404
    assert client.get("/api/admin/charts/hourly/emby", headers=ADMIN).status_code == 422
    assert client.get("/api/admin/charts/hourly").status_code == 401


# --- service checks -------------------------------------------------------------------------------


def test_a_check_and_its_twin_reach_every_instance(client: TestClient) -> None:
    token = _one(r'name="csrf_token" value="([^"]+)"', client.get("/admin/services").text)
    for instance_id in ("sonarr/4k", "radarr"):
        slug = Instance.parse(instance_id).slug
        api = client.post(f"/api/admin/services/{instance_id}/check", headers=ADMIN)
        assert api.status_code == 200, api.text
        body = api.json()
        assert (body["instance"], body["ok"]) == (instance_id, False)
        page = client.post(f"/admin/services/{slug}/check", data={"csrf_token": token}).text
        result = page[page.index(f'id="service-{slug}"') :]
        result = result[: result.index("</article>")]
        assert str(escape(body["error"])) in result, (body["error"], result)
        assert ("Failed" if body["configured"] else "Not configured") in result
    assert client.post("/api/admin/services/sonarr/uhd/check", headers=ADMIN).status_code == 404
    assert client.post("/admin/services/sonarr_uhd/check", data={"csrf_token": token}).status_code == 404
