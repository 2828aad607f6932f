"""The daily partitions every library asset shares, and what "incremental" and "full" mean on them."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from smartplex.settings import get_settings

#: An incremental sync covers this many days up to today (the webhook sensor's window).
INCREMENTAL_DAYS = 7

# end_offset=1 adds today's partition, so an incremental window always reaches "now".
DAILY = dg.DailyPartitionsDefinition(
    start_date=get_settings().history_start.isoformat(), end_offset=1, timezone="UTC"
)


def last_days(days: int = INCREMENTAL_DAYS, now: datetime | None = None) -> dg.PartitionKeyRange:
    keys = DAILY.get_partition_keys(current_time=now)
    return dg.PartitionKeyRange(keys[-min(days, len(keys))], keys[-1])


def whole_range(now: datetime | None = None) -> dg.PartitionKeyRange:
    keys = DAILY.get_partition_keys(current_time=now)
    return dg.PartitionKeyRange(keys[0], keys[-1])


def range_tags(partition_range: dg.PartitionKeyRange) -> dict[str, str]:
    """``RunRequest`` has no range argument: a range run is asked for with these two tags."""
    return {
        "dagster/asset_partition_range_start": partition_range.start,
        "dagster/asset_partition_range_end": partition_range.end,
    }


def is_full_refresh(partition_range: dg.PartitionKeyRange) -> bool:
    """A run over every partition is the full refresh (it alone may soft-delete what vanished)."""
    return partition_range.start == DAILY.get_first_partition_key() and partition_range.end >= whole_range().end
