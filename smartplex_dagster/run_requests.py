"""The run requests SmartPlex makes: a library asset over a partition range, tagged with why; and the job
that webhook runs are."""

from datetime import date, datetime, timedelta

import dagster as dg

from smartplex.column_types import utcnow
from smartplex.services import SERVICE_NAMES
from smartplex.settings import get_settings
from smartplex_dagster.library import asset_key
from smartplex_dagster.outcomes import SERVICE_TAG, TRIGGER_TAG, WEBHOOKS_TAG
from smartplex_dagster.partitions import DAILY, INCREMENTAL_DAYS, range_tags, whole_range
from smartplex_dagster.status_sensors import settle_webhooks

WEBHOOK_JOB = "webhook_sync"
#: A webhook run syncs one library: one step. The in-process executor runs it in the run's own process
#: instead of starting (and importing everything in) a second one for it.
_EXECUTORS = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}

webhook_job = dg.define_asset_job(
    WEBHOOK_JOB,
    selection=dg.AssetSelection.assets(*(asset_key(service) for service in SERVICE_NAMES)),
    description="An incremental sync of one library, for the webhooks that made it stale (webhook_sensor).",
    executor_def=_EXECUTORS[get_settings().webhook_run_executor],
    hooks={settle_webhooks},
)


def webhook_run(service: str, run_key: str, webhooks: int, oldest: datetime) -> dg.RunRequest:
    """An incremental sync of the last 7 daily partitions, for ``webhooks`` coalesced webhooks; reaching
    further back when the oldest of them (a replayed one, say) arrived earlier than that."""
    days = max(INCREMENTAL_DAYS, (utcnow().date() - oldest.date()).days + 1)
    return dg.RunRequest(
        run_key=run_key,
        job_name=WEBHOOK_JOB,
        asset_selection=[asset_key(service)],
        tags={**range_tags(_last_days(days)), TRIGGER_TAG: "webhook", SERVICE_TAG: service, WEBHOOKS_TAG: str(webhooks)},
    )


def _last_days(days: int) -> dg.PartitionKeyRange:
    """``partitions.last_days(days)``, counted back from the last partition: listing every partition
    since the history start costs tens of milliseconds per request, in every sensor tick."""
    last = DAILY.get_last_partition_key()
    first = DAILY.get_first_partition_key()
    assert last is not None and first is not None, "no daily partition yet"
    start = (date.fromisoformat(last) - timedelta(days=days - 1)).isoformat()
    return dg.PartitionKeyRange(max(start, first), last)


def full_refresh_run(service: str, run_key: str) -> dg.RunRequest:
    """A full refresh: every partition, which is what lets the sync soft-delete what vanished."""
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[asset_key(service)],
        tags={**range_tags(whole_range()), TRIGGER_TAG: "schedule", SERVICE_TAG: service},
    )
