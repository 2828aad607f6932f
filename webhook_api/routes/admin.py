"""Admin API: the sync schedules, "sync now", and replaying webhook rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator, model_validator
from sqlalchemy import select

from smartplex import schedule_state, webhook_queue
from smartplex.instances import Instance
from smartplex.kinds import KIND_NAMES, KindName
from smartplex.schema import webhook_log
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


#: A service (every instance of it), or one instance: ``sonarr``, ``sonarr/4k``, ``sonarr/default``.
SourceFilter = Annotated[
    str, Field(pattern=f"^({'|'.join(KIND_NAMES)})(/[a-z0-9]{{1,32}})?$", examples=["sonarr", "sonarr/4k"])
]
InstanceName = Annotated[str, Path(description="An instance declared in SMARTPLEX_INSTANCES (sonarr:4k: 4k)")]


@router.get("/schedules", summary="List the sync schedules, one per service instance")
def list_schedules(state: StateDep) -> list[dict[str, Any]]:
    with state.engine.begin() as connection:
        for instance in state.settings.service_instances:
            schedule_state.ensure(connection, instance)
        return schedules(connection)


def change_schedule(service: KindName, change: ScheduleChange, state: StateDep) -> dict[str, Any]:
    """``/schedules/{service}`` is the default instance's schedule; ``/schedules/{service}/{instance}`` another's."""
    return _change(_library(service, None, state), change, state)


def change_instance_schedule(
    service: KindName, instance: InstanceName, change: ScheduleChange, state: StateDep
) -> dict[str, Any]:
    return _change(_library(service, instance, state), change, state)


def sync_now(service: KindName, state: StateDep) -> dict[str, Any]:
    return _sync_now(_library(service, None, state), state)


def sync_instance_now(service: KindName, instance: InstanceName, state: StateDep) -> dict[str, Any]:
    return _sync_now(_library(service, instance, state), state)


for _prefix, _change_endpoint, _sync_endpoint, _what in (
    ("/schedules/{service}", change_schedule, sync_now, ""),
    ("/schedules/{service}/{instance}", change_instance_schedule, sync_instance_now, " (another instance)"),
):
    router.add_api_route(
        _prefix, _change_endpoint, methods=["PATCH"], responses=NO_SCHEDULE | BAD_BODY,
        summary=f"Turn a schedule on or off, or change its interval{_what}",
    )  # fmt: skip
    router.add_api_route(
        f"{_prefix}/sync", _sync_endpoint, methods=["POST"], status_code=202, responses=NO_SCHEDULE,
        summary=f"Run a full refresh within seconds (the webhook sensor's next tick){_what}",
    )  # fmt: skip


def _library(service: str, instance: str | None, state: StateDep) -> Instance:
    """The configured instance the path names; 404 when it names none."""
    try:
        return state.settings.instance(service if instance is None else f"{service}/{instance}")
    except KeyError:
        raise HTTPException(404, f"no instance {instance!r} of {service} is configured (SMARTPLEX_INSTANCES)") from None


def _change(library: Instance, change: ScheduleChange, state: StateDep) -> dict[str, Any]:
    with state.engine.begin() as connection:
        row = schedule_state.change(connection, library, enabled=change.enabled, interval_hours=change.interval_hours)
        return _found(row, library)


def _sync_now(library: Instance, state: StateDep) -> dict[str, Any]:
    with state.engine.begin() as connection:
        return _found(schedule_state.request_sync(connection, library), library)


def _found(row: dict[str, Any] | None, library: Instance) -> dict[str, Any]:
    if row is None:
        raise HTTPException(404, f"no sync_schedule row for {library.id}; run 'smartplex db upgrade'")
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
    source: SourceFilter | None = None
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
    source: KindName | None = None,
    instance: Annotated[
        str | None, Query(pattern="^[a-z0-9]{1,32}$", description="default, or a declared instance's name")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    query = select(webhook_log).order_by(webhook_log.c.received_at.desc()).limit(limit)
    if status is not None:
        query = query.where(webhook_log.c.status == status)
    if source is not None:
        query = query.where(webhook_log.c.source == source)
    if instance is not None:
        query = query.where(webhook_log.c.instance == instance)
    with state.engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]
