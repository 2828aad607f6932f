"""Admin API: the sync schedules, "sync now", and replaying webhook rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Connection, and_, select, update

from smartplex import schedule_state
from smartplex.schedule_state import next_run_at
from smartplex.schema import sync_schedule, webhook_log
from smartplex.services import ServiceName
from smartplex.types import utcnow
from webhook_api.deps import AdminDep, StateDep
from webhook_api.status import schedules

router = APIRouter(prefix="/api/admin", tags=["admin"], dependencies=[AdminDep])

#: Rows a replay may send back to pending: handling finished and a run was involved.
REPLAYABLE = ("failed", "processed")


class ScheduleChange(BaseModel):
    enabled: bool | None = None
    interval_hours: int | None = Field(default=None, ge=1, le=168, description="Hours between full refreshes")


@router.get("/schedules", summary="List the sync schedules")
def list_schedules(state: StateDep) -> list[dict[str, Any]]:
    with state.engine.connect() as connection:
        return schedules(connection)


@router.patch("/schedules/{service}", summary="Turn a schedule on or off, or change its interval")
def change_schedule(service: ServiceName, change: ScheduleChange, state: StateDep) -> dict[str, Any]:
    with state.engine.begin() as connection:
        row = _schedule(connection, service)
        enabled = row["enabled"] if change.enabled is None else change.enabled
        interval = row["interval_hours"] if change.interval_hours is None else change.interval_hours
        connection.execute(
            update(sync_schedule)
            .where(sync_schedule.c.service == service)
            .values(
                enabled=enabled,
                interval_hours=interval,
                next_run_at=next_run_at(enabled, interval, row["last_run_at"], utcnow()),
            )
        )
        return _schedule(connection, service)


@router.post("/schedules/{service}/sync", status_code=202, summary="Run a full refresh at the next tick")
def sync_now(service: ServiceName, state: StateDep) -> dict[str, Any]:
    with state.engine.begin() as connection:
        _schedule(connection, service)
        connection.execute(
            update(sync_schedule).where(sync_schedule.c.service == service).values(sync_requested_at=utcnow())
        )
        return _schedule(connection, service)


def _schedule(connection: Connection, service: str) -> dict[str, Any]:
    row = schedule_state.read(connection, service)
    if row is None:
        raise HTTPException(404, f"no sync_schedule row for {service}; run 'smartplex db upgrade'")
    return row


class Replay(BaseModel):
    """Either ``ids``, or a filter (``source``, ``status``, ``since``)."""

    ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=10_000)
    source: ServiceName | None = None
    status: Literal["failed", "processed"] = "failed"
    since: datetime | None = None

    @model_validator(mode="after")
    def _ids_or_filter(self) -> Replay:
        if self.ids is not None and (self.source is not None or self.since is not None):
            raise ValueError("give either ids or a filter (source, status, since), not both")
        if self.since is not None and self.since.tzinfo is None:
            raise ValueError("since needs a time zone, e.g. 2024-05-14T00:00:00Z")
        return self


@router.post("/webhooks/replay", summary="Send finished webhook rows back to pending")
def replay(request: Replay, state: StateDep) -> dict[str, int]:
    if request.ids is not None:
        condition = and_(webhook_log.c.id.in_(request.ids), webhook_log.c.status.in_(REPLAYABLE))
    else:
        parts = [webhook_log.c.status == request.status]
        if request.source is not None:
            parts.append(webhook_log.c.source == request.source)
        if request.since is not None:
            parts.append(webhook_log.c.received_at >= request.since)
        condition = and_(*parts)
    with state.engine.begin() as connection:
        result = connection.execute(
            update(webhook_log)
            .where(condition)
            .values(
                status="pending",
                processed=False,
                processed_at=None,
                error_message=None,
                dispatched_at=None,
                run_key=None,
                run_id=None,
                attempt=webhook_log.c.attempt + 1,
            )
        )
    return {"replayed": result.rowcount}


@router.get("/webhooks", summary="Inspect webhook rows, newest first")
def list_webhooks(
    state: StateDep,
    status: Annotated[Literal["pending", "dispatched", "processed", "failed", "ignored"] | None, Query()] = None,
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
