"""The JSON twin of the page's "Test" button: ``POST /api/admin/services/{service}/check``."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smartplex.clients.check import ServiceCheck, check_service
from smartplex.instances import Instance
from smartplex.kinds import KindName, get_kind
from webhook_api.deps import ADMIN_RESPONSES, AdminRoute, StateDep

router = APIRouter(prefix="/api/admin", tags=["admin"], route_class=AdminRoute, responses=ADMIN_RESPONSES)


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


@router.post(
    "/services/{service}/check",
    summary="Connect to a service, as `smartplex check` does: name, version, library size, or the error",
)
async def check(service: KindName, state: StateDep) -> ServiceCheckResult:
    # The connection can take seconds: off the event loop, so webhooks keep being answered.
    instance = Instance(get_kind(service))
    return ServiceCheckResult.of(await run_in_threadpool(check_service, state.settings, instance))
