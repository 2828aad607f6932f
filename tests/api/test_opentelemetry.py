"""``SMARTPLEX_OPENTELEMETRY``: FastAPI's native OpenTelemetry for the API, off unless asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Engine, func, select

from smartplex.schema import webhook_log
from tests.conftest import HOOK, load_fixture, make_settings


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """An SDK configured as a user would, through OpenTelemetry's global provider (set once per process)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.mark.parametrize("on", [True, False], ids=["on", "off"])
def test_webhooks_are_traced_only_when_opentelemetry_is_on(
    spans: InMemorySpanExporter, on: bool, database_url: str, tmp_path: Path, engine: Engine
) -> None:
    from webhook_api.app import create_app

    spans.clear()
    with TestClient(create_app(make_settings(database_url, tmp_path, opentelemetry=on))) as client:
        response = client.post(
            "/api/webhooks/sonarr", json=load_fixture("webhooks", "sonarr", "Download.json"), headers=HOOK
        )
    assert response.status_code == 202
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(webhook_log)) == 1
    routes = [span.attributes.get("http.route") for span in spans.get_finished_spans() if span.attributes]
    assert routes == (["/api/webhooks/{source}"] if on else []), routes
