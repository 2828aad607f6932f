"""The admin page (``/admin``): webhook health, schedules, replay, service checks and the webhook URLs.

This module holds what every request shares (:class:`AdminPage`: sessions, templates and their
filters, links into the Dagster UI) and ``install(app, settings)``, which adds the page (``pages.py``),
its static files and the JSON twins the admin API lacked (``api.py``: service checks and the overview's
charts). The queries a page and its twin share are in ``operations.py`` and ``charts.py``. Runs,
lineage and backfills stay in the Dagster UI, which the page links to (``SMARTPLEX_DAGSTER_URL``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from importlib.resources import files
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import Response

from smartplex.column_types import utcnow
from smartplex.dagster_names import CODE_LOCATION, INSTANCE_TAG, TRIGGER_TAG, schedule_name
from smartplex.instances import Instance
from smartplex.settings import SettingsBase
from webhook_api.admin_page.session import Sessions
from webhook_api.body_limit import BodyLimitMiddleware

STATIC_URL = "/admin/static"
#: The largest form the page accepts: a replay of every row on a page is a few kilobytes.
FORM_LIMIT_BYTES = 256 * 1024
_STATIC = files("webhook_api.admin_page") / "static"


def when(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def duration(seconds: float | None) -> str:
    """A span as a person says it: 850 ms, 4.2 s, 3 min 5 s, 2 h 10 min, 3 d 4 h."""
    if seconds is None:
        return "–"
    seconds = abs(seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest and minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def ago(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    delta = (utcnow() - moment).total_seconds()
    if abs(delta) < 5:
        return "just now"
    return f"{duration(delta)} ago" if delta > 0 else f"in {duration(delta)}"


class AdminPage:
    """What every request to the page shares: sessions, templates, where the Dagster UI is."""

    def __init__(self, settings: SettingsBase) -> None:
        self.sessions = Sessions(settings.admin_secret)
        self.dagster_url = (settings.dagster_url or f"http://127.0.0.1:{settings.dagster_port}").rstrip("/")
        # A version in each asset's URL: a browser never keeps an old stylesheet after an upgrade.
        self.versions = {
            item.name: hashlib.sha256(item.read_bytes()).hexdigest()[:10]
            for item in _STATIC.iterdir()
            if item.is_file()
        }
        env = Environment(
            loader=PackageLoader("webhook_api.admin_page", "templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(when=when, ago=ago, duration=duration, number=lambda n: f"{n:,}")
        env.globals.update(
            static=self.static,
            dagster_run=lambda run_id: f"{self.dagster_url}/runs/{quote(run_id, safe='')}",
            dagster_runs=self.dagster_runs,
            dagster_asset=lambda path: f"{self.dagster_url}/assets/{path}",
            dagster_schedule=self.dagster_schedule,
        )
        self.templates = Jinja2Templates(env=env)

    def static(self, request: Request, name: str) -> str:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return f"{root}{STATIC_URL}/{name}?v={self.versions.get(name, '0')}"

    def dagster_schedule(self, instance: Instance) -> str:
        """The Dagster UI's page of one instance's full-refresh schedule."""
        return f"{self.dagster_url}/locations/{CODE_LOCATION}/schedules/{schedule_name(instance)}"

    def dagster_runs(self, instance: Instance, trigger: str | None = None) -> str:
        """The Dagster UI's run list of one instance, filtered by SmartPlex's run tags."""
        tags = [("q[]", f"tag:{INSTANCE_TAG}={instance.slug}")]
        if trigger:
            tags.append(("q[]", f"tag:{TRIGGER_TAG}={trigger}"))
        return f"{self.dagster_url}/runs?{urlencode(tags)}"


def install(app: FastAPI, settings: SettingsBase) -> None:
    # Imported here: the pages use the admin API's models, and the admin API this package's queries.
    from webhook_api.admin_page import api, pages

    async def _stop(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, pages.Stop)
        return exc.response

    app.state.admin_page = AdminPage(settings)
    # The sign-in form is read before anyone is known: bound what a stranger can make the server read.
    app.add_middleware(BodyLimitMiddleware, limit=FORM_LIMIT_BYTES, path_prefix="/admin/")
    app.include_router(pages.router)
    app.include_router(api.router)
    app.mount(STATIC_URL, StaticFiles(packages=[("webhook_api.admin_page", "static")]), name="admin-static")
    app.add_exception_handler(pages.Stop, _stop)


__all__ = ["STATIC_URL", "AdminPage", "install"]
