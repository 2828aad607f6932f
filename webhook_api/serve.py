"""Serving the webhook API with uvicorn (``smartplex api``): its access log, with secrets masked."""

from __future__ import annotations

import asyncio
import http
import logging
import re
import sys
from typing import TextIO
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


def serve(host: str, port: int) -> None:
    """Serve the API with uvicorn until interrupted. The app writes the access log itself
    (:class:`AccessLog`); uvicorn's stays off, and masked if turned on."""
    import uvicorn

    logging.getLogger("uvicorn.access").addFilter(RedactSecrets())
    uvicorn.run(
        "webhook_api.serve:create_served_app", factory=True, host=host, port=port, proxy_headers=True, access_log=False
    )
