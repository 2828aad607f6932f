"""The run requests SmartPlex makes: a library asset over a partition range, tagged with why."""

from datetime import datetime

import dagster as dg

from smartplex.types import utcnow
from smartplex_dagster.library import asset_key
from smartplex_dagster.outcomes import SERVICE_TAG, TRIGGER_TAG, WEBHOOKS_TAG
from smartplex_dagster.partitions import INCREMENTAL_DAYS, last_days, range_tags, whole_range


def webhook_run(service: str, run_key: str, webhooks: int, oldest: datetime) -> dg.RunRequest:
    """An incremental sync of the last 7 daily partitions, for ``webhooks`` coalesced webhooks; reaching
    further back when the oldest of them (a replayed one, say) arrived earlier than that."""
    days = max(INCREMENTAL_DAYS, (utcnow().date() - oldest.date()).days + 1)
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[asset_key(service)],
        tags={**range_tags(last_days(days)), TRIGGER_TAG: "webhook", SERVICE_TAG: service, WEBHOOKS_TAG: str(webhooks)},
    )


def full_refresh_run(service: str, run_key: str) -> dg.RunRequest:
    """A full refresh: every partition, which is what lets the sync soft-delete what vanished."""
    return dg.RunRequest(
        run_key=run_key,
        asset_selection=[asset_key(service)],
        tags={**range_tags(whole_range()), TRIGGER_TAG: "schedule", SERVICE_TAG: service},
    )
