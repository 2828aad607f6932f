"""``POST /api/webhooks/{source}`` and ``GET /api/webhooks/status``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from smartplex import webhook_queue
from smartplex.column_types import RawJSON, utcnow
from smartplex.routing import stale_assets
from smartplex.services import SERVICE_NAMES, ServiceName
from webhook_api.auth import webhook_authorized
from webhook_api.deps import ADMIN_RESPONSES, AdminDep, AppState, Invalid, Problem, StateDep
from webhook_api.errors import BadWebhook, DatabaseUnavailable
from webhook_api.events import event_type as extract_event_type
from webhook_api.examples import openapi_examples
from webhook_api.parsing import read_payload
from webhook_api.status import webhook_status

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


class Accepted(BaseModel):
    id: uuid.UUID
    source: str
    event_type: str
    status: str
    stale_assets: list[str]


# Before /{source}: a wrong method on /status is then answered 405 with this route's Allow: GET.
@router.get("/status", dependencies=[AdminDep], responses=ADMIN_RESPONSES, summary="Counts and processing statistics")
def status(
    state: StateDep,
    window_hours: Annotated[float, Query(gt=0, le=24 * 366, description="Look-back window in hours")] = 24,
) -> dict[str, Any]:
    """Per source over the window: received, each status, last event, latency p50/p95; the backlog.
    Per stage of a webhook's path (received, claimed, run created, run started, sync started, sync
    finished, settled): p50/p95 seconds over the window's rows."""
    with state.engine.connect() as connection:
        return webhook_status(connection, timedelta(hours=window_hours))


async def require_webhook_secret(request: Request, state: StateDep) -> None:
    check_webhook_secret(request, state)


def check_webhook_secret(request: Request, state: AppState) -> None:
    """The secret comes first, before the body and even before the source in the path is checked."""
    settings = state.settings
    source = request.path_params.get("source", "")
    if source in SERVICE_NAMES:
        if webhook_authorized(request, settings.webhook_secret_for(source)):
            return
        state.metrics.webhook(source, None, "unauthorized")
    # No such source: a secret that would do for some source may learn that (422); nobody else may.
    elif any(webhook_authorized(request, settings.webhook_secret_for(s)) for s in SERVICE_NAMES):
        return
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
        endpoint: Callable[[str, Request, AppState], Awaitable[Accepted]] = self.endpoint
        status_code = self.status_code or 202

        async def lean(request: Request) -> Response:
            source = request.path_params["source"]
            if source not in SERVICE_NAMES:
                return await validated(request)
            state: AppState = request.app.state.smartplex
            check_webhook_secret(request, state)
            accepted = await endpoint(source, request, state)
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


async def receive(source: ServiceName, request: Request, state: StateDep) -> Accepted:
    """Store the webhook in ``webhook_log`` and answer 202 once the row is committed (PUT works too).

    Plex: multipart/form-data with the event in ``payload`` (the ``thumb`` JPEG is dropped) or plain JSON.
    Sonarr/Radarr/Overseerr: JSON. Tautulli: JSON from your template (or a form body).
    """
    row, stale = await build_row(source, request, state)
    try:
        await state.writer.write(row)
    except (DatabaseUnavailable, BadWebhook) as exc:
        state.metrics.webhook(
            source, row["event_type"], "unavailable" if isinstance(exc, DatabaseUnavailable) else "rejected"
        )
        raise
    state.metrics.webhook(source, row["event_type"], row["status"])
    return _accepted(row, stale)


# POST first: it is what the senders use, so it is the first route tried.
router.add_api_route(
    "/{source}", receive, methods=["POST"], operation_id="receive_webhook", summary="Receive one webhook", **_RECEIVE
)
router.add_api_route(
    "/{source}",
    receive,
    methods=["PUT"],
    operation_id="receive_webhook_put",
    summary="Receive one webhook (PUT)",
    **_RECEIVE,
)


async def build_row(source: str, request: Request, state: AppState) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Parse and route one authenticated webhook into the row to insert; raise a 4xx on bad input."""
    settings = state.settings
    try:
        payload, text = await read_payload(request, source, max_depth=settings.max_json_depth)
        event = extract_event_type(source, payload, tautulli_keys=settings.tautulli_event_keys)
    except BadWebhook as exc:
        state.metrics.webhook(source, None, "rejected")
        log.info("rejected %s webhook: %s", source, exc.detail)
        raise
    stale = stale_assets(source, event)
    now = utcnow()
    row = {
        "id": uuid.uuid4(),
        "source": source,
        "event_type": event,
        # The body's own JSON text, already checked: no second serialization on the hot path.
        "payload": RawJSON(text) if text is not None else payload,
        "received_at": now,
        **webhook_queue.initial_status(bool(stale), now),
    }
    return row, stale


def _accepted(row: dict[str, Any], stale: tuple[str, ...]) -> Accepted:
    return Accepted(
        id=row["id"], source=row["source"], event_type=row["event_type"], status=row["status"], stale_assets=list(stale)
    )


baseline_router = APIRouter(prefix="/api/bench", tags=["benchmark"], include_in_schema=False)


async def baseline(source: ServiceName, request: Request, state: StateDep) -> Accepted:
    """The intake path without the database: the benchmark's ceiling (SMARTPLEX_BASELINE_ROUTE=1)."""
    return _accepted(*await build_row(source, request, state))


baseline_router.add_api_route(
    "/baseline/{source}",
    baseline,
    methods=["POST"],
    status_code=202,
    response_model=Accepted,
    dependencies=[WebhookSecretDep],
    route_class_override=WebhookRoute,
)
