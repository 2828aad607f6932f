"""Admin API: the sync schedules, "sync now", the webhook rows and replaying them.

The listings run the admin page's own queries (``webhook_api/admin_page/operations.py``), so a page and
its JSON twin show the same rows in the same order; the page's other twins (service checks, the
overview's charts) are in ``webhook_api/admin_page/api.py``.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator, model_validator

from smartplex import catch_up, schedule_state, webhook_queue
from smartplex.column_types import utcnow
from smartplex.instances import Instance
from smartplex.kinds import KIND_NAMES, KindName
from smartplex.schema import WEBHOOK_STATUSES
from webhook_api.admin_page import operations
from webhook_api.deps import ADMIN_RESPONSES, AdminRoute, Problem, StateDep

router = APIRouter(prefix="/api/admin", tags=["admin"], route_class=AdminRoute, responses=ADMIN_RESPONSES)
NO_SCHEDULE: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No schedule row (migrate)"}}
BAD_BODY: dict[int | str, dict[str, Any]] = {400: {"model": Problem, "description": "The body could not be parsed"}}
NO_INSTANCE: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such instance of the service is configured"}
}

if TYPE_CHECKING:
    WebhookStatus = str
    ReplayableStatus = str
else:
    # The one list of each (smartplex), as a Literal: validated, and listed as an enum in the OpenAPI
    # document. (A Literal of a tuple is the Literal of its items; a type checker reads only a string.)
    WebhookStatus = Literal[WEBHOOK_STATUSES]
    #: Rows a replay may send back to pending: handling finished and a run was involved.
    ReplayableStatus = Literal[webhook_queue.REPLAYABLE]


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


#: A JSON integer from 1 to 1440 (a day).
MinutesBetweenPolls = Annotated[int, Field(ge=1, le=1440), BeforeValidator(_a_number)]


class CatchUpChange(BaseModel):
    enabled: StrictBool | None = None
    interval_minutes: MinutesBetweenPolls | None = Field(
        default=None, description="Minutes between two polls of the service for changes no webhook brought"
    )


#: A service (every instance of it), or one instance: ``sonarr``, ``sonarr/4k``, ``sonarr/default``.
SOURCE_PATTERN = f"^({'|'.join(KIND_NAMES)})(/[a-z0-9]{{1,32}})?$"
SourceFilter = Annotated[str, Field(pattern=SOURCE_PATTERN, examples=["sonarr", "sonarr/4k"])]
InstanceName = Annotated[str, Path(description="An instance declared in SMARTPLEX_INSTANCES (sonarr:4k: 4k)")]


@router.get(
    "/schedules",
    summary="List the sync schedules, one per service instance, in the admin page's order; plan: what each does now",
)
def list_schedules(state: StateDep) -> list[dict[str, Any]]:
    with state.engine.begin() as connection:
        found = operations.list_schedules(connection, state.settings.service_instances, utcnow())
    return [schedule.as_json() for schedule in found]


def change_schedule(kind: KindName, change: ScheduleChange, state: StateDep) -> dict[str, Any]:
    """``/schedules/{kind}`` is the default instance's schedule; ``/schedules/{kind}/{instance}`` another's."""
    return _change(configured_instance(kind, None, state), change, state)


def change_instance_schedule(
    kind: KindName, instance: InstanceName, change: ScheduleChange, state: StateDep
) -> dict[str, Any]:
    return _change(configured_instance(kind, instance, state), change, state)


def sync_now(kind: KindName, state: StateDep) -> dict[str, Any]:
    return _sync_now(configured_instance(kind, None, state), state)


def sync_instance_now(kind: KindName, instance: InstanceName, state: StateDep) -> dict[str, Any]:
    return _sync_now(configured_instance(kind, instance, state), state)


for _prefix, _change_endpoint, _sync_endpoint, _what in (
    ("/schedules/{kind}", change_schedule, sync_now, ""),
    ("/schedules/{kind}/{instance}", change_instance_schedule, sync_instance_now, " (another instance)"),
):
    router.add_api_route(
        _prefix, _change_endpoint, methods=["PATCH"], responses=NO_SCHEDULE | BAD_BODY,
        summary=f"Turn a schedule on or off, or change its interval{_what}",
    )  # fmt: skip
    router.add_api_route(
        f"{_prefix}/sync", _sync_endpoint, methods=["POST"], status_code=202, responses=NO_SCHEDULE,
        summary=f"Run a full refresh within seconds (the webhook sensor's next tick){_what}",
    )  # fmt: skip


@router.get("/catch-up", summary="List each instance's catch-up: on or off, interval, watermark, sender health")
def list_catch_up(state: StateDep) -> list[dict[str, Any]]:
    with state.engine.begin() as connection:
        catch_up.ensure(connection, state.settings.service_instances)
        return [
            row
            for row in catch_up.rows(connection)
            if row["library"] in {i.id for i in state.settings.service_instances}
        ]


def change_catch_up(kind: KindName, change: CatchUpChange, state: StateDep) -> dict[str, Any]:
    """``/catch-up/{kind}`` is the default instance's catch-up; ``/catch-up/{kind}/{instance}`` another's."""
    return _change_catch_up(configured_instance(kind, None, state), change, state)


def change_instance_catch_up(
    kind: KindName, instance: InstanceName, change: CatchUpChange, state: StateDep
) -> dict[str, Any]:
    return _change_catch_up(configured_instance(kind, instance, state), change, state)


for _path, _endpoint, _what in (
    ("/catch-up/{kind}", change_catch_up, ""),
    ("/catch-up/{kind}/{instance}", change_instance_catch_up, " (another instance)"),
):
    router.add_api_route(
        _path, _endpoint, methods=["PATCH"], responses=NO_INSTANCE | BAD_BODY,
        summary=f"Turn a catch-up on or off, or change how often it polls the service{_what}",
    )  # fmt: skip


def _change_catch_up(library: Instance, change: CatchUpChange, state: StateDep) -> dict[str, Any]:
    with state.engine.begin() as connection:
        return catch_up.change(connection, library, enabled=change.enabled, interval_minutes=change.interval_minutes)


def configured_instance(kind: str, instance: str | None, state: StateDep) -> Instance:
    """The configured instance a path names (``{kind}``: the default one); 404 when it names none."""
    try:
        return state.settings.instance(kind if instance is None else f"{kind}/{instance}")
    except KeyError:
        raise HTTPException(404, f"no instance {instance!r} of {kind} is configured (SMARTPLEX_INSTANCES)") from None


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
    status: ReplayableStatus = "failed"
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


def _a_time(value: Any) -> Any:
    # Pydantic would read "1715673600" or "0.5" as Unix seconds; the list takes a time as the page does.
    if isinstance(value, str) and not re.match(r"\d{4}-\d\d-\d\d", value.strip()):
        raise ValueError("since is a date or a time, such as 2024-05-14 or 2024-05-14T08:00:00Z")
    return value


@router.get(
    "/webhooks",
    summary="Inspect webhook rows, newest first: the admin page's list (/admin/webhooks), with each payload",
)
def list_webhooks(
    state: StateDep,
    source: Annotated[
        str | None,
        Query(pattern=SOURCE_PATTERN, description="A service (every instance of it), or one instance: sonarr/4k"),
    ] = None,
    status: Annotated[WebhookStatus | None, Query()] = None,
    event: Annotated[str | None, Query(pattern=r"^[^\x00]+$", description="One event type, as stored")] = None,
    since: Annotated[
        datetime | None,
        BeforeValidator(_a_time),
        Query(description="Received at or after this time (UTC unless a zone is given)"),
    ] = None,
    page: Annotated[int, Query(ge=1, le=operations.MAX_PAGE, description="Pages of limit rows, from 1")] = 1,
    limit: Annotated[int, Query(ge=1, le=1000, description="Rows a page (the admin page shows 50)")] = 100,
) -> list[dict[str, Any]]:
    where = operations.WebhookFilter(source, status, event, since)
    with state.engine.connect() as connection:
        return operations.list_webhooks(connection, where, page=page, page_size=limit)
