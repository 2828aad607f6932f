"""The admin page's JSON twins that the admin API (``webhook_api/routes/admin.py``) lacked.

- the "Test" button: ``POST /api/admin/services/{kind}/check`` (the default instance) and
  ``/services/{kind}/{instance}/check``;
- the overview's charts: ``GET /api/admin/charts/{chart}`` (every configured instance, the overview's
  order), ``/charts/{chart}/{kind}`` and ``/charts/{chart}/{kind}/{instance}`` (one card's chart).

Each runs the page's own query: ``check_service`` for a check, :func:`charts.received` for a chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smartplex.clients.check import ServiceCheck, check_service
from smartplex.column_types import utcnow
from smartplex.instances import Instance
from smartplex.kinds import KindName
from smartplex.schema import WEBHOOK_STATUSES
from webhook_api.admin_page import charts
from webhook_api.admin_page.charts import ChartName
from webhook_api.admin_page.operations import Bucket
from webhook_api.deps import ADMIN_RESPONSES, AdminRoute, AppState, StateDep
from webhook_api.routes.admin import NO_INSTANCE, InstanceName, WebhookStatus, configured_instance

router = APIRouter(prefix="/api/admin", tags=["admin"], route_class=AdminRoute, responses=ADMIN_RESPONSES)


# --- service checks -----------------------------------------------------------------------------


class ServiceCheckResult(BaseModel):
    instance: str = Field(description="The instance's id: sonarr, sonarr/4k")
    kind: KindName
    title: str
    configured: bool = Field(description="Whether the service's URL and credential are set")
    ok: bool = Field(description="The service answered, with the credential accepted")
    checked_at: datetime
    name: str | None = None
    version: str | None = None
    library_size: int | None = Field(default=None, description="Items in its library")
    error: str | None = Field(default=None, description="What went wrong, and what to check")

    @classmethod
    def of(cls, check: ServiceCheck) -> ServiceCheckResult:
        figures = {name: getattr(check, name) for name in cls.model_fields if name not in ("instance", "kind", "title")}
        instance = check.instance
        return cls(instance=instance.id, kind=instance.kind.name, title=instance.title, **figures)


async def _check(instance: Instance, state: AppState) -> ServiceCheckResult:
    # The connection can take seconds: off the event loop, so webhooks keep being answered.
    return ServiceCheckResult.of(await run_in_threadpool(check_service, state.settings, instance))


CHECK_SUMMARY = "Connect to a service, as `smartplex check` does: name, version, library size, or the error"


@router.post("/services/{kind}/check", summary=CHECK_SUMMARY)
async def check(kind: KindName, state: StateDep) -> ServiceCheckResult:
    return await _check(configured_instance(kind, None, state), state)


@router.post("/services/{kind}/{instance}/check", responses=NO_INSTANCE, summary=f"{CHECK_SUMMARY} (another instance)")
async def check_instance(kind: KindName, instance: InstanceName, state: StateDep) -> ServiceCheckResult:
    return await _check(configured_instance(kind, instance, state), state)


# --- the overview's charts ----------------------------------------------------------------------


class ChartBar(BaseModel):
    start: datetime
    end: datetime
    received: int = Field(description="Webhooks received in [start, end)")
    statuses: dict[WebhookStatus, int] = Field(description="The same webhooks by their status now, every status")


class ChartSeries(BaseModel):
    chart: ChartName
    instance: str = Field(description="The instance's id: sonarr, sonarr/4k")
    title: str
    caption: str
    bars: list[ChartBar] = Field(description="Oldest first; the last is the current hour or day, still filling")


def _series(chart: charts.Chart, instance: Instance, buckets: Sequence[Bucket]) -> ChartSeries:
    bars = [
        ChartBar(
            start=bucket.start,
            end=bucket.start + chart.period,
            received=bucket.total,
            statuses={status: bucket.counts.get(status, 0) for status in WEBHOOK_STATUSES},
        )
        for bucket in buckets
    ]
    return ChartSeries(chart=chart.name, instance=instance.id, title=instance.title, caption=chart.caption, bars=bars)


def chart_series(chart: ChartName, instances: Sequence[Instance], state: AppState) -> list[ChartSeries]:
    spec = charts.CHARTS[chart]
    with state.engine.connect() as connection:
        found = charts.received(connection, spec, instances, utcnow())
    return [_series(spec, instance, found[instance]) for instance in instances]


CHART_SUMMARY = "The overview's chart of webhooks received, by status: hourly (last 24 hours) or daily (last 7 days)"


@router.get("/charts/{chart}", summary=f"{CHART_SUMMARY}, for every instance in the overview's order")
def all_charts(chart: ChartName, state: StateDep) -> list[ChartSeries]:
    return chart_series(chart, state.settings.service_instances, state)


@router.get("/charts/{chart}/{kind}", summary=f"{CHART_SUMMARY}, of one service's default instance")
def one_chart(chart: ChartName, kind: KindName, state: StateDep) -> ChartSeries:
    return chart_series(chart, [configured_instance(kind, None, state)], state)[0]


@router.get("/charts/{chart}/{kind}/{instance}", responses=NO_INSTANCE, summary=f"{CHART_SUMMARY}, of another instance")
def instance_chart(chart: ChartName, kind: KindName, instance: InstanceName, state: StateDep) -> ChartSeries:
    return chart_series(chart, [configured_instance(kind, instance, state)], state)[0]
