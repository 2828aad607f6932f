"""The access log the API writes itself: uvicorn's line for every request, the query's secrets masked."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter

from tests.conftest import HOOK, WEBHOOK_SECRET, load_fixture, make_settings
from webhook_api.app import create_app
from webhook_api.serve import AccessLog

SONARR = load_fixture("webhooks", "sonarr", "Download.json")


def _uvicorn_line(client: str, method: str, target: str, status: int) -> str:
    """What uvicorn's own access log prints for the same request (no colours, as in a file)."""
    access = LOGGING_CONFIG["formatters"]["access"]
    formatter = AccessFormatter(fmt=access["fmt"], use_colors=False)
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        0,
        '%s - "%s %s HTTP/%s" %d',
        (client, method, target, "1.1", status),
        None,
    )
    return formatter.format(record) + "\n"


def test_each_request_gets_uvicorns_line_with_the_token_masked(
    database_url: str, engine: Engine, tmp_path: Path
) -> None:
    sink = io.StringIO()
    settings = make_settings(database_url, tmp_path, max_body_bytes=10_000)
    with TestClient(create_app(settings, access_log=AccessLog(sink))) as client:
        assert client.post(f"/api/webhooks/sonarr?a=1&token={WEBHOOK_SECRET}", json=SONARR).status_code == 202
        assert client.post("/api/webhooks/sonarr?To%6Ben=wrong-secret", json=SONARR).status_code == 401
        assert client.post("/api/webhooks/sonarr", content=b"x" * 20_000, headers=HOOK).status_code == 413
        assert client.get("/api/webhooks/sonarr/4k/nothing", headers=HOOK).status_code == 404
        assert client.get("/healthz").status_code == 200
    assert sink.getvalue().splitlines(keepends=True) == [
        _uvicorn_line("testclient:50000", "POST", "/api/webhooks/sonarr?a=1&token=***", 202),
        _uvicorn_line("testclient:50000", "POST", "/api/webhooks/sonarr?To%6Ben=***", 401),
        _uvicorn_line("testclient:50000", "POST", "/api/webhooks/sonarr", 413),
        _uvicorn_line("testclient:50000", "GET", "/api/webhooks/sonarr/4k/nothing", 404),
        _uvicorn_line("testclient:50000", "GET", "/healthz", 200),
    ]
    assert WEBHOOK_SECRET not in sink.getvalue() and "wrong-secret" not in sink.getvalue()
