"""Admin API: the sync schedules, "sync now", and replaying webhook rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator, model_validator
from sqlalchemy import select

from smartplex import schedule_state, webhook_queue
from smartplex.schema import webhook_log
from smartplex.services import ServiceName
from webhook_api.deps import ADMIN_RESPONSES, AdminRoute, Problem, StateDep
from webhook_api.status import schedules

router = APIRouter(prefix="/api/admin", tags=["admin"], route_class=AdminRoute, responses=ADMIN_RESPONSES)
NO_SCHEDULE: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No schedule row (migrate)"}}
BAD_BODY: dict[int | str, dict[str, Any]] = {400: {"model": Problem, "description": "The body could not be parsed"}}

#: Rows a replay may send back to pending: handling finished and a run was involved.


def _a_number(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise ValueError("a JSON number is expected")
    return value


#: A JSON integer (3 or 3.0, never "3" or true) from 1 to 168.
HoursBetweenRuns = Annotated[int, Field(ge=1, le=168), BeforeValidator(_a_number)]


class ScheduleChange(BaseModel):
    # Strict: "false", 0 or "3" is a client bug to report, not a value to guess at.
    enabled: StrictBool | None = None
    interval_hours: HoursBetweenRuns | None = Field(default=None, description="Hours between full refreshes")


@router.get("/schedules", summary="List the sync schedules")
def list_schedules(state: StateDep) -> list[dict[str, Any]]:
    with state.engine.connect() as connection:
        return schedules(connection)


@router.patch(
    "/schedules/{service}",
    responses=NO_SCHEDULE | BAD_BODY,
    summary="Turn a schedule on or off, or change its interval",
)
def change_schedule(service: ServiceName, change: ScheduleChange, state: StateDep) -> dict[str, Any]:
    with state.engine.begin() as connection:
        row = schedule_state.change(connection, service, enabled=change.enabled, interval_hours=change.interval_hours)
        return _found(row, service)


@router.post(
    "/schedules/{service}/sync",
    status_code=202,
    responses=NO_SCHEDULE,
    summary="Run a full refresh within seconds (the webhook sensor's next tick)",
)
def sync_now(service: ServiceName, state: StateDep) -> dict[str, Any]:
    with state.engine.begin() as connection:
        return _found(schedule_state.request_sync(connection, service), service)


def _found(row: dict[str, Any] | None, service: str) -> dict[str, Any]:
    if row is None:
        raise HTTPException(404, f"no sync_schedule row for {service}; run 'smartplex db upgrade'")
    return row


class Replay(BaseModel):
    """Either ``ids``, or a filter (``source``, ``status``, ``since``)."""

    # The rule the validator below enforces, in the schema too: with ids, no source and no since.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"not": {"required": ["ids"]}},
                {"properties": {"ids": {"type": "null"}}},
                {"properties": {"source": {"type": "null"}, "since": {"type": "null"}}},
            ]
        }
    )

    ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=10_000)
    source: ServiceName | None = None
    status: Literal["failed", "processed", "missing"] = "failed"
    since: datetime | None = None

    @field_validator("since", mode="before")
    @classmethod
    def _since_is_text(cls, value: Any) -> Any:
        # Pydantic would read a bare number as Unix seconds; the API documents an ISO 8601 time.
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("since is a time such as 2024-05-14T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _ids_or_filter(self) -> Replay:
        if self.ids is not None and (self.source is not None or self.since is not None):
            raise ValueError("give either ids or a filter (source, status, since), not both")
        if self.since is not None and self.since.tzinfo is None:
            raise ValueError("since needs a time zone, e.g. 2024-05-14T00:00:00Z")
        return self


@router.post("/webhooks/replay", responses=BAD_BODY, summary="Send finished webhook rows back to pending")
def replay(request: Replay, state: StateDep) -> dict[str, int]:
    with state.engine.begin() as connection:
        replayed = webhook_queue.replay(
            connection, ids=request.ids, source=request.source, status=request.status, since=request.since
        )
    return {"replayed": replayed}


@router.get("/webhooks", summary="Inspect webhook rows, newest first")
def list_webhooks(
    state: StateDep,
    status: Annotated[
        Literal["pending", "dispatched", "processed", "failed", "ignored", "missing"] | None, Query()
    ] = None,
    source: ServiceName | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    query = select(webhook_log).order_by(webhook_log.c.received_at.desc()).limit(limit)
    if status is not None:
        query = query.where(webhook_log.c.status == status)
    if source is not None:
        query = query.where(webhook_log.c.source == source)
    with state.engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
