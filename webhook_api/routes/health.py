"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from smartplex import migrate
from webhook_api.deps import StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database answers and its schema is current",
    responses={
        503: {
            "description": "Schema behind, or the database unavailable",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
def readyz(state: StateDep) -> JSONResponse:
    revision = migrate.current_revision(state.engine)
    head = migrate.head_revision()
    if revision != head:
        return JSONResponse({"status": "schema behind", "revision": revision, "expected": head}, status_code=503)
    return JSONResponse({"status": "ready", "revision": revision})


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
