"""What every simulator app shares: JSON responses, the auth gate, faults and the control routes."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from smartplex_simulators.faults import CONTROL_PREFIX, FaultMiddleware

if TYPE_CHECKING:
    from smartplex_simulators.simulation import Simulation
    from smartplex_simulators.universe import Universe

#: Returns ``None`` to let a request through, or the service's own rejection.
Authenticator = Callable[[Request], Response | None]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status, headers, media_type="application/json; charset=utf-8")


class RenderCache:
    """Each item's JSON, rendered once per universe revision: a long listing then costs a join, not a render."""

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self._rendered: dict[Hashable, bytes] = {}
        self._revision = -1

    def get(self, key: Hashable, render: Callable[[], Any]) -> bytes:
        if self._revision != self.universe.revision:
            self._rendered.clear()
            self._revision = self.universe.revision
        rendered = self._rendered.get(key)
        if rendered is None:
            rendered = self._rendered[key] = json.dumps(render(), separators=(",", ":"), ensure_ascii=False).encode()
        return rendered


def json_array(parts: Sequence[bytes]) -> bytes:
    return b"".join((b"[", b",".join(parts), b"]"))


def query_int(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name) or request.headers.get(name)
    return int(value) if value not in (None, "") else default


class _AuthGate:
    def __init__(self, app: ASGIApp, authenticate: Authenticator, public: Sequence[str]) -> None:
        self.app = app
        self.authenticate = authenticate
        self.public = tuple(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and not path.startswith((CONTROL_PREFIX, *self.public)):
            rejection = self.authenticate(Request(scope))
            if rejection is not None:
                await rejection(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_app(
    instance_id: str,
    simulation: Simulation,
    routes: Sequence[BaseRoute],
    authenticate: Authenticator,
    *,
    url_base: str = "",
    public: Sequence[str] = (),
) -> ASGIApp:
    """An instance's routes (under ``url_base``) behind its auth and faults, plus ``/_sim`` control;
    ``instance_id`` (``sonarr``, ``sonarr/4k``) picks its faults."""
    from smartplex_simulators.control import control_routes

    api: list[BaseRoute] = [Mount(url_base, routes=list(routes))] if url_base else list(routes)
    app = Starlette(routes=[Mount(CONTROL_PREFIX, routes=control_routes(simulation, instance_id)), *api])
    public_paths = [url_base + path for path in public]
    return FaultMiddleware(_AuthGate(app, authenticate, public_paths), simulation.faults[instance_id])
