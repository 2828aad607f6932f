"""Test support shared by the client and simulator suites: in-process and over-socket harnesses."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from smartplex.clients import CLIENTS, ServiceClient
from smartplex_simulators import Simulation, Universe
from smartplex_simulators.serve import APP_FACTORIES

API_FIXTURES = Path(__file__).parent.parent / "fixtures" / "apis"


class SyncASGITransport(httpx.BaseTransport):
    """httpx's ASGI transport is async-only; the clients are sync, so run each request to completion."""

    def __init__(self, app: Any) -> None:
        self._transport = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> tuple[int, httpx.Headers, bytes]:
            response = await self._transport.handle_async_request(request)
            return response.status_code, response.headers, await response.aread()

        status, headers, content = asyncio.run(call())
        return httpx.Response(status, headers=headers, content=content)


def asgi_client(
    name: str, simulation: Simulation, *, key: str | None = None, url_base: str = "", **options: Any
) -> ServiceClient[Any]:
    """A client wired to a simulator in-process, no socket."""
    app = APP_FACTORIES[name](simulation, url_base)
    return CLIENTS[name](
        f"http://{name}.test{url_base}", key or simulation.keys[name], transport=SyncASGITransport(app), **options
    )


def empty_simulation(now: int = 1_767_225_600) -> Simulation:
    """A universe with nothing in it, for tests that add exactly what they count."""
    return Simulation(Universe(size=0, now=now))


def load_api_fixture(kind: str, name: str) -> Any:
    return json.loads((API_FIXTURES / kind / f"{name}.json").read_text())
