"""``POST /api/webhooks/{source}`` (the default instance), ``POST /api/webhooks/{source}/{instance}``
and ``GET /api/webhooks/status``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from smartplex import webhook_queue
from smartplex.column_types import RawJSON, utcnow
from smartplex.instances import Instance
from smartplex.kinds import KIND_NAMES, KindName
from smartplex.routing import stale_assets
from webhook_api.auth import webhook_authorized
from webhook_api.deps import ADMIN_RESPONSES, AdminDep, AppState, Invalid, Problem, StateDep
from webhook_api.errors import BadWebhook, DatabaseUnavailable
from webhook_api.events import event_type as extract_event_type
from webhook_api.examples import openapi_examples
from webhook_api.parsing import read_payload
from webhook_api.status import webhook_status

log = logging.getLogger(__name__)
PREFIX = "/api/webhooks"


class Accepted(BaseModel):
    id: uuid.UUID
    source: str
    instance: str
    event_type: str
    status: str
    stale_assets: list[str]


def status(
    state: StateDep,
    window_hours: Annotated[float, Query(gt=0, le=24 * 366, description="Look-back window in hours")] = 24,
) -> dict[str, Any]:
    """Per source over the window: received, each status, last event, latency p50/p95; the backlog.
    Per stage of a webhook's path (received, claimed, run created, run started, sync started, sync
    finished, settled): p50/p95 seconds over the window's rows."""
    with state.engine.connect() as connection:
        instances = tuple(i.id for i in state.settings.service_instances)
        return webhook_status(connection, timedelta(hours=window_hours), instances=instances)


async def require_webhook_secret(request: Request, state: StateDep) -> None:
    check_webhook_secret(request, state)


def _instance(request: Request, state: AppState) -> Instance | None:
    """The configured instance the path names, if any."""
    source, name = request.path_params.get("source", ""), request.path_params.get("instance")
    try:
        return state.settings.instance(source if name is None else f"{source}/{name}")
    except KeyError:
        return None


def check_webhook_secret(request: Request, state: AppState) -> Instance | None:
    """The secret comes first, before the body and even before the source in the path is checked.
    Returns the instance the path names; ``None`` when there is none (then the path's validation
    answers 422 for an unknown source, or the endpoint 404 for an unknown instance)."""
    settings = state.settings
    instance = _instance(request, state)
    if instance is not None:
        if webhook_authorized(request, settings.webhook_secret_for(instance)):
            return instance
        state.metrics.webhook(instance.kind.name, None, "unauthorized")
    # No such source or instance: a secret that would do for some instance may learn that; nobody else may.
    elif any(webhook_authorized(request, settings.webhook_secret_for(i)) for i in settings.service_instances):
        return None
    raise HTTPException(
        401,
        "missing or wrong webhook secret: use ?token=, Authorization: Bearer, Basic auth or X-Webhook-Token",
        headers={"WWW-Authenticate": 'Basic realm="smartplex-webhooks"'},
    )


WebhookSecretDep = Depends(require_webhook_secret)

WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not valid JSON or UTF-8, or a malformed form"},
    401: {"model": Problem, "description": "Missing or wrong secret"},
    413: {"model": Problem, "description": "Body over the limit"},
    415: {"model": Problem, "description": "Content type this source never sends"},
    422: {
        "model": Invalid,
        "description": "Not a JSON object, nested too deep, a NUL or unpaired surrogate, no event field, an unknown source",
    },
    404: {"model": Problem, "description": "No such instance of the service is configured"},
    503: {"model": Problem, "description": "Database unavailable; nothing acknowledged"},
}


def _request_body() -> dict[str, Any]:
    """The example bodies, plus the form Tautulli sends when its Content-Type is overridden."""
    extra = openapi_examples()
    extra["requestBody"]["content"]["application/x-www-form-urlencoded"] = {
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
        "example": {"action": "stop", "rating_key": "3101"},
    }
    return extra


class WebhookRoute(APIRoute):
    """The intake route, lean: for a known source it checks the secret, then calls the endpoint with
    that source, the request and the app's state, and answers its :class:`Accepted` as JSON, with no
    dependency solving and no second validation of the answer. Any other source takes FastAPI's full
    path (the secret, then the path's validation: 401 or 422), as the route's OpenAPI entry describes.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        validated = super().get_route_handler()
        endpoint = self.endpoint
        status_code = self.status_code or 202

        async def lean(request: Request) -> Response:
            if request.path_params["source"] not in KIND_NAMES:
                return await validated(request)
            state: AppState = request.app.state.smartplex
            instance = check_webhook_secret(request, state)
            accepted = await _LEAN[endpoint](_known(instance, request), request, state)
            return Response(accepted.model_dump_json(), status_code, media_type="application/json")

        return lean


_RECEIVE: dict[str, Any] = {
    "status_code": 202,
    "response_model": Accepted,
    "responses": WEBHOOK_RESPONSES,
    "openapi_extra": _request_body(),
    "dependencies": [WebhookSecretDep],
    "route_class_override": WebhookRoute,
}


def _known(instance: Instance | None, request: Request) -> Instance:
    if instance is None:
        source, name = request.path_params["source"], request.path_params.get("instance", "")
        raise BadWebhook(404, f"no instance {name!r} of {source} is configured (SMARTPLEX_INSTANCES)")
    return instance


async def receive(source: KindName, request: Request, state: StateDep) -> Accepted:
    """Store the webhook in ``webhook_log`` and answer 202 once the row is committed (PUT works too).

    Plex: multipart/form-data with the event in ``payload`` (the ``thumb`` JPEG is dropped) or plain JSON.
    Sonarr/Radarr/Overseerr: JSON. Tautulli: JSON from your template (or a form body).
    """
    return await _receive(_known(_instance(request, state), request), request, state)


async def receive_for_instance(
    source: KindName,
    instance: Annotated[str, Path(description="An instance declared in SMARTPLEX_INSTANCES (sonarr:4k: 4k)")],
    request: Request,
    state: StateDep,
) -> Accepted:
    """As ``/{source}``, for another instance of the service than the default one (``/sonarr/4k``);
    an instance that is not configured is a 404."""
    return await _receive(_known(_instance(request, state), request), request, state)


async def _receive(instance: Instance, request: Request, state: AppState) -> Accepted:
    source = instance.kind.name
    row, stale = await build_row(instance, request, state)
    try:
        await state.writer.write(row)
    except (DatabaseUnavailable, BadWebhook) as exc:
        state.metrics.webhook(
            source, row["event_type"], "unavailable" if isinstance(exc, DatabaseUnavailable) else "rejected"
        )
        raise
    state.metrics.webhook(source, row["event_type"], row["status"])
    return _accepted(row, stale)


async def build_row(instance: Instance, request: Request, state: AppState) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Parse and route one authenticated webhook into the row to insert; raise a 4xx on bad input."""
    settings, source = state.settings, instance.kind.name
    try:
        payload, text = await read_payload(request, source, max_depth=settings.max_json_depth)
        event = extract_event_type(source, payload, tautulli_keys=settings.tautulli_event_keys)
    except BadWebhook as exc:
        state.metrics.webhook(source, None, "rejected")
        log.info("rejected %s webhook: %s", source, exc.detail)
        raise
    stale = stale_assets(instance, event)
    now = utcnow()
    row = {
        "id": uuid.uuid4(),
        "source": source,
        "instance": instance.name,
        "event_type": event,
        # The body's own JSON text, already checked: no second serialization on the hot path.
        "payload": RawJSON(text) if text is not None else payload,
        "received_at": now,
        **webhook_queue.initial_status(bool(stale), now),
    }
    return row, stale


def _accepted(row: dict[str, Any], stale: tuple[str, ...]) -> Accepted:
    return Accepted(
        id=row["id"],
        source=row["source"],
        instance=row["instance"],
        event_type=row["event_type"],
        status=row["status"],
        stale_assets=list(stale),
    )


async def baseline(source: KindName, request: Request, state: StateDep) -> Accepted:
    """The intake path without the database: the benchmark's ceiling (SMARTPLEX_BASELINE_ROUTE=1)."""
    return await _baseline(_known(_instance(request, state), request), request, state)


async def _baseline(instance: Instance, request: Request, state: AppState) -> Accepted:
    return _accepted(*await build_row(instance, request, state))


#: What the lean path calls for each route's endpoint: the same, with the instance already found.
_LEAN: dict[Callable[..., Any], Callable[[Instance, Request, AppState], Awaitable[Accepted]]] = {
    receive: _receive,
    receive_for_instance: _receive,
    baseline: _baseline,
}


def install(app: FastAPI, *, baseline_route: bool = False) -> None:
    """The intake's routes, on the app's own router, first: they are what the server mostly answers,
    and a route in an included router costs a second match of every route in it on each request.
    ``baseline_route`` adds the benchmark's route without the database."""
    routes = app.router
    # Before /{source}: a wrong method on /status is then answered 405 with this route's Allow: GET.
    routes.add_api_route(
        f"{PREFIX}/status", status, methods=["GET"], tags=["webhooks"], dependencies=[AdminDep],
        responses=ADMIN_RESPONSES, summary="Counts and processing statistics",
    )  # fmt: skip
    # POST first: it is what the senders use, so it is the first route tried.
    for path, endpoint, suffix, what in (
        ("/{source}", receive, "", ""),
        ("/{source}/{instance}", receive_for_instance, "_instance", " for one instance"),
    ):
        for method, method_suffix, method_what in (("POST", "", ""), ("PUT", "_put", " (PUT)")):
            routes.add_api_route(
                PREFIX + path, endpoint, methods=[method], tags=["webhooks"],
                operation_id=f"receive_webhook{suffix}{method_suffix}",
                summary=f"Receive one webhook{what}{method_what}", **_RECEIVE,
            )  # fmt: skip
    if baseline_route:
        routes.add_api_route(
            "/api/bench/baseline/{source}", baseline, methods=["POST"], status_code=202, response_model=Accepted,
            dependencies=[WebhookSecretDep], route_class_override=WebhookRoute, include_in_schema=False,
        )  # fmt: skip
