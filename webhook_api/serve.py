"""Serving the webhook API with uvicorn (``smartplex api``): one process or several workers; its access
log, with secrets masked."""

from __future__ import annotations

import asyncio
import http
import logging
import os
import re
import sys
import tempfile
from typing import Any, TextIO
from urllib.parse import quote, unquote_plus

from fastapi import FastAPI
from starlette.types import Scope

_QUERY = re.compile(r"\?[^\s\"#]*")


def mask_query(query: str) -> str:
    """Mask every ``token`` parameter, however its name is spelt (``To%6Ben`` decodes to it too)."""
    if "=" not in query:
        return query
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        parts.append(f"{name}=***" if equals and unquote_plus(name).strip().lower() == "token" else part)
    return "&".join(parts)


def _mask_match(match: re.Match[str]) -> str:
    return "?" + mask_query(match.group(0)[1:])


def redact(text: str) -> str:
    return _QUERY.sub(_mask_match, text)


def _status_phrase(status: int) -> str:
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} "


_STATUS = {status.value: _status_phrase(status.value) for status in http.HTTPStatus}


class AccessLog:
    """One line per request, as uvicorn's access log prints it, with every ``token`` in the query masked.

    Uvicorn's own access log goes through the logging machinery, a filter and a flush for every
    request; these lines are formatted directly and written together once per turn of the event
    loop, so a busy server writes (and flushes) many lines at once, an idle one each line at once.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lines: list[str] = []

    def __call__(self, scope: Scope, status: int) -> None:
        client = scope.get("client")
        target = quote(scope["path"])
        if scope["query_string"]:
            target = f"{target}?{mask_query(scope['query_string'].decode('latin-1'))}"
        phrase = _STATUS.get(status) or _status_phrase(status)
        address = f"{client[0]}:{client[1]}" if client else ""
        self._lines.append(
            f'INFO:     {address} - "{scope["method"]} {target} HTTP/{scope["http_version"]}" {phrase}\n'
        )
        if len(self._lines) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop running: write at once
                self.flush()

    def flush(self) -> None:
        lines, self._lines = "".join(self._lines), []
        stream = self._stream or sys.stdout
        try:
            stream.write(lines)
            stream.flush()
        except (OSError, ValueError):  # stdout closed or gone: the lines are lost, the requests are not
            pass


def create_served_app() -> FastAPI:
    """The app ``smartplex api`` serves: :func:`webhook_api.app.create_app` with its access log on."""
    from webhook_api.app import create_app

    return create_app(access_log=AccessLog())


class RedactSecrets(logging.Filter):
    """Access logs carry the query string, and Plex's secret travels there: mask it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        record.msg = redact(str(record.msg))
        return True


#: What uvicorn serves, in each worker: the app, made by this factory.
APP = "webhook_api.serve:create_served_app"


def serve(host: str, port: int, *, workers: int = 1) -> None:
    """Serve the API with uvicorn until SIGINT or SIGTERM. The app writes the access log itself
    (:class:`AccessLog`); uvicorn's stays off, and masked if turned on.

    With ``workers`` above 1, this process prepares the database's schema, binds the port and starts
    that many worker processes, each with its own app, engine and group-commit writer; it restarts a
    worker that dies, and on SIGINT or SIGTERM stops them all (each finishes what it acknowledged)
    before it returns. Their metrics are summed in a directory of this process's own, removed after.
    """
    import uvicorn

    logging.getLogger("uvicorn.access").addFilter(RedactSecrets())
    options: dict[str, Any] = {"factory": True, "host": host, "port": port, "proxy_headers": True, "access_log": False}
    if workers == 1:
        uvicorn.run(APP, **options)
        return
    from webhook_api.metrics import MULTIPROCESS_DIR

    prepare_schema_once()
    with tempfile.TemporaryDirectory(prefix="smartplex-metrics-") as metrics:
        # Inherited by the workers, before any of them creates a metric; never another run's files.
        os.environ[MULTIPROCESS_DIR] = metrics
        try:
            uvicorn.run(APP, workers=workers, **options)
        finally:
            del os.environ[MULTIPROCESS_DIR]


def prepare_schema_once() -> None:
    """What each app does at start (:func:`webhook_api.app.prepare_schema`), done once before the
    workers start: several processes migrating a new embedded database at once would collide, and a
    configured database behind stops the command here, not each worker in turn."""
    from smartplex.db import make_engine
    from smartplex.settings import get_settings
    from webhook_api.app import prepare_schema

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url, timeout=settings.db_timeout_seconds)
    try:
        prepare_schema(engine, settings)
    finally:
        engine.dispose()
