"""XSS on the admin page: hostile text in every field a sender, a service, the settings or the database can
put on a page comes out escaped on every page that shows it, and no script of it runs in Chromium.

Protection rests on Jinja's autoescape and on ``charts.py`` escaping the text it puts in its SVG; a
``|safe`` in a template, or a ``Markup()`` around data, must fail here. Each field's escaped form is
asserted present where the field is shown, so a test that passes also proves the hostile text got there.

What carries it in:

* the intake: Sonarr's ``eventType`` and Tautulli's ``action`` (whatever the sender writes) become the
  event type; payload fields are shown on a row's page;
* the queue and the schedules, as Dagster's sensors write them: a failed run's error and run id, a
  row's run key, a full refresh's error and status (``sync_schedule.last_status`` has no CHECK);
* a service answering a "Test": Sonarr's instance name is its user's to set, its version whatever
  answers at the URL says;
* the settings: a service URL, a webhook secret, the Dagster UI's URL; and the request itself: the list's
  filters, a row id in the path, the sign-in form's ``next`` and the Host header.

The charts draw counts by status and times only: ``status`` has a CHECK constraint, so no text from data
reaches them; their own escaping is tested on ``bar_chart`` directly.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from smartplex import schedule_state, webhook_queue
from smartplex.column_types import utcnow
from smartplex.instances import Instance
from smartplex.schema import sync_schedule, webhook_log
from smartplex.settings import SettingsBase
from smartplex_cli.supervisor import free_port
from tests.api.test_admin_page import csrf_of, sign_in
from tests.conftest import ADMIN, ADMIN_SECRET, HOOK, WEBHOOK_SECRET, load_fixture, make_settings
from tests.test_admin_page_browser import CHROMIUM, CHROMIUM_FLAGS, _browser
from webhook_api.admin_page import charts
from webhook_api.admin_page.operations import Bucket
from webhook_api.app import create_app

# Each sets window.__xss if it ever runs; the quotes try to leave a double- or single-quoted attribute.
SCRIPT = "<script>window.__xss='script'</script>"
IMG = """"'><img src=x onerror="window.__xss='img'">"""
JS = "javascript:window.__xss='href'"

ERROR = f"Sonarr answered {SCRIPT}"
RUN_ID = f"{IMG}{SCRIPT}"
RUN_KEY = f"webhook-{SCRIPT}"
REFRESH_ERROR = f"Sonarr at {JS}: {IMG}"
ROW_ERROR = f"{IMG} {JS}"
INSTANCE_NAME = f"Sonarr {SCRIPT}"
VERSION = f"4.0 {IMG}"
BAD_URL = f"http://127.0.0.1:9/{IMG}"
BACK = '/admin/webhooks"><script>window.__xss="back"</script>'
NEXT = '/admin"><script>window.__xss="next"</script>'
HOST = 'evil.example"><img src=x onerror="window.__xss=1">'

#: Attributes a browser follows or loads: a ``javascript:`` value there runs on a click or at once.
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "data"}


def shown(value: str) -> str:
    """``value`` as the page must show it: HTML-escaped (Jinja's autoescape)."""
    return str(escape(value))


def shown_in_json(value: str) -> str:
    """``value`` inside the payload view: a JSON string (its quotes backslashed), then HTML-escaped."""
    return shown(json.dumps(value, ensure_ascii=False)[1:-1])


class _Elements(HTMLParser):
    """What a browser would turn into running code: inline scripts, event handler attributes, elements
    that load (the page has no <img>), and ``javascript:`` URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "script" and not names.get("src"):
            self.found.append("an inline <script>")
        if tag in ("img", "iframe", "object", "embed", "image", "video", "audio"):
            self.found.append(f"a <{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            # The parser has unescaped the value: &#106;avascript: is caught too.
            if (
                name in URL_ATTRIBUTES
                and value
                and re.sub(r"[\s\x00-\x1f]", "", value).lower().startswith("javascript:")
            ):
                self.found.append(f"<{tag} {name}={value!r}>")

    handle_startendtag = handle_starttag


def assert_inert(html: str, where: str) -> None:
    """No hostile markup unescaped, and nothing in the document that could run a script of it."""
    for raw in ("<script>window.__xss", "<img", 'onerror="window.__xss'):
        assert raw not in html, f"{where}: {raw!r} is not escaped"
    assert not re.search(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", html, re.IGNORECASE), where
    parser = _Elements()
    parser.feed(html)
    parser.close()
    assert not parser.found, f"{where}: {parser.found}"


def assert_shows(html: str, where: str, *values: str) -> None:
    """Each value reached the page, escaped."""
    for value in values:
        assert shown(value) in html, f"{where} does not show {value!r} (escaped as {shown(value)!r})"


# --- the hostile installation --------------------------------------------------------------------


class _SonarrStub(BaseHTTPRequestHandler):
    """A Sonarr whose instance name and version (both its user's to set) are markup."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.startswith("/api/v3/system/status"):
            body: Any = {"appName": "Sonarr", "instanceName": INSTANCE_NAME, "version": VERSION}
        elif self.path.startswith("/api/v3/series"):
            body = [{"id": 1, "title": SCRIPT}]
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def sonarr_stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SonarrStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def hostile_settings(database_url: str, tmp_path: Path, engine: Engine, sonarr_stub: str) -> SettingsBase:
    """Sonarr at the stub; Radarr at a URL with markup in it; Overseerr's webhook secret is markup."""
    return make_settings(
        database_url,
        tmp_path,
        sonarr_url=sonarr_stub,
        sonarr_api_key="sonarr-key",
        radarr_url=BAD_URL,
        radarr_api_key="radarr-key",
        webhook_secret_overseerr=IMG,
    )


@dataclass
class Rows:
    failed: uuid.UUID  # a Sonarr Download whose run failed: hostile payload, error, run id and run key
    odd_event: uuid.UUID  # a Sonarr row whose eventType is markup, failed too
    tautulli: uuid.UUID  # a Tautulli row whose action is markup


def _only_row(engine: Engine, **where: Any) -> uuid.UUID:
    query = select(webhook_log.c.id)
    for column, value in where.items():
        query = query.where(webhook_log.c[column] == value)
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def populate(post: Callable[[str, dict[str, Any]], Any], engine: Engine) -> Rows:
    """Hostile webhooks through the intake (``post(source, body)``), then what Dagster's sensors write."""
    download = load_fixture("webhooks", "sonarr", "Download.json")
    download["series"] |= {"title": SCRIPT, "path": JS, "overview": IMG}
    post("sonarr", download)
    now = utcnow()
    with engine.begin() as connection:
        groups = webhook_queue.pending_groups(connection)
        assert len(groups) == 1, groups
        webhook_queue.claim(connection, groups[0], now)
        webhook_queue.settle(connection, groups[0].run_key, RUN_ID, ERROR, now)
    failed = _only_row(engine, event_type="Download")
    with engine.begin() as connection:
        connection.execute(update(webhook_log).where(webhook_log.c.id == failed).values(run_key=RUN_KEY))

    post("sonarr", {"eventType": IMG, "series": {"id": 1, "title": SCRIPT}})
    odd = _only_row(engine, event_type=IMG)
    # A failed row with markup for its event type: its tick box is labelled with it.
    with engine.begin() as connection:
        connection.execute(
            update(webhook_log)
            .where(webhook_log.c.id == odd)
            .values(status="failed", processed=True, processed_at=utcnow(), error_message=ROW_ERROR)
        )

    post("tautulli", {"action": SCRIPT, "title": IMG, "poster_url": JS, "user": SCRIPT})
    tautulli = _only_row(engine, source="tautulli")

    with engine.begin() as connection:
        sonarr = Instance.parse("sonarr")
        schedule_state.mark_requested(connection, sonarr, "schedule-sonarr-x", now - timedelta(hours=1), 6)
        schedule_state.settle(connection, "schedule-sonarr-x", REFRESH_ERROR, now - timedelta(minutes=50))
        # A status only the system writes, and nothing holds to a list.
        connection.execute(
            update(sync_schedule)
            .where(sync_schedule.c.service == "radarr")
            .values(last_status=IMG, last_run_at=now - timedelta(minutes=30), last_error=SCRIPT)
        )
    return Rows(failed, odd, tautulli)


@pytest.fixture
def hostile(hostile_settings: SettingsBase, engine: Engine) -> Iterator[tuple[TestClient, Rows]]:
    with TestClient(create_app(hostile_settings)) as client:

        def post(source: str, body: dict[str, Any]) -> None:
            response = client.post(f"/api/webhooks/{source}", json=body, headers=HOOK)
            assert response.status_code == 202, response.text

        yield client, populate(post, engine)


# --- every page, over HTTP -----------------------------------------------------------------------


def test_hostile_values_are_escaped_on_every_page_that_shows_them(hostile: tuple[TestClient, Rows]) -> None:
    client, rows = hostile
    login = client.get("/admin/login", params={"next": NEXT})
    assert_inert(login.text, "sign-in")
    assert_shows(login.text, "sign-in", NEXT)
    token = sign_in(client)

    def page(path: str, *values: str, status: int = 200) -> str:
        response = client.get(path)
        assert response.status_code == status, (path, response.status_code)
        assert response.headers["content-type"].startswith("text/html")
        assert_inert(response.text, path)
        assert_shows(response.text, path, *values)
        return response.text

    for window in ("24h", "7d"):
        html = page(f"/admin?window={window}", SCRIPT, IMG, ERROR, RUN_ID, REFRESH_ERROR)
        sonarr = html[html.index('id="source-sonarr"') : html.index('id="source-radarr"')]
        assert shown(IMG) in sonarr  # its last event type
        radarr = html[html.index('id="source-radarr"') : html.index('id="source-overseerr"')]
        assert f'class="badge b-{shown(IMG)}"' in radarr  # a status in a class attribute
        tautulli = html[html.index('id="source-tautulli"') : html.index('id="source-sonarr"')]
        assert f'<span class="mono">{shown(SCRIPT)}</span>' in tautulli

    html = page("/admin/webhooks", SCRIPT, IMG, ERROR, ROW_ERROR, RUN_ID)
    assert f"<option>{shown(SCRIPT)}</option>" in html  # the event filter's choices
    assert f'aria-label="Replay this sonarr {shown(IMG)} row"' in html
    page(f"/admin/webhooks?{urlencode({'event': SCRIPT})}", SCRIPT)
    page(f"/admin/webhooks?{urlencode({'event': IMG, 'source': 'sonarr', 'status': 'failed'})}", IMG, ROW_ERROR)
    # Filters are echoed back: a value no row has, and values the list refuses and explains.
    html = page(f"/admin/webhooks?{urlencode({'event': JS + IMG})}", JS + IMG)
    assert f"<option selected>{shown(JS + IMG)}</option>" in html
    html = page(f"/admin/webhooks?{urlencode({'source': SCRIPT, 'status': IMG, 'since': SCRIPT})}", status=422)
    assert "Unknown source" in html and "Unknown status" in html and "is not a date or time" in html
    assert shown(repr(SCRIPT)) in html and shown(repr(IMG)) in html

    html = page(f"/admin/webhooks/{rows.failed}?{urlencode({'back': BACK})}", ERROR, RUN_ID, RUN_KEY, BACK)
    for value in (SCRIPT, JS, IMG):
        assert shown_in_json(value) in html  # the payload view
    assert f'href="http://127.0.0.1:3000/runs/{quote(RUN_ID, safe="")}"' in html
    html = page(f"/admin/webhooks/{rows.odd_event}", IMG, ROW_ERROR)
    assert f"<title>sonarr {shown(IMG)} · SmartPlex Sync</title>" in html
    page(f"/admin/webhooks/{rows.tautulli}", SCRIPT)
    page(f"/admin/webhooks/{quote(IMG, safe='')}", repr(IMG), status=404)  # an id in the path

    html = page("/admin/schedules", REFRESH_ERROR, IMG, SCRIPT)
    assert f'<pre class="error-block">{shown(REFRESH_ERROR)}</pre>' in html

    page("/admin/services", BAD_URL)
    checked = client.post("/admin/services/sonarr/check", data={"csrf_token": token})
    assert "Connected" in checked.text, checked.text[-2000:]
    assert_inert(checked.text, "a service's answer")
    assert_shows(checked.text, "a service's answer", INSTANCE_NAME, VERSION)
    failed = client.post("/admin/services/radarr/check", data={"csrf_token": token})
    assert "Failed" in failed.text
    assert_inert(failed.text, "a check's error")
    assert "Radarr at http://127.0.0.1:9/" in failed.text

    html = page("/admin/connect", IMG)
    assert f'value="Bearer {shown(IMG)}"' in html  # Overseerr's Authorization header
    response = client.get("/admin/connect", headers={"Host": HOST})
    assert response.status_code == 200
    assert_inert(response.text, "a hostile Host header")
    # The page shows the address the browser used; Starlette takes a malformed Host for none at all.
    assert shown(f"http://{HOST}") in response.text or '<span class="mono">http://testserver</span>' in response.text
    assert csrf_of(response.text)


def test_the_json_twins_answer_json(hostile: tuple[TestClient, Rows]) -> None:
    """The API answers hostile text as JSON strings, never as a document a browser would render."""
    client, _ = hostile
    for method, path in (
        ("GET", f"/api/admin/webhooks?{urlencode({'event': SCRIPT})}"),
        ("GET", "/api/admin/webhooks"),
        ("GET", "/api/admin/schedules"),
        ("GET", "/api/webhooks/status"),
        ("GET", "/api/admin/charts/hourly"),
        ("POST", "/api/admin/services/sonarr/check"),
    ):
        response = client.request(method, path, headers=ADMIN)
        assert response.status_code == 200, (path, response.text)
        assert response.headers["content-type"] == "application/json", path
        response.json()
    listed = client.get("/api/admin/webhooks", headers=ADMIN).json()
    assert {row["event_type"] for row in listed} >= {SCRIPT, IMG}
    assert client.post("/api/admin/services/sonarr/check", headers=ADMIN).json()["name"] == INSTANCE_NAME


# --- the charts ----------------------------------------------------------------------------------


def test_a_webhooks_status_never_carries_text_into_the_charts(engine: Engine) -> None:
    """The charts draw a class and a count per status: the database holds status to its list."""
    row = {"id": uuid.uuid4(), "source": "sonarr", "event_type": "Download", "payload": {}, "received_at": utcnow()}
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(webhook_log).values(**row, status=IMG))


def test_a_chart_escapes_its_caption_labels_and_tooltips() -> None:
    """Nothing from data reaches a chart's text today; should a label ever carry data, it stays text."""
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    buckets = [Bucket(now - timedelta(hours=1), {"failed": 2}), Bucket(now, {"processed": 1})]
    svg = str(
        charts.bar_chart(
            buckets,
            width=360,
            period=timedelta(hours=1),
            caption=SCRIPT,
            tick=lambda i, start: IMG,
            span=lambda start, end: SCRIPT,
        )
    )
    assert_inert(svg, "a chart")
    assert f'aria-label="{shown(SCRIPT)}: 3 webhooks"' in svg
    assert f"<title>{shown(SCRIPT)}: 2 received (2 failed)</title>" in svg
    assert svg.count(f">{shown(IMG)}</text>") == 2


# --- the Dagster UI's URL ------------------------------------------------------------------------


def _signed_in_page(settings: SettingsBase, path: str) -> str:
    with TestClient(create_app(settings)) as client:
        sign_in(client)
        response = client.get(path)
        assert response.status_code == 200
        return response.text


def test_markup_in_the_dagster_url_stays_inside_its_links(database_url: str, tmp_path: Path, engine: Engine) -> None:
    url = f"https://dagster.example/{IMG}"
    settings = make_settings(database_url, tmp_path, dagster_url=url)
    for path in ("/admin", "/admin/schedules"):
        html = _signed_in_page(settings, path)
        assert_inert(html, path)
        assert f'href="{shown(url)}/runs"' in html


def test_a_dagster_url_that_is_not_http_is_refused_naming_its_variable(tmp_path: Path) -> None:
    """The admin page makes links of it: a ``javascript:`` URL would be a link that runs something."""
    from pydantic import ValidationError

    from smartplex_cli import _problem

    for url in (JS, "JavaScript:alert(1)", "data:text/html,<script>alert(1)</script>", "//evil.example"):
        with pytest.raises(ValidationError) as refused:
            make_settings("sqlite://", tmp_path, dagster_url=url)
        assert "SMARTPLEX_DAGSTER_URL" in _problem(refused.value.errors()[0]), url
    assert make_settings("sqlite://", tmp_path, dagster_url="https://dagster.example/ui").dagster_url


# --- in Chromium ---------------------------------------------------------------------------------

#: Set by a hostile value's script if it ever runs; read on every page and after every in-place swap.
PROBE = "window.__xss === undefined ? null : String(window.__xss)"
#: Elements that would run or load something: none belongs on the page.
RUNNABLE = """() => {
  const found = [];
  for (const el of document.querySelectorAll('img, iframe, object, embed, script:not([src])')) found.push(el.outerHTML);
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (attr.name.startsWith('on')) found.push(`${el.tagName} ${attr.name}`);
      if (['href', 'src', 'action', 'formaction'].includes(attr.name)
          && attr.value.replace(/[\\s\\x00-\\x1f]/g, '').toLowerCase().startsWith('javascript:')) {
        found.push(`${el.tagName} ${attr.name}=${attr.value}`);
      }
    }
  }
  return found;
}"""


@contextmanager
def serving(settings: SettingsBase) -> Iterator[str]:
    """The API served by uvicorn in a thread, as ``smartplex api`` serves it; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def hostile_api(hostile_settings: SettingsBase) -> Iterator[str]:
    with serving(hostile_settings) as url:
        yield url


def _sign_in(page: Any, api: str) -> None:
    page.goto(f"{api}/admin/login")
    page.fill("#secret", ADMIN_SECRET)
    page.click("button[type=submit]")
    page.wait_for_url(f"{api}/admin")


@pytest.mark.timeout(300)
def test_no_hostile_script_runs_in_a_browser(hostile_api: str, engine: Engine) -> None:
    chromium = _browser()  # skips (or in a strict run fails) before any work when Chromium is missing
    with httpx.Client(base_url=hostile_api, headers={"X-Webhook-Token": WEBHOOK_SECRET}) as http:

        def post(source: str, body: dict[str, Any]) -> None:
            assert http.post(f"/api/webhooks/{source}", json=body).status_code == 202

        rows = populate(post, engine)

    with chromium as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        # Without the page's CSP, which would block inline scripts: what is tested is the escaping.
        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        loads: list[str] = []  # an injected <img src=x> would ask for .../x
        page.on("request", lambda request: loads.append(request.url) if request.url.endswith("/x") else None)

        def inert(where: str) -> None:
            assert page.evaluate(PROBE) is None, f"{where}: a hostile script ran"
            assert page.evaluate(RUNNABLE) == [], where
            assert not dialogs and not loads, (where, dialogs, loads)

        page.goto(f"{hostile_api}/admin/login?{urlencode({'next': NEXT})}")
        inert("sign-in")
        assert page.locator("input[name=next]").input_value() == NEXT
        _sign_in(page, hostile_api)

        # Each page, and where its hostile text must show, as text.
        visits = {
            "/admin": ("#source-tautulli .card-head .mono", SCRIPT),
            "/admin?window=7d": ("#source-sonarr .card-head .mono", IMG),
            "/admin/webhooks": ("td a.mono", SCRIPT),
            f"/admin/webhooks?{urlencode({'event': JS + IMG})}": ("select[name=event] option", JS + IMG),
            f"/admin/webhooks?{urlencode({'source': SCRIPT, 'status': IMG})}": (".alert-error", repr(SCRIPT)),
            f"/admin/webhooks/{rows.failed}?{urlencode({'back': BACK})}": ("pre.error-block", ERROR),
            f"/admin/webhooks/{rows.odd_event}": ("h1 .mono", IMG),
            f"/admin/webhooks/{rows.tautulli}": ("pre.payload", SCRIPT),
            f"/admin/webhooks/{quote(IMG, safe='')}": ("main p", repr(IMG)),
            "/admin/schedules": ("#schedule-sonarr pre.error-block", REFRESH_ERROR),
            "/admin/services": ("#service-radarr .mono", BAD_URL),
            "/admin/connect": ("#connect-overseerr input", f"Bearer {IMG}"),
        }
        for path, (selector, text) in visits.items():
            page.goto(hostile_api + path)
            page.wait_for_load_state("load")
            inert(path)
            elements = [page.locator(selector).nth(i) for i in range(page.locator(selector).count())]
            shown_there = [e.input_value() if selector.endswith("input") else e.inner_text() for e in elements]
            assert any(text in value for value in shown_there), (path, selector, shown_there)
        # The hostile text is on the page as text, character for character.
        page.goto(f"{hostile_api}/admin/webhooks/{rows.failed}")
        assert page.locator("pre.error-block").inner_text() == ERROR
        assert json.loads(page.locator("pre.payload").inner_text())["series"]["title"] == SCRIPT

        # Answers swapped in place (admin.js parses them and moves their <main> into the page).
        page.goto(f"{hostile_api}/admin/services")
        page.click("#service-sonarr button.test")
        page.wait_for_selector("#service-sonarr .check-result")
        inert("Sonarr's answer, swapped in")
        assert INSTANCE_NAME in page.locator("#service-sonarr .check-result").inner_text()
        page.goto(f"{hostile_api}/admin/webhooks/{rows.odd_event}")
        page.click("button:has-text('Replay')")
        page.wait_for_selector(".alert-ok")
        inert("a replayed row's page, swapped in")

        # The probe works: markup that does get in is seen.
        page.evaluate("""document.body.insertAdjacentHTML('beforeend', '<img src=x onerror="window.__xss=1">')""")
        page.wait_for_function("window.__xss === 1")
        browser.close()


@pytest.mark.timeout(300)
def test_the_pages_csp_stops_what_escaping_cannot(settings: SettingsBase) -> None:
    """The second line: with the page's own CSP, neither a ``javascript:`` link nor an inline handler runs,
    should one ever reach the page (escaping leaves a URL's scheme alone; the settings refuse such a
    SMARTPLEX_DAGSTER_URL, see above)."""
    chromium = _browser()
    with serving(settings) as api, chromium as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        _sign_in(page, api)
        page.evaluate(
            """document.querySelector('main').insertAdjacentHTML('afterbegin',
                '<a id="probe" href="javascript:window.__xss=\\'link\\';alert(1)">probe</a>')"""
        )
        page.click("#probe")
        page.wait_for_timeout(500)
        assert page.evaluate(PROBE) is None and dialogs == [], "a javascript: link ran"
        page.evaluate("""document.body.insertAdjacentHTML('beforeend', '<img src=x onerror="window.__xss=1">')""")
        page.wait_for_timeout(500)
        assert page.evaluate(PROBE) is None, "an inline handler ran"
        browser.close()
