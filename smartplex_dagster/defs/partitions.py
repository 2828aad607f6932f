"""The weekly partitions every library asset shares, and what "incremental" and "full" mean on them.

Weeks, not days: Dagster records one event per partition a run covers (a "planned" event when the run
is created, a materialization when it ends), and evaluates automation per partition. With days since
2008 that was about 6,900 of each for a full refresh, minutes of bookkeeping and hundreds of MB of
storage for a sync of seconds. A week holds the 7 days an incremental sync reads in at most two
partitions.

- **Incremental** (webhook runs): the partitions that cover the last 7 days, and a fetch window of
  exactly 7 days (``WINDOW_START_TAG``) before the oldest webhook it covers, up to now: a replayed
  or delayed webhook reaches further back.
- **Full refresh** (schedules, "sync now"): the current week's partition with ``FULL_REFRESH_TAG``:
  the sync reads everything, whatever the partition, and records one materialization, not one per
  week since the history start. A run over every partition (a backfill of the whole range from the
  UI) is a full refresh too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import dagster as dg

from smartplex.column_types import utcnow
from smartplex.dagster_names import (
    FULL_REFRESH_TAG,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    WINDOW_START_TAG,
)
from smartplex.settings import get_settings

#: An incremental sync reads this many days up to now.
INCREMENTAL_DAYS = 7

# Weeks from Monday, UTC; end_offset=1 adds the current week, so a window always reaches "now".
PARTITIONS = dg.WeeklyPartitionsDefinition(
    start_date=get_settings().history_start.isoformat(), day_offset=1, end_offset=1, timezone="UTC"
)


def _week_of(moment: datetime) -> str:
    """The key of the partition holding ``moment`` (its week's Monday)."""
    day = moment.astimezone(UTC).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def covering(start: datetime) -> dg.PartitionKeyRange:
    """The partitions from the one holding ``start`` to the current one.

    Computed from the last key rather than by listing every partition since the history start,
    which costs tens of milliseconds and runs in every sensor tick.
    """
    first, last = PARTITIONS.get_first_partition_key(), PARTITIONS.get_last_partition_key()
    assert first is not None and last is not None, "no partition yet: SMARTPLEX_HISTORY_START is in the future"
    return dg.PartitionKeyRange(min(max(_week_of(start), first), last), last)


def range_tags(partition_range: dg.PartitionKeyRange) -> dict[str, str]:
    """``RunRequest`` has no range argument: a range run is asked for with these two tags."""
    return {
        PARTITION_RANGE_START_TAG: partition_range.start,
        PARTITION_RANGE_END_TAG: partition_range.end,
    }


def incremental_tags(oldest: datetime | None = None) -> dict[str, str]:
    """An incremental sync of the 7 days before the oldest webhook it covers (``oldest``; else now) up to
    now: the last 7 days, reaching further back for a replayed or delayed webhook. Computed from the
    webhook, not the clock, so a request asked for again under its run key is the same request."""
    return window_tags((oldest or utcnow()).astimezone(UTC) - timedelta(days=INCREMENTAL_DAYS))


def window_tags(start: datetime) -> dict[str, str]:
    """An incremental sync from ``start`` up to now (a catch-up's: from its watermark)."""
    return {**range_tags(covering(start)), WINDOW_START_TAG: start.astimezone(UTC).isoformat()}


def full_refresh_tags() -> dict[str, str]:
    last = PARTITIONS.get_last_partition_key()
    assert last is not None, "no partition yet: SMARTPLEX_HISTORY_START is in the future"
    return {**range_tags(dg.PartitionKeyRange(last, last)), FULL_REFRESH_TAG: "true"}


def is_full_refresh(tags: Mapping[str, str], partition_range: dg.PartitionKeyRange) -> bool:
    """A run tagged as one, or a run over every partition (it alone may soft-delete what vanished)."""
    if tags.get(FULL_REFRESH_TAG) == "true":
        return True
    first, last = PARTITIONS.get_first_partition_key(), PARTITIONS.get_last_partition_key()
    return partition_range.start == first and last is not None and partition_range.end >= last


def fetch_window(tags: Mapping[str, str], partitions: dg.TimeWindow) -> tuple[datetime, datetime]:
    """What an incremental run reads: from its window tag (else its first partition's start) to the end
    of its last partition."""
    try:
        start = datetime.fromisoformat(tags[WINDOW_START_TAG])
    except (KeyError, ValueError):
        start = partitions.start
    return (start if start.tzinfo else start.replace(tzinfo=UTC)), partitions.end
