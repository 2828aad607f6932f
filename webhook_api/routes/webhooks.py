"""``POST /api/webhooks/{source}`` (the default instance), ``POST /api/webhooks/{source}/{instance}``
and ``GET /api/webhooks/status``.

The intake's endpoints take the request and return the response, and their routes call them as they
are (:class:`RequestRoute`): each step is in the endpoint, in the order that matters. The secret first
(before the body, and before the source in the path is even looked at), then the source and instance
the path names, then the body, then the row's commit, and only then the 202. What they accept and
answer is declared on their routes, for the OpenAPI document alone (:func:`install`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError

from smartplex import webhook_queue
from smartplex.column_types import RawJSON, utcnow
from smartplex.instances import Instance
from smartplex.kinds import KindName
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
#: What the path's source may be: its schema in the OpenAPI document, and the 422 for any other.
_SOURCE: TypeAdapter[KindName] = TypeAdapter(KindName)


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


async def receive(request: Request) -> Response:
    """Store the webhook in ``webhook_log`` and answer 202 once the row is committed (PUT works too).

    Plex: multipart/form-data with the event in ``payload`` (the ``thumb`` JPEG is dropped) or plain JSON.
    Sonarr/Radarr/Overseerr: JSON. Tautulli: JSON from your template (or a form body).
    """
    state: AppState = request.app.state.smartplex
    instance = authorized_instance(request, state)
    row, stale = await build_row(instance, request, state)
    try:
        await state.writer.write(row)
    except (DatabaseUnavailable, BadWebhook) as exc:
        outcome = "unavailable" if isinstance(exc, DatabaseUnavailable) else "rejected"
        state.metrics.webhook(instance.kind.name, row["event_type"], outcome)
        raise
    state.metrics.webhook(instance.kind.name, row["event_type"], row["status"])
    return accepted(row, stale)


async def receive_for_instance(request: Request) -> Response:
    """As ``/{source}``, for another instance of the service than the default one (``/sonarr/4k``);
    an instance that is not configured is a 404."""
    return await receive(request)


async def baseline(request: Request) -> Response:
    """The intake path without the database: the benchmark's ceiling (SMARTPLEX_BASELINE_ROUTE=1)."""
    state: AppState = request.app.state.smartplex
    instance = authorized_instance(request, state)
    row, stale = await build_row(instance, request, state)
    return accepted(row, stale)


def authorized_instance(request: Request, state: AppState) -> Instance:
    """The configured instance the path names, once the request has shown a secret that opens it.

    The secret comes first, before the body and even before the source is checked: without one that
    would do, the answer is 401 whatever the path says. Then an unknown source is a 422 (as a path
    parameter that fails validation), an instance that is not configured a 404."""
    source, name = request.path_params["source"], request.path_params.get("instance")
    sender = state.senders.get((source, name))
    if sender is not None:
        instance, secret = sender
        if webhook_authorized(request, secret):
            return instance
        state.metrics.webhook(instance.kind.name, None, "unauthorized")
    # No such source or instance: a secret that would do for some instance may learn that; nobody else may.
    elif any(webhook_authorized(request, secret) for _, secret in state.senders.values()):
        try:
            _SOURCE.validate_python(source)
        except ValidationError as exc:  # worded as FastAPI words a path parameter that fails validation
            errors = [{**error, "loc": ("path", "source")} for error in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from None
        raise BadWebhook(404, f"no instance {name!r} of {source} is configured (SMARTPLEX_INSTANCES)")
    raise HTTPException(
        401,
        "missing or wrong webhook secret: use ?token=, Authorization: Bearer, Basic auth or X-Webhook-Token",
        headers={"WWW-Authenticate": 'Basic realm="smartplex-webhooks"'},
    )


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


def accepted(row: dict[str, Any], stale: tuple[str, ...]) -> Response:
    """The 202's body, an :class:`Accepted`."""
    body = Accepted(
        id=row["id"],
        source=row["source"],
        instance=row["instance"],
        event_type=row["event_type"],
        status=row["status"],
        stale_assets=list(stale),
    )
    return Response(body.model_dump_json(), 202, media_type="application/json")


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

#: The path's parameters as the OpenAPI document shows them (the endpoints read them from the request).
SOURCE_PARAM = {
    "name": "source",
    "in": "path",
    "required": True,
    "schema": {**_SOURCE.json_schema(), "title": "Source"},
}
_INSTANCE_DOC = "An instance declared in SMARTPLEX_INSTANCES (sonarr:4k: 4k)"
INSTANCE_PARAM = {
    "name": "instance",
    "in": "path",
    "required": True,
    "description": _INSTANCE_DOC,
    "schema": {"type": "string", "title": "Instance", "description": _INSTANCE_DOC},
}


class RequestRoute(APIRoute):
    """A route whose endpoint takes the request and returns the response, and is called as it is:
    no dependencies to solve, no body or parameters to validate, no answer to validate again. It
    carries the intake's hot path: FastAPI's own handling of such an endpoint (solving its one
    parameter, the request) was measured to add about a quarter to the app's CPU per webhook."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


def _request_body() -> dict[str, Any]:
    """The example bodies, plus the form Tautulli sends when its Content-Type is overridden."""
    extra = openapi_examples()
    extra["requestBody"]["content"]["application/x-www-form-urlencoded"] = {
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
        "example": {"action": "stop", "rating_key": "3101"},
    }
    return extra


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
    body = _request_body()
    # POST first: it is what the senders use, so it is the first route tried.
    for path, endpoint, parameters, suffix, what in (
        ("/{source}", receive, [SOURCE_PARAM], "", ""),
        (
            "/{source}/{instance}",
            receive_for_instance,
            [SOURCE_PARAM, INSTANCE_PARAM],
            "_instance",
            " for one instance",
        ),
    ):
        for method, method_suffix, method_what in (("POST", "", ""), ("PUT", "_put", " (PUT)")):
            routes.add_api_route(
                PREFIX + path, endpoint, methods=[method], tags=["webhooks"],
                operation_id=f"receive_webhook{suffix}{method_suffix}",
                summary=f"Receive one webhook{what}{method_what}", status_code=202, response_model=Accepted,
                responses=WEBHOOK_RESPONSES, openapi_extra={**body, "parameters": parameters},
                route_class_override=RequestRoute,
            )  # fmt: skip
    if baseline_route:
        routes.add_api_route(
            "/api/bench/baseline/{source}", baseline, methods=["POST"], include_in_schema=False,
            route_class_override=RequestRoute,
        )  # fmt: skip
