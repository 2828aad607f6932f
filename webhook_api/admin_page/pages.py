"""The admin page, ``/admin``: its routes, server-rendered HTML over the same queries as its JSON twins
(``operations.py``, ``charts.py``) and the same changes as the admin API.

Every form is a plain POST that answers with a redirect (or, for bad input, the page again with the
message and status 422), so the page works without JavaScript; ``static/admin.js`` only sends the same
forms in the background and swaps the answer's ``<main>`` in.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from smartplex import catch_up, schedule_state, webhook_queue
from smartplex.clients.check import check_service
from smartplex.column_types import utcnow
from smartplex.instances import Instance
from smartplex.kinds import KINDS
from smartplex.schema import WEBHOOK_STATUSES as STATUSES
from webhook_api.admin_page import charts, operations
from webhook_api.admin_page.redact import SECRET_KEY, redact
from webhook_api.admin_page.services import webhook_target
from webhook_api.admin_page.session import CSRF_FIELD, CSRF_HEADER, Access, Session, Sessions
from webhook_api.deps import AppState, get_state
from webhook_api.routes.admin import CatchUpChange, Replay, ScheduleChange
from webhook_api.status import webhook_status

router = APIRouter(prefix="/admin", include_in_schema=False)

#: How often the overview reloads its figures in place (and, without JavaScript, the whole page).
REFRESH_SECONDS = 15
PAGE_SIZE = 50
WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
#: How often the catch-up polls an instance whose sender has disabled our webhook, as its warning says it.
UNHEALTHY_POLL = (
    "every minute"
    if catch_up.UNHEALTHY_INTERVAL == timedelta(minutes=1)
    else f"every {catch_up.UNHEALTHY_INTERVAL.total_seconds() / 60:g} minutes"
)

T = TypeVar("T")
Change = TypeVar("Change", ScheduleChange, CatchUpChange)


class Stop(Exception):
    """Answer with ``response`` at once (a refusal, a redirect to sign in)."""

    def __init__(self, response: Response) -> None:
        self.response = response


#: Headers on every page: nothing from elsewhere may run, frame or receive the page.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class Page:
    """One request to the page: the app's state, the browser's session, and how to answer."""

    request: Request
    state: AppState
    session: Session

    @property
    def admin(self) -> Any:
        return self.request.app.state.admin_page

    @property
    def sessions(self) -> Sessions:
        return self.admin.sessions  # type: ignore[no-any-return]

    def url(self, path: str) -> str:
        return str(self.request.scope.get("root_path", "")).rstrip("/") + path

    def here(self) -> str:
        """This request's path and query, without the root path: where to come back to. Parameters named
        like a secret (``?token=``) are left out, so a URL never carries one on to the next page."""
        path = self.request.url.path
        root = str(self.request.scope.get("root_path", "")).rstrip("/")
        if root and path.startswith(root):
            path = path[len(root) :]
        kept = [(k, v) for k, v in self.request.query_params.multi_items() if not SECRET_KEY.search(k)]
        return path + (f"?{urlencode(kept)}" if kept else "")

    def render(
        self,
        template: str,
        status_code: int = 200,
        notices: list[list[str]] | None = None,
        save: bool = True,
        **context: Any,
    ) -> Response:
        """The template with what every page shows; ``notices`` ([kind, text]) join the session's messages."""
        context = {
            "request": self.request,
            "csrf": self.session.csrf,
            "csrf_field": CSRF_FIELD,
            "flash": self.session.take_flash() + (notices or []),
            "signed_in": self.sessions.needs_sign_in and self.session.signed_in,
            "dagster": self.admin.dagster_url,
            "url": self.url,
            "now": utcnow(),
            "section": "",
            "refresh": None,
            **context,
        }
        response = self.admin.templates.TemplateResponse(self.request, template, context, status_code=status_code)
        return self.finish(response, save)

    def message(
        self, status_code: int, title: str, text: str, back: str | None = None, *, save: bool = True
    ) -> Response:
        return self.render("message.html", status_code, title=title, text=text, back=back, save=save)

    def redirect(self, path: str, *, save: bool = True) -> Response:
        return self.finish(RedirectResponse(self.url(path), status_code=303), save)

    def finish(self, response: Response, save: bool = True) -> Response:
        """``save``: the session goes back to the browser; refusals give an anonymous one none."""
        if save:
            self.sessions.save(self.request, response, self.session)
        response.headers.update(SECURITY_HEADERS)
        return response

    async def db(self, work: Callable[..., T], *args: Any) -> T:
        """Run database work off the event loop, as FastAPI runs a plain ``def`` route."""
        return await run_in_threadpool(work, self.state.engine, *args)


async def _load(request: Request) -> Page:
    state = await get_state(request)
    return Page(request, state, request.app.state.admin_page.sessions.load(request))


async def page(request: Request) -> Page:
    """The page for a browser allowed in; others are sent to sign in, or told why not."""
    current = await _load(request)
    access = current.sessions.access(request, current.session)
    if access is Access.LOOPBACK_ONLY:
        raise Stop(
            current.message(
                403,
                "Open on this machine only",
                "No admin secret is set (SMARTPLEX_ADMIN_SECRET), so this page answers only a browser on the "
                "server itself, at a loopback address such as http://127.0.0.1. Set the secret to sign in from elsewhere.",
                save=False,
            )
        )
    if access is Access.SIGN_IN:
        if request.method in ("GET", "HEAD"):
            raise Stop(current.redirect("/admin/login?" + urlencode({"next": current.here()}), save=False))
        raise Stop(
            current.message(
                401,
                "Sign in first",
                "You are not signed in, or your session has ended: sign in again, then repeat what you were doing. "
                "Nothing was changed.",
                "/admin/login",
                save=False,
            )
        )
    return current


PageDep = Annotated[Page, Depends(page)]


async def checked_form(current: PageDep) -> FormData:
    """The posted form, once its CSRF token matches the session's."""
    return await _checked(current)


async def _checked(current: Page) -> FormData:
    form = await current.request.form()
    submitted = form.get(CSRF_FIELD) or current.request.headers.get(CSRF_HEADER)
    if not isinstance(submitted, str) or not Sessions.csrf_matches(current.session, submitted):
        raise Stop(
            current.message(
                403,
                "This form has expired",
                "The form did not carry this session's security token: it was older than your sign-in, or it came "
                "from another site. Reload the page and try again. Nothing was changed.",
            )
        )
    return form


FormDep = Annotated[FormData, Depends(checked_form)]


def _safe_next(value: Any) -> str:
    """Only a path of this page: never another site (``//host``) or another part of the server."""
    if isinstance(value, str) and value.startswith("/admin") and not value.startswith("//") and "\\" not in value:
        return value
    return "/admin"


# --- sign in and out ----------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request, next: str = "/admin") -> Response:
    current = await _load(request)
    if current.sessions.access(request, current.session) is Access.GRANTED:
        return current.redirect(_safe_next(next))
    if not current.sessions.needs_sign_in:
        await page(request)  # raises Stop: refuses, saying why
        raise AssertionError("a page that needs no sign-in has no sign-in form")
    return current.render("login.html", title="Sign in", error=None, next=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    current = await _load(request)
    if not current.sessions.needs_sign_in:
        await page(request)  # refuses a browser elsewhere, saying why
        return current.redirect("/admin")
    form = await _checked(current)
    target = _safe_next(form.get("next"))
    secret = form.get("secret")
    if not isinstance(secret, str) or not current.sessions.secret_matches(secret):
        return current.render("login.html", 401, title="Sign in", error="That is not the admin secret.", next=target)
    current.session = Sessions.sign_in(current.session)
    return current.redirect(target)


@router.post("/logout")
async def logout(request: Request) -> Response:
    current = await _load(request)
    await _checked(current)
    current.session = Sessions.signed_out()
    current.session.say("info", "Signed out.")
    return current.redirect("/admin/login" if current.sessions.needs_sign_in else "/admin")


# --- overview -----------------------------------------------------------------------------------


def _overview(engine: Any, window: timedelta, instances: tuple[Instance, ...]) -> dict[str, Any]:
    now = utcnow()
    with engine.connect() as connection:
        # The same calls as GET /api/webhooks/status and the charts' JSON twins make.
        status = webhook_status(connection, window, now, instances=tuple(i.id for i in instances))
        bars = {name: charts.received(connection, chart, instances, now) for name, chart in charts.CHARTS.items()}
        runs = operations.last_webhook_runs(connection, instances)
    plans = {row["library"]: row for row in status["schedules"]}
    cards = []
    for svc in instances:
        figures = status["sources"][svc.id]
        plan = plans.get(svc.id)
        run = runs.get(svc)
        full = None
        if plan is not None and plan["last_run_at"] is not None:
            full = {
                "how": "full refresh",
                "at": plan["last_run_at"],
                "ok": plan["last_status"] == "success",
                "status": plan["last_status"] or "unknown",
                "error": plan["last_error"],
            }
        webhook = None
        if run is not None:
            webhook = {
                "how": "by webhooks",
                "at": run["processed_at"],
                "ok": run["status"] == "processed",
                "status": run["status"],
                "error": run["error_message"],
                "run_id": run["run_id"],
            }
        latest = max((s for s in (full, webhook) if s and s["at"]), key=lambda s: s["at"], default=None)
        cards.append(
            {
                "service": svc,
                "figures": figures,
                "charts": [(chart, charts.draw(chart, bars[name][svc])) for name, chart in charts.CHARTS.items()],
                "full": full,
                "webhook": webhook,
                "latest": latest,
                "plan": plan,
                "catch_up": status["catch_up"].get(svc.id),
            }
        )
    return {"status": status, "cards": cards}


@router.get("")
async def overview(current: PageDep, window: str = "24h") -> Response:
    if window not in WINDOWS:
        window = "24h"
    data = await current.db(_overview, WINDOWS[window], current.state.settings.service_instances)
    return current.render(
        "overview.html",
        title="Overview",
        section="overview",
        window=window,
        refresh=REFRESH_SECONDS,
        unhealthy_poll=UNHEALTHY_POLL,
        **data,
    )


# --- schedules ----------------------------------------------------------------------------------


def _schedules(engine: Any, instances: tuple[Instance, ...]) -> list[operations.Schedule]:
    with engine.begin() as connection:
        return operations.list_schedules(connection, instances, utcnow())


@dataclass(frozen=True)
class Refused:
    """A schedule's or a catch-up's form sent back: whose, why, and the values as sent, to show again."""

    form: Literal["schedule", "catch_up"]
    slug: str
    problem: str = ""
    values: dict[str, Any] = field(default_factory=dict)


async def _schedules_page(current: Page, refused: Refused | None = None) -> Response:
    settings = current.state.settings
    found = await current.db(_schedules, settings.service_instances)
    configured = {svc.slug: settings.is_configured(svc) for svc in settings.service_instances}
    notices = []
    if refused is not None:
        notices.append(["error", f"{Instance.from_slug(refused.slug).title}: nothing was changed. {refused.problem}"])
    return current.render(
        "schedules.html",
        422 if refused else 200,
        notices=notices,
        title="Schedules",
        section="schedules",
        schedules=found,
        configured=configured,
        refused=refused,
        unhealthy_poll=UNHEALTHY_POLL,
    )


@router.get("/schedules")
async def schedules_page(current: PageDep) -> Response:
    return await _schedules_page(current)


def _service_or_404(current: Page, slug: str) -> Instance:
    """The configured instance a page's path names by its slug (``sonarr``, ``sonarr_4k``)."""
    try:
        return current.state.settings.instance(Instance.from_slug(slug).id)
    except (ValueError, KeyError):
        known = ", ".join(i.slug for i in current.state.settings.service_instances)
        raise Stop(current.message(404, "No such service", f"SmartPlex follows {known}; not {slug!r}.")) from None


def _switch_and_interval(
    form: FormData, refused: Refused, interval_field: str, model: type[Change], rule: str
) -> Change | Refused:
    """An "Enabled" checkbox and an interval, read through the API's own model, so the page can never
    store what the API would refuse; else ``refused``, with what is wrong and the values as sent."""
    enabled = form.get("enabled")
    raw_interval = form.get(interval_field)
    values = {"enabled": enabled is not None, interval_field: raw_interval}
    if enabled not in (None, "on", "true"):
        return replace(refused, problem="Enabled is a checkbox: on, or left out for off.", values=values)
    try:
        interval = int(str(raw_interval).strip())
        return model.model_validate({"enabled": enabled is not None, interval_field: interval})
    except (ValueError, ValidationError):
        return replace(refused, problem=f"{rule}, not {str(raw_interval)!r}.", values=values)


@router.post("/schedules/{slug}")
async def change_schedule(slug: str, current: PageDep, form: FormDep) -> Response:
    instance = _service_or_404(current, slug)
    change = _switch_and_interval(
        form,
        Refused("schedule", slug),
        "interval_hours",
        ScheduleChange,
        "The interval is a whole number of hours from 1 to 168",
    )
    if isinstance(change, Refused):
        return await _schedules_page(current, change)

    def apply(engine: Any) -> dict[str, Any] | None:
        with engine.begin() as connection:
            return schedule_state.change(
                connection, instance, enabled=change.enabled, interval_hours=change.interval_hours
            )

    row = await current.db(apply)
    if row is None:
        return current.message(
            404, "No schedule", f"There is no sync_schedule row for {slug}: run 'smartplex db upgrade'."
        )
    state = f"on, every {row['interval_hours']} h" if row["enabled"] else f"off (interval {row['interval_hours']} h)"
    current.session.say("ok", f"{instance.title}: full refresh {state}.")
    return current.redirect("/admin/schedules")


@router.post("/schedules/{slug}/catch-up")
async def change_catch_up(slug: str, current: PageDep, form: FormDep) -> Response:
    instance = _service_or_404(current, slug)
    change = _switch_and_interval(
        form,
        Refused("catch_up", slug),
        "interval_minutes",
        CatchUpChange,
        "The catch-up's interval is a whole number of minutes from 1 to 1440",
    )
    if isinstance(change, Refused):
        return await _schedules_page(current, change)

    def apply(engine: Any) -> dict[str, Any]:
        with engine.begin() as connection:
            return catch_up.change(
                connection, instance, enabled=change.enabled, interval_minutes=change.interval_minutes
            )

    row = await current.db(apply)
    every = row["interval_minutes"]
    state = f"on, every {every} min" if row["enabled"] else f"off (interval {every} min)"
    current.session.say("ok", f"{instance.title}: catch-up {state}.")
    return current.redirect("/admin/schedules")


@router.post("/schedules/{slug}/sync")
async def sync_now(slug: str, current: PageDep, form: FormDep) -> Response:
    instance = _service_or_404(current, slug)

    def apply(engine: Any) -> dict[str, Any] | None:
        with engine.begin() as connection:
            return schedule_state.request_sync(connection, instance)

    row = await current.db(apply)
    if row is None:
        return current.message(
            404, "No schedule", f"There is no sync_schedule row for {slug}: run 'smartplex db upgrade'."
        )
    current.session.say("ok", f"{instance.title}: a full refresh starts within seconds.")
    return current.redirect("/admin/schedules")


# --- webhook rows -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListRequest:
    where: operations.WebhookFilter
    page: int
    since_text: str
    problems: list[str]

    def query(self, **changes: Any) -> str:
        """This list's query string, with ``changes`` (None drops a parameter)."""
        values = {
            "source": self.where.source,
            "status": self.where.status,
            "event": self.where.event_type,
            "since": self.since_text or None,
            "page": self.page if self.page > 1 else None,
        } | changes
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _parse_since(text: str) -> datetime:
    """A date or a date and time, from the form's ``datetime-local`` field: UTC unless a zone is given."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _is_source(value: str) -> bool:
    """A kind (``sonarr``) or one instance of it (``sonarr/4k``)."""
    try:
        Instance.parse(value)
    except ValueError:
        return False
    return True


def _list_request(params: dict[str, str]) -> ListRequest:
    problems = []
    source = params.get("source") or None
    if source is not None and not _is_source(source):
        problems.append(f"Unknown source {source!r}: showing every source.")
        source = None
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        problems.append(f"Unknown status {status!r}: showing every status.")
        status = None
    since_text = (params.get("since") or "").strip()
    since = None
    if since_text:
        try:
            since = _parse_since(since_text)
        except ValueError:
            problems.append(f"{since_text!r} is not a date or time (e.g. 2024-05-14 or 2024-05-14T08:00): ignored.")
            since_text = ""
    event = params.get("event") or None
    if event is not None and "\x00" in event:
        problems.append("An event type has no NUL character: showing every event.")
        event = None
    try:
        number = int(params.get("page") or 1)
    except ValueError:
        number = 0
    if not 1 <= number <= operations.MAX_PAGE:
        problems.append(f"The page number is a whole number from 1 to {operations.MAX_PAGE:,}: showing the first page.")
        number = 1
    where = operations.WebhookFilter(source, status, event, since)
    return ListRequest(where, number, since_text, problems)


def _webhook_list(engine: Any, listing: ListRequest, replay_status: str) -> dict[str, Any]:
    with engine.connect() as connection:
        total = operations.count_webhooks(connection, listing.where)
        rows = operations.list_webhooks(
            connection, listing.where, page=listing.page, page_size=PAGE_SIZE, with_payload=False
        )
        events = operations.event_types(connection, listing.where.source)
        replay_where = operations.WebhookFilter(listing.where.source, replay_status, None, listing.where.since)
        replayable = operations.count_webhooks(connection, replay_where)
    return {"total": total, "rows": rows, "events": events, "replayable": replayable}


@router.get("/webhooks")
async def webhooks_page(current: PageDep) -> Response:
    listing = _list_request(dict(current.request.query_params))
    replay_status = listing.where.status if listing.where.status in webhook_queue.REPLAYABLE else "failed"
    data = await current.db(_webhook_list, listing, replay_status)
    pages = max((data["total"] + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return current.render(
        "webhooks.html",
        422 if listing.problems else 200,
        notices=[["error", problem] for problem in listing.problems],
        title="Webhooks",
        section="webhooks",
        listing=listing,
        pages=pages,
        statuses=STATUSES,
        services=KINDS,
        replayable_statuses=webhook_queue.REPLAYABLE,
        replay_status=replay_status,
        back=current.here(),
        **data,
    )


def _row(engine: Any, webhook_id: uuid.UUID) -> dict[str, Any] | None:
    with engine.connect() as connection:
        return operations.webhook_row(connection, webhook_id)


@router.get("/webhooks/{webhook_id}")
async def webhook_page(webhook_id: str, current: PageDep) -> Response:
    try:
        key = uuid.UUID(webhook_id)
    except ValueError:
        return current.message(404, "No such webhook", f"{webhook_id!r} is not a webhook row's id.")
    row = await current.db(_row, key)
    if row is None:
        return current.message(404, "No such webhook", "No webhook row has that id (retention may have deleted it).")
    payload = json.dumps(redact(row.pop("payload")), indent=2, ensure_ascii=False, default=str)
    return current.render(
        "webhook.html",
        title=f"{row['source']} {row['event_type']}",
        section="webhooks",
        row=row,
        payload=payload,
        replayable=row["status"] in webhook_queue.REPLAYABLE,
        back=_safe_next(current.request.query_params.get("back") or "/admin/webhooks"),
    )


@router.post("/webhooks/replay")
async def replay(current: PageDep, form: FormDep) -> Response:
    back = _safe_next(form.get("next") or "/admin/webhooks")
    try:
        if form.get("scope") == "filter":
            since_text = str(form.get("since") or "").strip()
            try:
                since = _parse_since(since_text) if since_text else None
            except ValueError:
                return _replay_refused(current, back, f"{since_text!r} is not a date or time (e.g. 2024-05-14T08:00).")
            # The API's own model: the same statuses, sources and rules as POST /api/admin/webhooks/replay.
            request = Replay.model_validate(
                {"source": form.get("source") or None, "status": form.get("status") or "failed", "since": since}
            )
        else:
            ids = [value for value in form.getlist("ids") if isinstance(value, str)]
            if not ids:
                return _replay_refused(current, back, "No row was ticked: tick the rows to replay first.")
            request = Replay.model_validate({"ids": ids})
    except ValidationError as exc:
        return _replay_refused(current, back, "; ".join(_plain(error) for error in exc.errors()))

    def apply(engine: Any) -> int:
        with engine.begin() as connection:
            return webhook_queue.replay(
                connection, ids=request.ids, source=request.source, status=request.status, since=request.since
            )

    count = await current.db(apply)
    if count:
        noun = "row" if count == 1 else "rows"
        current.session.say("ok", f"Replayed {count} {noun}: back to pending, a sync follows within seconds.")
    else:
        current.session.say(
            "info", "Nothing to replay: no row matched (only failed, processed or missing rows replay)."
        )
    return current.redirect(back)


def _plain(error: Any) -> str:
    """A validation error as a sentence: which field, and what is wrong with it."""
    where = ".".join(str(part) for part in error.get("loc", ()))
    text = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {text}" if where else text


def _replay_refused(current: Page, back: str, problem: str) -> Response:
    return current.message(422, "Nothing was replayed", problem, back)


# --- services -----------------------------------------------------------------------------------


async def _services_page(current: Page, result: Any = None, status_code: int = 200) -> Response:
    settings = current.state.settings
    services = [
        {"service": svc, "configured": settings.is_configured(svc), "url": settings.service_url(svc)}
        for svc in settings.service_instances
    ]
    return current.render(
        "services.html", status_code, title="Services", section="services", services=services, result=result
    )


@router.get("/services")
async def services_page(current: PageDep) -> Response:
    return await _services_page(current)


@router.post("/services/{slug}/check")
async def check(slug: str, current: PageDep, form: FormDep) -> Response:
    instance = _service_or_404(current, slug)
    result = await run_in_threadpool(check_service, current.state.settings, instance)
    return await _services_page(current, result)


# --- the webhook URLs ---------------------------------------------------------------------------


@router.get("/connect")
async def connect_page(current: PageDep) -> Response:
    base = str(current.request.base_url).rstrip("/")
    settings = current.state.settings
    targets = [webhook_target(settings, svc, base) for svc in settings.service_instances]
    return current.render("connect.html", title="Webhook URLs", section="connect", targets=targets, base=base)
