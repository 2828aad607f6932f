"""The FastAPI application: ``create_app()`` wires settings, the database, the writer and the routes."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import Scope

from smartplex import catch_up, migrate
from smartplex.db import make_engine
from smartplex.settings import SettingsBase, get_settings
from webhook_api import API_TITLE
from webhook_api.admin_page import install as install_admin_page
from webhook_api.body_limit import BodyLimitMiddleware
from webhook_api.deps import AppState
from webhook_api.errors import BadWebhook, DatabaseUnavailable
from webhook_api.metrics import LatencyMiddleware, Metrics
from webhook_api.routes import admin, health, webhooks
from webhook_api.writer import WebhookWriter

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"
#: Where Swagger UI's and ReDoc's own files are served from: the fastapi-offline package, not a CDN,
#: so /docs and /redoc work on a server without internet.
DOCS_ASSETS_URL = "/docs-assets"
DOCS_ASSETS = files("fastapi_offline") / "static"


class SchemaBehind(RuntimeError):
    pass


def prepare_schema(engine: Engine, settings: SettingsBase) -> None:
    """The embedded default migrates itself; a configured database must be upgraded explicitly."""
    try:
        revision = migrate.current_revision(engine)
    except (OperationalError, InterfaceError) as exc:
        log.warning("database unreachable at start (%s); answering 503 until it is back", type(exc.orig).__name__)
        return
    head = migrate.head_revision()
    if revision == head:
        return
    if settings.database_url is None:
        log.info("applying migrations to the embedded database (%s -> %s)", revision or "empty", head)
        migrate.upgrade(engine)
        return
    raise SchemaBehind(
        f"database schema is at {revision or 'nothing'}, this version needs {head}: "
        "run 'smartplex db upgrade' (or apply migrations/sql/*.sql by hand), then start again"
    )


def _catch_up_soon(engine: Engine) -> None:
    """Webhooks posted while the API was down are lost: the catch-up polls every service at once."""
    try:
        with engine.begin() as connection:
            catch_up.poll_soon(connection)
    except SQLAlchemyError as exc:  # down, or not upgraded yet: the catch-up keeps its interval
        log.info("catch-up not brought forward at start (%s)", type(exc).__name__)


def _serve_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc, as FastAPI serves them, with their scripts and styles from this server."""
    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=str(DOCS_ASSETS)), name="docs-assets")
    oauth2_redirect = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = base(request)
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_redirect}",
            swagger_js_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def swagger_ui_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        root = base(request)
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )

    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route(oauth2_redirect, swagger_ui_redirect, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)


def create_app(
    settings: SettingsBase | None = None, *, access_log: Callable[[Scope, int], None] | None = None
) -> FastAPI:
    """The app; ``access_log``, when given, is handed each request's scope and status as it is answered
    (``smartplex api`` passes :class:`webhook_api.serve.AccessLog`)."""
    settings = settings or get_settings()
    # The database gives up at half the request's budget, so a slow commit fails (and stores nothing)
    # before the request answers 503; the writer's own wait is only the backstop.
    engine = make_engine(settings.resolved_database_url, timeout=settings.db_timeout_seconds / 2)
    metrics = Metrics()
    writer = WebhookWriter(engine, timeout=settings.db_timeout_seconds, batch_size=settings.commit_batch_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare_schema(engine, settings)
        _catch_up_soon(engine)
        await writer.start()
        # Everything loaded so far lives as long as the process: keep the collector off it, which
        # trims the full collections that otherwise show up as latency spikes under load.
        gc.freeze()
        try:
            yield
        finally:
            await writer.stop()
            engine.dispose()

    app = FastAPI(
        title=API_TITLE,
        summary="Receives webhooks from Plex, Tautulli, Sonarr, Radarr and Overseerr and logs them for syncing.",
        version="0.1.0",
        lifespan=lifespan,
        # Off, FastAPI skips asking on each request whether an OpenTelemetry provider is configured.
        telemetry=None if settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
        docs_url=None,  # served below, from local files
        redoc_url=None,
    )
    app.state.smartplex = AppState(settings=settings, engine=engine, writer=writer, metrics=metrics)
    # Routes are tried in order: the webhooks first, as they are what the server mostly answers; the
    # benchmark's baseline right after, so that finding it costs what finding the real route costs.
    webhooks.install(app, baseline_route=settings.baseline_route)
    app.include_router(admin.router)
    app.include_router(health.router)
    install_admin_page(app, settings)
    _serve_docs(app)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes, path_prefix="/api/")
    app.add_middleware(LatencyMiddleware, metrics=metrics, access_log=access_log)

    @app.exception_handler(BadWebhook)
    async def bad_webhook(_: Request, exc: BadWebhook) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(DatabaseUnavailable)
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(PoolTimeout)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable for %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return JSONResponse(
            {"detail": "database unavailable; nothing was stored, try again shortly"},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

    return app
