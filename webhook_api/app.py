"""The FastAPI application: ``create_app()`` wires settings, the database, the writer and the routes."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from smartplex import migrate
from smartplex.db import make_engine
from smartplex.settings import SettingsBase, get_settings
from webhook_api.body_limit import BodyLimitMiddleware
from webhook_api.deps import AppState
from webhook_api.errors import BadWebhook, DatabaseUnavailable
from webhook_api.metrics import LatencyMiddleware, Metrics
from webhook_api.routes import admin, health, webhooks
from webhook_api.writer import WebhookWriter

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"


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


def create_app(settings: SettingsBase | None = None) -> FastAPI:
    settings = settings or get_settings()
    # The database gives up at half the request's budget, so a slow commit fails (and stores nothing)
    # before the request answers 503; the writer's own wait is only the backstop.
    engine = make_engine(settings.resolved_database_url, timeout=settings.db_timeout_seconds / 2)
    metrics = Metrics()
    writer = WebhookWriter(engine, timeout=settings.db_timeout_seconds, batch_size=settings.commit_batch_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare_schema(engine, settings)
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
        title="SmartPlex Sync webhook API",
        summary="Receives webhooks from Plex, Tautulli, Sonarr, Radarr and Overseerr and logs them for syncing.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.smartplex = AppState(settings=settings, engine=engine, writer=writer, metrics=metrics)
    app.include_router(webhooks.router)
    app.include_router(admin.router)
    app.include_router(health.router)
    if settings.baseline_route:
        app.include_router(webhooks.baseline_router)
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes, path_prefix="/api/")
    app.add_middleware(LatencyMiddleware, metrics=metrics)

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
