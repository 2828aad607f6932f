"""FastAPI dependencies: the app's state, and the admin secret check."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, SecretStr
from sqlalchemy import Engine

from smartplex.instances import DEFAULT_INSTANCE, Instance
from smartplex.settings import SettingsBase
from webhook_api.auth import admin_authorized
from webhook_api.metrics import Metrics
from webhook_api.writer import WebhookWriter


@dataclass
class AppState:
    settings: SettingsBase
    engine: Engine
    writer: WebhookWriter
    metrics: Metrics
    #: Each configured instance, with its webhook secret, by the path parameters that name it:
    #: (``sonarr``, ``None``), (``sonarr``, ``default``), (``sonarr``, ``4k``). Every webhook asks, so
    #: the settings are read once rather than parsed and looked up on each request.
    senders: dict[tuple[str, str | None], tuple[Instance, SecretStr | None]] = field(init=False)

    def __post_init__(self) -> None:
        self.senders = {}
        for instance in self.settings.service_instances:
            sender = (instance, self.settings.webhook_secret_for(instance))
            self.senders[(instance.kind.name, instance.name)] = sender
            if instance.name == DEFAULT_INSTANCE:
                self.senders[(instance.kind.name, None)] = sender


# Async so FastAPI calls them inline: a plain ``def`` dependency costs a thread-pool hop per request.
async def get_state(request: Request) -> AppState:
    return request.app.state.smartplex  # type: ignore[no-any-return]


StateDep = Annotated[AppState, Depends(get_state)]


async def require_admin(request: Request, state: StateDep) -> None:
    if not admin_authorized(request, state.settings.admin_secret):
        raise HTTPException(
            401,
            "admin secret required: send 'Authorization: Bearer <SMARTPLEX_ADMIN_SECRET>' or X-Admin-Token",
            headers={"WWW-Authenticate": 'Bearer realm="smartplex-admin"'},
        )


AdminDep = Depends(require_admin)


class AdminRoute(APIRoute):
    """A route that checks the admin secret first, before FastAPI reads and validates the body.

    (A dependency runs only after the body is parsed: an anonymous caller would get 400/422 for it.)
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def admin_only(request: Request) -> Response:
            await require_admin(request, await get_state(request))
            return await handler(request)

        return admin_only


class Problem(BaseModel):
    """The body of a 4xx or 503 answer."""

    detail: str


class Invalid(BaseModel):
    """A 422: the API's own explanation, or the field-by-field validation errors."""

    detail: str | list[dict[str, Any]]


ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or wrong admin secret"},
    503: {"model": Problem, "description": "Database unavailable"},
}
